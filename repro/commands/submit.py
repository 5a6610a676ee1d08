"""``repro submit`` and ``repro status``: a manifest's runs on a cluster (SLURM via submitit) or locally."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from repro.errors import UserError
from repro.launch.manifest import PROFILE_NAMES

TRAIN_FN = "repro.launch.local:train_run_dir"
DEFAULT_CLUSTER_PROFILE = {"smoke": "local", "full": "example-a100"}


def _manifest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest", help="experiments/tableNN.yaml or a table number")
    p.add_argument("--profile", choices=PROFILE_NAMES, default="smoke")
    p.add_argument("--seeds", type=int, metavar="N", help="train each run with seeds 0..N-1 (default: the "
                   "profile's seeds: 1 for smoke and full, 3 for proxy)")
    p.add_argument("--only", nargs="+", metavar="ROW", help="only these rows (labels as in the paper)")
    p.add_argument("--runs", default="runs", help="directory for run directories (default: runs/)")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "submit",
        help="submit a manifest's pending runs (one SLURM job array, or locally)",
        description="Submit the runs of a manifest that are neither finished nor queued/running. --cluster slurm "
        "uses a cluster profile (slurm/profiles/NAME.yaml; default: 'local' for smoke, $REPRO_CLUSTER_PROFILE or "
        "'example-a100' for full); --cluster local runs them in this process.",
    )
    _manifest_args(p)
    p.add_argument("--cluster", choices=("slurm", "local"), default="slurm")
    p.add_argument("--cluster-profile", help="cluster profile name or path (slurm/profiles/*.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a cluster-profile field, e.g. --set partition=gpu --set time=12:00:00")
    p.add_argument("--dry-run", action="store_true", help="print the plan (runs, resources, sbatch) and submit nothing")
    p.add_argument("--wait", action="store_true",
                   help="after submitting, follow the runs until none is queued or running; exit 1 if any failed")
    p.add_argument("--poll", type=float, default=10.0, metavar="S", help="seconds between checks with --wait")
    p.set_defaults(run=run_submit)

    s = subparsers.add_parser(
        "status",
        help="where each run of a manifest stands (pending/queued/running/preempted/failed/finished, step, ETA)",
        description="Per run: state from its run directory and the scheduler (a run trained now by a process on "
        "this host is running), step k/N and share of the compute done from its progress.json, the ETA while it "
        "trains; failed runs show their log tail. A table on a terminal, aligned plain text otherwise.",
    )
    _manifest_args(s)
    s.add_argument("--log-lines", type=int, default=5, help="log lines shown for failed runs (default 5)")
    s.set_defaults(run=run_status)


def _overrides(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs; numbers and booleans as JSON, anything else (12:00:00, a100) as a string."""
    import json

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            out[key.replace("-", "_")] = json.loads(value)
        except ValueError:
            out[key.replace("-", "_")] = value
    return out


def _run_dirs(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from repro.launch.manifest import load_manifest, manifest_path
    from repro.launch.resolve import resolve

    manifest = load_manifest(manifest_path(args.manifest))
    runs = {r.run_id: r for r in resolve(manifest, args.profile, args.only, args.seeds)}  # shared runs once
    return manifest, list(runs.values())


def run_submit(args: argparse.Namespace) -> int:
    import os

    from repro.launch.rundir import RunDir

    manifest, runs = _run_dirs(args)
    root = Path(args.runs)
    if args.cluster == "local":
        if args.dry_run:
            for r in runs:
                print(f"would run {r.label} in this process ({RunDir(root / r.run_id).state()})")
            return 0
        from repro.commands.run import run as run_local

        return run_local(args)

    from repro.launch.cluster import load_cluster_profile, make_executor, sbatch_script
    from repro.launch.job import submit_runs
    from repro.methods import label

    name = args.cluster_profile or (
        os.environ.get("REPRO_CLUSTER_PROFILE", DEFAULT_CLUSTER_PROFILE["full"]) if args.profile == "full"
        else DEFAULT_CLUSTER_PROFILE["smoke"]
    )
    cluster = load_cluster_profile(name, **_overrides(args.set))
    without_runner = len(runs)
    runs = _with_runner(runs)
    without_runner -= len(runs)
    dirs = [root / r.run_id for r in runs]
    folder = root / "_submitit"
    if not args.dry_run:
        for r, d in zip(runs, dirs, strict=True):
            RunDir(d).prepare(r.config, group=r.group)
        executor = make_executor(cluster, folder, job_name=f"table{manifest.table:02d}-{args.profile}")
    else:
        executor = None
    links = {root / r.run_id: root / r.upstream for r in runs if r.upstream is not None}
    outcome = submit_runs(executor, dirs, TRAIN_FN, dry_run=args.dry_run, upstream=links)
    todo = [(d, st) for d, st, job in outcome if (job is not None) or (args.dry_run and st.needs_submission)]
    gpus = cluster.nodes * max(cluster.gpus_per_node, 0)
    hours = cluster.time / 60
    verb = "would submit" if args.dry_run else "submitted"
    print(f"table {manifest.table} ({args.profile}) on cluster profile {cluster.name!r}: {len(outcome)} runs, "
          f"{verb} {len(todo)} as one array" + (f" ({without_runner} more have no runner)" if without_runner else "")
          + (f", {sum(d in links for d, _ in todo)} of them after the run they start from (afterok)"
             if any(d in links for d, _ in todo) else ""))
    print(f"per run: {cluster.nodes} node(s) x {cluster.gpus_per_node} GPU(s), time limit {hours:g} h; "
          f"at most {len(todo) * max(gpus, 1) * hours:g} {'GPU' if gpus else 'CPU-job'}-hours for this submission")
    jobs = {d: job for d, _, job in outcome}
    for r, (d, st, _) in zip(runs, outcome, strict=True):
        job = jobs.get(d)
        after = f" after {links[d].name}" if d in links else ""
        action = (f"job {job.job_id}{after}" if job is not None else
                  (f"to submit{after}" if args.dry_run and st.needs_submission else
                   st.detail if st.state == "waiting" else f"skip ({st.state})"))
        epochs = r.config.get("epochs")
        method = label(r.config.get("method", ""))
        print(f"  {r.row:<16} {r.key:<9} {method:<17} epochs {epochs:<7g} {r.run_id}  {action}")
    if args.dry_run:
        print("\nsbatch script of one run:\n" + sbatch_script(cluster, folder, f"table{manifest.table:02d}"))
        return 0
    return _wait(dirs, args.poll) if args.wait else 0


def _with_runner(runs: list[Any]) -> list[Any]:
    """The runs a job could train; the others are named with the reason (a job for them would only fail)."""
    from repro.tasks import task_for

    keep = []
    for r in runs:
        task, why = task_for(r.config)
        if task is None:
            print(f"no-run   {r.label}: {why}")
        else:
            keep.append(r)
    return keep


def _wait(dirs: list[Path], poll: float) -> int:
    """Follow the runs until each is finished, failed (attempts used up or not resubmitted) or pending."""
    import time
    from collections import Counter

    from repro.launch.job import run_statuses

    last = ""
    while True:
        counts = Counter(st.state for st in run_statuses(dirs))
        line = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        if line != last:
            print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)
            last = line
        if not counts.keys() & {"queued", "running", "preempted", "unknown"}:
            return 1 if counts.get("failed") else 0
        time.sleep(poll)


