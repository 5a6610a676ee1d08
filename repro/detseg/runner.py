"""Train and evaluate one detection / segmentation run with mmengine's Runner inside our run directory.

``run_dir/mm/`` is the Runner's ``work_dir``: its checkpoints (the shipped ``CheckpointHook`` intervals, plus
the last one), its logs and ``last_checkpoint``. A run always starts the Runner with ``resume=True``: after a
preemption (our SLURM job requeues itself) mmengine reloads the newest checkpoint -- weights, optimizer,
schedulers, message hub, data-loader seed -- and continues. When the schedule is done the run is evaluated on
the validation split (``test``: COCO AP through pycocotools, ADE20K mIoU; for ADE20K also multi-scale + flip
with the shipped ``tta_pipeline``), and ``summary.json`` is written: the run is finished only then.

The schedule of a run is the paper's scaled by ``schedule_scale`` (1 at the full profile; the smoke stand-ins'
``epoch_scale`` through the resolved ``epochs``): epochs for the 1x detectors, iterations for UperNet; warm-up
and checkpoint intervals keep their fraction of the schedule.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repro.errors import UserError
from repro.launch.rundir import write_json_atomic
from repro.train.world import world_size

WORK_DIR = "mm"


def upstream_config(config: dict[str, Any], run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The upstream IN-1K run's directory (beside ``run_dir``) and its resolved config."""
    upstream = Path(run_dir).parent / str(config["init_from"])
    try:
        return upstream, json.loads((upstream / "config.json").read_text())
    except FileNotFoundError:
        raise UserError(f"init_from: upstream run {upstream} does not exist; train it first (repro run trains a "
                        "table's runs upstream first)") from None


def backbone_args(upstream: Path | None, up: dict[str, Any]) -> dict[str, Any]:
    """How :class:`repro.detseg.backbone.TimmBackbone` rebuilds the upstream's model."""
    return {"model": up["model"], "variant": up.get("model_variant", "full"), "img_size": int(up["final_size"]),
            "upstream": None if upstream is None else str(upstream)}


def scale_iterations(cfg: Any, total: int, reference: int) -> None:
    """Warm-up ends and iteration-based checkpoint intervals at the same fraction of a ``total``-iteration
    schedule as of the shipped ``reference``-iteration one. A warm-up lasts at least 2 iterations: mmengine's
    ``LinearLR`` over ``[0, 1)`` sets its start factor once and never ramps up, which would leave a short proxy
    schedule at 0.001 x the learning rate for good."""
    def scaled(n: int) -> int:
        return max(1, round(n * total / reference))

    for sched in cfg.param_scheduler:
        if not sched.get("by_epoch", True):
            sched["begin"] = min(scaled(sched.get("begin", 0)), total) if sched.get("begin") else 0
            sched["end"] = total if sched.get("end", 0) >= reference else max(sched["begin"] + 2,
                                                                             scaled(sched["end"]))
    checkpoint = cfg.default_hooks.checkpoint
    if not checkpoint.get("by_epoch", True):
        checkpoint.interval = scaled(checkpoint.interval)


def common(cfg: Any, run_dir: Path, seed: int, workers: int, batch: int) -> None:
    """What every run sets the same way: work dir, seed, loaders, logging, no visualisation backend; ``batch``
    is the global batch, split over the processes of torchrun (``WORLD_SIZE``) or SLURM (``SLURM_NTASKS``)."""
    cfg.work_dir = str(Path(run_dir) / WORK_DIR)
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.default_hooks.pop("visualization", None)
    cfg.default_hooks.logger.interval = 10
    for name in ("train_dataloader", "val_dataloader", "test_dataloader"):
        loader = cfg[name]
        loader.num_workers = workers
        loader.persistent_workers = workers > 0
    world = world_size()
    cfg.train_dataloader.batch_size = max(1, batch // world)
    cfg.resume = True
    cfg.load_from = None
    # evaluated once, after training (train_and_test); mmengine's loops would also validate at the last epoch
    # or iteration, on the same images: a second, identical evaluation
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.launcher = "none" if world == 1 else "pytorch" if "WORLD_SIZE" in os.environ else "slurm"


def train_and_test(cfg: Any) -> dict[str, float]:
    """Train (resuming from ``work_dir``) and evaluate; the Runner's test metrics."""
    from mmengine.runner import Runner

    from repro.detseg.backbone import register

    register()
    runner = Runner.from_cfg(cfg)
    check_finite(runner.train())
    return dict(runner.test())


def check_finite(model: Any) -> None:
    """A diverged training (a NaN loss: mmengine logs it and goes on) is an error, not a run that scores 0."""
    import torch

    bad = [name for name, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad:
        raise RuntimeError(f"{len(bad)} weights are not finite after training (first: {bad[0]}): the training "
                           "diverged; lower the learning rate (lr_scale)")


def test_with(cfg: Any, checkpoint: Path, rewrite: Callable[[Any], None]) -> dict[str, float]:
    """Evaluate ``checkpoint`` with a config ``rewrite`` changes (the multi-scale + flip test)."""
    from mmengine.runner import Runner

    cfg = cfg.copy()
    rewrite(cfg)
    cfg.resume = False
    cfg.load_from = str(checkpoint)
    cfg.work_dir = str(Path(cfg.work_dir) / "tta")
    return dict(Runner.from_cfg(cfg).test())


def last_checkpoint(cfg: Any) -> Path:
    pointer = Path(cfg.work_dir) / "last_checkpoint"
    return Path(pointer.read_text().strip())


def finish(run_dir: Path, summary: dict[str, Any], started: float) -> None:
    for key, value in summary.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise RuntimeError(f"{key} is {value}: the evaluation failed")
    write_json_atomic(Path(run_dir) / "summary.json", {**summary, "wall_time_s": time.time() - started})
