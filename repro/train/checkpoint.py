"""Atomic, checksummed checkpoints and resume from the newest usable one (anything else falls back).

Files are ``checkpoint-<step>.pt`` in the run directory, written to a temp file, fsynced and renamed, read with
``torch.load(weights_only=True)`` (no pickled code). The same name serves periodic, stage-boundary and
preemption checkpoints, so a requeued job always finds what the last one wrote.

Each file has a ``<name>.sha256`` beside it (``sha256sum -c`` reads it). A save removes the old checksum before
the new file is renamed into place and writes the new one after, so a kill -9 at any point leaves a checksum
that matches its file or none; a file without a (matching) checksum is never resumed from. A checkpoint that
cannot be used (torn, bit rot, missing keys, another model) is renamed ``<name>.rejected-<time>`` -- kept, but
out of the rotation -- and the previous one is tried.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from repro.launch.rundir import atomic_write

PATTERN = re.compile(r"^checkpoint-(\d+)\.pt$")
RANK_PATTERN = re.compile(r"^rank(\d+)-(\d+)\.pt$")
DIGEST = ".sha256"
# temp files of interrupted checkpoint writes (atomic_write names them .<name>.<random>.tmp)
STALE_TEMP = (".checkpoint-*.tmp", ".rank*-*.tmp")


class UnusableCheckpoint(Exception):
    """A checkpoint file that must not be resumed from (the message says why)."""


def checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints of a run, newest (highest step) first."""
    found = [(int(m.group(1)), p) for p in run_dir.glob("checkpoint-*.pt") if (m := PATTERN.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def digest_path(path: Path) -> Path:
    return path.with_name(path.name + DIGEST)


def save(run_dir: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    path = run_dir / f"checkpoint-{step:09d}.pt"
    _write(path, state)
    for old in checkpoints(run_dir)[keep:]:
        _remove(old)
    return path


def snapshot_path(run_dir: Path, epoch: float) -> Path:
    """The weights a run kept at epoch ``epoch`` (``snapshot_epochs``: Table 1 evaluates them)."""
    return Path(run_dir) / "snapshots" / f"epoch-{epoch:g}.pt"


def save_snapshot(run_dir: Path, epoch: float, weights: dict[str, Any]) -> Path:
    path = snapshot_path(run_dir, epoch)
    _write(path, {"epoch": epoch, "model": weights})
    return path


def save_rank(run_dir: Path, step: int, rank: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Per-process state that differs between DDP ranks (the replay buffer's shard), next to the checkpoint."""
    path = run_dir / f"rank{rank}-{step:09d}.pt"
    _write(path, state)
    mine = sorted(((int(m.group(2)), p) for p in run_dir.glob(f"rank{rank}-*.pt")
                   if (m := RANK_PATTERN.match(p.name)) and int(m.group(1)) == rank), reverse=True)
    for _, old in mine[keep:]:
        _remove(old)
    return path


def load_rank(run_dir: Path, step: int, rank: int) -> dict[str, Any]:
    path = run_dir / f"rank{rank}-{step:09d}.pt"
    try:
        return read(path)
    except Exception as err:
        raise RuntimeError(f"{path}: rank {rank}'s state for checkpoint step {step} is missing or unreadable "
                           f"({why(err)}); cannot resume this rank's replay buffer exactly") from err


def _write(path: Path, state: dict[str, Any]) -> None:
    """torch.save atomically, then its checksum; the old checksum goes first, so none ever names other bytes."""
    digest = digest_path(path)
    digest.unlink(missing_ok=True)
    atomic_write(path, lambda f: torch.save(state, f))
    line = f"{_sha256(path)}  {path.name}\n"
    atomic_write(digest, lambda f: f.write(line.encode()))


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    digest_path(path).unlink(missing_ok=True)  # after the file: a kill in between leaves an orphan, not a bare file


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read(path: Path) -> dict[str, Any]:
    """A checkpoint whose bytes match its recorded checksum, loaded with ``weights_only``."""
    try:
        expected = digest_path(path).read_text().split()[0]
    except (FileNotFoundError, IndexError):
        raise UnusableCheckpoint(f"no checksum in {digest_path(path).name} (a save was interrupted, or an older "
                                 "repro wrote it)") from None
    actual = _sha256(path)
    if actual != expected:
        raise UnusableCheckpoint(f"sha256 {actual[:12]}... does not match the recorded {expected[:12]}... "
                                 "(the file changed after it was written)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise UnusableCheckpoint(f"holds a {type(state).__name__}, not a trainer state")
    return state


def remove_stale(run_dir: Path) -> list[Path]:
    """Temp files of checkpoint writes a kill interrupted, and checksums whose file is gone. Call only while
    holding the run directory's lock: then no other process is writing them."""
    stale = [p for pattern in STALE_TEMP for p in run_dir.glob(pattern)]
    stale += [p for p in run_dir.glob(f"*.pt{DIGEST}") if not p.with_name(p.name[: -len(DIGEST)]).exists()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def set_aside(path: Path) -> Path:
    """Rename an unusable checkpoint (and its checksum) out of the rotation, keeping the bytes."""
    kept = path.with_name(f"{path.name}.rejected-{time.strftime('%Y%m%dT%H%M%S')}")
    path.replace(kept)
    if digest_path(path).exists():
        digest_path(path).replace(digest_path(kept))
    return kept


def load_latest(run_dir: Path, warn: Callable[[str], None] = print,
                validate: Callable[[dict[str, Any]], None] | None = None,
                keep_rejected: bool = True) -> dict[str, Any] | None:
    """The newest checkpoint that reads, matches its checksum and passes ``validate`` (which raises to refuse a
    state it cannot restore completely: the caller restores only a validated state). Each refused one is
    reported in one line and, with ``keep_rejected``, set aside; ``None`` when none is usable."""
    for path in checkpoints(run_dir):
        try:
            state = read(path)
            if validate is not None:
                validate(state)
            return state
        except Exception as err:  # torn write, bit rot, unpickling refused, missing keys, another model
            where = f"set aside as {set_aside(path).name}; " if keep_rejected and path.exists() else ""
            warn(f"{path}: unusable checkpoint ({why(err)}); {where}falling back to the previous one")
    return None


def why(err: BaseException) -> str:
    """The first line of why a checkpoint was refused."""
    lines = str(err).strip().splitlines()
    text = lines[0][:160] if lines else ""
    if isinstance(err, UnusableCheckpoint):
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
