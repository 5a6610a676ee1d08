"""The manifest runner for classification tasks: a resolved manifest config -> the engine, in a run directory.

Registered for task ``in1k`` in ``repro.launch.local.RUNNERS``; ``repro run`` (local) and the SLURM job
(``repro.launch.local:train_run_dir``) both end here. Measured per-B FLOPs from the model zoo feed the compute
accounting of full-size models (summary ``flops``); proxies use the ideal cost, which keeps the paper's ratios.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from repro.errors import UserError
from repro.train.config import TrainConfig, from_resolved
from repro.train.engine import train


def _randaug(aa: str | None) -> dict[str, float]:
    """timm's ``rand-m9-mstd0.5-inc1`` -> the engine's final magnitude and its std."""
    if not aa:
        return {}
    m = re.search(r"-m(\d+(?:\.\d+)?)", aa)
    std = re.search(r"-mstd(\d+(?:\.\d+)?)", aa)
    if not aa.startswith("rand") or m is None:
        raise UserError(f"only RandAugment ('rand-m9-mstd0.5-inc1') is implemented, got {aa!r}")
    return {"randaug_magnitude": float(m.group(1)), **({"randaug_std": float(std.group(1))} if std else {})}


def check(config: dict[str, Any]) -> str:
    """Why the engine cannot train ``config`` ("" if it can): the launcher reports such a run by name up front
    instead of starting (or submitting) it only to fail. A run with ``search`` (Tables 21, 22) is checked
    without it: its curriculum is found first."""
    try:
        if "search" in config:
            from repro.launch.search import options

            options(config["search"])
        _train_config({k: v for k, v in config.items() if k != "search"})
    except UserError as err:
        return str(err)
    return ""


def _train_config(config: dict[str, Any]) -> TrainConfig:
    return from_resolved(config, **_randaug(config.get("aa")))


def run(config: dict[str, Any], run_dir: Path) -> None:
    """Train ``config`` in ``run_dir``; a run with ``search`` first runs (or resumes) its curriculum search, whose
    candidates are runs beside ``run_dir`` and whose curriculum file and report go to ``run_dir/search/``."""
    if "search" in config:
        from repro.core.curriculum import load
        from repro.launch.search import options, run_search

        base = {k: v for k, v in config.items() if k != "search"}
        found = run_search(base, options(config["search"]).scaled(config.get("epochs")), root=run_dir.parent,
                           out=run_dir / "search")
        config = {**base, "schedule": load(found)}
    cfg = _train_config(config)
    cost_fn = None
    if cfg.model_variant == "full":
        try:
            from repro.models.flops import cost_fn as zoo_cost

            cost_fn = zoo_cost(cfg.model)
        except (ImportError, UserError):
            cost_fn = None
    train(cfg, run_dir, cost_fn=cost_fn)
