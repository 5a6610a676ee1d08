"""``repro bench step``: where a training step's time goes at each ET++ stage of the CPU proxy (``repro bench
speedup``'s set-up: half-width ResNet-18, B = 24 / 40 / 56, 1 loader worker, 1 torch thread).

Per stage, with the engine's own trainer and loader, interleaved stage by stage over ``--repeats``, it times per
image: ``data`` (waiting for the next batch from the loader), ``forward`` (model + loss), ``backward``,
``optimizer`` (the breakdown, on the batch's first pass: it reads higher than the engine's step on the same
batch right after); ``engine_step``, the engine's whole step (mixup, forward, backward, finiteness check,
optimizer) on that batch (what training pays); and ``transform`` (the per-sample train transform alone, in this
process: what one loader worker spends per image). A stage at B should cost (B / final)^2 of the final stage's
step per image (``ideal``); ``compute_vs_final`` is the measured ``engine_step`` ratio and ``compute_vs_ideal``
its ratio to the ideal; ``--early-large-batch`` shows what Sec. 5.3's larger early batches recover (the per-step
fixed costs are shared by more images). ``predicted_walltime_over_computation`` weights each stage's ratio by the
images it trains: the wall-time / computation speedup of ``repro bench speedup`` that the step costs alone allow;
``..._serial_loader`` adds each image's transform, as when the loader worker competes with the trainer for the
cores. ``data`` is a lower bound: the worker prefetches while both the breakdown and the engine step run.
Writes ``results/bench/step.json``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("results/bench/step.json")
PARTS = ("data", "forward", "backward", "optimizer", "engine_step")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from repro.commands.bench import HALF_WIDTH

    p = sub.add_parser("step", help="profile of a training step per ET++ stage on the CPU proxy")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--model-kwargs", default=None, help=f"(default for resnet18: {HALF_WIDTH})")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--final-size", type=int, default=56)
    p.add_argument("--train-images", type=int, default=3000)
    p.add_argument("--val-images", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=8, help="timed steps per stage and repeat (default: 8)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--early-large-batch", action="store_true")
    p.add_argument("--reduce-at-crop", action="store_true", help="the crop-to-B transform path")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write the JSON (default: {DEFAULT_OUT})")
    p.add_argument("--no-write", dest="write", action="store_false", help="only print")
    p.set_defaults(run=run)


def _time_steps(trainer: Any, stage: Any, steps: int, criterion: Any) -> dict[str, float]:
    """Seconds per image of each part over ``steps`` fresh steps of ``stage`` (after one untimed step)."""
    import torch.nn.functional as F

    from repro.train.model import set_input_size

    set_input_size(trainer.model, stage.resolution)
    batches = iter(trainer._loader(stage, stage.first_step))
    totals = dict.fromkeys(PARTS, 0.0)
    images = 0
    for i in range(steps + 1):
        t0 = time.perf_counter()
        x, y = next(batches)
        t1 = time.perf_counter()
        trainer.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(trainer.model(x), y)
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        trainer.optimizer.step()
        t4 = time.perf_counter()
        trainer._train_step(x, y, criterion, stage)  # the engine's whole step on the same batch
        t5 = time.perf_counter()
        if i == 0:
            continue
        images += len(x)
        for part, dt in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=False):
            totals[part] += dt
        totals["engine_step"] += t5 - t4
    del batches
    return {k: v / images for k, v in totals.items()}


def _transform_seconds(trainer: Any, stage: Any, images: int = 64) -> float:
    ds = trainer.train_set
    t0 = time.process_time()
    for i in range(images):
        ds[(i, stage.resolution, 4.5, i)]
    return (time.process_time() - t0) / images


def step(args: argparse.Namespace) -> dict[str, Any]:
    import json

    import torch

    from repro.commands.bench import ETPP_BUDGET_RATIO, _config
    from repro.train.engine import Trainer, _criterion

    torch.set_num_threads(args.threads)
    args.model_kwargs = json.loads(args.model_kwargs) if isinstance(args.model_kwargs, str) else args.model_kwargs
    cfg = _config(args, "efficienttrain++", args.epochs / ETPP_BUDGET_RATIO)
    trainer = Trainer(cfg, Path(tempfile.mkdtemp(prefix="repro-bench-step-")))
    torch.set_num_threads(args.threads)
    criterion = _criterion(cfg, trainer.mixup is not None)
    stages = trainer.plan
    parts: dict[int, list[dict[str, float]]] = {p.resolution: [] for p in stages}
    transform: dict[int, list[float]] = {p.resolution: [] for p in stages}
    for _ in range(args.repeats):
        for stage in stages:
            parts[stage.resolution].append(_time_steps(trainer, stage, args.steps, criterion))
            transform[stage.resolution].append(_transform_seconds(trainer, stage))
    final = stages[-1].resolution
    out: dict[str, Any] = {}
    for stage in stages:
        rows = parts[stage.resolution]
        med = {k: 1e6 * statistics.median(r[k] for r in rows) for k in PARTS}
        ratios = [r["engine_step"] / f["engine_step"] for r, f in zip(rows, parts[final], strict=True)]
        serial = [(r["engine_step"] + t) / (f["engine_step"] + tf) for r, f, t, tf in
                  zip(rows, parts[final], transform[stage.resolution], transform[final], strict=True)]
        out[str(stage.resolution)] = {
            "batch_size": stage.batch_size, "per_image_us": med,
            "transform_us_per_image": 1e6 * statistics.median(transform[stage.resolution]),
            "compute_vs_final": statistics.median(ratios), "compute_vs_final_range": [min(ratios), max(ratios)],
            "with_transform_vs_final": statistics.median(serial),
            "ideal": (stage.resolution / final) ** 2,
            "compute_vs_ideal": statistics.median(ratios) / (stage.resolution / final) ** 2,
        }
    images = {str(p.resolution): p.steps * p.batch_size for p in stages}
    ideal = sum(images[b] * row["ideal"] for b, row in out.items())
    measured = sum(images[b] * row["compute_vs_final"] for b, row in out.items())
    # when the loader worker's CPU is not free (cores shared with the trainer), each image costs step + transform
    serial = sum(images[b] * row["with_transform_vs_final"] for b, row in out.items())
    setup = {"model": cfg.model, "model_kwargs": cfg.model_kwargs, "final_size": final, "workers": args.workers,
             "threads": args.threads, "steps": args.steps, "repeats": args.repeats,
             "early_large_batch": args.early_large_batch, "reduce_at_crop": args.reduce_at_crop}
    return {"stages": out, "predicted_walltime_over_computation": ideal / measured,
            "predicted_walltime_over_computation_serial_loader": ideal / serial, "setup": setup,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def run(args: argparse.Namespace) -> int:
    import contextlib
    import sys

    with contextlib.redirect_stdout(sys.stderr):
        result = step(args)
    if args.write:
        from repro.launch.rundir import write_json_atomic

        write_json_atomic(args.out, result)
    for b, row in result["stages"].items():
        parts = "  ".join(f"{k} {v:7.0f}" for k, v in row["per_image_us"].items())
        print(f"B={b:>4s} batch {row['batch_size']:4d}  us/image: {parts}"
              f"  transform {row['transform_us_per_image']:6.0f}"
              f"  compute/final {row['compute_vs_final']:.3f} (ideal {row['ideal']:.3f})")
    print(f"predicted wall-time / computation speedup {result['predicted_walltime_over_computation']:.3f}, "
          f"{result['predicted_walltime_over_computation_serial_loader']:.3f} with the transform on the same cores")
    if args.write:
        print(f"written to {args.out}")
    return 0
