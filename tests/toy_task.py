"""A stand-in for task ``in1k`` in the executor tests: records calls, resumes from a marker, can fail on demand.

In-process tests put it in place with ``monkeypatch.setitem(repro.tasks.REGISTRY, "in1k", toy_task.TASK)``;
subprocesses and cluster jobs get it through ``REPRO_TASK_MODULES=toy_plugin`` (``tests/`` on ``PYTHONPATH``),
whose import registers it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from repro.methods import names_of
from repro.tasks import Task

SUPPORTED_METHODS = {"baseline", "efficienttrain++"}
CALLS: list[tuple[str, bool]] = []


def check(config: dict[str, Any]) -> str:
    method = config.get("method")
    return "" if set(names_of(method)) <= SUPPORTED_METHODS else f"no runner for method {method!r} yet (toy)"


def run(config: dict[str, Any], run_dir: Path) -> None:
    resumed = (run_dir / "progress.json").exists()
    CALLS.append((run_dir.name, resumed))
    with (run_dir / "trained_by.log").open("a") as f:  # one line per process that trained this run
        f.write(f"{os.getpid()}\n")
    time.sleep(float(os.environ.get("TOY_RUNNER_SLEEP", "0")))  # to overlap two concurrent `repro run`
    if config.get("model") == "CSWin-Tiny":
        from repro.errors import UserError

        raise UserError("Fashion-MNIST not found (toy)")  # a set-up problem every run would hit
    if config.get("model") == "DeiT-Tiny":
        raise RuntimeError("loss is nan at step 3 (stage 1)")
    if config.get("model") == "Swin-Tiny" and config["method"] == "baseline" and not resumed:
        (run_dir / "progress.json").write_text("{}")
        raise KeyboardInterrupt  # a killed process: leaves a partial run directory
    top1 = 90.0 if config["method"] == "baseline" else 90.5
    (run_dir / "summary.json").write_text(json.dumps({"top1": top1, "wall_time_s": 10.0}))


TASK = Task("in1k", run=run, check=check)


def fine_tune(config: dict[str, Any], run_dir: Path) -> None:
    """A toy fine-tuning: refuses an unfinished upstream like the real tasks, records when it started."""
    from repro.errors import UserError
    from repro.launch.rundir import run_info

    upstream = run_dir.parent / config["init_from"]
    CALLS.append((run_dir.name, False))
    if run_info(upstream).state != "finished":
        raise UserError(f"upstream run {upstream.name} is not finished (toy)")
    top1 = json.loads((upstream / "summary.json").read_text())["top1"] + 1.0
    (run_dir / "summary.json").write_text(json.dumps({"top1": top1, "started": time.time()}))


TRANSFER = Task("transfer", run=fine_tune, check=check, upstream=frozenset({"in1k"}), requires_upstream=True)
