"""``repro run MANIFEST --profile smoke|full [--only ROW ...]``: train a table's pending runs locally."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

from repro.launch.manifest import PROFILE_NAMES

# Exit statuses beyond the CLI's 2 (bad input): a run failed, or a run could not start (no runner for its task
# or method, a setting the runner refuses, or an upstream run that did not finish) while every run that started
# finished.
EXIT_FAILED = 1
EXIT_NOT_STARTED = 3


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a manifest's pending runs with the local executor (finished runs are skipped)",
        description="Resolve a manifest's cells into runs (one directory per distinct config under --runs), "
        "skip finished runs, resume unfinished ones and run the rest in this process.",
        epilog=f"Exit status: 0 every run finished; {EXIT_FAILED} a run failed; {EXIT_NOT_STARTED} a run could not "
        "start (its 'no-run' or 'blocked' line says why); 2 bad input.",
    )
    p.add_argument("manifest", help="experiments/tableNN.yaml or a table number")
    p.add_argument("--profile", choices=PROFILE_NAMES, default="smoke")
    p.add_argument("--seeds", type=int, metavar="N", help="train each run with seeds 0..N-1 (default: the "
                   "profile's seeds: 1 for smoke and full, 3 for proxy)")
    p.add_argument("--only", nargs="+", metavar="ROW", help="only these rows (labels as in the paper)")
    p.add_argument("--runs", default="runs", help="directory for run directories (default: runs/)")
    p.set_defaults(run=run)


def timed_run_pairs(manifest: Any, runs: list[Any]) -> list[tuple[str, str]]:
    """The run ids of each pair of runs whose training times the table divides, seed by seed."""
    by_key = {(r.row, r.key, r.seed): r.run_id for r in runs}
    seeds = sorted({r.seed for r in runs})
    return [(by_key[row, num, seed], by_key[row, den, seed]) for row, num, den in manifest.timed_pairs()
            for seed in seeds if (row, num, seed) in by_key and (row, den, seed) in by_key]


def run(args: argparse.Namespace) -> int:
    from repro.launch.local import run_locally
    from repro.launch.manifest import load_manifest, manifest_path
    from repro.launch.resolve import resolve

    manifest = load_manifest(manifest_path(args.manifest))
    runs = resolve(manifest, args.profile, args.only, args.seeds)
    outcomes = run_locally(runs, args.runs, side_by_side=timed_run_pairs(manifest, runs))
    counts = Counter(o.status for o in outcomes)
    print(f"table {manifest.table} ({args.profile}): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    not_started = counts.get("no-runner", 0) + counts.get("blocked", 0)
    if not_started:  # named with the reason on its 'no-run' / 'blocked' line above
        print(f"repro run: {not_started} of {len(outcomes)} runs could not start (see the 'no-run' and 'blocked' "
              "lines)", file=sys.stderr)
    if counts.get("failed"):
        return EXIT_FAILED
    return EXIT_NOT_STARTED if not_started else 0
