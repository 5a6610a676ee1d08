"""Run links on the local SLURM: `repro submit` sends a pre-training and its fine-tuning in one go, the second
with ``afterok`` on the first; it starts only after the first finished, and never when the first failed.

The toy tasks (``tests/toy_task.py``, through ``REPRO_TASK_MODULES=toy_plugin``, which the jobs inherit with the
environment) stand in for the engine: the ResNet-50 pre-training takes a few seconds and finishes, CSWin-Tiny's
fails with a ``UserError`` (never retried)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from test_run_links import two_stage_manifest

from repro.cli import main
from repro.launch.job import read_events
from repro.launch.slurm_state import squeue_states

TESTS = Path(__file__).resolve().parent
pytestmark = [pytest.mark.slurm, pytest.mark.timeout(300)]


@pytest.fixture
def cluster(monkeypatch):
    from repro.launch.slurm_state import controller_answers, use_local_cluster_conf

    use_local_cluster_conf()
    problem = controller_answers()
    if problem:
        pytest.skip(f"local SLURM not up ({problem}); run slurm/local/up.sh or make test-slurm")
    monkeypatch.setenv("REPRO_TASK_MODULES", "toy_plugin")
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("TOY_RUNNER_SLEEP", "3")


def _event(run: Path, kind: str) -> dict | None:
    return next((e for e in read_events(run) if e["event"] == kind), None)


def test_second_stage_starts_after_the_first_and_never_after_a_failure(cluster, tmp_path, capsys):
    manifest, runs = two_stage_manifest(tmp_path, ("ResNet-50", "CSWin-Tiny")), tmp_path / "runs"
    assert main(["submit", str(manifest), "--cluster", "slurm", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "submitted 4 as one array, 2 of them after the run they start from (afterok)" in out
    pretrain, ft = (next(runs.glob(f"{p}resnet-50-*")) for p in ("", "transfer-"))
    failing, held = (next(runs.glob(f"{p}cswin-tiny-*")) for p in ("", "transfer-"))
    held_job = _event(held, "submitted")["job_id"]

    deadline = time.monotonic() + 200
    while not (ft / "summary.json").exists() or _event(failing, "end") is None:
        assert time.monotonic() < deadline, "the two-stage graph did not finish"
        time.sleep(1)
    assert _event(ft, "start")["t"] >= _event(pretrain, "end")["t"]  # started once the first had finished
    assert json.loads((ft / "summary.json").read_text())["top1"] == 91.0
    assert _event(failing, "end")["outcome"] == "failed"

    time.sleep(6)  # a few scheduler passes: the dependency is now known to be unsatisfiable
    state = squeue_states([held_job])[held_job]
    assert state["State"] == "PENDING" and "Dependency" in state["Reason"], state
    assert _event(held, "start") is None  # never started
    assert main(["status", str(manifest), "--runs", str(runs)]) == 0
    status = capsys.readouterr().out
    assert f"waiting for {failing.name}" in status
    subprocess.run(["scancel", held_job], check=True, timeout=30)
