"""Table 1's evaluator: kept weights evaluated on circularly low/high-pass filtered validation images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repro.results.evaluators import CACHE, evaluate
from repro.train.config import TrainConfig
from repro.train.engine import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_filtered_evaluation_of_kept_weights(tmp_path: Path) -> None:
    cfg = TrainConfig(model="test_vit", model_kwargs={"patch_size": 4}, epochs=2, final_size=28, adapt="linear",
                      max_train_images=64, max_val_images=64, batch_size=16, workers=0, lr=1e-3, warmup_epochs=0.1,
                      mixup=0, cutmix=0, reprob=0, crop_pct=1.0, snapshot_epochs=(1, 2))
    summary = train(cfg, tmp_path)
    assert sorted(p.name for p in (tmp_path / "snapshots").glob("*.pt")) == ["epoch-1.pt", "epoch-2.pt"]
    everything = {"eval_filter": "low-pass", "eval_filter_radius": 224, "eval_epoch": 2}
    assert evaluate(tmp_path, everything, 1.0) == pytest.approx(summary["top1"])  # the circle holds the spectrum
    nothing = {**everything, "eval_filter": "high-pass"}
    assert evaluate(tmp_path, nothing, 1.0) < summary["top1"]
    low = evaluate(tmp_path, {"eval_filter": "low-pass", "eval_filter_radius": "matched", "eval_epoch": 1}, 1.0)
    high = evaluate(tmp_path, {"eval_filter": "high-pass", "eval_filter_radius": "matched", "eval_epoch": 1}, 1.0)
    cache = json.loads((tmp_path / CACHE).read_text())
    r = cache["matched/2"]
    assert 1 <= r <= 20 and {f"1/low-pass/{r:g}", f"1/high-pass/{r:g}"} <= cache.keys()
    assert (low, high) == (cache[f"1/low-pass/{r:g}"], cache[f"1/high-pass/{r:g}"])
    final_gap = abs(cache[f"2/low-pass/{r:g}"] - cache[f"2/high-pass/{r:g}"])
    assert all(final_gap <= abs(cache[f"2/low-pass/{q:g}"] - cache[f"2/high-pass/{q:g}"])
               for q in (r - 1, r + 1) if f"2/low-pass/{q:g}" in cache and f"2/high-pass/{q:g}" in cache)
