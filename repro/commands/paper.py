"""``repro paper N``: the paper's cells of table N, from its manifest."""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "paper",
        help="print the paper's numbers of a table (from experiments/tableNN.yaml)",
        description="Print the numeric cells the paper reports for a table. CSV is long form: row,column,value "
        "(row labels as in the paper, column keys; percentages without %%, speedups without x).",
    )
    p.add_argument("table", help="table number (e.g. 7) or a manifest path")
    p.add_argument("--format", choices=("csv", "md"), default="md")
    p.set_defaults(run=run)


def _fmt(value: float) -> str:
    return repr(float(value))


def run(args: argparse.Namespace) -> int:
    from repro.launch.manifest import cell_value, load_manifest, manifest_path

    manifest = load_manifest(manifest_path(args.table))
    if args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["row", "column", "value"])
        for row, column, value in manifest.paper_cells():
            writer.writerow([row, column, _fmt(value)])
        return 0
    print(f"Table {manifest.table}: {manifest.title}\n")
    print("| | " + " | ".join(f"{c.label} ({c.unit})" if c.unit else c.label for c in manifest.columns) + " |")
    print("|---" * (len(manifest.columns) + 1) + "|")
    for row in manifest.rows:
        cells = []
        for col in manifest.columns:
            cell = row.cells[col.key]
            value = cell_value(cell)
            text = "–" if value is None else _fmt(value)
            note = getattr(cell, "note", None)
            cells.append(f"{text} ({note})" if note else text)
        print(f"| {row.label} | " + " | ".join(cells) + " |")
    return 0
