"""``repro bench gpu``: training images/s at each ET++ input size, against the ideal (final / B)^2 (Sec. 5.2).

A stage at B costs (B / final)^2 of the final-size FLOPs (Table 7 "Computation"); whether it runs that much faster
decides the wall-time saving. For each model and B this times training steps (forward, cross-entropy, backward,
AdamW step; bf16 autocast and channels_last on CUDA) of two arms, interleaved repeat by repeat:

    repro   the engine's model (:func:`repro.train.model.build_model`, switched in place to B with
            :func:`repro.train.model.set_input_size`, as a stage switch does)
    timm    the reference: ``timm.create_model(name, img_size=B)`` built for B, the same plain train step (timm's
            ``benchmark.py`` is a script outside the installed package; this is its train mode's core)

and reports images/s (median and range over repeats), repro / timm, and ``ideal_fraction`` = (speed(B) /
speed(final)) / (final / B)^2: 1 when a stage is as much faster as its FLOPs say.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("results/bench/gpu.json")
MODELS = ("resnet50", "deit_small_patch16_224", "swin_tiny_patch4_window7_224")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("gpu", help="training images/s at B = 96 / 160 / 224 vs the ideal (224 / B)^2, repro vs timm")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (the tested path)")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--sizes", nargs="+", type=int, default=[96, 160, 224], help="input sizes; the largest is final")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="timed steps per repeat and arm (default: 20)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (default: 5)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-amp", dest="amp", action="store_false", help="no bf16 autocast (CUDA only anyway)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write the JSON (default: {DEFAULT_OUT})")
    p.add_argument("--no-write", dest="write", action="store_false", help="only print")
    p.set_defaults(run=run)


def _timm_model(name: str, size: int) -> Any:
    import timm

    try:
        return timm.create_model(name, pretrained=False, num_classes=1000, img_size=size)
    except TypeError:  # convolutional networks take any size
        return timm.create_model(name, pretrained=False, num_classes=1000)


def _repro_model(name: str, final_size: int) -> Any:
    from repro.train.config import TrainConfig
    from repro.train.model import build_model

    return build_model(TrainConfig(model=name, final_size=final_size), 1000)


class _Arm:
    """One model with its optimizer and a fixed random batch at one input size."""

    def __init__(self, model: Any, size: int, args: argparse.Namespace, device: Any) -> None:
        import torch

        self.cuda = device.type == "cuda"
        self.model = model.to(device).train()
        if self.cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.x = torch.randn(args.batch_size, 3, size, size, device=device)
        if self.cuda:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, 1000, (args.batch_size,), device=device)
        self.amp = args.amp and self.cuda
        self.device = device

    def steps(self, n: int) -> float:
        import torch

        if self.cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n):
            self.opt.zero_grad(set_to_none=True)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                loss = torch.nn.functional.cross_entropy(self.model(self.x).float(), self.y)
            loss.backward()
            self.opt.step()
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0


def gpu(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from repro.train.model import set_input_size

    device = torch.device(args.device)
    final = max(args.sizes)
    rows: dict[str, Any] = {}
    for name in args.models:
        ours = _repro_model(name, final)
        per_size: dict[str, Any] = {}
        for size in sorted(args.sizes):
            set_input_size(ours, size)
            arms = {"repro": _Arm(ours, size, args, device), "timm": _Arm(_timm_model(name, size), size, args, device)}
            for arm in arms.values():
                arm.steps(args.warmup)
            speeds: dict[str, list[float]] = {k: [] for k in arms}
            for _ in range(args.repeats):
                for key, arm in arms.items():
                    speeds[key].append(args.batch_size * args.steps / arm.steps(args.steps))
            per_size[str(size)] = {
                **{f"{k}_img_s": statistics.median(v) for k, v in speeds.items()},
                **{f"{k}_img_s_range": [min(v), max(v)] for k, v in speeds.items()},
                "repro_over_timm": statistics.median(a / b for a, b in zip(*speeds.values(), strict=True)),
            }
            del arms
        for size, row in per_size.items():
            for k in ("repro", "timm"):
                row[f"{k}_ideal_fraction"] = (row[f"{k}_img_s"] / per_size[str(final)][f"{k}_img_s"]) / (
                    (final / int(size)) ** 2)
        rows[name] = per_size
    return {
        "models": rows,
        "setup": {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
                  else platform.processor() or platform.machine(), "amp_bf16": args.amp and device.type == "cuda",
                  "channels_last": device.type == "cuda", "batch_size": args.batch_size, "steps": args.steps,
                  "warmup": args.warmup, "repeats": args.repeats, "torch": torch.__version__},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def run(args: argparse.Namespace) -> int:
    result = gpu(args)
    if args.write:
        from repro.launch.rundir import write_json_atomic

        write_json_atomic(args.out, result)
    for name, per_size in result["models"].items():
        for size, row in per_size.items():
            print(f"{name:32s} B={size:4s} repro {row['repro_img_s']:9.1f} img/s  timm {row['timm_img_s']:9.1f} img/s"
                  f"  repro/timm {row['repro_over_timm']:.3f}  of ideal {row['repro_ideal_fraction']:.3f}")
    if args.write:
        print(f"written to {args.out}")
    return 0
