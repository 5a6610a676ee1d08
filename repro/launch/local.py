"""The local executor: run a manifest's pending runs one after another in this process.

Each resolved run goes to the runner registered for its task (``RUNNERS``: task -> "module:function"); the
function receives the resolved config and the run directory and must resume from whatever the directory
holds. Finished runs are skipped, unfinished ones resumed; a run directory another process holds (its lock) is
skipped with the holder's name, so two ``repro run`` on one runs directory share the work instead of doing it
twice. A task or method without a runner is reported by name -- never faked. A run that fails goes to its
``error.log`` and the others go on, except for a ``UserError`` (bad input or set-up, e.g. no data set): it stops
the loop with its one line, since every later run would fail the same way.
"""

from __future__ import annotations

import importlib
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.errors import UserError
from repro.launch.resolve import ResolvedRun
from repro.launch.rundir import RunDir, RunDirBusy, RunLock
from repro.methods import names_of

Runner = Callable[[dict[str, Any], Path], Any]

# task -> "module:function"; a runner module may define SUPPORTED_METHODS (a set of method names) and
# check(config) -> str (why it cannot train a config, "" if it can).
RUNNERS: dict[str, str] = {
    "in1k": "repro.train.runner:run",
}


@dataclass
class Outcome:
    run: ResolvedRun
    status: str  # finished | skipped | busy | no-runner | failed
    detail: str = ""


def _registry() -> dict[str, str]:
    """RUNNERS, with ``REPRO_RUNNERS="task=module:function,..."`` on top (for tests and site-specific runners;
    an environment variable reaches cluster jobs, a monkeypatch would not)."""
    registry = dict(RUNNERS)
    for item in filter(None, os.environ.get("REPRO_RUNNERS", "").split(",")):
        task, sep, target = item.partition("=")
        if sep and ":" in target:
            registry[task.strip()] = target.strip()
    return registry


def runner_for(config: dict[str, Any]) -> tuple[Runner | None, str]:
    """The runner for a resolved config, or None and why not."""
    task, method = config.get("task"), config.get("method")
    target = _registry().get(str(task))
    if target is None:
        return None, f"no runner for task {task!r} yet"
    module_name, _, func_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        return None, f"no runner for task {task!r} yet ({err})"
    supported = getattr(module, "SUPPORTED_METHODS", None)
    if supported is not None and not set(names_of(method)) <= supported:
        return None, f"no runner for method {method!r} yet (supported: {', '.join(sorted(supported))})"
    check = getattr(module, "check", None)
    problem = check(config) if check is not None else ""
    if problem:
        return None, problem
    return getattr(module, func_name), ""


def run_locally(
    runs: list[ResolvedRun], root: str | Path = "runs", log: Callable[[str], None] = print
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    seen: set[str] = set()
    for run in runs:
        if run.run_id in seen:  # the same run asked for twice (shared baselines)
            continue
        seen.add(run.run_id)
        rundir = RunDir(Path(root) / run.run_id)
        label = run.label
        info = rundir.info()
        if info.state == "finished":
            outcomes.append(Outcome(run, "skipped", "finished earlier"))
            log(f"skip     {label}: finished earlier")
            continue
        if info.blocked:
            outcomes.append(Outcome(run, "failed", info.detail))
            log(f"failed   {label}: {info.detail}")
            continue
        runner, why = runner_for(run.config)
        if runner is None:
            outcomes.append(Outcome(run, "no-runner", why))
            log(f"no-run   {label}: {why}")
            continue
        lock = RunLock(rundir.path)
        try:
            lock.acquire()
        except RunDirBusy as err:
            outcomes.append(Outcome(run, "busy", str(err)))
            log(f"busy     {label}: {err}")
            continue
        try:
            outcomes.append(_run_one(run, rundir, runner, log))
        finally:
            lock.release()
    return outcomes


def _run_one(run: ResolvedRun, rundir: RunDir, runner: Runner, log: Callable[[str], None]) -> Outcome:
    label = run.label
    info = rundir.info()  # again under the lock: another process may have finished it meanwhile
    if info.state == "finished":
        log(f"skip     {label}: finished earlier")
        return Outcome(run, "skipped", "finished earlier")
    rundir.prepare(run.config, group=run.group)
    log(f"{'start' if info.state == 'new' else 'resume':<8} {label}"
        + (f" ({info.detail}: training it again)" if info.detail else ""))
    try:
        runner(run.config, rundir.path)
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
        why = after.detail or "runner returned without writing summary.json"
        log(f"failed   {label}: {why}")
        return Outcome(run, "failed", why)
    log(f"done     {label}")
    return Outcome(run, "finished")


def train_run_dir(run_dir: str | Path) -> None:
    """Train (or resume) the run whose resolved config is in ``run_dir``: the function cluster jobs call
    (``RunJob(run_dir, "repro.launch.local:train_run_dir")``, which holds the run directory's lock). A run without
    a runner is a ``UserError``, which the job never retries."""
    rundir = RunDir(run_dir)
    info = rundir.info()
    if info.state == "finished":
        return
    if info.blocked:
        raise UserError(info.detail)
    config = rundir.config()
    runner, why = runner_for(config)
    if runner is None:
        raise UserError(f"{rundir.path}: {why}")
    rundir.prepare(config)
    runner(config, rundir.path)
    after = rundir.info()
    if after.state != "finished":
        raise RuntimeError(after.detail or f"{rundir.path}: the runner returned without writing summary.json")
