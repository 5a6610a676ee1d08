"""The submitit job of one run: train or resume from a run directory, requeue on preemption.

:class:`RunJob` is a submitit ``Checkpointable`` whose only state is a run directory and an importable training
function (``"module:function"``, called as ``fn(run_dir)``). The function must resume from what it finds in the run
directory, so a requeue needs no extra state: ``checkpoint()`` returns ``DelayedSubmission`` of a fresh
``RunJob`` with the same arguments (submitit's ``docs/checkpointing.md``). Resuming is the trainer's job, from the
checkpoint name it also writes; MAE's requeue looked for another name and silently restarted from scratch, so the
tests check that a resumed attempt starts where the preempted one stopped.

Preemption (``USR2``, sent by SLURM before a time limit or by ``scancel --signal=USR2``):

1. our handler only sets :data:`repro.launch.signals.PREEMPTION`; submitit's own handler is kept aside;
2. at its next step boundary the training loop writes a checkpoint and raises ``Preempted``
   (:func:`repro.launch.signals.stop_if_preempted`);
3. ``RunJob`` then calls submitit's handler, which calls ``checkpoint()``, requeues the job and exits.

A loop that does not reach a step boundary within ``grace_s`` (a stuck step, a trainer that never polls) is
requeued anyway and resumes from its last periodic checkpoint.

Rank 0 holds the run directory's lock (:class:`repro.launch.rundir.RunLock`) for the whole attempt: a second job
(or a ``repro run``) on the same directory fails at once with the holder's name instead of training it twice.

Every attempt is recorded in ``<run_dir>/job_history.jsonl`` (job id, attempt, host, start and end time, outcome).
Attempts are bounded: a run is not started again after ``max_attempts`` attempts or ``max_failures`` failed ones
(an exception, or a job killed without a word: scancel, node failure, out of memory); an exception is requeued
until then, except for a :class:`~repro.errors.UserError` (bad input never heals).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import types
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from submitit.helpers import Checkpointable, DelayedSubmission

from repro.errors import UserError
from repro.launch.rundir import RunLock, run_info
from repro.launch.signals import PREEMPTION, Preempted
from repro.launch.slurm_state import PURGED, TERMINAL, base_state, squeue_states

if TYPE_CHECKING:
    from repro.launch.cluster import ClusterProfile

TRAIN_FN = "repro.launch.local:train_run_dir"  # what every job calls with its run directory
HISTORY = "job_history.jsonl"
FAILED_OUTCOMES = frozenset({"failed", "died"})
TrainFn = Callable[[Path], Any]


class AttemptsExhausted(RuntimeError):
    """The run used up its attempts; it is reported as failed and never requeued."""


class NotRequeued(RuntimeError):
    """submitit refused to requeue a preempted job (timed out ``max_num_timeout`` times, or attempts used up)."""


# ---------------------------------------------------------------------------------------------------------------
# job_history.jsonl


def append_event(run_dir: str | Path, event: str, **fields: Any) -> dict[str, Any]:
    """Append one event (``submitted``, ``start``, ``end``) to the run's job history, flushed to disk."""
    now = time.time()
    record = {"event": event, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "t": round(now, 3),
              **fields}
    path = Path(run_dir) / HISTORY
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as f:
        torn = f.tell() > 0 and (f.seek(-1, os.SEEK_END), f.read(1))[1] != b"\n"  # a kill mid-write
        f.write((("\n" if torn else "") + json.dumps(record, sort_keys=True, default=str) + "\n").encode())
        f.flush()
        os.fsync(f.fileno())
    return record


def read_events(run_dir: str | Path) -> list[dict[str, Any]]:
    """All events, skipping a torn last line (a job killed while writing)."""
    path = Path(run_dir) / HISTORY
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def record_submission(run_dir: str | Path, job_id: str, **fields: Any) -> None:
    """For the submitter: remember which scheduler job runs this run directory."""
    append_event(run_dir, "submitted", job_id=job_id, **fields)


