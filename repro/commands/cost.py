"""``repro cost``: parameters, FLOPs and training compute of the Table 7 models (Tables 3 and 7).

* ``repro cost table7 [--format table|csv|md]``: one row per Table 7 model in paper order with
  ``model,params_m,gflops,computation_speedup`` (measured; see :mod:`repro.models.cost` for the accounting).
* ``repro cost table3``: Table 3's relative training costs (DeiT-Small, Swin-Tiny; low-frequency cropping at B
  for the first 300/225/150/75 epochs).
* ``repro cost MODEL [--schedule NAME]``: per-B FLOPs of any Table 7 model and the compute of a schedule.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

ACCOUNTING_HELP = (
    "how EfficientTrain++'s compute is counted: official (the released 10-stage B lists with integer epochs, "
    "measured FLOPs; default), paper-schedule (Table 6's 3 stages, epochs from the ideal cost, measured FLOPs), "
    "algorithm2 (epochs from measured FLOPs: 1.50x by construction), ideal ((B/224)^2 throughout)"
)


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "cost",
        help="parameters, FLOPs and computation speedup of the Table 7 models (Tables 3 and 7)",
        description="Measured parameters and FLOPs (multiply-accumulates, as the paper reports them) of the "
        "Table 7 models, and the training compute of a curriculum. TARGET is 'table7', 'table3' or a model "
        "name (paper or timm name, e.g. DeiT-Small or deit_small_patch16_224).",
    )
    p.add_argument("target", help="table7, table3, or a model name")
    p.add_argument("--format", choices=("table", "csv", "md"), default="table")
    p.add_argument("--schedule", help="curriculum preset for MODEL (default: the one ET++ uses for its family)")
    p.add_argument("--epochs", type=float, help="budget of --schedule on its own axis (default: the preset's)")
    p.add_argument("--accounting", default="official", choices=("official", "paper-schedule", "algorithm2", "ideal"),
                   help=ACCOUNTING_HELP)
    p.add_argument("--resume-rounding", choices=("floor", "round"), default="floor",
                   help="official accounting: start epoch after a resolution switch truncated (floor; reproduces "
                   "Table 7) or rounded (round; the mirrored release code)")
    p.add_argument("--compare", action="store_true", help="table7/table3: add the paper's values and deviations")
    p.set_defaults(run=run)


def _emit(header: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> None:
    """Print ``rows`` as csv, markdown or a table (rich on a terminal, aligned text otherwise)."""
    from repro.console import print_table

    cells = [[f"{v:.4g}" if isinstance(v, float) and fmt != "csv" else str(v) for v in r] for r in rows]
    if fmt == "csv":
        print("\n".join([",".join(header)] + [",".join(r) for r in cells]))
    elif fmt == "md":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        print("\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells]))
    else:
        print_table(header, cells, "l" + "r" * (len(header) - 1))


def _table7(args: argparse.Namespace) -> None:
    from repro.models.cost import table7

    rows = table7(args.accounting, args.resume_rounding)
    header = ["model", "params_m", "gflops", "computation_speedup"]
    body: list[list[Any]] = [
        [r.model, f"{r.params_m:.2f}", f"{r.gflops:.3f}", f"{r.computation_speedup:.3f}"] for r in rows
    ]
    if args.compare:
        header += ["paper_params_m", "paper_gflops", "gflops_dev_pct", "paper_speedup", "speedup_dev"]
        for b, r in zip(body, rows, strict=True):
            b += [f"{r.paper_params_m:g}", f"{r.paper_gflops:g}", f"{100 * r.gflops_rel_dev:+.2f}",
                  f"{r.paper_speedup:.2f}", f"{r.speedup_dev:+.3f}"]
    _emit(header, body, args.format)


def _table3(args: argparse.Namespace) -> None:
    from repro.models.cost import table3

    header = ["model", "cropping_epochs", "full_epochs", "B", "relative_cost"] + (["paper"] if args.compare else [])
    body = [[r["model"], r["cropping_epochs"], r["full_epochs"], r["B"], f"{r['relative_cost']:.3f}"]
            + ([f"{r['paper']:.2f}"] if args.compare else []) for r in table3()]
    _emit(header, body, args.format)


def _model(args: argparse.Namespace) -> None:
    from repro.core.budget import curriculum_compute
    from repro.core.curriculum import build, ideal_cost
    from repro.models.cost import FAMILY_PRESET, TRAIN_IMAGES, computation_speedup
    from repro.models.flops import cost_fn, measured
    from repro.models.zoo import entry

    e = entry(args.target)
    name = args.schedule or FAMILY_PRESET[e.family]
    curriculum = build(name, epochs=args.epochs)  # epochs per stage from the paper's ideal (B/224)^2 cost
    cost = cost_fn(e.timm)
    sizes = sorted(set(curriculum.resolutions) | {curriculum.final_size})
    ref = measured(e.timm, curriculum.final_size)
    body: list[list[Any]] = []
    for b in sizes:
        m = measured(e.timm, b)
        body.append([b, f"{m.gflops:.4f}", f"{m.macs / ref.macs:.4f}", f"{ideal_cost(curriculum.final_size)(b):.4f}"])
    header = ["B", "gflops", "relative_cost", "ideal_relative_cost"]
    if args.format != "table":
        _emit(header, body, args.format)
        return
    real = curriculum_compute(curriculum, cost)
    baseline = 300.0
    print(f"{e.paper} ({e.timm}): {ref.params_m:.2f}M parameters, {ref.gflops:.3f} GFLOPs at "
          f"{curriculum.final_size}^2")
    _emit(header, body, args.format)
    print(f"schedule {name}: {curriculum.real_epochs:.1f} real epochs, {curriculum.equivalent_epochs:.2f} equivalent "
          f"epochs (ideal cost), {real:.2f} equivalent epochs in measured FLOPs "
          f"= {real * ref.macs * TRAIN_IMAGES['imagenet-1k'] / 1e18:.3f} EFLOPs (MACs, forward) on IN-1K; "
          f"speedup vs {baseline:g} baseline epochs {baseline / real:.3f}x")
    print(f"Table 7 accounting ({args.accounting}"
          + (f", resume {args.resume_rounding}" if args.accounting == "official" else "")
          + f"): {computation_speedup(e.timm, args.accounting, resume=args.resume_rounding):.3f}x")


def run(args: argparse.Namespace) -> int:
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)
    target = args.target.lower()
    if target == "table7":
        _table7(args)
    elif target == "table3":
        _table3(args)
    else:
        _model(args)
    return 0
