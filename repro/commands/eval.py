"""``repro eval RUN_DIR``: top-1 / top-5 of a run's newest loadable checkpoint on its validation set.

The run's ``train_config.json`` rebuilds the data and the model; the model is evaluated at the final input size
(the EMA weights too with ``--ema`` when the run kept them). ``--data-dir`` replaces the data root the run was
trained with (a run trained on a cluster, evaluated elsewhere). Prints JSON (``--format json``) or one line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "eval", help="evaluate a run directory's newest checkpoint (top-1 / top-5)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("run_dir", type=Path, help="a run directory written by `repro train`")
    p.add_argument("--checkpoint", type=Path, help="a specific checkpoint file (default: the newest loadable)")
    p.add_argument("--ema", action="store_true", help="evaluate the EMA weights as well")
    p.add_argument("--max-val-images", type=int, help="evaluate on a class-balanced subset")
    p.add_argument("--device", help="override the run's device (auto, cpu, cuda)")
    p.add_argument("--data-dir", help="the data set's root here, instead of the one the run was trained with (train/ "
                   "and val/ class folders; else the run's, $REPRO_DATA_<NAME> or $REPRO_DATA/<name>)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run)


_FLAGS = {"data_root": "--data-dir", "max_val_images": "--max-val-images", "device": "--device"}


def evaluate_run(run_dir: Path, checkpoint: Path | None = None, ema: bool = False,
                 max_val_images: int | None = None, device: str | None = None,
                 data_dir: str | None = None) -> dict[str, Any]:
    import torch

    from repro.errors import UserError
    from repro.train import checkpoint as ckpt
    from repro.train.config import ConfigError, TrainConfig
    from repro.train.engine import Trainer
    from repro.train.model import set_input_size

    config_path = run_dir / "train_config.json"
    if not config_path.is_file():
        raise UserError(f"{run_dir} is not a run directory of `repro train` (no train_config.json)")
    data = json.loads(config_path.read_text())
    data.update(wandb=False, **({"max_val_images": max_val_images} if max_val_images else {}),
                **({"device": device} if device else {}), **({"data_root": data_dir} if data_dir else {}))
    cfg = TrainConfig.model_validate(data)
    if checkpoint is not None:
        state = dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    else:
        found = ckpt.load_latest(run_dir, warn=lambda m: print(f"[repro] warning: {m}", file=sys.stderr),
                                 keep_rejected=False)  # a read-only command: a broken file stays where it is
        if found is None:
            raise UserError(f"no loadable checkpoint in {run_dir}")
        state = found
    scratch = tempfile.TemporaryDirectory(prefix="repro-eval-")  # the trainer's log goes there, not to the run
    try:
        trainer = Trainer(cfg, scratch.name)
    except ConfigError as err:  # the run's data not found here, a device this machine lacks
        scratch.cleanup()
        hint = "; give --data-dir DIR" if err.field in ("data_root", "dataset") and not data_dir else ""
        raise UserError(err.render(lambda f: _FLAGS.get(f, f)) + hint) from None
    try:
        set_input_size(trainer.model, cfg.final_size)
        trainer.model.load_state_dict(state["model"])
        trainer.step = trainer.total_steps  # evaluate() restores the input size of this step: the final one
        result: dict[str, Any] = {"run_dir": str(run_dir), "step": int(state["step"]),
                                  "total_steps": trainer.total_steps, **trainer.evaluate()}
        if ema:
            if trainer.ema is None or state.get("ema") is None:
                raise UserError(f"{run_dir} kept no EMA weights (train with --model-ema)")
            trainer.ema.load_state_dict(state["ema"])
            ema_result = trainer.evaluate(trainer.ema.module)
            result.update(top1_ema=ema_result["top1"], top5_ema=ema_result["top5"])
        return result
    finally:
        trainer.log.close()
        trainer.dist.cleanup()
        scratch.cleanup()


def run(args: argparse.Namespace) -> int:
    with contextlib.redirect_stdout(sys.stderr):
        result = evaluate_run(args.run_dir, args.checkpoint, args.ema, args.max_val_images, args.device,
                              args.data_dir)
    if args.format == "json":
        json.dump(result, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        extra = f" ema top-1 {result['top1_ema']:.2f}" if "top1_ema" in result else ""
        print(f"{result['run_dir']}: step {result['step']}/{result['total_steps']} top-1 {result['top1']:.2f} "
              f"top-5 {result['top5']:.2f}{extra}")
    return 0