@dataclass(frozen=True)
class Attempt:
    """One start of the training function. ``outcome``: finished, preempted, failed, gave_up, died (started and
    never ended, and a later attempt started), or running (the last attempt, not ended yet)."""

    attempt: int
    job_id: str | None
    host: str | None
    start: float
    end: float | None
    outcome: str
    error: str | None = None


def attempts(run_dir: str | Path) -> list[Attempt]:
    starts: dict[int, dict[str, Any]] = {}
    ends: dict[int, dict[str, Any]] = {}
    for ev in read_events(run_dir):
        if ev.get("event") == "start":
            starts[int(ev["attempt"])] = ev
        elif ev.get("event") == "end":
            ends[int(ev["attempt"])] = ev
    out = []
    last = max(starts, default=0)
    for n in sorted(starts):
        s, e = starts[n], ends.get(n)
        outcome = e["outcome"] if e else ("running" if n == last else "died")
        out.append(Attempt(n, s.get("job_id"), s.get("host"), s["t"], e["t"] if e else None, outcome,
                           e.get("error") if e else None))
    return out


def exhausted_reason(past: list[Attempt], max_attempts: int, max_failures: int) -> str | None:
    """Why a run with attempts ``past`` (all ended) must not start again, or ``None``."""
    failures = sum(a.outcome in FAILED_OUTCOMES for a in past)
    if any(a.outcome == "gave_up" for a in past):
        return "gave up earlier"
    if failures >= max_failures:
        return f"{failures} failed attempts (max_failures={max_failures})"
    if len(past) >= max_attempts:
        return f"{len(past)} attempts (max_attempts={max_attempts})"
    return None


# ---------------------------------------------------------------------------------------------------------------
# the job


def resolve_function(ref: str) -> TrainFn:
    """``"package.module:function"`` -> the function, with a one-line error naming what is wrong."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise UserError(f"train function {ref!r}: expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UserError(f"train function {ref!r}: cannot import module {module_name!r} ({e})") from e
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise UserError(f"train function {ref!r}: module {module_name!r} has no attribute {attr!r}")
    if not callable(fn):
        raise UserError(f"train function {ref!r}: {attr!r} is not callable")
    return fn  # type: ignore[return-value]


def _submitit_env() -> Any:
    """submitit's JobEnvironment when running inside a submitit job, else ``None``."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return None
    import submitit

    return submitit.JobEnvironment()