def run_status(args: argparse.Namespace) -> int:
    import time

    from repro.console import aligned, on_terminal, print_table
    from repro.launch.job import run_statuses
    from repro.launch.rundir import RunDir, live_holder
    from repro.tasks import task_for

    manifest, runs = _run_dirs(args)
    root = Path(args.runs)
    dirs = [root / r.run_id for r in runs]
    statuses = run_statuses(dirs, log_lines=args.log_lines)
    state_of = {r.run_id: st.state for r, st in zip(runs, statuses, strict=True)}
    counts: dict[str, int] = {}
    rows: list[list[str]] = []
    tails: list[str] = []
    now = time.time()
    for r, d, st in zip(runs, dirs, statuses, strict=True):
        state, detail = st.state, st.detail
        holder = live_holder(d) if state == "pending" else None
        if holder is not None:  # trained right now by a process on this host (repro run)
            state, detail = "running", f"pid {holder.get('pid')}" + (f" ({holder['command']})"
                                                                     if holder.get("command") else "")
        elif state == "pending" and RunDir(d).state() in ("partial", "corrupt"):
            state = "partial"  # started locally (repro run) and interrupted
        if state in ("pending", "partial"):
            task, why = task_for(r.config)
            if task is None:  # `repro run` / `repro submit` would not start it either
                state, detail = "no-runner", why
        if state in ("pending", "queued") and r.upstream is not None and state_of[r.upstream] != "finished":
            detail = f"waiting for {r.upstream}" + (f" ({detail})" if detail else "")
        counts[state] = counts.get(state, 0) + 1
        job = (f"job {st.job_id}" if st.job_id else "") + (f" [{st.scheduler_state}]" if st.scheduler_state else "")
        rows.append([state, f"{r.row} / {r.key}", *_progress_cells(state, d, now), r.run_id,
                     ": ".join(x for x in (job.strip(), detail) if x)])
        tails.append(st.log_tail if state == "failed" else "")
    header = ["state", "run", "step", "compute", "eta", "updated", "run id", "detail"]
    align = "llrrrrll"
    if on_terminal():
        print_table(header, rows, align)
        for row, tail in zip(rows, tails, strict=True):
            if tail:
                print(f"{row[1]} ({row[6]}), last log lines:\n  " + tail.replace("\n", "\n  "))
    else:
        lines = aligned(header, rows, align)
        print(lines[0])
        for line, tail in zip(lines[1:], tails, strict=True):
            print(line)
            if tail:
                print("           " + tail.replace("\n", "\n           "))
    print(f"table {manifest.table} ({args.profile}): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return 0


def _progress_cells(state: str, run_dir: Path, now: float) -> list[str]:
    """Step k/N, share of the compute done, ETA (while it trains) and the age of the run's last progress record
    (``progress.json``, written by the engine at each train record); ``-`` where there is none."""
    from repro.launch.rundir import run_info
    from repro.train.progress import format_duration, read_progress

    p = read_progress(run_dir)
    if state == "finished":
        steps = p.total_steps if p else (run_info(run_dir).summary or {}).get("steps")
        return [f"{steps}/{steps}" if steps else "-", "100.0%", "-", "-"]
    if p is None:
        return ["-"] * 4
    eta = format_duration(p.remaining_s(now)) if state == "running" else "-"
    return [f"{p.step}/{p.total_steps}", f"{100 * p.done:.1f}%", eta, f"{format_duration(now - p.time)} ago"]
