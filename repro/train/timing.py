"""The training time of a run, measured so that a speedup means the same on a quiet and on a busy machine.

Wall time (the paper's "Training Speedup: Wall-time", Tables 7, 8, 11, 12, 17, 18) is what a dedicated GPU node
reports, but on a shared machine any load that comes and goes between two runs lands in their ratio. Next to it
:class:`TrainClock` keeps the CPU time of the training steps -- this process (every torch thread) and its
data-loader workers -- which a competing process does not inflate, and on CUDA the steps' device time from CUDA
events. Only training steps count: evaluation, checkpoints and start-up are excluded from every measure alike.

Worker CPU time is read from ``getrusage(RUSAGE_CHILDREN)``, which counts children once they have exited: it is
added when a stage's loader has shut its workers down, less what evaluation loaders' workers used meanwhile. A
stage interrupted by preemption loses its workers' time up to the checkpoint (its wall and main-process CPU time
are kept); a run that never stops mid-stage has all of it.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

TIMING_KEYS = ("wall_time_s", "cpu_time_s", "gpu_time_s", "images_per_s")
"""Metric-record and summary keys that measure time, not training: they differ between two identical runs."""


def children_cpu_seconds() -> float:
    """User + system CPU time of this process's exited (waited-for) children, e.g. data-loader workers."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class TrainClock:
    """Wall, CPU (main process and loader workers) and CUDA time of the training steps, resumable."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.wall_s = 0.0
        self.main_cpu_s = 0.0
        self.workers_cpu_s = 0.0
        self.gpu_s = 0.0
        self._events: list[tuple[Any, Any]] = []
        self._stage_children = 0.0
        self._excluded_children = 0.0

    @property
    def cpu_s(self) -> float:
        return self.main_cpu_s + self.workers_cpu_s

    @contextmanager
    def step(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        yield
        if self.cuda:
            end.record()
            self._events.append((start, end))
        self.main_cpu_s += time.process_time() - cpu
        self.wall_s += time.perf_counter() - wall

    def stage_started(self) -> None:
        """Call before a stage's training loader starts its workers."""
        self._stage_children, self._excluded_children = children_cpu_seconds(), 0.0

    @contextmanager
    def excluded(self) -> Iterator[None]:
        """Work inside a stage whose child processes are not training (evaluation loaders)."""
        before = children_cpu_seconds()
        yield
        self._excluded_children += children_cpu_seconds() - before

    def stage_finished(self) -> None:
        """Call after the stage's loader has shut its workers down (their CPU time is then in RUSAGE_CHILDREN)."""
        self.workers_cpu_s += max(0.0, children_cpu_seconds() - self._stage_children - self._excluded_children)
        self.stage_started()

    def sync(self) -> None:
        """Add the CUDA time of the steps recorded so far (waits for the last one)."""
        if self._events:
            self._events[-1][1].synchronize()
            self.gpu_s += sum(start.elapsed_time(end) for start, end in self._events) / 1000
            self._events.clear()

    def state_dict(self) -> dict[str, float]:
        self.sync()
        return {"wall_s": self.wall_s, "main_cpu_s": self.main_cpu_s, "workers_cpu_s": self.workers_cpu_s,
                "gpu_s": self.gpu_s}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.wall_s = float(state["wall_s"])
        self.main_cpu_s = float(state["main_cpu_s"])
        self.workers_cpu_s = float(state["workers_cpu_s"])
        self.gpu_s = float(state["gpu_s"])

    def summary(self) -> dict[str, float]:
        """The run's times under their summary.json / metrics.jsonl names."""
        self.sync()
        times = {"wall_time_s": self.wall_s, "cpu_time_s": self.cpu_s, "cpu_time_main_s": self.main_cpu_s,
                 "cpu_time_workers_s": self.workers_cpu_s}
        if self.cuda:
            times["gpu_time_s"] = self.gpu_s
        return times
