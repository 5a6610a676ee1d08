"""``repro run MANIFEST --profile smoke|full [--only ROW ...]``: train a table's pending runs locally."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a manifest's pending runs with the local executor (finished runs are skipped)",
        description="Resolve a manifest's cells into runs (one directory per distinct config under --runs), "
        "skip finished runs, resume unfinished ones and run the rest in this process.",
    )
    p.add_argument("manifest", help="experiments/tableNN.yaml or a table number")
    p.add_argument("--profile", choices=("smoke", "full"), default="smoke")
    p.add_argument("--only", nargs="+", metavar="ROW", help="only these rows (labels as in the paper)")
    p.add_argument("--runs", default="runs", help="directory for run directories (default: runs/)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from repro.launch.local import run_locally
    from repro.launch.manifest import load_manifest, manifest_path
    from repro.launch.resolve import resolve

    manifest = load_manifest(manifest_path(args.manifest))
    runs = resolve(manifest, args.profile, args.only)
    outcomes = run_locally(runs, args.runs)
    counts = Counter(o.status for o in outcomes)
    print(f"table {manifest.table} ({args.profile}): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return 1 if counts.get("failed") else 0
