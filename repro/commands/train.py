"""``repro train``: train one model with one method into the run directory OUTPUT/EXPERIMENT (resumes what it
finds there).

Flags keep timm's ``train.py`` names and meanings (``--model --epochs --lr --sched --warmup-epochs --min-lr
--weight-decay --opt --opt-betas --drop-path --mixup --cutmix --smoothing --reprob --aa --model-ema --input-size
--img-size --num-classes --pretrained --initial-checkpoint --resume --output --experiment -b --grad-accum-steps
-j``); the defaults are Table 24's, except on the Fashion-MNIST proxy (``--dataset fashion-mnist``, the embedded
default), which gets those of the ``proxy`` profile, ``experiments/profiles/proxy.yaml`` -- the settings every
table's proxy runs train with (``repro run --profile proxy``), so that one file defines the proxy:

* geometry: the native 28 x 28 images, replicated to 3 channels, final size 28 = 224 / 8 with the curricula
  scaled linearly (``adapt: linear``): B = 12 / 20 / 28 for EfficientTrain++ (Table 6's 96 / 160 / 224) and
  20 / 24 / 28 for EfficientTrain (Table 5's 160 / 192 / 224). Every B is exactly the paper's B / 8, so the
  relative costs (B / final)^2 are the paper's. ``--img-size 56`` (= 224 / 4: B = 24 / 40 / 56) also works.
* the profile's subset, global batch, learning rate, RandAugment magnitude, crops and regularisation, and its
  share of Table 24's epochs (its ``epoch_scale``); the warm-up keeps Table 24's share of the run when
  ``--epochs`` changes it. Only the model is the one named: ``repro train`` does not swap in the zoo's tiny proxy
  models (the profile's ``model_variant``).

Batch sizes are timm's: ``-b`` is the batch of one process, and a run trains with the global batch ``-b`` x
processes x ``--grad-accum-steps``; ``--global-batch-size`` gives that product instead (the paper's 4096).
``--lr`` is the peak learning rate at the global batch. Under ``torchrun`` or SLURM (RANK / WORLD_SIZE /
LOCAL_RANK or SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID) every process runs this same command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

EPILOG = """\
examples:
  # the Fashion-MNIST proxy on a CPU (experiments/profiles/proxy.yaml), into output/train/resnet18-...-seed0
  repro train --model resnet18 --method efficienttrain++
  # the paper's setting (Table 24) on 8 GPUs: 8 processes x -b 512 = the global batch of 4096
  torchrun --nproc_per_node 8 -m repro train --model deit_small_patch16_224 --method efficienttrain++ \\
      --dataset imagenet-1k --data-dir /data/in1k --epochs 200 -b 512 --output runs --experiment deit-s-etpp
  # resume a run from one of its checkpoints, into a new run directory
  repro train --model resnet18 --method efficienttrain++ --experiment etpp-again \\
      --resume output/train/resnet18-efficienttrain++-seed0/checkpoint-000001170.pt
  # your own data set: class folders DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg
  repro train --model resnet50 --dataset folder --data-dir DIR --img-size 224 --epochs 100 --warmup-epochs 5 \\
      --pretrained --num-classes 10 -b 64
