"""`repro submit` / `repro status` without a cluster: plans (--dry-run), the local path, run states."""

from __future__ import annotations

import json

import pytest
import toy_task

from repro.cli import main
from repro.tasks import REGISTRY


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(REGISTRY, "in1k", toy_task.TASK)
    toy_task.CALLS.clear()
    return toy_task.CALLS


def test_full_dry_run_prints_a_plan(tmp_path, capsys):
    assert main(["submit", "7", "--profile", "full", "--dry-run", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "38 runs, would submit 38 as one array" in out
    assert "4 node(s) x 8 GPU(s), time limit 48 h" in out and "GPU-hours" in out
    assert "#SBATCH --gpus-per-node=8" in out and "#SBATCH --ntasks-per-node=8" in out
    assert "epochs 300" in out and "epochs 200" in out
    assert not any(tmp_path.iterdir())  # a dry run writes nothing


def test_runs_without_a_runner_are_named_not_submitted(tmp_path, capsys):
    """Table 12 at full size: CSWin-Large has no implementation, so its 4 pre-trainings and 8 fine-tunings are
    named, not planned (a job would only fail); the fine-tunings of the others wait for their pre-training."""
    assert main(["submit", "12", "--profile", "full", "--dry-run", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("no implementation of model 'CSWin-Large'") == 12
    assert ("30 runs, would submit 30 as one array (12 more have no runner), 20 of them after the run they start "
            "from (afterok)") in out
    assert out.count("to submit after in22k-convnext-base-") == 6  # ConvNeXt-B's 3 pre-trainings x 224^2, 384^2


def test_overrides_reach_the_sbatch_script(tmp_path, capsys):
    args = ["submit", "7", "--profile", "full", "--dry-run", "--runs", str(tmp_path), "--only", "DeiT-Tiny"]
    assert main([*args, "--set", "partition=a100", "--set", "time=12:00:00", "--set", "nodes=1"]) == 0
    out = capsys.readouterr().out
    assert "#SBATCH --partition=a100" in out and "#SBATCH --time=720" in out and "2 runs" in out
    assert main([*args, "--set", "nodes=zero"]) == 2
    assert "nodes" in capsys.readouterr().err


def test_local_cluster_and_status(toy, tmp_path, capsys):
    runs = str(tmp_path)
    assert main(["status", "7", "--only", "ResNet-50", "--runs", runs]) == 0
    assert "table 7 (smoke): 2 pending" in capsys.readouterr().out
    assert main(["submit", "7", "--cluster", "local", "--only", "ResNet-50", "Swin-Tiny", "--runs", runs]) == 130
    capsys.readouterr()
    assert main(["status", "7", "--only", "ResNet-50", "Swin-Tiny", "--runs", runs]) == 0
    out = capsys.readouterr().out
    assert "2 finished, 1 partial, 1 pending" in out  # Swin-Tiny's baseline was interrupted (toy runner)
    summary = json.loads(next(tmp_path.glob("resnet-50-baseline-*/summary.json")).read_text())
    assert summary["top1"] == 90.0
