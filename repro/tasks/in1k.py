"""Task ``in1k``: ImageNet-1K classification trained from scratch (Table 24 recipe, App. A.1 per-model
exceptions; ``experiments/base/in1k.yaml``) with the one engine, in a run directory.

The other classification tasks (``in22k``, ``in22k_finetune``, ``transfer``) train with the same two functions
on their own base configs: :func:`run` turns a run link (``init_from``: the upstream's run id) into the
upstream's directory beside the run, which the engine fine-tunes from (``repro.train.finetune``). Measured
per-B FLOPs from the model zoo feed the compute accounting of full-size models (summary ``flops``); proxies use
the ideal cost, which keeps the paper's ratios.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from repro.errors import UserError
from repro.tasks import Task, register
from repro.train.config import TrainConfig, from_resolved


def _randaug(aa: str | None) -> dict[str, float]:
    """timm's ``rand-m9-mstd0.5-inc1`` -> the engine's final magnitude and its std."""
    if not aa:
        return {}
    m = re.search(r"-m(\d+(?:\.\d+)?)", aa)
    std = re.search(r"-mstd(\d+(?:\.\d+)?)", aa)
    if not aa.startswith("rand") or m is None:
        raise UserError(f"only RandAugment ('rand-m9-mstd0.5-inc1') is implemented, got {aa!r}")
    return {"randaug_magnitude": float(m.group(1)), **({"randaug_std": float(std.group(1))} if std else {})}


def _model(config: dict[str, Any]) -> dict[str, str]:
    """A paper name the zoo does not know (ConvNeXt-Large) is built by the timm name its base config gives."""
    from repro.models import entry

    name, timm_name = config.get("model"), config.get("timm_model")
    try:
        entry(str(name))
    except UserError:
        return {"model": timm_name} if timm_name else {}
    return {}


def train_config(config: dict[str, Any]) -> TrainConfig:
    """The engine's configuration of a resolved classification config (shared by the classification tasks)."""
    return from_resolved(config, **_randaug(config.get("aa")), **_model(config))


def check(config: dict[str, Any]) -> str:
    """Why the engine cannot train ``config`` ("" if it can): the launcher reports such a run by name up front
    instead of starting (or submitting) it only to fail."""
    try:
        cfg = train_config(config)
    except UserError as err:
        return str(err)
    if cfg.model_variant == "full" and not _buildable(cfg.model):
        return (f"no implementation of model {config.get('model')!r} (neither the repro zoo nor timm has it; "
                f"its base config names no timm model)")
    return ""


def _buildable(name: str) -> bool:
    import timm

    from repro.models import entry

    try:
        entry(name)
    except UserError:
        return bool(timm.is_model(name))
    return True


def zoo_cost_fn(cfg: TrainConfig) -> Any:
    """Measured per-B FLOPs of a full-size zoo model (None for proxies and models the zoo does not measure)."""
    if cfg.model_variant != "full":
        return None
    try:
        from repro.models.flops import cost_fn

        return cost_fn(cfg.model)
    except (ImportError, UserError):
        return None


def run(config: dict[str, Any], run_dir: Path) -> None:
    from repro.train.engine import train

    if config.get("init_from"):  # a run link: the upstream run's directory is beside this one
        config = {**config, "init_from": str(Path(run_dir).parent / config["init_from"])}
    cfg = train_config(config)
    train(cfg, run_dir, cost_fn=zoo_cost_fn(cfg))


TASK = register(Task("in1k", run=run, check=check))