class RunJob(Checkpointable):
    """``RunJob(run_dir, "pkg.module:train")()`` trains or resumes the run in ``run_dir``; see the module doc."""

    def __init__(self, run_dir: str | Path, train: str, *, max_attempts: int = 20, max_failures: int = 3,
                 grace_s: float = 60.0) -> None:
        resolve_function(train)  # fail at submission, not on the cluster
        if max_attempts < 1 or max_failures < 1:
            raise UserError(f"RunJob: max_attempts and max_failures must be >= 1, got {max_attempts}, {max_failures}")
        self.run_dir = str(run_dir)
        self.train = train
        self.max_attempts = max_attempts
        self.max_failures = max_failures
        self.grace_s = grace_s

    def __repr__(self) -> str:
        return f"RunJob({self.run_dir!r}, {self.train!r})"

    # submitit calls this (through its USR2 handler, which RunJob invokes at a step boundary).
    def checkpoint(self, *args: Any, **kwargs: Any) -> DelayedSubmission | None:
        """Requeue a fresh job with the same arguments; ``None`` (no requeue) once attempts are used up."""
        if len(attempts(self.run_dir)) >= self.max_attempts:
            return None
        return DelayedSubmission(RunJob(self.run_dir, self.train, max_attempts=self.max_attempts,
                                        max_failures=self.max_failures, grace_s=self.grace_s))

    def __call__(self) -> Any:
        run_dir = Path(self.run_dir)
        env = _submitit_env()
        rank = env.global_rank if env is not None else 0
        job_id = env.job_id if env is not None else os.environ.get("SLURM_JOB_ID", "local")
        fn = resolve_function(self.train)
        if rank != 0:
            return self._attempt(run_dir, fn, rank, job_id, env)
        with RunLock(run_dir):  # before the attempt is recorded: a busy directory's history is not ours to write
            return self._attempt(run_dir, fn, rank, job_id, env)

    def _attempt(self, run_dir: Path, fn: TrainFn, rank: int, job_id: str, env: Any) -> Any:
        attempt = 0

        def give_up_waiting() -> None:
            if rank == 0:
                self._end(run_dir, attempt, job_id, "preempted", note=f"no step boundary within {self.grace_s:g}s")

        def not_requeued(e: BaseException) -> None:  # the end record replaces "preempted" for this attempt
            if rank == 0:
                why = (f"preempted after {attempt} attempts (max_attempts={self.max_attempts})"
                       if attempt >= self.max_attempts else f"not requeued: {_first_line(e)}")
                self._end(run_dir, attempt, job_id, "gave_up", error=why)

        # Hooks first: a USR2 that arrives while the attempt is being recorded is kept for the first step boundary.
        PREEMPTION.clear()
        hooks = _PreemptionHooks(self.grace_s, on_give_up=give_up_waiting, on_not_requeued=not_requeued)
        hooks.install()
        try:
            attempt = self._start(run_dir, job_id) if rank == 0 else 0
        except BaseException:
            hooks.uninstall()
            raise
        try:
            result = fn(run_dir)
        except Preempted:
            hooks.cancel_alarm()
            if rank == 0:
                self._end(run_dir, attempt, job_id, "preempted")
            if hooks.signum is not None:
                hooks.call_submitit()  # rank 0: checkpoint() + requeue + exit; other ranks return
                sys.exit(-1)
            raise
        except (NotRequeued, AttemptsExhausted):
            raise
        except Exception as e:
            hooks.cancel_alarm()
            if rank != 0:
                raise
            self._end(run_dir, attempt, job_id, "failed", error=f"{type(e).__name__}: {e}",
                      trace=traceback.format_exc(limit=20))
            if env is not None and not isinstance(e, UserError) and self._may_retry(run_dir):
                print(f"[repro] attempt {attempt} failed ({type(e).__name__}: {e}); requeueing job {job_id}",
                      file=sys.stderr, flush=True)
                subprocess.check_call(["scontrol", "requeue", job_id], timeout=60)
                sys.exit(-1)
            raise
        finally:
            hooks.uninstall()
        if rank == 0:
            self._end(run_dir, attempt, job_id, "finished")
        return result

    def _may_retry(self, run_dir: Path) -> bool:
        return exhausted_reason(attempts(run_dir), self.max_attempts, self.max_failures) is None

    def _start(self, run_dir: Path, job_id: str) -> int:
        past = attempts(run_dir)
        if past and past[-1].outcome == "running":  # started, never ended, and we start again: it died
            past[-1] = Attempt(**{**past[-1].__dict__, "outcome": "died"})
        attempt = len(past) + 1
        append_event(run_dir, "start", attempt=attempt, job_id=job_id, host=socket.gethostname(),
                     restart_count=os.environ.get("SLURM_RESTART_COUNT"), train=self.train,
                     folder=os.environ.get("SUBMITIT_FOLDER"))
        why = exhausted_reason(past, self.max_attempts, self.max_failures)
        if why is not None:
            self._end(run_dir, attempt, job_id, "gave_up", error=why)
            raise AttemptsExhausted(f"run {run_dir}: not starting attempt {attempt}: {why}")
        return attempt

    @staticmethod
    def _end(run_dir: Path, attempt: int, job_id: str, outcome: str, **fields: Any) -> None:
        append_event(run_dir, "end", attempt=attempt, job_id=job_id, outcome=outcome, **fields)


