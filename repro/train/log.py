"""metrics.jsonl (one JSON object per line), progress.json (:mod:`repro.train.progress`), console output and an
optional wandb mirror (offline by default; its run id is kept in the run directory so a resumed run continues the
same wandb run). No wandb problem may stop a run.

On a terminal training shows a rich progress bar; elsewhere (a SLURM log, a pipe) plain lines such as ::

    [train] step=120/4000 compute=2.1% stage=1/3 B=96 epoch=0.9 lr=0.0004 loss=2.317 images_per_s=1234 eta=1h02m

at most one per ``plain_every_s`` seconds (the first record, each stage's first and the last always): ``compute``
is the share of the planned compute done, on which the ETA rests (a curriculum's steps differ in cost)."""

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
from repro.train.progress import Progress, format_duration, write_progress

PLAIN_EVERY_S = 30.0


class MetricsLog:
    def __init__(self, out: Path, enabled: bool = True, wandb: bool = False, config: dict[str, Any] | None = None,
                 project: str = "repro", group: str | None = None, plain_every_s: float = PLAIN_EVERY_S) -> None:
        self.out = out
        self.path = out / "metrics.jsonl"
        self.enabled = enabled
        self.lines = self._count()
        self.tty = sys.stdout.isatty() and enabled
        self._bar: Any = None
        self.plain_every_s = plain_every_s
        self._last_plain: tuple[float, int] | None = None  # monotonic time and stage of the last plain train line
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

    def write(self, record: dict[str, Any], progress: Progress | None = None) -> None:
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
        if record.get("kind") != "train" or progress is None:
            keys = ("step", "epoch", "stage", "resolution", "lr", "loss", "images_per_s", "top1", "top5")
            print(f"[{record.get('kind')}] " + " ".join(f"{k}={_fmt(record[k])}" for k in keys if k in record),
                  flush=True)
            return
        write_progress(self.out, progress)
        if self.tty and self._show_bar(record, progress):
            return
        if self._plain_due(progress):
            print(train_line(record, progress), flush=True)

    def _plain_due(self, progress: Progress) -> bool:
        now, last = time.monotonic(), self._last_plain
        due = (last is None or progress.stage != last[1] or progress.step >= progress.total_steps
               or now - last[0] >= self.plain_every_s)
        if due:
            self._last_plain = (now, progress.stage)
        return due

    def _show_bar(self, record: dict[str, Any], progress: Progress) -> bool:
        try:
            from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            if self._bar is None:
                self._bar = Bar(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                TextColumn("step {task.fields[step]}"), TextColumn("eta {task.fields[eta]}"),
                                TimeElapsedColumn(), transient=True)
                self._bar.start()
                self._task = self._bar.add_task("training", total=1.0, step="", eta="?")
            self._bar.update(self._task, completed=progress.done, step=f"{progress.step}/{progress.total_steps}",
                             eta=format_duration(progress.eta_s),
                             description=f"stage {progress.stage}/{progress.stages} B={progress.resolution} "
                             f"loss {record['loss']:.3f}")
            return True
        except Exception:  # noqa: BLE001 - a broken terminal falls back to plain lines
            self.tty = False
            return False

    def info(self, message: str) -> None:
        if self.enabled:
            print(f"[repro] {message}", flush=True)

    def warn(self, message: str) -> None:
        print(f"[repro] warning: {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        if self._wandb is not None:
            with contextlib.suppress(Exception):
                self._wandb.finish()


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def train_line(record: dict[str, Any], progress: Progress) -> str:
    """The plain log line of a train record (see the module docstring)."""
    head = (f"step={progress.step}/{progress.total_steps} compute={100 * progress.done:.1f}% "
            f"stage={progress.stage}/{progress.stages} B={progress.resolution}")
    rest = " ".join(f"{k}={_fmt(record[k])}" for k in ("epoch", "lr", "loss", "images_per_s") if k in record)
    return f"[train] {head} {rest} eta={format_duration(progress.eta_s)}"


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
