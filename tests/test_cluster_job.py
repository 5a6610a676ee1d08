"""RunJob without a cluster: job history, bounded attempts, the deferred-preemption protocol (with a stand-in for
submitit's USR2 handler) and the grace fallback. Also home of the toy trainer the SLURM tests submit."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from submitit.core.job_environment import SignalHandler
from submitit.core.utils import JobPaths
from submitit.helpers import DelayedSubmission

from repro.errors import UserError
from repro.launch import job as job_mod
from repro.launch.job import (
    AttemptsExhausted,
    NotRequeued,
    RunJob,
    append_event,
    attempts,
    read_events,
    resolve_function,
)
from repro.launch.signals import PREEMPTION, Preempted, stop_if_preempted

TOY = "test_cluster_job:toy_train"


# --- the toy trainer: N steps of a deterministic recurrence, resumable from checkpoint.json -----------------------


def _save(path: Path, step: int, state: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"step": step, "state": state}))
    os.replace(tmp, path)  # atomic: a kill never leaves half a checkpoint


def toy_train(run_dir: Path) -> dict[str, int]:
    """``toy.json``: steps, sleep_s, poll (check the preemption flag at step boundaries), fail (raise at start),
    self_signal_at (send USR2 to itself during that step), set_flag_at (set the preemption flag during that step
    as a signal handler would; both for in-process tests)."""
    run_dir = Path(run_dir)
    cfg: dict[str, Any] = json.loads((run_dir / "toy.json").read_text())
    ckpt = run_dir / "checkpoint.json"
    start, state = 0, 1
    if ckpt.exists():
        saved = json.loads(ckpt.read_text())
        start, state = saved["step"], saved["state"]
    with (run_dir / "steps.log").open("a") as log:
        log.write(f"start {start}\n")
        log.flush()
        if cfg.get("fail"):
            raise RuntimeError("toy failure")
        for step in range(start, cfg["steps"]):
            if step == cfg.get("self_signal_at"):
                os.kill(os.getpid(), signal.SIGUSR2)  # arrives mid-step: must not be acted on before its end
            if step == cfg.get("set_flag_at"):
                PREEMPTION.set("test")
            state = (state * 31 + step) % 1_000_003
            time.sleep(cfg["sleep_s"])
            log.write(f"step {step}\n")
            log.flush()
            if cfg.get("poll", True):
                stop_if_preempted(lambda s=step + 1, v=state: _save(ckpt, s, v))
    _save(ckpt, cfg["steps"], state)
    (run_dir / "summary.json").write_text(json.dumps({"top1": 100.0, "state": state}))  # what makes a run finished
    return {"step": cfg["steps"], "state": state}


def toy_train_ranked(run_dir: Path) -> dict[str, int]:
    """The toy trainer as one of several tasks (as DDP ranks are): every rank steps, rank 0 alone checkpoints."""
    run_dir = Path(run_dir)
    rank = int(os.environ.get("SLURM_PROCID", "0"))
    cfg: dict[str, Any] = json.loads((run_dir / "toy.json").read_text())
    ckpt = run_dir / "checkpoint.json"
    start, state = 0, 1
    if ckpt.exists():
        saved = json.loads(ckpt.read_text())
        start, state = saved["step"], saved["state"]
    with (run_dir / f"steps.rank{rank}.log").open("a") as log:
        log.write(f"start {start}\n")
        log.flush()
        for step in range(start, cfg["steps"]):
            state = (state * 31 + step) % 1_000_003
            time.sleep(cfg["sleep_s"])
            log.write(f"step {step}\n")
            log.flush()
            stop_if_preempted(lambda s=step + 1, v=state: rank == 0 and _save(ckpt, s, v))
    if rank == 0:
        _save(ckpt, cfg["steps"], state)
        (run_dir / "summary.json").write_text(json.dumps({"top1": 100.0, "state": state}))
    return {"rank": rank, "step": cfg["steps"], "state": state}


def reference_state(steps: int) -> int:
    state = 1
    for step in range(steps):
        state = (state * 31 + step) % 1_000_003
    return state


def make_run(root: Path, name: str, **cfg: Any) -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "toy.json").write_text(json.dumps(cfg))
    return run_dir


def logged_steps(run_dir: Path) -> list[str]:
    path = run_dir / "steps.log"
    return path.read_text().splitlines() if path.exists() else []


# --- unit tests ----------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_flag() -> Iterator[None]:
    PREEMPTION.clear()
    yield
    PREEMPTION.clear()


class _Env:
    """The bits of submitit's JobEnvironment its signal handler uses; requeues are recorded, not sent."""

    global_rank = 0

    def __init__(self) -> None:
        self.requeued: list[int] = []

    def _requeue(self, countdown: int) -> None:
        self.requeued.append(countdown)


