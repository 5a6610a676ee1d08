"""Task ``in1k``: ImageNet-1K classification trained from scratch (Table 24 recipe, App. A.1 per-model
exceptions; ``experiments/base/in1k.yaml``) with the one engine, in a run directory.

The other classification tasks (``in22k``, ``in22k_finetune``, ``transfer``) train with the same two functions
on their own base configs: :func:`run` turns a run link (``init_from``: the upstream's run id) into the
upstream's directory beside the run, which the engine fine-tunes from (``repro.train.finetune``). Measured
per-B FLOPs from the model zoo feed the compute accounting of full-size models (summary ``flops``); proxies use
the ideal cost, which keeps the paper's ratios.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.errors import UserError
from repro.tasks import Task, register
from repro.train.config import TrainConfig, augment_settings, resolved_settings, validate


def _randaug(config: dict[str, Any]) -> dict[str, Any]:
    """The config's timm ``aa`` string (``rand-m9-mstd0.5-inc1``) as the engine's augmentation settings; an
    ``augment`` the config sets itself (DeiT III's 3-Augment) is kept."""
    aa = config.get("aa")
    if not aa:
        return {}
    try:
        settings = augment_settings(str(aa))
    except ValueError as err:
        raise UserError(f"aa: {err}") from None
    if config.get("augment") is not None:
        settings.pop("augment")
    return settings


def _model(config: dict[str, Any]) -> dict[str, str]:
    """A paper name the zoo does not know (ConvNeXt-Large) is built by the timm name its base config gives."""
    from repro.models import entry

    name, timm_name = config.get("model"), config.get("timm_model")
    try:
        entry(str(name))
    except UserError:
        return {"model": timm_name} if timm_name else {}
    return {}


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """The TrainConfig settings of a resolved classification config, not yet validated (``repro train`` lays its
    flags over those of the proxy profile)."""
    return {**resolved_settings(config), **_randaug(config), **_model(config)}


def train_config(config: dict[str, Any]) -> TrainConfig:
    """The engine's configuration of a resolved classification config (shared by the classification tasks)."""
    return validate(settings(config), prefix="training config: ")


def check(config: dict[str, Any]) -> str:
    """Why the engine cannot train ``config`` ("" if it can): the launcher reports such a run by name up front
    instead of starting (or submitting) it only to fail."""
    try:
        if "search" in config:  # Tables 21, 22: checked without it, its curriculum is found first
            from repro.launch.search import options

            options(config["search"])
        cfg = train_config({k: v for k, v in config.items() if k != "search"})
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
    """Train ``config`` in ``run_dir``; a run with ``search`` first runs (or resumes) its curriculum search
    (``repro.launch.search``), whose candidates are runs beside ``run_dir``; its curriculum file and report go to
    ``run_dir/search/``."""
    from repro.train.engine import train

    if "search" in config:  # the run's curriculum search first: candidates beside run_dir, its output inside
        from repro.core.curriculum import load
        from repro.launch.search import options, run_search

        base = {k: v for k, v in config.items() if k not in ("search", "pause_at_fraction")}  # the candidates'
        found = run_search(base, options(config["search"]).scaled(config.get("epochs")), root=Path(run_dir).parent,
                           out=Path(run_dir) / "search")
        config = {k: v for k, v in config.items() if k != "search"} | {"schedule": load(found)}
    if config.get("init_from"):  # a run link: the upstream run's directory is beside this one
        config = {**config, "init_from": str(Path(run_dir).parent / config["init_from"])}
    cfg = train_config(config)
    train(cfg, run_dir, cost_fn=zoo_cost_fn(cfg))


TASK = register(Task("in1k", run=run, check=check, pauses=True))
