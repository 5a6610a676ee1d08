"""GPU-hour estimates: the cost model's training compute over the paper's own throughput (Table 12's GPU-days)."""

from __future__ import annotations

import pytest

from repro.launch.estimate import gpu_hours, paper_throughput
from repro.launch.manifest import cell_value, load_manifest, manifest_path
from repro.launch.resolve import resolve
from repro.models.cost import TRAIN_IMAGES, training_macs


def test_paper_throughput_from_table12():
    """ConvNeXt-B: 150 epochs x 14.2M images x 15.4 GMACs / 181.9 GPU-days = 2.09 T MAC/s on a 3090."""
    t = paper_throughput()
    assert t.runs == 4
    assert t.low == pytest.approx(150 * 14_197_122 * 15.4e9 / (181.9 * 86400))
    assert 2.0e12 < t.low < t.mean < t.high < 3.4e12


def test_estimates_meet_the_papers_gpu_days():
    """Every Table 12 pre-training of a model the zoo has (ConvNeXt-B, CSWin-B: baselines, ET, ET++ at 2/3, 1/2,
    1/3 of the epochs) within 25 % of the GPU-days the paper reports for it."""
    manifest = load_manifest(manifest_path(12))
    compared = 0
    for row in manifest.rows:
        run = next(r for r in resolve(manifest, "full", [row.label]) if r.key == "run")
        hours = gpu_hours(run.config)
        if hours is None:
            continue
        compared += 1
        paper = cell_value(row.cells["pretrain_gpu_days"])
        assert hours / 24 == pytest.approx(paper, rel=0.25), row.label
    assert compared == 7


def test_what_the_cost_model_cannot_estimate():
    base = {"task": "in1k", "model": "ResNet-50", "method": "baseline", "epochs": 300, "dataset": "imagenet-1k"}
    assert training_macs(base) == pytest.approx(300 * TRAIN_IMAGES["imagenet-1k"] * 4.1e9, rel=0.02)
    assert training_macs({**base, "max_train_images": 1000}) == pytest.approx(training_macs(base) * 1000 / 1281167)
    assert training_macs({**base, "dataset": "flowers-102"}) is None  # size unknown
    assert training_macs({**base, "model": "CSWin-Large"}) is None  # not in the zoo
    assert training_macs({**base, "task": "mae"}) is None
    assert gpu_hours(base, speed_vs_3090=2) == pytest.approx(gpu_hours(base) / 2)
