"""``repro claims [--run]``: test the paper's claims (``experiments/claims.yaml``) on a profile's runs.

With ``--run`` it first trains what the runnable core claims need (``--all``: every claim's; ``--only``: the
named ones'), every seed; finished runs are skipped, so a second call only evaluates. Then it writes
``results/claims.md``: each claim's verdict and its numbers. ``make claims``
is ``repro claims --run``.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "claims",
        help="test the paper's claims on the proxy's runs (results/claims.md); --run trains what they need",
        description="Evaluate experiments/claims.yaml: holds / fails / inconclusive per claim, with mean ± std "
        "over seeds; claims whose runs cannot start yet are listed as such.",
    )
    p.add_argument("--run", dest="train", action="store_true", help="train the runs the runnable claims need first")
    p.add_argument("--only", nargs="+", metavar="ID", help="only these claims (--run trains them, core or not)")
    p.add_argument("--all", dest="every", action="store_true",
                   help="with --run, train every runnable claim's runs, not only the core ones (many hours on CPU)")
    p.add_argument("--file", type=Path, help="claims file (default: experiments/claims.yaml)")
    p.add_argument("--runs", default="runs", help="directory holding the run directories (default: runs/)")
    p.add_argument("--out", type=Path, default=Path("results/claims.md"), help="(default: results/claims.md)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from repro.errors import UserError
    from repro.launch.local import run_locally
    from repro.results.claims import CLAIMS_FILE, ClaimsFile, evaluate, load_claims, needed_runs, to_markdown
    from repro.results.collect import collect_runs
    from repro.results.costs import cost_lookup
    from repro.tasks import task_for

    claims = load_claims(args.file or CLAIMS_FILE)
    if args.only:
        unknown = sorted(set(args.only) - {c.id for c in claims.claims})
        if unknown:
            raise UserError(f"unknown claim {unknown[0]!r}; known: {', '.join(c.id for c in claims.claims)}")
        claims = ClaimsFile(profile=claims.profile, claims=[c for c in claims.claims if c.id in args.only])
    if args.train:
        todo = []
        for claim in claims.claims:
            if not (claim.core or args.only or args.every):
                continue
            runs = needed_runs(claim, claims.profile)
            if all(task_for(r.config)[0] is not None for r in runs):
                todo += runs
        outcomes = run_locally(todo, args.runs)
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            print(f"repro claims: {len(failed)} runs failed (first: {failed[0].run.label}: {failed[0].detail}); "
                  "their claims are 'not run'")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        verdicts = evaluate(claims, collect_runs(args.runs), cost_lookup())
    for w in caught:
        print(f"warning: {w.message}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(to_markdown(claims, verdicts))
    if args.train:  # the profile's tables the claims drew on, with every seed
        from repro.commands.table import write_results

        for table in sorted({v.claim.table for v in verdicts if v.checks}):
            write_results(str(table), claims.profile, args.runs, args.out.parent)
    for v in verdicts:
        print(f"{v.verdict:<17} {v.claim.id}" + (f"  ({v.detail})" if v.detail else ""))
    print(f"wrote {args.out}")
    return 0
