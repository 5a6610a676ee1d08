"""``repro bench convergence``: has a profile's baseline converged? Its top-1 at E epochs against 2E epochs.

A proxy can test the paper's claim (ET++ reaches the baseline's accuracy with ~1.5x less compute) only where the
baseline has converged: at 2% of the paper's epochs (the smoke profile) every model is still learning, and a
curriculum that spends its first stages on down-sampled inputs looks worse than it is. This trains, for one row
per backbone family of Table 7, the profile's baseline (the same run as ``repro run 7 --profile P``, so it is
shared with the tables and ``make claims``) and the same run with twice the epochs (its own run id), and writes
``results/bench/convergence-PROFILE.json``: per family the top-1 (mean +- std over the seeds) at E and 2E and
their difference. Converged means the difference is below 1 point (``CONVERGED_WITHIN``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from repro.launch.manifest import PROFILE_NAMES

CONVERGED_WITHIN = 1.0  # points of top-1 between E and 2E epochs
FAMILY_ROWS = ("ResNet-50", "ConvNeXt-Tiny", "DeiT-Small", "PVT-Small", "Swin-Tiny", "CSWin-Tiny", "CAFormer-S18")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("convergence", help="a profile's Table 7 baselines at E vs 2E epochs (one per family)")
    p.add_argument("--profile", choices=PROFILE_NAMES, default="proxy")
    p.add_argument("--rows", nargs="+", default=list(FAMILY_ROWS), metavar="ROW",
                   help="Table 7 rows (default: one per backbone family)")
    p.add_argument("--seeds", type=int, help="seeds per run (default: the profile's)")
    p.add_argument("--runs", default="runs", help="directory for run directories (default: runs/)")
    p.add_argument("--out", type=Path, help="JSON output (default: results/bench/convergence-PROFILE.json)")
    p.set_defaults(run=run)


def doubled(run: Any) -> Any:
    """The same run with twice the epochs and warm-up -- what the profile would resolve with twice its
    ``epoch_scale`` -- another configuration, so another run id."""
    from repro.launch.resolve import config_hash

    config = dict(run.config, epochs=run.config["epochs"] * 2)
    if config.get("warmup_epochs") is not None:
        config["warmup_epochs"] = config["warmup_epochs"] * 2
    config.pop("seed")
    cell = run.cell.rsplit("-", 1)[0] + "-" + config_hash(config)
    return dataclasses.replace(run, config=config | {"seed": run.seed}, run_id=f"{cell}-s{run.seed}", cell=cell)


def run(args: argparse.Namespace) -> int:
    from repro.errors import UserError
    from repro.launch.local import run_locally
    from repro.launch.manifest import load_manifest, manifest_path
    from repro.launch.resolve import resolve
    from repro.results.collect import collect_runs, mean_std, seed_values

    manifest = load_manifest(manifest_path(7))
    baselines = [r for r in resolve(manifest, args.profile, args.rows, args.seeds) if r.key == "baseline"]
    longer = [doubled(r) for r in baselines]
    outcomes = run_locally(baselines + longer, args.runs)
    failed = [o for o in outcomes if o.status not in ("finished", "skipped")]
    if failed:
        raise UserError(f"{len(failed)} runs did not finish ({failed[0].run.label}: {failed[0].status}); "
                        f"rerun to resume them")
    frame = collect_runs(args.runs)
    report: dict[str, Any] = {"profile": args.profile, "converged_within": CONVERGED_WITHIN, "rows": {}}
    print(f"{'row':<14} {'E':>5} {'top-1 at E':>16} {'top-1 at 2E':>16} {'2E - E':>7}")
    seeds = {r.seed for r in baselines}  # what this bench trained: other seeds in the runs directory stay out
    for short, long in ((r, doubled(r)) for r in baselines if r.seed == 0):
        a, b = ({k: v for k, v in seed_values(frame, r.cell, "top1")[0].items() if k in seeds} for r in (short, long))
        (ma, sa, na), (mb, sb, nb) = mean_std(list(a.values())), mean_std(list(b.values()))
        gain = None if ma is None or mb is None else mb - ma
        report["rows"][short.row] = {"epochs": short.config["epochs"], "top1": ma, "top1_std": sa, "n": na,
                                     "top1_2x": mb, "top1_2x_std": sb, "n_2x": nb, "gain_2x": gain,
                                     "converged": gain is not None and abs(gain) < CONVERGED_WITHIN}
        print(f"{short.row:<14} {short.config['epochs']:>5g} {_pm(ma, sa, na):>16} {_pm(mb, sb, nb):>16} "
              f"{gain if gain is None else f'{gain:+.2f}':>7}")
    out = args.out or Path("results/bench") / f"convergence-{args.profile}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def _pm(mean: float | None, std: float | None, n: int) -> str:
    if mean is None:
        return "-"
    return f"{mean:.2f}" + (f" ± {std:.2f} ({n})" if std is not None else f" ({n})")
