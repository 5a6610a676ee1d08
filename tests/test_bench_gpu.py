"""`repro bench gpu` on its CPU path with tiny settings: every model and size measured for both arms."""

from __future__ import annotations

import json

import pytest

from repro.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_bench_gpu_cpu_path_writes_speeds_and_ideal_fractions(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    assert main(["bench", "gpu", "--device", "cpu", "--models", "resnet18", "--sizes", "32", "48", "--steps", "2",
                 "--warmup", "1", "--repeats", "2", "--batch-size", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["models"]["resnet18"]
    assert set(rows) == {"32", "48"}
    for row in rows.values():
        assert row["repro_img_s"] > 0 and row["timm_img_s"] > 0
        lo, hi = row["repro_img_s_range"]
        assert lo <= row["repro_img_s"] <= hi
    assert rows["48"]["repro_ideal_fraction"] == pytest.approx(1.0)  # the final size is its own reference
    assert rows["32"]["repro_ideal_fraction"] == pytest.approx(
        rows["32"]["repro_img_s"] / rows["48"]["repro_img_s"] / (48 / 32) ** 2)
    assert result["setup"]["device"] == "cpu" and not result["setup"]["amp_bf16"]
    assert "resnet18" in capsys.readouterr().out
