"""``repro train``: train one model with one method into a run directory (resumes what it finds there).

Flags keep timm's ``train.py`` names and meanings (``--model --epochs --lr --warmup-epochs --min-lr
--weight-decay --opt --drop-path --mixup --cutmix --smoothing --reprob --model-ema --input-size -b -j``); the
defaults are Table 24's, except on the Fashion-MNIST proxy (``--dataset fashion-mnist``, the embedded default),
which gets :data:`PROXY_DEFAULTS`:

* geometry: the native 28 x 28 images, replicated to 3 channels, final size 28 = 224 / 8 with the curricula
  scaled linearly (``adapt="linear"``): B = 12 / 20 / 28 for EfficientTrain++ (Table 6's 96 / 160 / 224) and
  20 / 24 / 28 for EfficientTrain (Table 5's 160 / 192 / 224). Every B is exactly the paper's B / 8, so the
  relative costs (B / final)^2 are the paper's, and every B below the final size removes real spectrum (a larger
  final size would only up-sample 28-pixel images). ``--input-size 56`` (= 224 / 4: B = 24 / 40 / 56) also works.
* RandomResizedCrop scale (0.35, 1) (an 8 % crop of a 28-pixel image is 8 pixels), no centre crop at test time,
  global batch 256, lr 1e-3, warm-up 5 % of the budget, 10 epochs (baseline / ET; ET++ gets 10 equivalent epochs
  unless ``--epochs`` says otherwise -- use ``--epochs`` 2/3 of the baseline's for the paper's 300 vs 200).

Under ``torchrun`` or SLURM (RANK / WORLD_SIZE / LOCAL_RANK or SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID) every
process runs this same command; ``--batch-size`` is always the global batch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

PROXY_DEFAULTS: dict[str, Any] = {
    "final_size": 28,
    "adapt": "linear",
    "crop_scale": (0.35, 1.0),
    "crop_pct": 1.0,
    "batch_size": 256,
    "lr": 1e-3,
    "epochs": 10.0,
    "warmup_fraction": 0.05,
}

# flag -> TrainConfig field, for flags whose default is "not given" (None)
_FIELDS = {
    "model_kwargs": "model_kwargs", "method": "method", "schedule": "schedule", "epochs": "epochs",
    "input_size": "final_size", "adapt": "adapt", "dataset": "dataset", "data_dir": "data_root",
    "max_train_images": "max_train_images", "max_val_images": "max_val_images", "workers": "workers",
    "scale": "crop_scale", "crop_pct": "crop_pct", "batch_size": "batch_size",
    "micro_batch_size": "micro_batch_size", "opt": "opt", "lr": "lr",
    "min_lr": "min_lr", "warmup_epochs": "warmup_epochs", "warmup_lr": "warmup_lr", "weight_decay": "weight_decay",
    "clip_grad": "clip_grad", "drop_path": "drop_path", "smoothing": "smoothing", "mixup": "mixup",
    "cutmix": "cutmix", "reprob": "reprob", "randaug_magnitude": "randaug_magnitude", "model_ema": "model_ema",
    "model_ema_decay": "model_ema_decay", "early_large_batch": "early_large_batch",
    "max_batch_size": "max_batch_size", "lr_max": "lr_max", "n_replay": "n_replay",
    "replay_capacity": "replay_capacity", "device": "device", "amp": "amp", "amp_dtype": "amp_dtype",
    "channels_last": "channels_last", "seed": "seed", "eval_every": "eval_every_epochs",
    "log_interval": "log_every_steps", "checkpoint_minutes": "checkpoint_minutes", "wandb": "wandb",
    "wandb_project": "wandb_project",
}
_FLAG_OF = {field: flag for flag, field in _FIELDS.items()}
# what a resumed run may change: where and how it runs, not what it trains
_RESUMABLE = {"workers", "device", "micro_batch_size", "log_every_steps", "checkpoint_minutes", "wandb",
              "wandb_project"}


def flag_of(field: str) -> str:
    """The flag that sets a TrainConfig field: ``final_size`` -> ``--input-size``."""
    return "--" + _FLAG_OF.get(field, field).replace("_", "-")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}") from None


def add_train_flags(p: argparse.ArgumentParser) -> None:
    """The training flags; every default is None = Table 24 / proxy default."""
    a = p.add_argument
    a("--model", required=True, help="timm model name or a Table 7 zoo name (e.g. resnet18, deit_tiny_patch16_224)")
    a("--model-kwargs", type=_json, metavar="JSON", help='extra model arguments, e.g. \'{"patch_size": 4}\'')
    from repro.methods import METHODS

    a("--method", nargs="+", choices=sorted(METHODS), default=None, metavar="METHOD",
      help="one method or several composed (repro/methods), e.g. efficienttrain++ infobatch; "
      f"known: {', '.join(sorted(METHODS))}; default baseline")
    a("--schedule", help="curriculum preset overriding the method's (see `repro schedule --list`)")
    a("--epochs", type=float, help="real epochs (baseline, ET) or equivalent epochs (ET++); Table 24: 300 / 200")
    a("--input-size", type=int, help="final input size (224; proxy 28)")
    a("--adapt", choices=("table10", "linear"), help="how B follows the final size (Table 10 rule; proxy linear)")
    a("--dataset", default="fashion-mnist",
      help="fashion-mnist (embedded proxy), folder, imagenet-1k, imagenet-22k or a transfer set name (folders)")
    a("--data-dir", help="root with train/ and val/ class folders (else $REPRO_DATA_<NAME> or $REPRO_DATA/<name>)")
    a("--max-train-images", type=int, help="class-balanced training subset (proxies, smoke runs)")
    a("--max-val-images", type=int, help="class-balanced validation subset")
    a("-j", "--workers", type=int, help="data-loader workers per process (default 2)")
    a("--scale", type=float, nargs=2, metavar=("MIN", "MAX"), help="RandomResizedCrop area range (0.08 1)")
    a("--crop-pct", type=float, help="test-time centre-crop fraction (0.875; proxy 1)")
    a("-b", "--batch-size", type=int, help="GLOBAL batch size over all processes (Table 24: 4096)")
    a("--micro-batch-size", type=int,
      help="largest batch one process runs at once; gradient accumulation keeps the global batch (off)")
    a("--opt", help="optimizer, timm name: adamw (Table 24), lamb, sgd ...")
    a("--lr", type=float, help="peak learning rate at the global batch (Table 24: 4e-3)")
    a("--min-lr", type=float, help="cosine floor (1e-6)")
    a("--warmup-epochs", type=float, help="warm-up, in epochs of the schedule's axis (Table 24: 20)")
    a("--warmup-lr", type=float, help="learning rate at the start of the warm-up (0)")
    a("--weight-decay", type=float, help="(0.05)")
    a("--clip-grad", type=float, help="gradient-norm clipping (off)")
    a("--drop-path", type=float, help="stochastic depth rate (0)")
    a("--smoothing", type=float, help="label smoothing (0.1)")
    a("--mixup", type=float, help="mixup alpha (0.8)")
    a("--cutmix", type=float, help="cutmix alpha (1.0)")
    a("--reprob", type=float, help="random erasing probability (0.25)")
    a("--randaug-magnitude", type=float, help="final RandAug magnitude m (9; ET/ET++ rise from 0 to it)")
    a("--model-ema", action="store_true", default=None, help="keep an EMA of the weights (evaluated too)")
    a("--model-ema-decay", type=float, help="(0.9999)")
    a("--early-large-batch", action="store_true", default=None,
      help="ET++ Sec. 5.3: larger batch while B is small, peak LR by eq. (2)")
    a("--max-batch-size", type=int, help="cap of the early large batch")
    a("--lr-max", type=float, help="LR_max of eq. (2)")
    a("--n-replay", type=int, help="ET++ replay buffer (Sec. 5.3): replayed batches per fresh one (0 = off)")
    a("--replay-capacity", type=int, help="replay buffer size in batches (8)")
    a("--device", help="auto (cuda if available), cpu, cuda, cuda:1")
    a("--amp", action=argparse.BooleanOptionalAction, default=None, help="autocast on GPU (on)")
    a("--amp-dtype", choices=("bfloat16", "float16"), help="(bfloat16; float16 uses a GradScaler)")
    a("--channels-last", action=argparse.BooleanOptionalAction, default=None, help="on GPU (on)")
    a("--seed", type=int, help="(0)")
    a("--eval-every", type=float, help="validate every this many real epochs (1)")
    a("--log-interval", type=int, help="steps between train records in metrics.jsonl (20)")
    a("--checkpoint-minutes", type=float, help="periodic checkpoint interval (30); stage ends always checkpoint")
    a("--wandb", action="store_true", default=None, help="mirror metrics to wandb (offline unless WANDB_MODE=online)")
    a("--wandb-project", help="(repro)")


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "train", help="train a model with baseline / EfficientTrain / EfficientTrain++ (resumes OUT)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    add_train_flags(p)
    p.add_argument("--out", required=True, type=Path, help="run directory (checkpoints, metrics.jsonl, summary.json)")
    p.add_argument("--cost", choices=("ideal", "measured"), default="ideal",
                   help="per-image cost of an input size B: ideal (B / final)^2, or the measured MACs of a Table 7 "
                   "zoo model (repro cost), which also fills FLOPs in summary.json (default: ideal)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="how to print the summary")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> Any:
    """TrainConfig from the flags: Table 24 defaults, the proxy's on Fashion-MNIST, then what was given."""
    from repro.errors import UserError
    from repro.train.config import validate

    data: dict[str, Any] = {"model": args.model}
    proxy = args.dataset == "fashion-mnist"
    if proxy:
        data.update({k: v for k, v in PROXY_DEFAULTS.items() if k != "warmup_fraction"})
    for flag, field in _FIELDS.items():
        value = getattr(args, flag, None)
        if value is not None:
            data[field] = tuple(value) if flag == "scale" else value
    if proxy and args.warmup_epochs is None:
        data["warmup_epochs"] = PROXY_DEFAULTS["warmup_fraction"] * float(data["epochs"])
    if args.dataset == "folder" and not args.data_dir:
        raise UserError("--dataset folder needs --data-dir DIR (with train/ and val/ class sub-folders)")
    return validate(data, name=flag_of)


