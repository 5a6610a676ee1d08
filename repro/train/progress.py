"""How far a run is and when it will end: the share of its planned compute done, and an ETA from the time that
share took.

The steps of a curriculum differ in cost: a step at input size B costs about (B / final)^2 of one at the final
size (Sec. 4, the cost model of Table 3; measured FLOPs when the run has them), and the early large batch (Sec.
5.3) changes the images per step. A flat steps-per-second rate measured in an ET++ run's cheap first stage would
promise its end far too early. Progress is therefore the compute fraction the plan reaches at a step
(:meth:`~repro.train.schedule.StagePlan.fraction`, the curriculum's own axis), and the ETA is the time per unit of
that fraction times what is left -- timed over the current stage once it has timed steps (a small B uses the
device less well than its FLOPs say, so the rate of an earlier stage overstates a later one's), before that over
what this process trained. In the first stage there is nothing better to go on, and the ETA errs long.

The engine writes the latest :class:`Progress` atomically to ``progress.json`` in the run directory at every
train record; ``repro status`` reads it (:func:`read_progress`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from repro.launch.rundir import PROGRESS_FILE, write_json_atomic

if TYPE_CHECKING:
    from repro.train.schedule import StagePlan


@dataclass(frozen=True)
class Progress:
    """Where a run stood at one train record (what ``progress.json`` holds)."""

    step: int
    total_steps: int
    done: float  # share of the planned compute consumed, 0..1
    stage: int  # 1-based
    stages: int
    resolution: int  # the input size B
    eta_s: float | None  # None until some compute has been timed
    images_per_s: float | None
    time: float  # unix time of the record

    def remaining_s(self, now: float | None = None) -> float | None:
        """The ETA counted on from the record's time to ``now`` (default: now), for a run still training."""
        if self.eta_s is None:
            return None
        return max(0.0, self.eta_s - ((time.time() if now is None else now) - self.time))


class PlanProgress:
    """Progress and ETA along a plan of stages, timed from the step this process starts at (a resumed run times
    only its own steps). Ask :meth:`eta_s` (or :meth:`at`) at each record, in order: it notes where each stage's
    timing starts."""

    def __init__(self, plan: Sequence[StagePlan], start_step: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.plan = list(plan)
        self.total_steps = self.plan[-1].first_step + self.plan[-1].steps
        self._clock = clock
        self._start = (clock(), self.done(start_step))
        self._stage = (self.stage(start_step).index, *self._start)  # the stage being timed, from (time, done)

    def stage(self, step: float) -> StagePlan:
        """The stage of the step after ``step`` steps (the last stage at the end)."""
        return next((p for p in self.plan if step < p.first_step + p.steps), self.plan[-1])

    def done(self, step: float) -> float:
        """Share of the planned compute consumed after ``step`` (possibly fractional: nominal) steps."""
        if step >= self.total_steps:
            return 1.0
        return min(max(self.stage(step).fraction(step), 0.0), 1.0)

    def eta_s(self, step: float) -> float | None:
        """Seconds left after ``step`` steps: the time per unit of compute over the current stage (over all of
        this process's steps until the stage has timed some), times the compute left."""
        now, done = self._clock(), self.done(step)
        index = self.stage(step).index
        if index != self._stage[0]:
            self._stage = (index, now, done)
        since, done_then = self._stage[1:] if done > self._stage[2] else self._start
        if done <= done_then:
            return None
        return (now - since) * (1.0 - done) / (done - done_then)

    def at(self, step: float, stage: StagePlan | None = None, images_per_s: float | None = None) -> Progress:
        """Progress after ``step`` steps, in ``stage`` (default: the stage of the next step; the engine names the
        stage its last step ran in)."""
        stage = stage or self.stage(step)
        return Progress(min(round(step), self.total_steps), self.total_steps, self.done(step), stage.index + 1,
                        len(self.plan), stage.resolution, self.eta_s(step), images_per_s, time.time())


def write_progress(run_dir: Path, progress: Progress) -> None:
    write_json_atomic(run_dir / PROGRESS_FILE, asdict(progress))


def read_progress(run_dir: Path) -> Progress | None:
    """The run's last :class:`Progress`, or None when it wrote none (not started, an older run, a task without the
    engine) or the file is not one (it is rewritten at the next record)."""
    try:
        data = json.loads((Path(run_dir) / PROGRESS_FILE).read_text())
        return Progress(**{f.name: data[f.name] for f in fields(Progress)})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def format_duration(seconds: float | None) -> str:
    """``45s``, ``12m05s``, ``3h07m``, ``2d04h``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
