"""Atomic checkpoints and resume from the newest loadable one (a torn or corrupt newest file falls back).

Files are ``checkpoint-<step>.pt`` in the run directory, written to a temp file, fsynced and renamed, read with
``torch.load(weights_only=True)`` (no pickled code). The same name serves periodic, stage-boundary and
preemption checkpoints, so a requeued job always finds what the last one wrote.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from repro.launch.rundir import atomic_write

PATTERN = re.compile(r"^checkpoint-(\d+)\.pt$")


def checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints of a run, newest (highest step) first."""
    found = [(int(m.group(1)), p) for p in run_dir.glob("checkpoint-*.pt") if (m := PATTERN.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def save(run_dir: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    path = run_dir / f"checkpoint-{step:09d}.pt"
    _write(path, state)
    for old in checkpoints(run_dir)[keep:]:
        old.unlink(missing_ok=True)
    return path


RANK_PATTERN = re.compile(r"^rank(\d+)-(\d+)\.pt$")


def save_rank(run_dir: Path, step: int, rank: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Per-process state that differs between DDP ranks (the replay buffer's shard), next to the checkpoint."""
    path = run_dir / f"rank{rank}-{step:09d}.pt"
    _write(path, state)
    mine = sorted(((int(m.group(2)), p) for p in run_dir.glob(f"rank{rank}-*.pt")
                   if (m := RANK_PATTERN.match(p.name)) and int(m.group(1)) == rank), reverse=True)
    for _, old in mine[keep:]:
        old.unlink(missing_ok=True)
    return path


def load_rank(run_dir: Path, step: int, rank: int) -> dict[str, Any]:
    path = run_dir / f"rank{rank}-{step:09d}.pt"
    try:
        return dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as err:
        raise RuntimeError(f"{path}: rank {rank}'s state for checkpoint step {step} is missing or unreadable "
                           f"({type(err).__name__}); cannot resume this rank's replay buffer exactly") from err


def _write(path: Path, state: dict[str, Any]) -> None:
    """torch.save, atomically (temp file in the same directory, fsync, rename)."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_latest(run_dir: Path, warn: Callable[[str], None] = print) -> dict[str, Any] | None:
    """The newest checkpoint that loads; unreadable ones are reported and skipped."""
    for path in checkpoints(run_dir):
        try:
            return dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as err:  # torn write, bit rot, unpickling refused: try the previous one
            warn(f"{path}: unreadable checkpoint ({type(err).__name__}: {str(err).splitlines()[0][:120]}); "
                 "falling back to the previous one")
    return None
