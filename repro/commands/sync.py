"""``repro sync``: upload the offline wandb runs kept in run directories (when the user has network and a key).

Training never talks to the network: wandb runs offline into ``runs/<run>/wandb/offline-run-*`` (one wandb run
per run directory across requeues). This command is the only place that uploads, and a failure here never
touches a run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from repro.errors import UserError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("sync", help="upload offline wandb runs from run directories (needs network + key)")
    p.add_argument("--runs", default="runs", help="directory holding the run directories (default: runs/)")
    p.add_argument("--dry-run", action="store_true", help="list what would be uploaded")
    p.add_argument("--timeout", type=float, default=600, help="seconds per wandb sync call (default 600)")
    p.set_defaults(run=run)


def offline_runs(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/wandb/offline-run-*") if p.is_dir())


def run(args: argparse.Namespace) -> int:
    root = Path(args.runs)
    found = offline_runs(root)
    if not found:
        print(f"no offline wandb runs under {root}/*/wandb")
        return 0
    if args.dry_run:
        for path in found:
            print(f"would sync {path}")
        return 0
    if not os.environ.get("WANDB_API_KEY") and not (Path.home() / ".netrc").exists():
        raise UserError("no wandb credentials: set WANDB_API_KEY or run 'wandb login' first")
    wandb_cli = shutil.which("wandb") or str(Path(sys.executable).with_name("wandb"))
    failed = 0
    for path in found:
        try:
            proc = subprocess.run([wandb_cli, "sync", str(path)], capture_output=True, text=True,
                                  timeout=args.timeout, env={**os.environ, "WANDB_MODE": "online"})
            ok = proc.returncode == 0
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] if not ok else []
        except (OSError, subprocess.TimeoutExpired) as err:
            ok, detail = False, [str(err)]
        failed += not ok
        print(f"{'synced' if ok else 'failed'} {path}" + (f": {detail[0]}" if detail else ""))
    return 1 if failed else 0
