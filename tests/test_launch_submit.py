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
    """Table 12's IN-22K runs have no runner yet: a job for them would only fail, so none is planned."""
    assert main(["submit", "12", "--profile", "full", "--dry-run", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("no runner for task 'in22k' yet") == 14
    assert "0 runs, would submit 0 as one array (14 more have no runner)" in out


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