"""

# flag -> TrainConfig field, for flags whose default is "not given" (None) and whose value is the field's
_FIELDS = {
    "model_kwargs": "model_kwargs", "method": "method", "schedule": "schedule", "epochs": "epochs",
    "img_size": "final_size", "adapt": "adapt", "dataset": "dataset", "data_dir": "data_root",
    "max_train_images": "max_train_images", "max_val_images": "max_val_images", "workers": "workers",
    "scale": "crop_scale", "crop_pct": "crop_pct", "opt": "opt", "opt_betas": "opt_betas", "lr": "lr",
    "min_lr": "min_lr", "warmup_epochs": "warmup_epochs", "warmup_lr": "warmup_lr", "weight_decay": "weight_decay",
    "clip_grad": "clip_grad", "drop_path": "drop_path", "smoothing": "smoothing", "mixup": "mixup",
    "cutmix": "cutmix", "reprob": "reprob", "model_ema": "model_ema", "pretrained": "pretrained",
    "num_classes": "num_classes", "model_ema_decay": "model_ema_decay", "early_large_batch": "early_large_batch",
    "max_batch_size": "max_batch_size", "lr_max": "lr_max", "n_replay": "n_replay",
    "replay_capacity": "replay_capacity", "device": "device", "amp": "amp", "amp_dtype": "amp_dtype",
    "channels_last": "channels_last", "seed": "seed", "eval_every": "eval_every_epochs",
    "log_interval": "log_every_steps", "checkpoint_minutes": "checkpoint_minutes", "wandb": "wandb",
    "wandb_project": "wandb_project",
}
# fields set by flags of another shape than the field's
_OTHER_FLAGS = {"batch_size": "batch_size", "micro_batch_size": "batch_size", "init_from": "initial_checkpoint",
                "augment": "aa", "randaug_magnitude": "aa", "randaug_std": "aa"}
_FLAG_OF = {**{field: flag for flag, field in _FIELDS.items()}, **_OTHER_FLAGS}
# what a resumed run may change: where and how it runs, not what it trains
_RESUMABLE = {"workers", "device", "micro_batch_size", "log_every_steps", "checkpoint_minutes", "wandb",
              "wandb_project"}
DEFAULT_OUTPUT = Path("output/train")  # timm's


def flag_of(field: str) -> str:
    """The flag that sets a TrainConfig field: ``final_size`` -> ``--img-size``."""
    return "--" + _FLAG_OF.get(field, field).replace("_", "-")


def namer(args: argparse.Namespace) -> Callable[[str], str]:
    """:func:`flag_of`, naming the flags this command was given where two set the same field."""
    given = {"batch_size": "--global-batch-size" if getattr(args, "global_batch_size", None) is not None else None,
             "init_from": "--pretrained-path" if getattr(args, "pretrained_path", None) is not None else None}

    def name(field: str) -> str:
        return given.get(field) or flag_of(field)

    return name


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
    a("--schedule", help="curriculum overriding the method's: a preset (`repro schedule --list`) or a curriculum file "
      "(.yaml / .json: stages with B, RandAug m, low-pass radius; e.g. the output of `repro search`)")
    a("--epochs", type=float, help="real epochs (baseline, ET) or equivalent epochs (ET++); Table 24: 300 / 200")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--img-size", type=int, metavar="N", help="final input size N x N (224; proxy 28)")
    size.add_argument("--input-size", type=int, nargs="+", metavar="C H W",
                      help="timm's form of the final input size: 3 N N (e.g. 3 224 224)")
    a("--adapt", choices=("table10", "linear"), help="how B follows the final size (Table 10 rule; proxy linear)")
    a("--dataset", default="fashion-mnist",
      help="fashion-mnist (embedded proxy), folder, imagenet-1k, imagenet-22k or a transfer set name (folders)")
    a("--data-dir", help="root with train/ and val/ class folders (else $REPRO_DATA_<NAME> or $REPRO_DATA/<name>)")
    a("--max-train-images", type=int, help="class-balanced training subset (proxies, smoke runs)")
    a("--max-val-images", type=int, help="class-balanced validation subset")
    a("-j", "--workers", type=int, help="data-loader workers per process (default 2)")
    a("--scale", type=float, nargs=2, metavar=("MIN", "MAX"), help="RandomResizedCrop area range (0.08 1)")
    a("--crop-pct", type=float, help="test-time centre-crop fraction (0.875; proxy 1)")
    a("-b", "--batch-size", type=int,
      help="batch size PER PROCESS (timm); the global batch is -b x processes x --grad-accum-steps")
    a("--grad-accum-steps", type=int, metavar="N",
      help="micro-steps of -b images per optimizer step (timm; 1). Without -b: the default global batch in N steps")
    a("--global-batch-size", type=int, metavar="N",
      help="the global batch instead of -b / --grad-accum-steps, split over the processes (Table 24: 4096; "
      "proxy: the profile's)")
    a("--opt", help="optimizer, timm name: adamw (Table 24), lamb, sgd ...")
    a("--opt-betas", type=float, nargs=2, metavar=("B1", "B2"), help="Adam / LAMB betas (0.9 0.999)")
    a("--lr", type=float, help="peak learning rate at the global batch (Table 24: 4e-3 at 4096)")
    a("--sched", help="learning-rate schedule: cosine (Table 24's warm-up + cosine; the only one implemented)")
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
    a("--aa", metavar="POLICY", help="timm auto-augment string: rand-m9-mstd0.5-inc1 (Table 24; RandAugment with "
      "final magnitude 9, which ET/ET++ raise m from 0 to), 3a (DeiT III's 3-Augment) or none; proxy: the "
      "profile's")
    a("--model-ema", action="store_true", default=None, help="keep an EMA of the weights (evaluated too)")
    a("--model-ema-decay", type=float, help="(0.9999)")
    a("--pretrained", action="store_true", default=None,
      help="start from timm's pretrained weights of --model (fetched by timm; the classifier is new when "
      "--num-classes differs)")
    init = p.add_mutually_exclusive_group()
    init.add_argument("--initial-checkpoint", metavar="FILE",
                      help="start from the weights of a checkpoint: a repro checkpoint-<step>.pt or run directory, "
                      "a timm train.py checkpoint, a state dict or .safetensors file (a new classifier where the "
                      "class count differs; a fine-tuning, not a resume)")
    init.add_argument("--pretrained-path", metavar="FILE", help="the same as --initial-checkpoint")
    a("--num-classes", type=int, metavar="N", help="classifier outputs (default: the data set's classes)")
    a("--early-large-batch", action="store_true", default=None,
      help="ET++ Sec. 5.3: larger batch while B is small, peak LR by eq. (2)")
    a("--max-batch-size", type=int, help="cap of the early large (global) batch")
    a("--lr-max", type=float, help="LR_max of eq. (2)")
    a("--n-replay", type=int, help="ET++ replay buffer (Sec. 5.3): replayed batches per fresh one (0 = off)")
    a("--replay-capacity", type=int, help="replay buffer size in batches (8)")
    a("--device", help="auto (cuda if available), cpu, cuda, cuda:1")
    a("--amp", action=argparse.BooleanOptionalAction, default=None, help="autocast on GPU (on)")
    a("--amp-dtype", choices=("bfloat16", "float16"), help="(bfloat16; float16 uses a GradScaler)")
    a("--channels-last", action=argparse.BooleanOptionalAction, default=None, help="on GPU (on)")
    a("--seed", type=int, help="(0)")
    a("--eval-every", type=float, help="validate every this many real epochs (1; proxy: the profile's)")
    a("--log-interval", type=int, help="steps between train records in metrics.jsonl (20)")
    a("--checkpoint-minutes", type=float, help="periodic checkpoint interval (30); stage ends always checkpoint")
    a("--wandb", action="store_true", default=None, help="mirror metrics to wandb (offline unless WANDB_MODE=online)")
    a("--wandb-project", help="(repro)")


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "train", help="train a model with baseline / EfficientTrain / EfficientTrain++ (resumes OUTPUT/EXPERIMENT)",
        description=__doc__.split("\n\n")[0] if __doc__ else None, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_train_flags(p)
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="DIR",
                   help=f"where run directories go (timm's; default {DEFAULT_OUTPUT})")
    p.add_argument("--experiment", metavar="NAME",
                   help="the run directory's name under --output (checkpoints, metrics.jsonl, summary.json); "
                   "default MODEL-METHOD-seedSEED, e.g. resnet18-efficienttrain++-seed0")
    p.add_argument("--resume", type=Path, metavar="CHECKPOINT",
                   help="resume from this checkpoint-<step>.pt of a run of the same config (without it a run "
                   "resumes the newest checkpoint of its own directory)")
    p.add_argument("--cost", choices=("ideal", "measured"), default="ideal",
                   help="per-image cost of an input size B: ideal (B / final)^2, or the measured MACs of a Table 7 "
                   "zoo model (repro cost), which also fills FLOPs in summary.json (default: ideal)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="how to print the summary")
    p.set_defaults(run=run)


def proxy_defaults(model: str, method: str | list[str]) -> dict[str, Any]:
    """The settings of a run of ``model`` with ``method`` under the ``proxy`` profile
    (``experiments/profiles/proxy.yaml``) on the in1k base (Table 24), resolved as a table's proxy run is
    (``repro.launch.resolve.run_config``), except for the model: the one named, not the zoo's tiny proxy."""
    from repro.launch.manifest import RunSpec, load_base, load_profile
    from repro.launch.resolve import run_config
    from repro.tasks.in1k import settings

    profile = load_profile("proxy").model_copy(update={"model_variant": "full"})
    return settings(run_config(RunSpec(model=model, method=method), "proxy", profile, load_base("in1k")))