class SubmititHandler:
    """submitit's own USR2 handler (``SignalHandler.checkpoint_and_try_requeue``) around a RunJob, as
    ``process_job`` installs it, with the checkpoint on disk at the moment it is called recorded."""

    def __init__(self, job: RunJob, run_dir: Path, folder: Path, timeout_min: int, max_num_timeout: int) -> None:
        delayed = DelayedSubmission(job)
        delayed.set_timeout(timeout_min, max_num_timeout)
        self.run_dir, self.env = run_dir, _Env()
        self.paths = JobPaths(folder, job_id="1", task_id=0)
        self.paths.folder.mkdir(parents=True, exist_ok=True)
        self.handler = SignalHandler(self.env, self.paths, delayed)  # type: ignore[arg-type]
        self.calls: list[dict[str, Any]] = []

    def __call__(self, signum: int, frame: Any) -> None:
        ckpt = self.run_dir / "checkpoint.json"
        self.calls.append({"signum": signum, "checkpoint": json.loads(ckpt.read_text()) if ckpt.exists() else None})
        self.handler.checkpoint_and_try_requeue(signum, frame)

    def requeued_job(self) -> RunJob:
        function = DelayedSubmission.load(self.paths.submitted_pickle).function
        assert isinstance(function, RunJob)
        return function


@pytest.fixture
def submitit_handler(tmp_path: Path) -> Iterator[Any]:
    old_usr2, old_alrm = signal.getsignal(signal.SIGUSR2), signal.getsignal(signal.SIGALRM)

    def install(job: RunJob, run_dir: Path, timeout_min: int = 60, max_num_timeout: int = 3) -> SubmititHandler:
        handler = SubmititHandler(job, run_dir, tmp_path / "submitit", timeout_min, max_num_timeout)
        signal.signal(signal.SIGUSR2, handler)
        return handler

    yield install
    signal.signal(signal.SIGUSR2, old_usr2)
    signal.signal(signal.SIGALRM, old_alrm)


def test_finished_run_records_one_attempt(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "r", steps=5, sleep_s=0)
    assert RunJob(run_dir, TOY)() == {"step": 5, "state": reference_state(5)}
    (only,) = attempts(run_dir)
    assert (only.attempt, only.outcome, only.job_id) == (1, "finished", "local")
    assert only.end is not None and only.end >= only.start


def test_preempted_outside_submitit_reraises_and_resumes(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "r", steps=6, sleep_s=0, set_flag_at=0)
    with pytest.raises(Preempted):
        RunJob(run_dir, TOY)()
    assert json.loads((run_dir / "checkpoint.json").read_text())["step"] == 1
    assert RunJob(run_dir, TOY)() == {"step": 6, "state": reference_state(6)}
    assert [a.outcome for a in attempts(run_dir)] == ["preempted", "finished"]
    assert logged_steps(run_dir)[:3] == ["start 0", "step 0", "start 1"]


def test_usr2_is_deferred_to_the_step_boundary(tmp_path: Path, submitit_handler: Any) -> None:
    run_dir = make_run(tmp_path, "r", steps=8, sleep_s=0.05, self_signal_at=3)
    job = RunJob(run_dir, TOY, grace_s=30)
    handler = submitit_handler(job, run_dir)
    with pytest.raises(SystemExit):
        job()
    (call,) = handler.calls
    assert call["signum"] == signal.SIGUSR2
    # the signal came during step 3; the checkpoint was written after step 3 completed, before submitit was called
    assert call["checkpoint"]["step"] == 4
    assert handler.env.requeued == [3]  # submitit requeued (not a time-out: its countdown is untouched)
    assert [a.outcome for a in attempts(run_dir)] == ["preempted"]
    assert signal.getsignal(signal.SIGUSR2) is handler  # submitit's handler is back in place
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0  # grace alarm cancelled
    # what submitit pickled for the requeue: a fresh RunJob on the same run, which finishes where it stopped
    requeued = handler.requeued_job()
    assert (requeued.run_dir, requeued.train, requeued.grace_s) == (str(run_dir), TOY, 30)
    assert requeued() == {"step": 8, "state": reference_state(8)}
    assert [a.outcome for a in attempts(run_dir)] == ["preempted", "finished"]


