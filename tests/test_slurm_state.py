"""Job state without accounting, against the local SLURM (slurm/local/up.sh): sacct fails there, as on many small
clusters, so plain submitit reports UNKNOWN forever; the squeue fallback reports real states and never hangs."""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path

import pytest
import submitit
from submitit.core.utils import UncompletedJobError
from submitit.slurm.slurm import SlurmExecutor, SlurmInfoWatcher

from repro.launch import slurm_state
from repro.launch.slurm_state import PURGED, FallbackSlurmJob, wait_done, with_state_fallback

slurm_state.use_local_cluster_conf()
_WHY_NOT = slurm_state.controller_answers()

pytestmark = [pytest.mark.slurm, pytest.mark.skipif(_WHY_NOT is not None, reason=f"no SLURM: {_WHY_NOT}"),
              pytest.mark.timeout(120)]


@pytest.fixture
def executor(tmp_path: Path) -> submitit.AutoExecutor:
    ex = with_state_fallback(submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm"))
    ex.update_parameters(timeout_min=5, cpus_per_task=1, mem_gb=0.5, slurm_job_name="repro-test")
    return ex


@pytest.fixture(autouse=True)
def _quick_result_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    # submitit waits 15 s for a result file on slow shared filesystems; /tmp is local.
    monkeypatch.setattr(FallbackSlurmJob, "_results_timeout_s", 2)


def _scancel(job_id: str) -> None:
    subprocess.run(["scancel", job_id], check=True, timeout=30)


def test_sacct_fails_without_accounting() -> None:
    """The premise: the local cluster has no slurmdbd, like many production clusters."""
    assert not slurm_state.sacct_available()


def test_completed_job_reports_completed_and_result(executor: submitit.AutoExecutor) -> None:
    job = executor.submit(math.factorial, 5)
    assert isinstance(job, FallbackSlurmJob)
    assert wait_done(job, timeout_s=60, poll_s=0.5) == "COMPLETED"
    assert job.result() == 120
    assert job.state == "COMPLETED"
    assert job.watcher.sacct_ok is False


def test_array_jobs_use_the_fallback(executor: submitit.AutoExecutor) -> None:
    jobs = executor.map_array(math.factorial, [3, 4])
    assert all(isinstance(j, FallbackSlurmJob) for j in jobs)
    assert all("_" in j.job_id for j in jobs)
    for job in jobs:
        assert wait_done(job, timeout_s=60, poll_s=0.5) == "COMPLETED"
    assert [j.result() for j in jobs] == [6, 24]
    infos = slurm_state.squeue_states([j.job_id for j in jobs])
    assert set(infos) == {j.job_id for j in jobs}


def test_plain_slurm_executor_gets_the_fallback_too(tmp_path: Path) -> None:
    executor = with_state_fallback(SlurmExecutor(folder=tmp_path / "submitit"))
    executor.update_parameters(time=5, cpus_per_task=1, mem="512MB")
    job = executor.submit(math.factorial, 4)
    assert isinstance(job, FallbackSlurmJob)
    assert wait_done(job, timeout_s=60, poll_s=0.5) == "COMPLETED"
    assert job.result() == 24


def test_cancelled_job_is_reported_cancelled_without_hanging(executor: submitit.AutoExecutor) -> None:
    job = executor.submit(time.sleep, 300)
    deadline = time.monotonic() + 60
    while job.watcher.get_state(job.job_id, mode="force") != "RUNNING":
        assert time.monotonic() < deadline, f"job never started: {job.state}"
        time.sleep(0.5)
    t0 = time.monotonic()
    _scancel(job.job_id)
    assert wait_done(job, timeout_s=30, poll_s=0.5) == "CANCELLED"
    print(f"\nscancel -> CANCELLED seen: {time.monotonic() - t0:.1f}s")
    assert slurm_state.is_terminal(job.state)
    with pytest.raises(UncompletedJobError, match="has not produced any output"):
        job.result()
    assert slurm_state.scontrol_show_job(job.job_id)["JobState"] == "CANCELLED"


def test_plain_submitit_watcher_sees_only_unknown(executor: submitit.AutoExecutor) -> None:
    """What the fallback fixes: submitit's own watcher (sacct) never learns that a cancelled job died."""
    job = executor.submit(time.sleep, 300)
    _scancel(job.job_id)
    assert wait_done(job, timeout_s=30, poll_s=0.5) == "CANCELLED"
    plain = SlurmInfoWatcher(delay_s=60)
    assert plain.get_state(job.job_id, mode="force") == "UNKNOWN"
    assert not plain.is_done(job.job_id, mode="force")  # job.wait() would loop forever


def test_unknown_job_is_purged_and_terminal(tmp_path: Path) -> None:
    job = slurm_state.slurm_job(tmp_path, "987654321")
    assert job.watcher.get_state(job.job_id, mode="force") == PURGED
    assert job.done()
    with pytest.raises(UncompletedJobError):
        job.result()
    assert slurm_state.scontrol_show_job("987654321") == {}
    assert slurm_state.squeue_states(["987654321"]) == {}
