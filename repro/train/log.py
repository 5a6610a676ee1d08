"""metrics.jsonl (one JSON object per line), console output (rich progress on a TTY, plain lines otherwise)
and an optional wandb mirror (offline by default; its run id is kept in the run directory so a resumed run
continues the same wandb run). No wandb problem may stop a run."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from repro.launch.rundir import WANDB_GROUP_FILE


class MetricsLog:
    def __init__(self, out: Path, enabled: bool = True, wandb: bool = False, config: dict[str, Any] | None = None,
                 project: str = "repro", group: str | None = None) -> None:
        self.path = out / "metrics.jsonl"
        self.enabled = enabled
        self.lines = self._count()
        self.tty = sys.stdout.isatty() and enabled
        self._progress: Any = None
        self._wandb: Any = None
        if wandb and enabled:
            self._wandb = _start_wandb(out, config or {}, project, group, self.warn)

    def _count(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open() as f:
            return sum(1 for _ in f)

    def truncate(self, lines: int) -> None:
        """Drop records written after the checkpoint we resume from (they will be written again)."""
        if not self.enabled or not self.path.exists():
            return
        kept = self.path.read_text().splitlines(keepends=True)[:lines]
        self.path.write_text("".join(kept))
        self.lines = len(kept)

    def restart(self) -> Path | None:
        """Start afresh (training restarts from step 0): a non-empty metrics.jsonl is renamed aside, not lost."""
        if not self.enabled or not self.lines:
            return None
        kept = self.path.with_name(f"{self.path.name}.{time.strftime('%Y%m%dT%H%M%S')}.old")
        self.path.replace(kept)
        self.lines = 0
        return kept

    def write(self, record: dict[str, Any], progress: tuple[int, int] | None = None) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        self.lines += 1
        if self._wandb is not None:
            try:
                numbers = {k: v for k, v in record.items() if isinstance(v, int | float)}
                self._wandb.log(numbers, step=record.get("step"))
            except Exception as err:  # noqa: BLE001 - never fail a run for wandb
                self.warn(f"wandb: {err}")
                self._wandb = None
        if record.get("kind") == "train" and progress is not None and self.tty:
            self._show_progress(record, progress)
        else:
            keys = ("step", "epoch", "stage", "resolution", "lr", "loss", "images_per_s", "top1", "top5")
            text = " ".join(f"{k}={_fmt(record[k])}" for k in keys if k in record)
            print(f"[{record.get('kind')}] {text}", flush=True)

    def _show_progress(self, record: dict[str, Any], progress: tuple[int, int]) -> None:
        try:
            from rich.progress import Progress

            if self._progress is None:
                self._progress = Progress(transient=True)
                self._progress.start()
                self._task = self._progress.add_task("training", total=progress[1])
            desc = f"stage {record['stage']} B={record['resolution']} loss {record['loss']:.3f}"
            self._progress.update(self._task, completed=progress[0], description=desc)
        except Exception:  # noqa: BLE001
            self.tty = False

    def info(self, message: str) -> None:
        if self.enabled:
            print(f"[repro] {message}", flush=True)

    def warn(self, message: str) -> None:
        print(f"[repro] warning: {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._wandb is not None:
            with contextlib.suppress(Exception):
                self._wandb.finish()


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _start_wandb(out: Path, config: dict[str, Any], project: str, group: str | None, warn: Any) -> Any:
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        import wandb

        id_file = out / "wandb_id.txt"
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id)
        group_file = out / WANDB_GROUP_FILE  # the table that launched the run (RunDir.prepare)
        if group is None and group_file.exists():
            group = group_file.read_text().strip() or None
        return wandb.init(project=project, group=group, id=run_id, resume="allow", dir=str(out), config=config,
                          settings=wandb.Settings(init_timeout=30))
    except Exception as err:  # noqa: BLE001
        warn(f"wandb disabled: {err}")
        return None
