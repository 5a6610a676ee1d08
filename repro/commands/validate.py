"""``repro validate [PATHS]``: check experiment manifests (all of ``experiments/`` by default)."""

from __future__ import annotations

import argparse
from typing import Any

from repro.errors import UserError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "validate",
        help="validate experiment manifests (experiments/table*.yaml by default)",
        description="Validate manifests against the schema; a broken one is reported as 'file: field: problem'.",
    )
    p.add_argument("paths", nargs="*", help="manifest files (default: every experiments/table*.yaml)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from repro.launch.manifest import all_manifests, load_manifest

    paths = args.paths or all_manifests()
    if not paths:
        raise UserError("no manifests found under experiments/")
    errors = []
    for path in paths:
        try:
            manifest = load_manifest(path)
        except UserError as err:
            errors.append(str(err))
            continue
        print(f"ok  {path}: table {manifest.table}, {len(manifest.rows)} rows, {len(manifest.paper_cells())} cells")
    if errors:
        summary = errors[0] if len(errors) == 1 else f"{len(errors)} invalid manifests: " + " | ".join(errors)
        raise UserError(summary)
    return 0