def test_loop_that_never_polls_is_handed_to_submitit_after_grace(tmp_path: Path, submitit_handler: Any) -> None:
    run_dir = make_run(tmp_path, "r", steps=40, sleep_s=0.05, self_signal_at=2, poll=False)
    job = RunJob(run_dir, TOY, grace_s=0.3)
    handler = submitit_handler(job, run_dir)
    t0 = time.monotonic()
    with pytest.raises(SystemExit):
        job()
    assert time.monotonic() - t0 < 1.5
    (call,) = handler.calls
    assert call["checkpoint"] is None  # nothing saved: the next attempt restarts from its last periodic checkpoint
    assert handler.env.requeued == [3]
    (end,) = [e for e in read_events(run_dir) if e["event"] == "end"]
    assert (end["outcome"], end["note"]) == ("preempted", "no step boundary within 0.3s")


def test_preempted_run_out_of_attempts_is_not_requeued(tmp_path: Path, submitit_handler: Any) -> None:
    run_dir = make_run(tmp_path, "r", steps=8, sleep_s=0.01, self_signal_at=1)
    job = RunJob(run_dir, TOY, max_attempts=1)
    handler = submitit_handler(job, run_dir)
    with pytest.raises(NotRequeued, match="checkpoint function returned None"):
        job()
    assert handler.env.requeued == []
    (only,) = attempts(run_dir)
    assert (only.outcome, only.error) == ("gave_up", "preempted after 1 attempts (max_attempts=1)")


def test_too_many_time_outs_are_not_requeued(tmp_path: Path, submitit_handler: Any) -> None:
    """submitit counts a USR2 as a time-out when the job ran >= 80% of its limit (always, for limits <= 10 min)."""
    run_dir = make_run(tmp_path, "r", steps=8, sleep_s=0.01, self_signal_at=1)
    job = RunJob(run_dir, TOY)
    handler = submitit_handler(job, run_dir, timeout_min=5, max_num_timeout=0)
    with pytest.raises(NotRequeued, match="timed-out too many times"):
        job()
    assert handler.env.requeued == []
    (only,) = attempts(run_dir)
    assert only.outcome == "gave_up" and "timed-out too many times" in (only.error or "")


def test_failures_are_bounded(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "r", steps=3, sleep_s=0, fail=True)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="toy failure"):
            RunJob(run_dir, TOY, max_failures=2)()
    with pytest.raises(AttemptsExhausted, match="2 failed attempts"):
        RunJob(run_dir, TOY, max_failures=2)()
    assert [a.outcome for a in attempts(run_dir)] == ["failed", "failed", "gave_up"]
    assert logged_steps(run_dir) == ["start 0", "start 0"]  # the exhausted attempt did not train


def test_attempt_that_died_counts_as_failure(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "r", steps=3, sleep_s=0)
    append_event(run_dir, "start", attempt=1, job_id="7")  # killed without a word (scancel, OOM, node failure)
    assert [a.outcome for a in attempts(run_dir)] == ["running"]
    with (run_dir / job_mod.HISTORY).open("a") as f:
        f.write('{"event": "end", "attem')  # torn line from a kill during a write
    with pytest.raises(AttemptsExhausted, match="1 failed attempts"):
        RunJob(run_dir, TOY, max_failures=1)()
    assert [a.outcome for a in attempts(run_dir)] == ["died", "gave_up"]


def test_attempts_are_bounded_and_checkpoint_stops_requeueing(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "r", steps=50, sleep_s=0, set_flag_at=0)
    job = RunJob(run_dir, TOY, max_attempts=2)
    for i in range(2):
        (run_dir / "toy.json").write_text(json.dumps({"steps": 50, "sleep_s": 0, "set_flag_at": i}))
        with pytest.raises(Preempted):
            job()
        assert (job.checkpoint() is None) == (i == 1)
    assert [a.outcome for a in attempts(run_dir)] == ["preempted", "preempted"]
    with pytest.raises(AttemptsExhausted, match=r"2 attempts \(max_attempts=2\)"):
        job()
    assert [a.outcome for a in attempts(run_dir)] == ["preempted", "preempted", "gave_up"]


def test_stop_if_preempted_saves_then_raises() -> None:
    saved: list[int] = []
    stop_if_preempted(lambda: saved.append(1))
    assert saved == []
    PREEMPTION.set("USR2 received")
    with pytest.raises(Preempted, match="USR2 received"):
        stop_if_preempted(lambda: saved.append(1))
    assert saved == [1]


