"""The real engine on the local SLURM: a tiny ET++ run preempted with
`scancel --signal=USR2` mid-training checkpoints at the next step boundary, is requeued, resumes, and ends with
exactly the metrics of an unpreempted run."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import submitit

from repro.launch import slurm_state
from repro.launch.job import RunJob, attempts
from repro.launch.rundir import RunDir
from repro.launch.slurm_state import FallbackSlurmJob, wait_done, with_state_fallback
from repro.train.timing import TIMING_KEYS

slurm_state.use_local_cluster_conf()
_WHY_NOT = slurm_state.controller_answers()
pytestmark = [pytest.mark.slurm, pytest.mark.skipif(_WHY_NOT is not None, reason=f"no SLURM: {_WHY_NOT}"),
              pytest.mark.timeout(420)]

CONFIG = {"task": "in1k", "model": "test_vit", "model_kwargs": {"patch_size": 4}, "method": "efficienttrain++",
          "epochs": 2, "final_size": 28, "adapt": "linear", "max_train_images": 192, "max_val_images": 64,
          "batch_size": 32, "lr": 1e-3, "warmup_epochs": 0.2, "workers": 0, "log_every_steps": 1,
          "crop_scale": [0.35, 1.0], "seed": 3}


def _train_steps(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [r["step"] for r in map(json.loads, path.read_text().splitlines()) if r["kind"] == "train"]


def _without_times(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_usr2_preempted_training_resumes_to_identical_metrics(tmp_path, monkeypatch):
    monkeypatch.setattr(FallbackSlurmJob, "_results_timeout_s", 2)
    executor = with_state_fallback(submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm"))
    executor.update_parameters(timeout_min=10, cpus_per_task=1, mem_gb=1.0, slurm_job_name="repro-trainer")
    runs = {name: tmp_path / "runs" / name for name in ("preempted", "reference")}
    for run in runs.values():
        RunDir(run).prepare(CONFIG)
    with executor.batch():
        jobs = {name: executor.submit(RunJob(run, "repro.launch.local:train_run_dir")) for name, run in runs.items()}

    deadline = time.monotonic() + 240
    while len(_train_steps(runs["preempted"])) < 4:
        assert time.monotonic() < deadline, "the preempted run never reached step 4"
        time.sleep(0.5)
    subprocess.run(["scancel", "--signal=USR2", jobs["preempted"].job_id], check=True, timeout=30)

    assert wait_done(jobs["reference"], timeout_s=300, poll_s=2) == "COMPLETED"
    assert wait_done(jobs["preempted"], timeout_s=300, poll_s=2) == "COMPLETED"
    assert [a.outcome for a in attempts(runs["preempted"])] == ["preempted", "finished"]
    reference = json.loads((runs["reference"] / "summary.json").read_text())
    resumed = json.loads((runs["preempted"] / "summary.json").read_text())
    for key in ("top1", "top5", "val_loss", "steps", "equivalent_epochs"):
        assert resumed[key] == reference[key], key
    assert _without_times(runs["preempted"]) == _without_times(runs["reference"])
    assert RunDir(runs["preempted"]).state() == "finished"
