"""``repro bench speedup``: baseline vs EfficientTrain++ side by side on the Fashion-MNIST proxy, on the CPU.

One process trains the baseline (``--epochs`` standard epochs at the final size) and EfficientTrain++ (the same
number divided by 1.5 in *equivalent* epochs: the paper's 300 vs 200, Table 6 / Table 7) with the one engine
(:mod:`repro.train.engine`), in turn in ``--chunks`` slices each (stop and exact resume: both runs see the same
drift of a shared machine's load, and end as uninterrupted runs would), then measures the CPU cost of the ET++
down-sampling (Sec. 5.2: low-pass + Lanczos, :func:`repro.core.frequency.lowpass_downsample`) against a plain
bicubic resize to the same B. It prints JSON::

    computation_speedup     baseline compute / ET++ compute (equivalent epochs; Table 7 "Computation")
    walltime_speedup        baseline training seconds / ET++ training seconds (steps only: no eval, no checkpoint)
    baseline_top1, etpp_top1
    stage_switch_seconds    mean time of an in-process stage switch of the ET++ run
    downsample_cost_ratio   CPU time per image, Lanczos down-sampling / bicubic resize, weighted by the images each
                            ET++ stage below the final size processes
    transform_cost_ratio    the same ratio for the whole per-sample train transform (crop, RandAug, reduction,
                            normalisation, erasing)

and writes it to ``results/bench/speedup.json`` (``--write``). Targets (reported, not asserted):
walltime / computation speedup >= 0.95, stage switch <= 1 s, down-sampling cost ratio <= 1.2, ET++ top-1 within
0.5 pt of the baseline at ~1.5x less compute. On a shared 2-core machine the wall times are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("results/bench/speedup.json")
ETPP_BUDGET_RATIO = 300 / 200  # baseline epochs / ET++ equivalent epochs in the paper (Table 7)
HALF_WIDTH = {"channels": [32, 64, 128, 256], "stem_width": 32}  # resnet18 at half width: 1/4 of the FLOPs


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("bench", help="benchmarks: ET++ speedup (CPU proxy), data loader cost, GPU speed")
    sub = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    p = sub.add_parser("speedup", help="baseline vs EfficientTrain++ on the Fashion-MNIST proxy (a few minutes)")
    p.add_argument("--model", default="resnet18", help="timm model (default: resnet18 at half width)")
    p.add_argument("--model-kwargs", type=json.loads, default=None, metavar="JSON",
                   help=f"model arguments (default for resnet18: {json.dumps(HALF_WIDTH)})")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a shared 2-core machine two OpenMP threads spin against "
                   "the other load and a step gets ~5x slower)")
    p.add_argument("--epochs", type=float, default=3.0,
                   help="baseline epochs; ET++ gets epochs / 1.5 equivalent epochs (default: 3)")
    p.add_argument("--final-size", type=int, default=56,
                   help="final input size (default: 56 = 224 / 4: B = 24 / 40 / 56, enough work per image for the CPU)")
    p.add_argument("--train-images", type=int, default=3000, help="class-balanced training subset (default: 3000)")
    p.add_argument("--val-images", type=int, default=1000, help="validation subset (default: 1000)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--workers", type=int, default=1, help="data-loader workers (default: 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--early-large-batch", action="store_true",
                   help="ET++ with the early large batch of Sec. 5.3 (eq. 2, lr_max = 1.5 lr): amortises the per-step "
                   "overhead that makes small B slow on a CPU")
    p.add_argument("--reduce-at-crop", action="store_true",
                   help="ET++ crops straight to B and augments at B (cheaper transform at small B)")
    p.add_argument("--format", choices=("json", "text"), default="text")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write the JSON (default: {DEFAULT_OUT})")
    p.add_argument("--no-write", dest="write", action="store_false", help="only print")
    p.add_argument("--work-dir", type=Path, default=None, help="keep the two run directories here")
    p.add_argument("--chunks", type=int, default=6,
                   help="train the two runs in turn in this many slices each, so that both see the same machine "
                   "load (default: 6; 1 = one after the other)")
    p.set_defaults(run=run)
    from repro.commands import bench_convergence, bench_gpu, bench_loader, bench_step

    bench_step.add_parser(sub)
    bench_loader.add_parser(sub)
    bench_gpu.add_parser(sub)
    bench_convergence.add_parser(sub)


def _config(args: argparse.Namespace, method: str, epochs: float) -> Any:
    from repro.train.config import TrainConfig

    kwargs = args.model_kwargs if args.model_kwargs is not None else (HALF_WIDTH if args.model == "resnet18" else {})
    return TrainConfig(
        model=args.model, model_kwargs=kwargs, method=method, epochs=epochs, final_size=args.final_size, adapt="linear",
        dataset="fashion-mnist", max_train_images=args.train_images, max_val_images=args.val_images,
        batch_size=args.batch_size, lr=args.lr, warmup_epochs=0.1 * epochs, workers=args.workers,
        crop_scale=(0.35, 1.0), crop_pct=1.0, device="cpu", seed=args.seed, eval_every_epochs=1e9,
        log_every_steps=10, checkpoint_minutes=1e6,
        **({"early_large_batch": True, "lr_max": 1.5 * args.lr} if method != "baseline" and args.early_large_batch
           else {}),
        reduce_at_crop=getattr(args, "reduce_at_crop", False),
    )


def downsample_costs(final_size: int, resolutions: dict[int, float], images: int = 200,
                     repeats: int = 3) -> dict[str, Any]:
    """CPU seconds per image of the ET++ down-sampling and of a bicubic resize to each B (best of ``repeats``)."""
    from PIL import Image

    from repro.core.frequency import lowpass_downsample
    from repro.data.datasets import build_dataset

    base = build_dataset("fashion-mnist", "val", max_images=images)
    imgs = [base[i][0].resize((final_size, final_size), Image.Resampling.BICUBIC) for i in range(len(base))]

    def per_image(fn: Any) -> float:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.process_time()
            for img in imgs:
                fn(img)
            best = min(best, (time.process_time() - t0) / len(imgs))
        return best

    per_b: dict[str, dict[str, float]] = {}
    lanczos_total = bicubic_total = 0.0
    for b, weight in resolutions.items():
        lan = per_image(lambda im, b=b: lowpass_downsample(im, b))
        bic = per_image(lambda im, b=b: im.resize((b, b), Image.Resampling.BICUBIC))
        per_b[str(b)] = {"lanczos_us": lan * 1e6, "bicubic_us": bic * 1e6, "ratio": lan / bic}
        lanczos_total += weight * lan
        bicubic_total += weight * bic
    return {"ratio": lanczos_total / bicubic_total if bicubic_total else float("nan"), "per_resolution": per_b}


def transform_costs(final_size: int, resolutions: dict[int, float], images: int = 200) -> float:
    """Whole train transform per image: ET++ down-sampling vs the same pipeline with a bicubic resize."""
    from repro.data.datasets import build_dataset
    from repro.data.transforms import FMNIST_MEAN, FMNIST_STD, Augment, CurriculumDataset, CurriculumTransform

    base = build_dataset("fashion-mnist", "val", max_images=images)
    totals = {}
    for op in ("downsample", "bicubic"):
        ds = CurriculumDataset(base, CurriculumTransform(
            Augment(final_size, op, (0.35, 1.0), 0.5, 0.5, 0.25, FMNIST_MEAN, FMNIST_STD)))  # type: ignore[arg-type]
        ds[(0, final_size, 9.0, 0)]  # build lazily outside the timing
        total = 0.0
        for b, weight in resolutions.items():
            t0 = time.process_time()
            for i in range(len(base)):
                ds[(i, b, 4.5, i)]
            total += weight * (time.process_time() - t0)
        totals[op] = total
    return totals["downsample"] / totals["bicubic"]


def interleaved(configs: dict[str, Any], work: Path, chunks: int) -> dict[str, dict[str, Any]]:
    """Train the runs in turn, ``chunks`` slices of their compute each (``pause_at_fraction``, then the engine's
    exact resume), so that every run sees the same machine load over time; the summaries are those of
    uninterrupted runs (their training seconds count steps only; each slice adds one loader start to each run)."""
    from repro.launch.signals import Paused
    from repro.train.engine import train

    summaries = {}
    for k in range(1, chunks + 1):
        for name, cfg in configs.items():
            if k == chunks:
                summaries[name] = train(cfg, work / name)
            else:
                with contextlib.suppress(Paused):
                    train(cfg.model_copy(update={"pause_at_fraction": k / chunks}), work / name)
    return summaries


def speedup(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="repro-bench-"))
    t0 = time.time()
    runs = interleaved({"baseline": _config(args, "baseline", args.epochs),
                        "etpp": _config(args, "efficienttrain++", args.epochs / ETPP_BUDGET_RATIO)}, work, args.chunks)
    base, etpp = runs["baseline"], runs["etpp"]
    stages = etpp["stages"]
    below = {int(s["resolution"]): float(s["steps"] * s["batch_size"]) for s in stages
             if int(s["resolution"]) < args.final_size}
    ds = downsample_costs(args.final_size, below)
    computation = base["equivalent_epochs"] / etpp["equivalent_epochs"]
    walltime = base["wall_time_s"] / etpp["wall_time_s"]
    return {
        "computation_speedup": computation,
        "walltime_speedup": walltime,
        "walltime_over_computation": walltime / computation,
        "baseline_top1": base["top1"],
        "etpp_top1": etpp["top1"],
        "top1_gap": etpp["top1"] - base["top1"],
        "stage_switch_seconds": etpp["stage_switch_seconds"],
        "downsample_cost_ratio": ds["ratio"],
        "downsample_per_resolution": ds["per_resolution"],
        "transform_cost_ratio": transform_costs(args.final_size, below),
        "baseline": {k: base[k] for k in ("top1", "top5", "equivalent_epochs", "real_epochs", "steps", "wall_time_s")},
        "etpp": {k: etpp[k] for k in ("top1", "top5", "equivalent_epochs", "real_epochs", "steps", "wall_time_s")},
        "etpp_resolutions": [int(s["resolution"]) for s in stages],
        "setup": {
            "model": args.model, "model_kwargs": _config(args, "baseline", 1).model_kwargs,
            "final_size": args.final_size, "baseline_epochs": args.epochs,
            "etpp_equivalent_epochs": args.epochs / ETPP_BUDGET_RATIO, "train_images": args.train_images,
            "val_images": args.val_images, "batch_size": args.batch_size, "lr": args.lr, "workers": args.workers,
            "seed": args.seed, "early_large_batch": args.early_large_batch, "chunks": args.chunks,
            "reduce_at_crop": args.reduce_at_crop,
            "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or
            platform.machine(), "python": platform.python_version(), "torch": torch.__version__,
        },
        "bench_seconds": time.time() - t0,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def run(args: argparse.Namespace) -> int:
    with contextlib.redirect_stdout(sys.stderr):  # the engine's log lines; stdout is for the result
        result = speedup(args)
    if args.write:
        from repro.launch.rundir import write_json_atomic

        write_json_atomic(args.out, result)
    if args.format == "json":
        json.dump(result, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        for key in ("computation_speedup", "walltime_speedup", "walltime_over_computation", "baseline_top1",
                    "etpp_top1", "stage_switch_seconds", "downsample_cost_ratio", "transform_cost_ratio"):
            print(f"{key:28s} {result[key]:.4g}")
        if args.write:
            print(f"written to {args.out}")
    return 0