class _PreemptionHooks:
    """Defer submitit's USR2 handler to the next step boundary (or ``grace_s`` at the latest).

    Installed only when submitit's handler is there (inside a submitit job, main thread); elsewhere it does nothing.
    """

    def __init__(self, grace_s: float, on_give_up: Callable[[], None],
                 on_not_requeued: Callable[[BaseException], None]) -> None:
        self.grace_s = grace_s
        self.on_give_up = on_give_up
        self.on_not_requeued = on_not_requeued
        self.sig = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"))
        self.submitit_handler: Callable[[int, types.FrameType | None], Any] | None = None
        self.signum: int | None = None
        self._old_alarm: Any = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        current = signal.getsignal(self.sig)
        if not callable(current):
            return
        self.submitit_handler = current
        self._old_alarm = signal.signal(signal.SIGALRM, self._on_alarm)
        signal.signal(self.sig, self._on_signal)

    def uninstall(self) -> None:
        if self.submitit_handler is None:
            return
        self.cancel_alarm()
        signal.signal(self.sig, self.submitit_handler)
        signal.signal(signal.SIGALRM, self._old_alarm)

    def cancel_alarm(self) -> None:
        if self.submitit_handler is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _on_signal(self, signum: int, frame: types.FrameType | None) -> None:
        if self.signum is not None:
            return  # already stopping
        self.signum = signum
        PREEMPTION.set(f"{signal.Signals(signum).name} received")
        print(f"[repro] {signal.Signals(signum).name}: checkpoint at the next step boundary "
              f"(requeue anyway in {self.grace_s:g}s)", file=sys.stderr, flush=True)
        if self.grace_s > 0:
            signal.setitimer(signal.ITIMER_REAL, self.grace_s)

    def _on_alarm(self, signum: int, frame: types.FrameType | None) -> None:
        print(f"[repro] no step boundary within {self.grace_s:g}s: requeueing from the last checkpoint",
              file=sys.stderr, flush=True)
        self.on_give_up()
        self.call_submitit(frame)

    def call_submitit(self, frame: types.FrameType | None = None) -> None:
        """Run submitit's handler: it calls ``checkpoint()``, requeues and exits, or raises when it will not
        requeue (-> :class:`NotRequeued`, after recording why)."""
        assert self.submitit_handler is not None and self.signum is not None
        try:
            self.submitit_handler(self.signum, frame)
        except Exception as e:
            self.on_not_requeued(e)
            raise NotRequeued(_first_line(e)) from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# ---------------------------------------------------------------------------------------------------------------
# status and (re)submission: what `repro status` and `repro submit` build on


@dataclass(frozen=True)
class RunStatus:
    """Where a run stands, from its directory and the scheduler.

    ``state``: pending (never submitted), queued, running, preempted (requeued, waiting to restart), failed (its
    job ended without finishing the run; ``detail`` and ``log_tail`` say why), finished, unknown (the
    scheduler did not answer), or waiting (not submitted: the run it starts from has not finished; ``detail``
    names it -- :func:`submit_runs`).
    """

    state: str
    job_id: str | None = None
    scheduler_state: str | None = None
    attempts: int = 0
    exhausted: bool = False
    detail: str = ""
    log_tail: str = ""

    @property
    def needs_submission(self) -> bool:
        """Submit it (again)? Not when finished, queued, running or waiting to restart, not when the scheduler
        could not be asked (``unknown``), and not when its attempts are used up."""
        return self.state in {"pending", "failed"} and not self.exhausted


_RUNNING_STATES = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED", "SIGNALING",
                             "STAGE_OUT", "RESIZING"})


def last_submission(run_dir: str | Path) -> dict[str, Any] | None:
    """The newest ``submitted`` or ``start`` event (the job that last ran or will run this run)."""
    events = [e for e in read_events(run_dir) if e.get("event") in {"submitted", "start"} and e.get("job_id")]
    return events[-1] if events else None