def _final_size(args: argparse.Namespace) -> int | None:
    from repro.errors import UserError

    if args.input_size is None:
        return args.img_size  # type: ignore[no-any-return]
    shown = " ".join(map(str, args.input_size))
    if len(args.input_size) != 3:
        raise UserError(f"--input-size {shown}: give C H W as timm does (e.g. --input-size 3 224 224), or one size "
                        "with --img-size N")
    channels, height, width = args.input_size
    if channels != 3:
        raise UserError(f"--input-size {shown}: the models take 3 channels (grey images are replicated); use "
                        f"--input-size 3 {height} {width}")
    if height != width:
        raise UserError(f"--input-size {shown}: the curricula train on square inputs; use --input-size 3 {height} "
                        f"{height}")
    return int(height)


def _batch(args: argparse.Namespace, default: int) -> dict[str, int]:
    """``batch_size`` (global) and ``micro_batch_size`` (per process) of timm's ``-b`` (per process) and
    ``--grad-accum-steps``, or of ``--global-batch-size``; ``default``: the global batch otherwise."""
    from repro.errors import UserError
    from repro.train.world import world_size

    per, steps, total = args.batch_size, args.grad_accum_steps, args.global_batch_size
    if total is not None:
        if per is not None or steps is not None:
            raise UserError("--global-batch-size: give either the global batch or -b (per process) with "
                            "--grad-accum-steps, not both")
        return {"batch_size": total}
    if steps is not None and steps < 1:
        raise UserError(f"--grad-accum-steps {steps}: must be at least 1 (1 = no accumulation)")
    if per is None and steps is None:
        return {}
    world, steps = world_size(), steps or 1
    if per is None:
        if default % (world * steps):
            raise UserError(f"--grad-accum-steps {steps}: the global batch of {default} does not split into {world} "
                            f"process(es) x {steps} steps; give -b (per process) or --global-batch-size")
        per = default // (world * steps)
    return {"batch_size": per * world * steps, "micro_batch_size": per}


