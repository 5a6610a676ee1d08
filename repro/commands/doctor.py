"""``repro doctor``: check, from a cluster's login node, what ``repro submit`` of a manifest needs (the cluster
profile against the scheduler, sbatch, the data roots, the runs directory, the installed packages)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    from repro.commands.submit import _cluster_args, _manifest_args

    p = subparsers.add_parser(
        "doctor",
        help="check a cluster profile, sbatch, the data roots and the packages before repro submit",
        description="One line per check: ok, FAIL (with a fix) or skipped (a tool it needs is missing). Run it "
        "on the login node, with the same arguments as repro submit; exits 1 when a check fails.",
        epilog="example: repro doctor experiments/table07.yaml --profile full --cluster-profile mysite",
    )
    _manifest_args(p, optional=True)
    _cluster_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from repro.commands.submit import _run_dirs, cluster_profile
    from repro.launch import doctor

    profile_check, profile = doctor.cluster_profile(lambda: cluster_profile(args))
    checks = [profile_check]
    if args.cluster == "slurm":
        checks.append(doctor.slurm_commands())
    if profile is not None and args.cluster == "slurm" and profile.executor == "slurm":
        checks += [doctor.partition(profile), doctor.account(profile)]
    if args.manifest is None:
        checks.append(doctor.Check("data", "skipped", "no manifest given"))
    else:
        _, runs = _run_dirs(args)
        checks += doctor.data(r.config for r in runs)
    checks += [doctor.runs_dir(Path(args.runs)), doctor.packages()]
    for c in checks:
        print(c.line(), flush=True)
    failed = [c.name for c in checks if c.status == "FAIL"]
    print(f"{len(checks)} checks: " + (f"{len(failed)} failed ({', '.join(failed)})" if failed else "none failed"))
    return 1 if failed else 0
