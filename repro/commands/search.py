"""``repro search``: find a curriculum with Algorithm 1 or 2 (Sec. 4.2, 5.1; Table 21's variants as options) for
a model under a profile (``proxy``: Fashion-MNIST at 28 px on CPU; ``full``: the paper's setting), every candidate
a run in ``--runs``; prints and writes the curriculum file (``repro train --schedule FILE``) and a report. With
``--cluster slurm`` each step's candidates go as one job array, followed to its end before the next step."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "search", help="find a curriculum with Algorithm 1 / 2 (every candidate a resumable run)",
        description=__doc__.split("\n\n")[0] if __doc__ else None)
    a = p.add_argument
    a("--model", required=True, help="a Table 7 model (e.g. DeiT-Small; the profile's proxy variant of it)")
    a("--profile", default="proxy", choices=("smoke", "proxy", "full"), help="the run setting (Table 21's profiles)")
    a("--algorithm", type=int, choices=(1, 2), default=2, help="1: greedy (Table 5); 2: computation-constrained "
      "sequential (Table 6)")
    a("--stages", type=int, default=5, help="N (5)")
    a("--candidates", type=int, nargs="+", default=[96, 128, 160, 192, 224], help="B values at 224")
    a("--beta", type=float, default=2 / 3, help="Algorithm 2's budget: beta x the baseline's (2/3)")
    a("--t0", type=float, default=300, help="T0, the baseline's epochs at paper scale (300; scaled by the profile)")
    a("--t-ft", type=float, default=10, help="T_ft, Algorithm 2's proxy fine-tuning epochs at paper scale (10)")
    a("--variables", choices=("compute", "iterations"), default="compute",
      help="constant T_i (Algorithm 2) or constant I_i (AutoProg, Table 21)")
    a("--objective", choices=("accuracy", "loss-cost", "error-cost"), default="accuracy",
      help="maximise Acc_i, or minimise L_i T_i^alpha / (1 - Acc_i) T_i^alpha (Table 21)")
    a("--alpha", type=float, default=0.5, help="the cost exponent of Table 21's objectives (not given: 0.5)")
    a("--seed", type=int, default=0)
    a("--runs", default="runs", help="directory for the candidates' run directories (runs/)")
    a("--out", help="where to write curriculum.yaml and report.json (default RUNS/search-<hash>/)")
    a("--cluster", choices=("local", "slurm"), default="local",
      help="train each step's candidates in this process (local) or as one SLURM job array per step")
    a("--cluster-profile", help="with --cluster slurm: cluster profile name or path (slurm/profiles/*.yaml)")
    a("--set", action="append", default=[], metavar="KEY=VALUE", help="override a cluster-profile field")
    a("--poll", type=float, default=30.0, metavar="S", help="seconds between checks of a step's array (30)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from repro.core.curriculum import build, load
    from repro.launch.manifest import EXPERIMENTS_DIR, RunSpec, load_base, load_manifest
    from repro.launch.resolve import resolve_config
    from repro.launch.search import on_cluster, options, run_search

    opt = options({"algorithm": args.algorithm, "stages": args.stages, "candidates": tuple(args.candidates),
                   "beta": args.beta, "baseline_epochs": args.t0, "finetune_epochs": args.t_ft,
                   "variables": args.variables, "objective": args.objective, "alpha": args.alpha}, "repro search")
    manifest = load_manifest(EXPERIMENTS_DIR / "table21.yaml")  # the search ablation's profiles
    spec = RunSpec(model=args.model, method="efficienttrain++", epochs=opt.beta * opt.baseline_epochs)
    base = resolve_config(spec, args.profile, manifest, load_base("in1k")) | {"seed": args.seed}
    execute = None
    if args.cluster == "slurm":
        from repro.commands.submit import cluster_profile

        execute = on_cluster(cluster_profile(args), args.runs, poll=args.poll)
    path = run_search(base, opt.scaled(base["epochs"]), root=args.runs, out=args.out, execute=execute)
    curriculum = build(load(path))
    print(f"curriculum: {path} (report: {path.parent / 'report.json'})")
    print(f"B per stage {list(curriculum.resolutions)}, {curriculum.equivalent_epochs:.4g} equivalent epochs")
    return 0
