"""``repro schedule NAME``: print a curriculum (Tables 5, 6, 10 and the official discretised release)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from repro.core.curriculum import Curriculum, as_spec, build, get_spec, preset_names


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "schedule",
        help="print a curriculum schedule (input size B and RandAug magnitude over the compute budget)",
        description="Print a curriculum: stages over the fraction of the total compute budget, each with its "
        "input size B, RandAug magnitude (start -> end) and the real epochs it runs.",
    )
    p.add_argument("name", nargs="?",
                   help=f"schedule preset ({', '.join(preset_names())}) or a curriculum file (.yaml / .json)")
    p.add_argument(
        "--epochs",
        type=float,
        help="total budget on the schedule's own axis: real epochs for baseline/et, equivalent epochs for etpp "
        "(default: the paper's, 300 / 200)",
    )
    p.add_argument("--final-size", type=int, default=224, help="final input size gamma (Table 10 rule; default 224)")
    p.add_argument(
        "--adapt",
        choices=("table10", "linear"),
        default="table10",
        help="how B follows the final size: the paper's Table 10 rule, or linear scaling (proxies)",
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--list", action="store_true", help="list the presets and exit")
    p.set_defaults(run=run)


def _print_table(curriculum: Curriculum, description: str, source: str) -> None:
    from repro.console import print_table

    print(f"{curriculum.name}: {description} ({source})")
    print(f"final size {curriculum.final_size}, {curriculum.equivalent_epochs:g} equivalent epochs "
          f"({curriculum.real_epochs:.1f} real epochs), m and LR defined on {curriculum.axis}\n")
    rows = []
    for i, s in enumerate(curriculum.stages, 1):
        mag = f"{s.m_start:g}" if s.m_start == s.m_end else f"{s.m_start:.2f}->{s.m_end:.2f}"
        rows.append([str(i), f"{100 * s.start:.1f}%-{100 * s.end:.1f}%", str(s.resolution), mag, f"{s.epochs:.2f}"])
    print_table(["stage", "compute", "B", "RandAug m", "epochs"], rows, "rrrrr")


def run(args: argparse.Namespace) -> int:
    if args.list or not args.name:
        for name in preset_names():
            spec = get_spec(name)
            print(f"{name:<24} {spec.description} ({spec.source})")
        return 0
    spec = as_spec(args.name)  # a preset or a curriculum file (e.g. repro search's output)
    curriculum = build(spec, epochs=args.epochs, final_size=args.final_size, adapt=args.adapt)
    if args.format == "json":
        out = curriculum.to_dict() | {"description": spec.description, "source": spec.source}
        print(json.dumps(out, indent=2))
    else:
        _print_table(curriculum, spec.description, spec.source)
    return 0