def _defaults() -> dict[str, Any]:
    """TrainConfig's default of every setting that has one (Table 24's)."""
    from repro.train.config import TrainConfig

    return {k: v.get_default(call_default_factory=True) for k, v in TrainConfig.model_fields.items()
            if not v.is_required()}


def config_from_args(args: argparse.Namespace) -> Any:
    """TrainConfig from the flags: Table 24 defaults, the proxy profile's on Fashion-MNIST, then what was given."""
    from repro.core.curriculum import as_spec, is_file_name
    from repro.errors import UserError
    from repro.train.config import SCHEDULES, augment_settings, validate

    data: dict[str, Any] = {"model": args.model}
    proxy = args.dataset == "fashion-mnist"
    defaults = _defaults()
    if proxy:
        data.update(proxy_defaults(args.model, args.method or "baseline"))
    profile_epochs = float(data.get("epochs", defaults["epochs"]))
    profile_warmup = float(data.get("warmup_epochs", defaults["warmup_epochs"]))
    if proxy and args.schedule and is_file_name(args.schedule) and args.epochs is None:  # a file states its budget
        data["epochs"] = as_spec(args.schedule).budget
    if args.sched is not None and args.sched not in SCHEDULES:
        raise UserError(f"--sched {args.sched}: the engine implements timm's cosine schedule only (Table 24's "
                        "warm-up + cosine); use --sched cosine")
    if args.aa is not None:
        try:
            data.update(augment_settings(args.aa))
        except ValueError as err:
            raise UserError(f"--aa: {err}") from None
    for flag, field in _FIELDS.items():
        value = getattr(args, flag, None)
        if value is not None:
            data[field] = tuple(value) if flag in ("scale", "opt_betas") else value
    final_size = _final_size(args)
    if final_size is not None:
        data["final_size"] = final_size
    data.update(_batch(args, int(data.get("batch_size", defaults["batch_size"]))))
    checkpoint = args.initial_checkpoint or args.pretrained_path
    if checkpoint is not None:
        flag = "--initial-checkpoint" if args.initial_checkpoint else "--pretrained-path"
        if args.pretrained:
            raise UserError(f"{flag}: give one initialisation, --pretrained (timm's weights) or {flag} FILE")
        if not Path(checkpoint).exists():
            raise UserError(f"{flag} {checkpoint}: no such file; give a checkpoint file or a run directory")
        data["init_from"] = str(Path(checkpoint).resolve())
    if proxy and args.warmup_epochs is None and float(data["epochs"]) != profile_epochs:
        data["warmup_epochs"] = profile_warmup * float(data["epochs"]) / profile_epochs  # the profile's share
    if args.dataset == "folder" and not args.data_dir:
        raise UserError("--dataset folder needs --data-dir DIR (with train/ and val/ class sub-folders)")
    return validate(data, name=namer(args))


