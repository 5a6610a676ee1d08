"""Run directories: the unit of truth for a run (resolved config, code version, environment, outputs).

``runs/<run_id>/`` holds ``config.json`` (the resolved configuration, whose hash is in the run id),
``environment.json`` (git SHA, package versions, host, one entry per start), the trainer's checkpoints,
``metrics.jsonl``, ``progress.json`` (step, share of the compute done and ETA at the last train record:
:mod:`repro.train.progress`) and, once finished, ``summary.json``. Every JSON file is written atomically.
"""

from __future__ import annotations

import errno
import json
import math
import numbers
import os
import platform
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Literal

from repro.errors import UserError

WANDB_GROUP_FILE = "wandb_group.txt"
PROGRESS_FILE = "progress.json"
LOCK_FILE = ".lock"
PACKAGES = ("repro", "torch", "torchvision", "timm", "numpy", "pillow", "submitit", "pandas", "pydantic", "wandb")
RunState = Literal["new", "partial", "corrupt", "finished"]
# A finished run's summary holds a finite headline metric: top-1 (classification), COCO AP^box (repro.tasks.coco)
# or ADE20K mIoU (repro.tasks.ade20k).
HEADLINE_METRICS = ("top1", "ap_box", "miou")


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write through ``write(file)`` to a temp file in the same directory, fsync, then rename over ``path``: a
    reader (or a resumed run) sees the old file or the new one, never a torn one. The file gets the umask's
    permissions (as ``open`` gives), so a shared project's group can read results."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # not tempfile.mkstemp: it creates 0600 whatever the umask
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data: Any) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def git_sha(cwd: str | Path | None = None) -> str | None:
    """HEAD of the repository the code runs from, with ``-dirty`` when the work tree has changes."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment() -> dict[str, Any]:
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "git_sha": git_sha(),
        "packages": package_versions(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }


@dataclass(frozen=True)
class RunInfo:
    """Where a run directory stands: ``new`` (nothing there), ``partial`` (started, no summary), ``corrupt``
    (a summary.json without a finite top-1 -- val_loss for MAE pre-training --, or a path that is not a run
    directory: ``detail`` says what) or
    ``finished`` (``summary`` holds it). A corrupt summary is trained again (the new one replaces it); a
    ``blocked`` run needs a person first (``detail`` says what to do)."""

    state: RunState
    detail: str = ""
    summary: dict[str, Any] | None = None
    blocked: bool = False


def is_finite_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def run_info(path: str | Path) -> RunInfo:
    """The state of a run directory: the one place that decides whether a run is finished (the launchers, the
    SLURM status and the aggregator all ask here)."""
    path = Path(path)
    summary_path = path / "summary.json"
    if path.exists() and not path.is_dir():
        return RunInfo("corrupt", f"{path}: a file, not a run directory; move it away to run it", blocked=True)
    if summary_path.is_dir():
        return RunInfo("corrupt", f"{summary_path}: a directory, not a summary; move it away to retrain the run",
                       blocked=True)
    try:
        text = summary_path.read_text()
    except FileNotFoundError:
        started = path.is_dir() and any(p.name != LOCK_FILE for p in path.iterdir())
        return RunInfo("partial" if started else "new")
    except (OSError, UnicodeDecodeError) as err:
        return RunInfo("corrupt", f"{summary_path}: unreadable ({type(err).__name__}); fix or remove it",
                       blocked=isinstance(err, OSError))
    try:
        summary = json.loads(text)
    except ValueError:
        return RunInfo("corrupt", f"{summary_path}: not valid JSON (a torn write?)")
    if not isinstance(summary, dict):
        return RunInfo("corrupt", f"{summary_path}: not a JSON object")
    # a self-supervised pre-training (MAE, Table 15) has no top-1: its result is its reconstruction loss
    key = "val_loss" if summary.get("objective") == "mae" else next((k for k in HEADLINE_METRICS if k in summary),
                                                                     "top1")
    value = summary.get(key)
    if not is_finite_number(value):
        what = f"no {key}" if value is None else f"{key} {value!r} is not a finite number"
        return RunInfo("corrupt", f"{summary_path}: {what}")
    return RunInfo("finished", summary=summary)


class RunDirBusy(UserError):
    """Another process holds the run directory's lock."""


# errnos of file systems without flock (some Lustre / FUSE mounts): fall back to the host+pid record
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS}
_HELD: dict[str, tuple[int, int]] = {}  # real path -> (fd, depth): re-entrant within one process


