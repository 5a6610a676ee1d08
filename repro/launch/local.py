"""The local executor: run a manifest's pending runs one after another in this process.

Each resolved run goes to its task (``repro.tasks``: ``task.run(config, run_dir)``), which must resume from
whatever the directory holds. Finished runs are skipped, unfinished ones resumed; a run directory another
process holds (its lock) is skipped with the holder's name, so two ``repro run`` on one runs directory share
the work instead of doing it twice. A task or method without a runner is reported by name -- never faked. A
run that fails goes to its ``error.log`` and the others go on, except for a ``UserError`` (bad input or
set-up, e.g. no data set): it stops the loop with its one line, since every later run would fail the same way.

Two runs whose training times a table divides (a wall-time speedup column) are trained side by side when both
are pending: in :data:`TURNS` turns each, each turn stopping with a checkpoint once its share of the compute is
done (``pause_at_fraction``) and the next resuming exactly. A machine whose speed drifts over minutes (a
shared VM, neighbours' load) then slows both alike, where one run after the other would put the drift into
their ratio; the results are those of uninterrupted runs.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from repro.errors import UserError
from repro.launch.resolve import ResolvedRun
from repro.launch.rundir import RunDir, RunDirBusy, RunLock
from repro.launch.signals import Paused
from repro.tasks import Task, task_for


@dataclass
class Outcome:
    run: ResolvedRun
    status: str  # finished | skipped | busy | no-runner | failed | blocked (its upstream did not finish) | paused
    detail: str = ""


TURNS = 4  # turns of each of two runs trained side by side


def run_locally(
    runs: list[ResolvedRun], root: str | Path = "runs", log: Callable[[str], None] | None = None,
    side_by_side: Iterable[tuple[str, str]] = (),
) -> list[Outcome]:
    """Each line says which run of how many it is about (``run 3 of 12: start ...``), skipped ones counted.
    ``side_by_side``: pairs of run ids to train in turns when both are pending (the module's docstring); a run
    takes part in one pair, the first that names it."""
    log = log or functools.partial(print, flush=True)  # in order with the trainer's lines in a log file
    distinct: dict[str, ResolvedRun] = {}
    for run in runs:
        distinct.setdefault(run.run_id, run)  # the same run asked for twice (shared baselines) runs once
    mates: dict[str, str] = {}
    for a, b in side_by_side:  # a run divided by several others (one baseline, many methods) pairs with the first
        if a != b and a not in mates and b not in mates:
            mates[a], mates[b] = b, a
    done: dict[str, Outcome] = {}  # run id -> its outcome; resolve lists a run's upstream before it
    n = len(distinct)
    tags = {run_id: f"run {k:>{len(str(n))}} of {n}: " for k, run_id in enumerate(distinct, 1)}
    for run in distinct.values():
        if run.run_id in done:  # trained beside its mate
            continue
        mate = distinct.get(mates.get(run.run_id, ""))
        pair = [run, mate] if mate is not None and mate.run_id not in done else [run]
        if len(pair) == 2 and not all(_pausable(r, Path(root)) for r in pair):
            pair = [run]
        turns = TURNS if len(pair) == 2 else 1
        active = list(pair)
        for turn in range(1, turns + 1):
            for r in list(active):
                tag = tags[r.run_id] + (f"(turn {turn} of {turns}) " if turns > 1 else "")
                outcome = _one(r, RunDir(Path(root) / r.run_id), done, lambda line, tag=tag: log(tag + line),
                               pause_at=turn / turns if turn < turns else None)
                if outcome.status != "paused":
                    done[r.run_id] = outcome
                    active.remove(r)
    return [done[run_id] for run_id in distinct]


def _pausable(run: ResolvedRun, root: Path) -> bool:
    """Whether the run can be trained in turns now: pending, its upstream (if any) finished, its task able to stop
    it where asked (the engine's tasks)."""
    task, _ = task_for(run.config)
    return (task is not None and task.pauses and RunDir(root / run.run_id).info().state != "finished"
            and (run.upstream is None or RunDir(root / run.upstream).state() == "finished"))


def _one(run: ResolvedRun, rundir: RunDir, done: dict[str, Outcome], log: Callable[[str], None],
         pause_at: float | None = None) -> Outcome:
    label = run.label
    info = rundir.info()
    if info.state == "finished":
        log(f"skip     {label}: finished earlier")
        return Outcome(run, "skipped", "finished earlier")
    upstream = done.get(run.upstream) if run.upstream is not None else None
    if upstream is not None and upstream.status not in ("finished", "skipped") and not (
            upstream.status == "busy" and RunDir(rundir.path.parent / upstream.run.run_id).state() == "finished"):
        why = f"waits for {upstream.run.label}, which is {upstream.status}"  # busy: another process trains it
        log(f"blocked  {label}: {why}")
        return Outcome(run, "blocked", why)
    if info.blocked:
        log(f"failed   {label}: {info.detail}")
        return Outcome(run, "failed", info.detail)
    task, why = task_for(run.config)
    if task is None:
        log(f"no-run   {label}: {why}")
        return Outcome(run, "no-runner", why)
    lock = RunLock(rundir.path)
    try:
        lock.acquire()
    except RunDirBusy as err:
        log(f"busy     {label}: {err}")
        return Outcome(run, "busy", str(err))
    try:
        return _run_one(run, rundir, task, log, pause_at)
    finally:
        lock.release()


def _run_one(run: ResolvedRun, rundir: RunDir, task: Task, log: Callable[[str], None],
             pause_at: float | None = None) -> Outcome:
    label = run.label
    info = rundir.info()  # again under the lock: another process may have finished it meanwhile
    if info.state == "finished":
        log(f"skip     {label}: finished earlier")
        return Outcome(run, "skipped", "finished earlier")
    rundir.prepare(run.config, group=run.group)
    log(f"{'start' if info.state == 'new' else 'resume':<8} {label}"
        + (f" ({info.detail}: training it again)" if info.detail else ""))
    try:
        task.run(run.config if pause_at is None else {**run.config, "pause_at_fraction": pause_at}, rundir.path)
    except Paused:
        log(f"paused   {label} at {pause_at:.0%} of its compute")
        return Outcome(run, "paused", f"at {pause_at:.0%}")
    except KeyboardInterrupt:
        raise
    except UserError as err:  # bad input or set-up (missing data set...): every other run would hit it too
        (rundir.path / "error.log").write_text(traceback.format_exc())
        raise UserError(f"{label}: {err}") from None
    except Exception as err:  # one failed run must not stop the others; its log is in the run dir
        (rundir.path / "error.log").write_text(traceback.format_exc())
        log(f"failed   {label}: {type(err).__name__}: {err} (see {rundir.path / 'error.log'})")
        return Outcome(run, "failed", f"{type(err).__name__}: {err}")
    after = rundir.info()
    if after.state != "finished":
        why = after.detail or "the task returned without writing summary.json"
        log(f"failed   {label}: {why}")
        return Outcome(run, "failed", why)
    log(f"done     {label}")
    return Outcome(run, "finished")


def train_run_dir(run_dir: str | Path) -> None:
    """Train (or resume) the run whose resolved config is in ``run_dir``: the function cluster jobs call
    (``RunJob(run_dir, "repro.launch.local:train_run_dir")``, which holds the run directory's lock). A run without
    a task that can run it is a ``UserError``, which the job never retries."""
    rundir = RunDir(run_dir)
    info = rundir.info()
    if info.state == "finished":
        return
    if info.blocked:
        raise UserError(info.detail)
    config = rundir.config()
    task, why = task_for(config)
    if task is None:
        raise UserError(f"{rundir.path}: {why}")
    rundir.prepare(config)
    task.run(config, rundir.path)
    after = rundir.info()
    if after.state != "finished":
        raise RuntimeError(after.detail or f"{rundir.path}: the task returned without writing summary.json")
