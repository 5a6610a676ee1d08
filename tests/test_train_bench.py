"""`repro bench speedup` pieces that do not train: the down-sampling cost measurement (Sec. 5.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from repro.commands.bench import downsample_costs
from repro.core.curriculum import build

needs_fmnist = pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").exists(),
                                  reason="dataset-fashion-mnist not installed")


@needs_fmnist
def test_downsample_cost_ratio_is_the_weighted_ratio_of_per_image_times() -> None:
    resolutions = {12: 3.0, 20: 1.0}
    out = downsample_costs(28, resolutions, images=20, repeats=1)
    per = out["per_resolution"]
    assert set(per) == {"12", "20"}
    for row in per.values():
        assert row["lanczos_us"] > 0 and row["bicubic_us"] > 0
        assert row["ratio"] == pytest.approx(row["lanczos_us"] / row["bicubic_us"])
    weighted = sum(w * per[str(b)]["lanczos_us"] for b, w in resolutions.items()) / sum(
        w * per[str(b)]["bicubic_us"] for b, w in resolutions.items())
    assert out["ratio"] == pytest.approx(weighted)


def test_etpp_budget_ratio_is_the_papers() -> None:
    """The bench gives ET++ epochs / 1.5 equivalent epochs: Table 6's 200 against the baseline's 300."""
    from repro.commands.bench import ETPP_BUDGET_RATIO

    paper = build("baseline").equivalent_epochs / build("etpp").equivalent_epochs
    assert paper == pytest.approx(ETPP_BUDGET_RATIO)


@needs_fmnist
@pytest.mark.slow
def test_interleaved_runs_end_as_uninterrupted_runs(tmp_path):
    """The speedup bench trains its two runs in slices, in turn: each ends exactly as a run in one go."""
    import torch

    from repro.commands.bench import interleaved
    from repro.train.config import TrainConfig
    from repro.train.engine import train

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        kw = dict(model="test_vit", model_kwargs={"patch_size": 4}, final_size=28, adapt="linear", max_train_images=96,
                  max_val_images=32, batch_size=32, lr=1e-3, warmup_epochs=0.2, workers=0, crop_scale=(0.35, 1.0),
                  eval_every_epochs=1e9, checkpoint_minutes=1e6, epochs=1, device="cpu")
        configs = {"baseline": TrainConfig(method="baseline", **kw),
                   "etpp": TrainConfig(method="efficienttrain++", **kw)}
        sliced = interleaved(configs, tmp_path / "sliced", chunks=3)
        for name, cfg in configs.items():
            whole = train(cfg, tmp_path / "whole" / name)
            for key in ("top1", "val_loss", "steps", "equivalent_epochs"):
                assert sliced[name][key] == whole[key], (name, key)
    finally:
        torch.set_num_threads(before)