def default_experiment(cfg: Any) -> str:
    """``MODEL-METHOD-seedSEED``: the run directory's name when ``--experiment`` names none."""
    from repro.methods import label

    return re.sub(r"[^A-Za-z0-9._+-]+", "-", f"{cfg.model}-{label(cfg.method)}-seed{cfg.seed}")


def run_dir_of(args: argparse.Namespace, cfg: Any) -> Path:
    """OUTPUT/EXPERIMENT, as timm's ``--output`` / ``--experiment``."""
    from repro.errors import UserError

    name = args.experiment if args.experiment is not None else default_experiment(cfg)
    if not name or Path(name).name != name or name in (".", ".."):
        raise UserError(f"--experiment {name!r}: a run directory's name, not a path; put the parent in --output")
    return Path(args.output) / name


def _differences(previous: Path, cfg: Any, name: Callable[[str], str]) -> str | None:
    """How ``cfg`` differs in what it trains from the ``train_config.json`` at ``previous``; None if unreadable.
    Settings the earlier run's repro did not know yet count as their defaults."""
    from repro.launch.rundir import config_differences

    try:
        old = dict(json.loads(previous.read_text()))
    except (ValueError, TypeError):
        return None
    old = {**json.loads(json.dumps(_defaults(), default=str)), **old}
    return config_differences(*({k: v for k, v in c.items() if k not in _RESUMABLE}
                                for c in (old, cfg.model_dump())), name=name)


def check_out(out: Path, cfg: Any, name: Callable[[str], str] = flag_of) -> None:
    """Refuse a run directory that is a file, or a run directory of another config (resuming it would continue its
    checkpoint under this run's plan)."""
    from repro.errors import UserError

    where = f"--output/--experiment {out}"
    if out.exists() and not out.is_dir():
        raise UserError(f"{where}: is a file, not a run directory; name a new --experiment")
    previous = out / "train_config.json"
    if not previous.is_file():
        return
    differences = _differences(previous, cfg, name)
    if differences is None:
        raise UserError(f"{where}: unreadable {previous.name}; train into a new --experiment")
    if differences:
        raise UserError(f"{where}: holds a run of another config ({differences}); train into a new --experiment, "
                        "or give the run's own flags to resume it")


def check_resume(resume: Path, out: Path, cfg: Any, name: Callable[[str], str] = flag_of) -> None:
    """``--resume FILE``: a file, of a run of this config, into a run directory without checkpoints of its own
    (those it would resume by itself). That the file is a checkpoint this run restores, the trainer checks."""
    from repro.errors import UserError
    from repro.train import checkpoint as ckpt

    if not resume.is_file():
        raise UserError(f"--resume {resume}: no such file; give a checkpoint-<step>.pt of a run")
    previous = resume.parent / "train_config.json"
    differences = _differences(previous, cfg, name) if previous.is_file() else ""
    if differences:
        raise UserError(f"--resume {resume}: a checkpoint of another config ({differences}); give that run's own "
                        "flags")
    own = ckpt.checkpoints(out) if out.is_dir() else []
    if own and own[0].resolve() != resume.resolve():
        raise UserError(f"--resume {resume}: {out} holds checkpoints of its own (newest {own[0].name}), which it "
                        "resumes from by itself; drop --resume, or resume into a new --experiment")


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
    name = namer(args)
    out = run_dir_of(args, cfg)
    check_out(out, cfg, name)  # before the imports of torch and timm
    if args.resume is not None:
        check_resume(args.resume, out, cfg, name)

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
                summary = train(cfg, out, cost_fn=cost_fn, resume=args.resume)
        else:
            summary = train(cfg, out, cost_fn=cost_fn, resume=args.resume)
    except ConfigError as err:
        raise UserError(err.render(name)) from None
    print_summary(summary, args.format)
    return 0
