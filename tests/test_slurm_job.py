"""RunJob on the local SLURM (slurm/local/up.sh): USR2 mid-training -> checkpoint at the next step boundary ->
requeue -> the resumed attempt ends with the same state as an unpreempted run; failures are requeued a bounded
number of times; a stuck loop is requeued after the grace period; a cancelled job ends (no hang)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import submitit
from submitit.core.utils import FailedJobError, UncompletedJobError
from test_cluster_job import logged_steps, make_run, reference_state

from repro.launch import slurm_state
from repro.launch.job import RunJob, attempts, read_events, run_status, submit_runs
from repro.launch.slurm_state import FallbackSlurmJob, wait_done, with_state_fallback

TOY = "test_cluster_job:toy_train"  # the toy trainer lives with the unit tests
TESTS = Path(__file__).resolve().parent

slurm_state.use_local_cluster_conf()


# --- tests on the cluster -------------------------------------------------------------------------------------------

_WHY_NOT = slurm_state.controller_answers()
pytestmark = [pytest.mark.slurm, pytest.mark.skipif(_WHY_NOT is not None, reason=f"no SLURM: {_WHY_NOT}"),
              pytest.mark.timeout(180)]


@pytest.fixture
def executor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> submitit.AutoExecutor:
    monkeypatch.setattr(FallbackSlurmJob, "_results_timeout_s", 2)
    ex = with_state_fallback(submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm"))
    # tests/ on the job's path so that "test_slurm_job:toy_train" imports there too.
    ex.update_parameters(timeout_min=10, cpus_per_task=1, mem_gb=0.5, slurm_job_name="repro-test",
                         slurm_setup=[f"export PYTHONPATH={TESTS}:${{PYTHONPATH:-}}"])
    return ex


def _wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s}s waiting for {what}"
        time.sleep(0.2)


def _scancel(*args: str) -> None:
    subprocess.run(["scancel", *args], check=True, timeout=30)


def test_usr2_checkpoints_requeues_and_resumes_to_the_same_state(executor: submitit.AutoExecutor,
                                                                   tmp_path: Path) -> None:
    steps = 24
    preempted = make_run(tmp_path, "preempted", steps=steps, sleep_s=0.25)
    reference = make_run(tmp_path, "reference", steps=steps, sleep_s=0.25)
    with executor.batch():  # one job array, as `repro submit` will do
        job_p = executor.submit(RunJob(preempted, TOY))
        job_r = executor.submit(RunJob(reference, TOY))
    assert job_p.job_id.endswith("_0") and job_r.job_id.endswith("_1")

    _wait_for(lambda: len(logged_steps(preempted)) >= 7, 60, "6 training steps")
    t_signal = time.time()
    _scancel("--signal=USR2", job_p.job_id)

    assert wait_done(job_r, timeout_s=90, poll_s=1) == "COMPLETED"
    assert wait_done(job_p, timeout_s=120, poll_s=1) == "COMPLETED"
    expected = {"step": steps, "state": reference_state(steps)}
    assert job_r.result() == expected
    assert job_p.result() == expected

    history = attempts(preempted)
    assert [a.outcome for a in history] == ["preempted", "finished"]
    assert {a.job_id for a in history} == {job_p.job_id}  # requeued, same job id
    starts = [line for line in logged_steps(preempted) if line.startswith("start")]
    resumed_at = int(starts[1].split()[1])
    assert starts[0] == "start 0" and resumed_at >= 6, starts  # resumed from the checkpoint, not from scratch
    # every step ran exactly once: the checkpoint was taken at a step boundary
    assert [line for line in logged_steps(preempted) if line.startswith("step")] == [f"step {i}" for i in range(steps)]
    latency = history[1].start - t_signal
    assert history[0].end is not None
    print(f"\nUSR2 -> requeued attempt started: {latency:.1f}s (checkpoint at step {resumed_at}: "
          f"{history[0].end - t_signal:.1f}s to checkpoint and requeue, {history[1].start - history[0].end:.1f}s "
          "until the scheduler restarted it)")
    assert latency < 60
    assert [a.outcome for a in attempts(reference)] == ["finished"]
    assert run_status(preempted).state == run_status(reference).state == "finished"


def test_failing_run_is_requeued_then_reported_failed(executor: submitit.AutoExecutor, tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "failing", steps=3, sleep_s=0.1, fail=True)
    job = executor.submit(RunJob(run_dir, TOY, max_failures=2))
    assert wait_done(job, timeout_s=120, poll_s=1) == "FAILED"
    history = attempts(run_dir)
    assert [a.outcome for a in history] == ["failed", "failed"]
    assert all("toy failure" in (a.error or "") for a in history)
    with pytest.raises(FailedJobError, match="toy failure"):
        job.result()
    status = run_status(run_dir, max_failures=2)
    assert (status.state, status.scheduler_state, status.exhausted) == ("failed", "FAILED", True)
    assert "attempt 2 failed: RuntimeError: toy failure" in status.detail
    assert "RuntimeError: toy failure" in status.log_tail and not status.needs_submission
    # resubmitting an exhausted run starts nothing: the attempt gives up at once
    again = executor.submit(RunJob(run_dir, TOY, max_failures=2))
    assert wait_done(again, timeout_s=60, poll_s=1) == "FAILED"
    assert [a.outcome for a in attempts(run_dir)] == ["failed", "failed", "gave_up"]
    assert logged_steps(run_dir).count("start 0") == 2


def test_loop_that_never_polls_is_requeued_after_grace(executor: submitit.AutoExecutor, tmp_path: Path) -> None:
    steps = 16
    run_dir = make_run(tmp_path, "stuck", steps=steps, sleep_s=0.25, poll=False)
    job = executor.submit(RunJob(run_dir, TOY, grace_s=2))
    _wait_for(lambda: len(logged_steps(run_dir)) >= 4, 60, "3 training steps")
    _scancel("--signal=USR2", job.job_id)
    assert wait_done(job, timeout_s=120, poll_s=1) == "COMPLETED"
    assert job.result() == {"step": steps, "state": reference_state(steps)}
    history = attempts(run_dir)
    assert [a.outcome for a in history] == ["preempted", "finished"]
    notes = [e.get("note") for e in read_events(run_dir) if e.get("event") == "end"]
    assert notes[0] == "no step boundary within 2s"
    assert [line for line in logged_steps(run_dir) if line.startswith("start")] == ["start 0", "start 0"]


def test_cancelled_run_ends_without_hanging(executor: submitit.AutoExecutor, tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "cancelled", steps=400, sleep_s=0.25)
    job = executor.submit(RunJob(run_dir, TOY))
    _wait_for(lambda: len(logged_steps(run_dir)) >= 2, 60, "a training step")
    _scancel(job.job_id)
    assert wait_done(job, timeout_s=30, poll_s=0.5) == "CANCELLED"
    with pytest.raises(UncompletedJobError):
        job.result()
    assert [a.outcome for a in attempts(run_dir)] == ["running"]  # started, never ended: the scheduler says why
    status = run_status(run_dir)
    assert (status.state, status.scheduler_state) == ("failed", "CANCELLED")
    assert status.detail == f"job {job.job_id} CANCELLED; attempt 1 started, never ended"


def test_resubmission_is_idempotent(executor: submitit.AutoExecutor, tmp_path: Path) -> None:
    quick = make_run(tmp_path, "quick", steps=2, sleep_s=0.1)
    slow = make_run(tmp_path, "slow", steps=400, sleep_s=0.25)
    runs = [quick, slow]
    first = submit_runs(executor, runs, TOY)
    assert [s.state for _, s, _ in first] == ["pending", "pending"]
    job_q, job_s = (job for _, _, job in first)
    assert job_q.job_id.split("_")[0] == job_s.job_id.split("_")[0]  # one array
    assert [s.state for _, s, _ in submit_runs(executor, runs, TOY, dry_run=True)] in (
        [["queued", "queued"], ["queued", "running"], ["running", "queued"], ["running", "running"]])

    assert wait_done(job_q, timeout_s=60, poll_s=0.5) == "COMPLETED"
    _wait_for(lambda: len(logged_steps(slow)) >= 2, 60, "the slow run to start")
    again = submit_runs(executor, runs, TOY)
    assert [(s.state, job) for _, s, job in again] == [("finished", None), ("running", None)]

    _scancel(job_s.job_id)
    assert wait_done(job_s, timeout_s=30, poll_s=0.5) == "CANCELLED"
    third = submit_runs(executor, runs, TOY)
    assert [s.state for _, s, _ in third] == ["finished", "failed"]
    assert third[0][2] is None and third[1][2] is not None  # only the cancelled run is submitted again
    resubmitted = third[1][2]
    assert resubmitted.job_id != job_s.job_id
    assert run_status(slow).job_id == resubmitted.job_id
    _scancel(resubmitted.job_id)
    assert wait_done(resubmitted, timeout_s=30, poll_s=0.5) == "CANCELLED"


def test_two_tasks_one_checkpoint_one_requeue(executor: submitit.AutoExecutor, tmp_path: Path) -> None:
    """tasks_per_node=2 (as one task per GPU): both tasks get USR2, rank 0 alone records, checkpoints and
    requeues; the other rank exits quietly; both resume from rank 0's checkpoint."""
    steps = 16
    run_dir = make_run(tmp_path, "ddp", steps=steps, sleep_s=0.25)
    executor.update_parameters(tasks_per_node=2, cpus_per_task=1)
    job = executor.submit(RunJob(run_dir, "test_cluster_job:toy_train_ranked"))
    rank_log = run_dir / "steps.rank0.log"
    _wait_for(lambda: rank_log.exists() and len(rank_log.read_text().splitlines()) >= 5, 60, "4 steps on rank 0")
    _scancel("--signal=USR2", job.job_id)
    assert wait_done(job, timeout_s=120, poll_s=1) == "COMPLETED"
    expected = reference_state(steps)
    assert sorted(job.results(), key=lambda r: r["rank"]) == [
        {"rank": 0, "step": steps, "state": expected}, {"rank": 1, "step": steps, "state": expected}]
    assert [a.outcome for a in attempts(run_dir)] == ["preempted", "finished"]  # rank 0's record only
    for rank in (0, 1):
        starts = [x for x in (run_dir / f"steps.rank{rank}.log").read_text().splitlines() if x.startswith("start")]
        assert len(starts) == 2 and starts[0] == "start 0" and int(starts[1].split()[1]) >= 4, (rank, starts)