def log_tail(folder: str | Path, job_id: str, lines: int = 20) -> str:
    """The last lines of a submitit job's stderr (else stdout), for reports of failed runs."""
    from submitit.core.utils import JobPaths

    paths = JobPaths(folder, job_id=job_id, task_id=0)
    for path in (paths.stderr, paths.stdout):
        if path.exists() and path.stat().st_size:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def run_status(run_dir: str | Path, *, scheduler: dict[str, dict[str, str]] | None = None,
               max_attempts: int = 20, max_failures: int = 3, log_lines: int = 20) -> RunStatus:
    """Status of one run: finished as :func:`~repro.launch.rundir.run_info` says (the run directory is the truth,
    not the job history), else from the history and the scheduler. ``scheduler``: pre-fetched
    :func:`~repro.launch.slurm_state.squeue_states` for many runs at once (else squeue is asked here)."""
    history = attempts(run_dir)
    last = history[-1] if history else None
    info = run_info(run_dir)
    if info.state == "finished":
        return RunStatus("finished", last.job_id if last else None, attempts=len(history))

    def used_up(last_died: bool) -> bool:
        ended = [a for a in history if a.outcome != "running"]
        if last_died and last is not None and last.outcome == "running":
            ended.append(Attempt(**{**last.__dict__, "outcome": "died"}))
        return exhausted_reason(ended, max_attempts, max_failures) is not None

    sub = last_submission(run_dir)
    if sub is None:
        return RunStatus("pending", attempts=len(history), exhausted=used_up(True))
    job_id = str(sub["job_id"])
    if scheduler is None:
        try:
            scheduler = squeue_states([job_id])
        except (OSError, subprocess.SubprocessError) as e:
            return RunStatus("unknown", job_id, None, len(history), used_up(False),
                             f"scheduler did not answer ({_first_line(e)})")
    entry = scheduler.get(job_id)
    sched = base_state(entry["State"]) if entry else PURGED
    reason = entry.get("Reason", "") if entry else ""
    terminal = sched in TERMINAL
    common = {"job_id": job_id, "scheduler_state": sched, "attempts": len(history), "exhausted": used_up(terminal)}
    if sched in _RUNNING_STATES:
        return RunStatus("running", **common)
    if not terminal:  # PENDING, REQUEUED, REQUEUE_HOLD, PREEMPTED ...
        waiting = f"waiting: {reason}" if reason and reason != "None" else ""
        return RunStatus("preempted" if last is not None and last.outcome == "preempted" else "queued", **common,
                         detail=waiting)
    why = [f"job {job_id} {sched}" + (" (gone from the controller)" if sched == PURGED else "")]
    if last is not None:
        why.append(f"attempt {last.attempt} {'started, never ended' if last.outcome == 'running' else last.outcome}"
                   + (f": {last.error}" if last.error else ""))
    if info.detail:
        why.append(info.detail)
    folder = next((e["folder"] for e in reversed(read_events(run_dir))
                   if e.get("job_id") == sub["job_id"] and e.get("folder")), None)
    tail = log_tail(folder, job_id, log_lines) if folder else ""
    return RunStatus("failed", **common, detail="; ".join(why), log_tail=tail)


def run_statuses(run_dirs: list[Path], **policy: Any) -> list[RunStatus]:
    """:func:`run_status` for many runs with one squeue call."""
    ids = [str(s["job_id"]) for d in run_dirs if (s := last_submission(d)) is not None]
    try:
        info: dict[str, dict[str, str]] | None = squeue_states(ids) if ids else {}
    except (OSError, subprocess.SubprocessError):
        info = None  # each run_status asks again and reports "unknown" if it still fails
    return [run_status(d, scheduler=info, **policy) for d in run_dirs]


@dataclass(frozen=True)
class SubmissionPlan:
    """What :func:`submit_runs` submits: ``array`` as job arrays, one per GPU count (:attr:`arrays`; one job when
    alone), in array-task order, then each run of ``after`` as its own job waiting for its upstream run's job
    (``afterok``). ``statuses``: every run's status before submission; a run held back is ``waiting``, with the
    reason in its detail. ``gpus``: the runs' GPU counts (:func:`repro.launch.cluster.run_gpus`), where stated."""

    statuses: dict[Path, RunStatus]
    array: list[Path]
    after: dict[Path, Path]
    gpus: dict[Path, int] = field(default_factory=dict)

    @property
    def arrays(self) -> list[list[Path]]:
        """``array`` split by GPU count (the runs of one array share one shape), in order of first appearance."""
        groups: dict[int | None, list[Path]] = {}
        for d in self.array:
            groups.setdefault(self.gpus.get(d), []).append(d)
        return list(groups.values())