@pytest.mark.parametrize(("ref", "message"), [
    ("no_colon", "expected 'package.module:function'"),
    ("repro.launch.nope:f", "cannot import module 'repro.launch.nope'"),
    ("repro.launch.job:nope", "has no attribute 'nope'"),
    ("repro.launch.job:HISTORY", "is not callable"),
])
def test_bad_train_function_is_a_user_error_at_submission(ref: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=message):
        RunJob(tmp_path, ref)
    assert resolve_function("repro.launch.job:resolve_function") is resolve_function


def test_job_pickles_small(tmp_path: Path) -> None:
    import cloudpickle

    job = RunJob(tmp_path, TOY)
    clone = cloudpickle.loads(cloudpickle.dumps(job))
    assert vars(clone) == vars(job)
    assert os.fspath(tmp_path) == clone.run_dir


# --- run status from the run directory and a (recorded) scheduler answer -------------------------------------------


def _sched(job_id: str, state: str, reason: str = "None") -> dict[str, dict[str, str]]:
    return {job_id: {"JobID": job_id, "State": state, "NodeList": "vm", "Reason": reason}}


def test_status_of_a_run_never_submitted(tmp_path: Path) -> None:
    status = job_mod.run_status(tmp_path / "new", scheduler={})
    assert (status.state, status.job_id, status.needs_submission) == ("pending", None, True)


def test_status_follows_the_scheduler(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "r", steps=3, sleep_s=0)
    job_mod.record_submission(run_dir, "5", folder=str(tmp_path / "submitit"))
    assert job_mod.run_status(run_dir, scheduler=_sched("5", "PENDING", "Priority")).state == "queued"
    assert job_mod.run_status(run_dir, scheduler=_sched("5", "PENDING")).detail == ""
    append_event(run_dir, "start", attempt=1, job_id="5")
    running = job_mod.run_status(run_dir, scheduler=_sched("5", "RUNNING"))
    assert (running.state, running.needs_submission) == ("running", False)
    append_event(run_dir, "end", attempt=1, job_id="5", outcome="preempted")
    waiting = job_mod.run_status(run_dir, scheduler=_sched("5", "PENDING", "BeginTime"))
    assert (waiting.state, waiting.detail, waiting.needs_submission) == ("preempted", "waiting: BeginTime", False)
    append_event(run_dir, "start", attempt=2, job_id="5")
    append_event(run_dir, "end", attempt=2, job_id="5", outcome="finished")
    returned = job_mod.run_status(run_dir, scheduler={})  # the function returned, but the run directory is the truth
    assert (returned.state, returned.needs_submission) == ("failed", True)
    assert "attempt 2 finished" in returned.detail
    (run_dir / "summary.json").write_text('{"top1": NaN}')
    assert "top1 nan is not a finite number" in job_mod.run_status(run_dir, scheduler={}).detail
    (run_dir / "summary.json").write_text('{"top1": 91.0}')
    assert job_mod.run_status(run_dir, scheduler={}).state == "finished"


def test_status_of_a_dead_job_is_failed_with_its_log(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "r", steps=3, sleep_s=0)
    folder = tmp_path / "submitit"
    folder.mkdir()
    (folder / "9_0_log.err").write_text("".join(f"line {i}\n" for i in range(30)) + "RuntimeError: boom\n")
    job_mod.record_submission(run_dir, "9", folder=str(folder))
    append_event(run_dir, "start", attempt=1, job_id="9")
    cancelled = job_mod.run_status(run_dir, scheduler=_sched("9", "CANCELLED by 0"), log_lines=3)
    assert cancelled.state == "failed" and cancelled.scheduler_state == "CANCELLED"
    assert cancelled.detail == "job 9 CANCELLED; attempt 1 started, never ended"
    assert cancelled.log_tail == "line 28\nline 29\nRuntimeError: boom"
    assert cancelled.needs_submission  # one death of 3 allowed
    purged = job_mod.run_status(run_dir, scheduler={}, max_failures=1)
    assert purged.scheduler_state == "PURGED" and "gone from the controller" in purged.detail
    assert purged.exhausted and not purged.needs_submission


def test_finished_run_needs_nothing(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "summary.json").write_text('{"top1": 91.0}')
    status = job_mod.run_status(tmp_path / "r", scheduler={})
    assert (status.state, status.needs_submission) == ("finished", False)