class RunLock:
    """Exclusive use of a run directory by one process: ``flock`` on ``<run>/.lock``, which the kernel (or the
    NFS lock manager) drops when the process dies, so a kill -9 leaves no stale lock. The file records host, pid,
    time and command of the holder, for the message a second start gets. Re-entrant: the launcher locks and the
    trainer it calls locks again. Where ``flock`` is unsupported the record itself is the lock: a dead pid on
    this host is taken over; a holder on another host must be cleared by hand (the message says how)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._key = os.path.realpath(self.run_dir)
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        if self._key in _HELD:
            fd, depth = _HELD[self._key]
            _HELD[self._key] = (fd, depth + 1)
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            self._lock(fd)
            command = " ".join([*map(os.path.basename, sys.argv[:1]), *sys.argv[1:]])[:200]
            record = {"host": socket.gethostname(), "pid": os.getpid(),
                      "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        _HELD[self._key] = (fd, 1)

    def _lock(self, fd: int) -> None:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            raise RunDirBusy(f"{self.run_dir}: in use by {_describe(_holder(fd))}; wait for it to end or stop it, "
                             "then start this run again") from None
        except OSError as err:
            if err.errno not in _NO_FLOCK:
                raise
        holder = _holder(fd)  # no flock here: the record is the lock
        if holder and not (holder.get("host") == socket.gethostname() and not _alive(holder.get("pid"))):
            raise RunDirBusy(f"{self.run_dir}: in use by {_describe(holder)} (this file system has no flock: if "
                             f"that process is gone, delete {self.path})")

    def release(self) -> None:
        fd, depth = _HELD.get(self._key, (None, 0))
        if fd is None:
            return
        if depth > 1:
            _HELD[self._key] = (fd, depth - 1)
            return
        del _HELD[self._key]
        try:
            os.ftruncate(fd, 0)  # a free lock names no holder
        finally:
            os.close(fd)  # releases the flock


def live_holder(run_dir: str | Path) -> dict[str, Any] | None:
    """The lock record of the process training ``run_dir`` now, if that process runs on this host and lives
    (a lock held on another host, e.g. by a cluster job, is for the scheduler to report)."""
    try:
        holder = json.loads((Path(run_dir) / LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        return None
    if not isinstance(holder, dict) or holder.get("host") != socket.gethostname() or not _alive(holder.get("pid")):
        return None
    return holder


def _holder(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process"
    return (f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('time')}"
            + (f" ({holder['command']})" if holder.get("command") else ""))


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return True
    return True


def config_differences(old: dict[str, Any], new: dict[str, Any], name: Callable[[str], str] = str) -> str:
    """``key old -> new`` for every key whose value differs (as JSON), ``; ``-separated, each key written as
    ``name(key)``; "" when none does."""
    old, new = (json.loads(json.dumps(c, default=str)) for c in (old, new))

    def show(value: Any) -> Any:
        return round(value, 12) if isinstance(value, float) else value  # 0.15, not 0.15000000000000002

    return "; ".join(f"{name(key)} {show(old.get(key))} -> {show(new.get(key))}" for key in sorted({*old, *new})
                     if old.get(key) != new.get(key))


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    def info(self) -> RunInfo:
        return run_info(self.path)

    def state(self) -> RunState:
        return self.info().state

    def config(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.config_path.read_text()))
        except FileNotFoundError:
            raise UserError(f"{self.path}: not a run directory (no config.json)") from None
        except ValueError:
            raise UserError(f"{self.config_path}: corrupt config; delete the run directory to start over") from None

    def prepare(self, config: dict[str, Any], group: str | None = None) -> None:
        """Create the directory with its config (or check that an existing one holds the same config) and record
        the environment of this start. ``group`` (the table that first asked for the run, e.g. ``table07``) is
        its wandb group, kept in ``wandb_group.txt`` beside ``wandb_id.txt``: outside the config, so a run that
        several tables share keeps one directory and one config hash."""
        self.path.mkdir(parents=True, exist_ok=True)
        normalised = json.loads(json.dumps(config, default=str))
        if self.config_path.exists():
            differences = config_differences(self.config(), normalised)
            if differences:
                raise UserError(f"{self.path}: holds a different config ({differences}); it was not made by this "
                                "manifest row")
        else:
            write_json_atomic(self.config_path, normalised)
        if group and not (self.path / WANDB_GROUP_FILE).exists():  # after the check: never into another run
            (self.path / WANDB_GROUP_FILE).write_text(group + "\n")
        starts_path = self.path / "environment.json"
        try:
            starts = json.loads(starts_path.read_text()) if starts_path.exists() else []
        except ValueError:
            starts = []
        write_json_atomic(starts_path, [*starts, environment()])