def plan_submission(run_dirs: list[Path], *, max_attempts: int = 20, max_failures: int = 3,
                    upstream: dict[Path, Path] | None = None, dependencies: bool = True,
                    gpus: dict[Path, int] | None = None) -> SubmissionPlan:
    """Which runs need submitting and how (:func:`submit_runs` explains the rules); asks the scheduler for the
    runs' states, submits nothing. ``dependencies``: whether the executor can make a job wait for another
    (SLURM can, submitit's ``local`` cannot). ``gpus``: each run's GPU count, where it has its own."""
    links = upstream or {}
    statuses = dict(zip(run_dirs, run_statuses(run_dirs, max_attempts=max_attempts, max_failures=max_failures),
                        strict=True))
    for up in set(links.values()) - statuses.keys():
        statuses[up] = run_status(up, max_attempts=max_attempts, max_failures=max_failures)
    plan: dict[Path, Path | None] = {}  # run to submit -> the upstream whose job it waits for
    held: dict[Path, RunStatus] = {}

    def on_its_way(up: Path) -> bool:
        return up in plan or statuses[up].state in {"queued", "running", "preempted"}

    for d in _upstream_first(run_dirs, links):
        st = statuses[d]
        if not st.needs_submission:
            continue
        up = links.get(d)
        if up is None or statuses[up].state == "finished":
            plan[d] = None
        elif dependencies and on_its_way(up):
            plan[d] = up
        else:
            state = "not submitted" if up in held else (
                "to be submitted" if up in plan else statuses[up].state)
            held[d] = RunStatus("waiting", detail=f"waiting for {up.name} ({state})")
    return SubmissionPlan({**statuses, **held}, [d for d, up in plan.items() if up is None],
                          {d: up for d, up in plan.items() if up is not None}, dict(gpus or {}))


def submit_runs(executor: Any, run_dirs: list[Path], train: str, *, max_attempts: int = 20, max_failures: int = 3,
                grace_s: float = 60.0, dry_run: bool = False, upstream: dict[Path, Path] | None = None,
                cluster: ClusterProfile | None = None,
                gpus: dict[Path, int] | None = None) -> list[tuple[Path, RunStatus, Any]]:
    """Submit the runs that need it (:attr:`RunStatus.needs_submission`); returns ``(run_dir, status before, job or
    None)`` for every run. Idempotent: finished, queued and running runs, and runs out of attempts, are left alone.

    ``upstream`` maps a run to the run it starts from (a run link, ``init_from``). Runs without an unfinished
    upstream go as one job array per GPU count; a run whose upstream is submitted now, or is queued or running,
    goes as its own job with the SLURM dependency ``afterok:<upstream job>`` (``sbatch --dependency``), so it
    starts only once the upstream job completed, and never when it failed (SLURM then keeps it pending with reason
    ``DependencyNeverSatisfied``; ``repro status`` reports it, ``scancel`` clears it). A run whose upstream
    is neither finished nor on its way (pending, failed, out of attempts), or any dependent on an executor without
    dependencies (submitit's ``local``), is not submitted: its status becomes ``waiting`` with the reason
    (:func:`plan_submission`).

    ``gpus`` maps a run to its own GPU count (:func:`repro.launch.cluster.run_gpus`); with ``cluster``, the profile
    ``executor`` was made from, each job asks for that many (:func:`repro.launch.cluster.resources`), the others
    for the profile's nodes x gpus_per_node."""
    slurm = getattr(executor, "cluster", "slurm") == "slurm"  # the dry run plans for SLURM
    plan = plan_submission(run_dirs, max_attempts=max_attempts, max_failures=max_failures, upstream=upstream,
                           dependencies=slurm, gpus=gpus)
    jobs = {} if dry_run else submit_plan(executor, plan, train, max_attempts=max_attempts,
                                          max_failures=max_failures, grace_s=grace_s, cluster=cluster)
    return [(d, plan.statuses[d], jobs.get(d)) for d in run_dirs]


