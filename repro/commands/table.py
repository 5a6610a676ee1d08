"""``repro table N`` and ``repro compare``: render paper vs reproduced from existing runs only (no training)."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from repro.errors import UserError
from repro.launch.manifest import PROFILE_NAMES


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILE_NAMES, default="smoke")
    p.add_argument("--runs", default="runs", help="directory holding the run directories (default: runs/)")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "table",
        help="render results/tableNN-PROFILE.{md,csv,tex} (+ plots) from existing runs",
        description="Join the paper's cells with reproduced ones from finished runs; never trains.",
    )
    p.add_argument("table", help="table number or manifest path")
    _common(p)
    p.add_argument("--out", default="results", help="output directory (default: results/)")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(run=run_table)

    c = subparsers.add_parser(
        "compare",
        help="list reproduced cells outside tolerance of the paper's",
        description="List cells whose reproduced value differs from the paper's by more than the column's "
        "tolerance (or --tolerance). Exit status 1 when any cell is outside.",
    )
    c.add_argument("--table", action="append", help="table number(s) (default: all manifests)")
    c.add_argument("--tolerance", type=float, help="absolute tolerance for every column (default: per column)")
    _common(c)
    c.set_defaults(run=run_compare)


def _frame(table: str, profile: str, runs_dir: str):  # type: ignore[no-untyped-def]
    from repro.launch.manifest import load_manifest, manifest_path
    from repro.results.collect import collect_runs, reproduce
    from repro.results.costs import cost_lookup

    manifest = load_manifest(manifest_path(table))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = reproduce(manifest, profile, collect_runs(runs_dir), cost_lookup())
    for w in caught:
        print(f"warning: {w.message}")
    return manifest, frame


def run_table(args: argparse.Namespace) -> int:
    return write_results(args.table, args.profile, args.runs, args.out, plots=not args.no_plots)


def write_results(table: str, profile: str, runs: str, out: str, plots: bool = True) -> int:
    """Render one table's results files (and plots) from finished runs; 1 and nothing written when none is."""
    from pathlib import Path

    from repro.results.render import counts, write_table

    manifest, frame = _frame(table, profile, runs)
    trained = frame[frame["source"].isin(("run", "ratio"))]
    if len(trained) and trained["reproduced"].isna().all():  # rendering it would only replace results by holes
        print(f"table {manifest.table} ({profile}): no finished run under {runs}/; nothing written "
              f"(train them first: make table{manifest.table} or repro run {manifest.table})", file=sys.stderr)
        return 1
    paths = write_table(manifest, frame, out)
    if plots:
        paths += _plots(manifest, frame, Path(out))
    print(f"table {manifest.table} ({profile}): {counts(frame)}")
    for path in paths:
        print(f"wrote {path}")
    return 0


def _plots(manifest, frame, out):  # type: ignore[no-untyped-def]
    from repro.core.curriculum import build
    from repro.results.plots import plot_accuracy_vs_cost, plot_curriculum
    from repro.results.render import result_stem

    paths = []
    keys = {c.key for c in manifest.columns}
    if {"baseline_top1", "etpp_top1"} <= keys:
        stem = result_stem(manifest.table, str(frame["profile"].iloc[0]))
        paths.append(plot_accuracy_vs_cost(frame, out / f"{stem}_accuracy_vs_cost.png"))
        schedules = {spec.schedule for row in manifest.rows for spec in row.runs.values() if spec.schedule}
        for name in sorted(schedules):
            paths.append(plot_curriculum(build(name), out / f"curriculum_{name}.png"))
    return paths


def run_compare(args: argparse.Namespace) -> int:
    from repro.launch.manifest import all_manifests
    from repro.results.collect import outside_tolerance
    from repro.results.render import counts

    tables = args.table or [str(p) for p in all_manifests()]
    if not tables:
        raise UserError("no manifests to compare")
    bad = 0
    for table in tables:
        manifest, frame = _frame(table, args.profile, args.runs)
        off = outside_tolerance(frame, args.tolerance)
        proxy = bool(frame["proxy"].any()) if "proxy" in frame else False
        print(f"table {manifest.table} ({args.profile}): {counts(frame)}; {len(off)} outside tolerance"
              + (" -- proxy runs (Fashion-MNIST, CPU): only the cost columns are expected to match" if proxy else ""))
        for r in off.itertuples():
            print(f"  {r.row} / {r.column}: paper {r.paper:g}, reproduced {r.reproduced:.4g} ({r.delta:+.3g})")
        bad += len(off)
    return 1 if bad else 0
