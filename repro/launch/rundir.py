"""Run directories: the unit of truth for a run (resolved config, code version, environment, outputs).

``runs/<run_id>/`` holds ``config.json`` (the resolved configuration, whose hash is in the run id),
``environment.json`` (git SHA, package versions, host, one entry per start), the trainer's checkpoints,
``metrics.jsonl`` and, once finished, ``summary.json``. Every JSON file is written atomically.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Literal

from repro.errors import UserError

WANDB_GROUP_FILE = "wandb_group.txt"
PACKAGES = ("repro", "torch", "torchvision", "timm", "numpy", "pillow", "submitit", "pandas", "pydantic", "wandb")
RunState = Literal["new", "partial", "finished"]


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write through ``write(file)`` to a temp file in the same directory, fsync, then rename over ``path``: a
    reader (or a resumed run) sees the old file or the new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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

    def state(self) -> RunState:
        if self.summary_path.exists():
            try:
                json.loads(self.summary_path.read_text())
                return "finished"
            except ValueError:
                return "partial"  # a torn summary: the run must finish again
        return "partial" if self.path.is_dir() and any(self.path.iterdir()) else "new"

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