def submit_plan(executor: Any, plan: SubmissionPlan, train: str, *, max_attempts: int = 20, max_failures: int = 3,
                grace_s: float = 60.0, cluster: ClusterProfile | None = None) -> dict[Path, Any]:
    """Submit what ``plan`` says (:func:`submit_runs`), each job on its run's GPUs when ``cluster`` is given;
    returns the jobs by run directory, each recorded in its run's job history."""
    from repro.launch.cluster import dependency, resources

    def call(d: Path) -> RunJob:
        return RunJob(d, train, max_attempts=max_attempts, max_failures=max_failures, grace_s=grace_s)

    def shaped(d: Path) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext() if cluster is None else resources(executor, cluster, plan.gpus.get(d))

    jobs: dict[Path, Any] = {}
    for array in plan.arrays:
        with shaped(array[0]), executor.batch():
            submitted = [executor.submit(call(d)) for d in array]
        jobs.update(zip(array, submitted, strict=True))
    for d, up in plan.after.items():
        job_id = jobs[up].job_id if up in jobs else plan.statuses[up].job_id
        with shaped(d), dependency(executor, f"afterok:{job_id}"):
            jobs[d] = executor.submit(call(d))
    for d, job in jobs.items():
        record_submission(d, job.job_id, folder=str(executor.folder), train=train)
    return jobs


def _upstream_first(run_dirs: list[Path], links: dict[Path, Path]) -> list[Path]:
    order: list[Path] = []

    def visit(d: Path) -> None:
        if d not in order:
            if d in links and links[d] in run_dirs:
                visit(links[d])
            order.append(d)

    for d in run_dirs:
        visit(d)
    return order


def gpu_counts(cluster: ClusterProfile, runs: list[Any], run_dirs: list[Path]) -> dict[Path, int]:
    """Each run's GPU count on ``cluster``: its task's, else its manifest profile's, else the cluster profile's
    (:func:`repro.launch.cluster.run_gpus`); none on a CPU profile. Checked here: a count that fills no whole
    number of nodes stops the submission before anything is submitted."""
    from repro.launch.cluster import run_gpus, shape
    from repro.tasks import get_task

    out: dict[Path, int] = {}
    for r, d in zip(runs, run_dirs, strict=True):
        task = get_task(str(r.config.get("task")))
        n = run_gpus(cluster, task.gpus if task is not None else None, r.gpus)
        if n is not None:
            shape(cluster, n)
            out[d] = n
    return out


def follow(run_dirs: list[Path], poll: float, log: Callable[[str], None] | None = None) -> int:
    """Follow the runs until each is finished, failed (attempts used up or not resubmitted) or pending; a line
    per change of the counts (to ``log``, default stdout). Returns 1 if any failed, else 0."""
    log = log or (lambda line: print(line, flush=True))
    last = ""
    while True:
        counts = Counter(st.state for st in run_statuses(run_dirs))
        line = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        if line != last:
            log(f"[{time.strftime('%H:%M:%S')}] {line}")
            last = line
        if not counts.keys() & {"queued", "running", "preempted", "unknown"}:
            return 1 if counts.get("failed") else 0
        time.sleep(poll)


def submit_resolved(runs: list[Any], root: Path, cluster: ClusterProfile,
                    job_name: str) -> tuple[SubmissionPlan, dict[Path, Any]]:
    """Prepare each resolved run's directory under ``root`` and submit on ``cluster`` what needs it, by
    :func:`submit_runs`' rules (one array per GPU count; ``afterok`` for a run that starts from another): the plan
    and the jobs by run directory. GPU counts are checked before anything is written."""
    from repro.launch.cluster import make_executor
    from repro.launch.rundir import RunDir

    dirs = [root / r.run_id for r in runs]
    gpus = gpu_counts(cluster, runs, dirs)
    for r, d in zip(runs, dirs, strict=True):
        RunDir(d).prepare(r.config, group=r.group)
    links = {root / r.run_id: root / r.upstream for r in runs if r.upstream is not None}
    executor = make_executor(cluster, root / "_submitit", job_name=job_name)
    plan = plan_submission(dirs, upstream=links, dependencies=cluster.executor == "slurm", gpus=gpus)
    return plan, submit_plan(executor, plan, TRAIN_FN, cluster=cluster)
