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
def cluster(local_slurm, monkeypatch):
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


def test_two_shapes_go_as_two_arrays_and_the_dependency_is_kept(cluster, tmp_path, monkeypatch, capsys):
    """Per-run resources on the CPU-only cluster: the fine-tunings state 2 "GPUs", emulated as 2 CPUs per task
    (``cluster.shape`` replaced: the local node has no GPUs). ResNet-50's pre-training finished already, so its
    fine-tuning goes as one array (2 CPUs), PVT-Tiny's pre-training as another (1 CPU), and PVT-Tiny's fine-tuning
    after it (2 CPUs, afterok); all three finish."""
    import dataclasses

    import toy_plugin  # noqa: F401  (registers the toy tasks now, so the replacement below stays)

    from repro.launch import cluster as cluster_module
    from repro.launch.manifest import load_manifest
    from repro.launch.resolve import resolve
    from repro.launch.rundir import RunDir
    from repro.launch.slurm_state import scontrol_show_job, slurm_job
    from repro.tasks import REGISTRY

    monkeypatch.setitem(REGISTRY, "transfer", dataclasses.replace(REGISTRY["transfer"], gpus=2))
    monkeypatch.setattr(cluster_module, "run_gpus", lambda profile, *stated: next(
        (n for n in stated if n is not None), 1))
    monkeypatch.setattr(cluster_module, "shape", lambda profile, gpus: profile if gpus in (None, 1) else
                        profile.model_copy(update={"cpus_per_task": gpus}))
    manifest, runs = two_stage_manifest(tmp_path, ("ResNet-50", "PVT-Tiny")), tmp_path / "runs"
    done = next(r for r in resolve(load_manifest(manifest), "smoke") if r.key == "pretrain")
    RunDir(runs / done.run_id).prepare(done.config)
    (runs / done.run_id / "summary.json").write_text(json.dumps({"top1": 90.0}))

    assert main(["submit", str(manifest), "--cluster", "slurm", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "submitted 3 as 2 arrays (one per GPU count), 1 of them after the run they start from (afterok)" in out
    ft, pretrain, ft2 = (next(runs.glob(p)) for p in ("transfer-resnet-50-*", "pvt-tiny-*", "transfer-pvt-tiny-*"))
    jobs = {d: _event(d, "submitted")["job_id"] for d in (ft, pretrain, ft2)}
    assert len(set(jobs.values())) == 3
    folder = runs / "_submitit"
    scripts = {d: slurm_job(folder, job).paths.submission_file.read_text() for d, job in jobs.items()}
    assert "#SBATCH --cpus-per-task=2\n" in scripts[ft] and "#SBATCH --cpus-per-task=1\n" in scripts[pretrain]
    assert "#SBATCH --cpus-per-task=2\n" in scripts[ft2]
    assert f"#SBATCH --dependency=afterok:{jobs[pretrain]}\n" in scripts[ft2]
    assert "--dependency" not in scripts[ft] + scripts[pretrain]
    assert [scontrol_show_job(jobs[d]).get("CPUs/Task") for d in (ft, pretrain, ft2)] == ["2", "1", "2"]
    deadline = time.monotonic() + 200
    while not all((d / "summary.json").exists() for d in (ft, pretrain, ft2)):
        assert time.monotonic() < deadline, "the runs did not finish"
        time.sleep(1)
    assert _event(ft2, "start")["t"] >= _event(pretrain, "end")["t"]
    assert json.loads((ft2 / "summary.json").read_text())["top1"] == 91.0
