"""Preemption protocol between the launcher and the training loop.

SLURM announces preemption and time limits with ``USR2`` (submitit's ``--signal=USR2@90``). The signal can arrive
in the middle of a step; checkpointing there would save a half-updated state. So the launcher
(:class:`repro.launch.job.RunJob`) only sets the process-global :data:`PREEMPTION` flag, and the training loop
polls it at every step boundary::

    for step in range(start, total):
        train_one_step(...)
        stop_if_preempted(lambda: save_checkpoint(run_dir, step + 1))   # writes, then raises Preempted

``RunJob`` catches :class:`Preempted` and requeues the job; the next attempt resumes from the run directory.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable


class Preempted(Exception):
    """Raised by the training loop after it wrote a checkpoint because preemption was requested."""


class Paused(KeyboardInterrupt):
    """Raised by the training loop after it wrote a checkpoint where its config said to stop
    (``stop_after_steps``, ``pause_at_fraction``): an interruption the caller asked for, a KeyboardInterrupt so
    that nothing takes the run for done."""


class PreemptionFlag:
    """A flag set from a signal handler and polled by the training loop (thread-safe, process-global)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None
        self.set_at: float | None = None

    def set(self, reason: str = "preemption requested") -> None:
        if not self._event.is_set():
            self.reason, self.set_at = reason, time.time()
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        self._event.clear()
        self.reason = self.set_at = None


PREEMPTION = PreemptionFlag()


def preemption_requested(sync: bool = True) -> bool:
    """Whether any process of this run was asked to stop.

    Under ``torch.distributed`` every rank must stop at the same step, so with ``sync`` the local flags are
    all-reduced (one tiny collective: poll every few steps if that matters); all ranks must call it together.
    """
    flag = PREEMPTION.is_set()
    dist_mod = sys.modules.get("torch.distributed")  # no torch import when the trainer does not use it
    if sync and dist_mod is not None and dist_mod.is_available() and dist_mod.is_initialized():
        import torch

        t = torch.tensor([1.0 if flag else 0.0], device="cuda" if dist_mod.get_backend() == "nccl" else "cpu")
        dist_mod.all_reduce(t, op=dist_mod.ReduceOp.MAX)
        flag = bool(t.item() > 0)
    return flag


def stop_if_preempted(save_checkpoint: Callable[[], object], sync: bool = True) -> None:
    """Call at a step boundary: when preemption was requested, write a checkpoint and raise :class:`Preempted`.

    ``save_checkpoint`` must write the checkpoint the trainer resumes from (same name and place as its periodic
    ones: a requeue that looks for another name silently restarts from scratch).
    """
    if preemption_requested(sync=sync):
        save_checkpoint()
        raise Preempted(PREEMPTION.reason or "preemption requested")
