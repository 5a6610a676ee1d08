"""`repro bench step` on a tiny proxy: every ET++ stage profiled, the parts and the predicted ratio consistent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from repro.cli import main

needs_fmnist = pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").exists(),
                                  reason="dataset-fashion-mnist not installed")


@needs_fmnist
@pytest.mark.slow
def test_bench_step_profiles_every_stage(tmp_path):
    before = torch.get_num_threads()
    out = tmp_path / "step.json"
    try:
        assert main(["bench", "step", "--model", "resnet18", "--model-kwargs", '{"channels": [8, 16, 16, 16]}',
                     "--final-size", "28", "--train-images", "128", "--val-images", "16", "--batch-size", "16",
                     "--epochs", "1", "--workers", "0", "--steps", "1", "--repeats", "1", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(before)
    result = json.loads(out.read_text())
    stages = result["stages"]
    assert list(stages) == ["12", "20", "28"]
    assert stages["28"]["compute_vs_final"] == pytest.approx(1.0)
    for b, row in stages.items():
        assert row["ideal"] == pytest.approx((int(b) / 28) ** 2)
        assert all(row["per_image_us"][k] > 0 for k in ("data", "forward", "backward", "optimizer", "engine_step"))
        assert row["transform_us_per_image"] > 0
    assert result["predicted_walltime_over_computation"] > 0
