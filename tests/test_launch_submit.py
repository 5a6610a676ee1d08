"""`repro submit` / `repro status` without a cluster: plans (--dry-run), the local path, run states."""

from __future__ import annotations

import json

import pytest
import toy_task

from repro.cli import main
from repro.launch.manifest import load_manifest, manifest_path
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


def test_status_shows_step_compute_and_eta_per_run(toy, tmp_path, capsys):
    """Run directories at several states: finished, trained now by a live process on this host, interrupted, and
    never started; the plain table (stdout is no terminal here) has step k/N, the compute done and the ETA."""
    import os
    import socket
    import time

    from repro.launch.resolve import resolve
    from repro.launch.rundir import RunDir
    from repro.train.progress import Progress, write_progress

    runs = resolve(load_manifest(manifest_path(7)), "smoke", ["ResNet-50", "PVT-Tiny"])
    finished, running, stopped, _ = (tmp_path / r.run_id for r in runs)
    for d, r in zip((finished, running, stopped), runs, strict=False):
        RunDir(d).prepare(r.config)
    now = time.time()
    write_progress(finished, Progress(400, 400, 1.0, 3, 3, 28, 0.0, 90.0, now - 60))
    (finished / "summary.json").write_text(json.dumps({"top1": 90.0}))
    write_progress(running, Progress(120, 400, 0.021, 1, 3, 12, 4300.0, 90.0, now - 600))
    (running / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                               "command": "repro run 7"}))
    write_progress(stopped, Progress(300, 400, 0.6, 2, 3, 20, 500.0, 90.0, now - 7200))
    assert main(["status", "7", "--only", "ResNet-50", "PVT-Tiny", "--runs", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    cells = [line.split() for line in lines[1:5]]
    assert lines[0].split() == ["state", "run", "step", "compute", "eta", "updated", "run", "id", "detail"]
    assert [c[:2] + c[4:7] for c in cells] == [
        ["finished", "ResNet-50", "400/400", "100.0%", "-"],
        ["running", "ResNet-50", "120/400", "2.1%", "1h01m"],  # 4300 s at the record, 600 s ago
        ["partial", "PVT-Tiny", "300/400", "60.0%", "-"],  # not training: no ETA
        ["pending", "PVT-Tiny", "-", "-", "-"]]
    assert [c[7] for c in cells] == ["-", cells[1][7], "2h00m", "-"] and cells[1][7].startswith("10m0")
    assert lines[2].endswith(f"pid {os.getpid()} (repro run 7)")
    assert lines[-1] == "table 7 (smoke): 1 finished, 1 partial, 1 pending, 1 running"