def check_out(out: Path, cfg: Any) -> None:
    """Refuse an ``--out`` that is a file, or a run directory of another config (resuming it would continue its
    checkpoint under this run's plan)."""
    from repro.errors import UserError
    from repro.launch.rundir import config_differences

    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file, not a run directory; name a new directory")
    previous = out / "train_config.json"
    if not previous.is_file():
        return
    try:
        old = dict(json.loads(previous.read_text()))
    except (ValueError, TypeError):
        raise UserError(f"--out {out}: unreadable {previous.name}; train into a new --out") from None
    differences = config_differences(*({k: v for k, v in c.items() if k not in _RESUMABLE}
                                       for c in (old, cfg.model_dump())), name=flag_of)
    if differences:
        raise UserError(f"--out {out}: holds a run of another config ({differences}); train into a new --out, or "
                        "give the run's own flags to resume it")


def print_summary(summary: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        json.dump(summary, sys.stdout, indent=2, sort_keys=True, default=str)
        sys.stdout.write("\n")
        return
    keys = ("model", "method", "schedule", "top1", "top5", "top1_ema", "equivalent_epochs", "real_epochs", "steps",
            "wall_time_s", "cpu_time_s", "gpu_time_s", "gpu_hours", "stage_switch_seconds", "flops")
    for key in keys:
        if key in summary:
            value = summary[key]
            print(f"{key:22s} {value:.4g}" if isinstance(value, float) else f"{key:22s} {value}")


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    check_out(args.out, cfg)  # before the imports of torch and timm

    from repro.errors import UserError
    from repro.train.config import ConfigError
    from repro.train.engine import train

    cost_fn = None
    if args.cost == "measured":
        from repro.models.flops import cost_fn as zoo_cost  # UserError for models outside the zoo

        cost_fn = zoo_cost(cfg.model)
    try:
        if args.format == "json":  # keep stdout for the JSON: progress lines go to stderr
            with contextlib.redirect_stdout(sys.stderr):
                summary = train(cfg, args.out, cost_fn=cost_fn)
        else:
            summary = train(cfg, args.out, cost_fn=cost_fn)
    except ConfigError as err:
        raise UserError(err.render(flag_of)) from None
    print_summary(summary, args.format)
    return 0
