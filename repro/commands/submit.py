"""``repro submit`` and ``repro status``: a manifest's runs on a cluster (SLURM via submitit) or locally."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from repro.errors import UserError
from repro.launch.manifest import PROFILE_NAMES


def _manifest_args(p: argparse.ArgumentParser, optional: bool = False) -> None:
    p.add_argument("manifest", nargs="?" if optional else None, help="experiments/tableNN.yaml or a table number")
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
        "uses a cluster profile (slurm/profiles/NAME.yaml: --cluster-profile, else $REPRO_CLUSTER_PROFILE, else "
        "'local' for the smoke and proxy profiles; the full profile needs your site's); --cluster local runs "
        "them in this process.",
    )
    _manifest_args(p)
    _cluster_args(p)
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (runs, estimated GPU-hours, the sbatch scripts) and submit nothing")
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


def _cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster", choices=("slurm", "local"), default="slurm")
    p.add_argument("--cluster-profile", help="cluster profile name or path (slurm/profiles/*.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a cluster-profile field, e.g. --set partition=gpu --set time=12:00:00")


def cluster_profile(args: argparse.Namespace) -> Any:
    """The cluster profile ``args`` name, with its ``--set`` overrides: ``--cluster-profile``, else
    ``$REPRO_CLUSTER_PROFILE``, else ``local`` for the CPU profiles (smoke, proxy). The full profile has no
    default: the template's placeholders (partition, account) would be submitted."""
    import os

    from repro.launch.cluster import TEMPLATE, load_cluster_profile

    name = args.cluster_profile or os.environ.get("REPRO_CLUSTER_PROFILE")
    if not name and args.profile == "full":
        raise UserError(f"--profile full needs your site's cluster profile: copy slurm/profiles/{TEMPLATE}.yaml to "
                        "slurm/profiles/<site>.yaml, fill in its partition and account, and pass --cluster-profile "
                        f"<site> (or set REPRO_CLUSTER_PROFILE=<site>); --cluster-profile {TEMPLATE} shows the "
                        "template's plan")
    return load_cluster_profile(name or "local", **_overrides(args.set))


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

    from repro.launch.cluster import make_executor
    from repro.launch.job import follow, gpu_counts, plan_submission, submit_resolved

    cluster = cluster_profile(args)
    without_runner = len(runs)
    runs = _with_runner(runs)
    without_runner -= len(runs)
    dirs = [root / r.run_id for r in runs]
    job_name = f"table{manifest.table:02d}-{args.profile}"
    links = {root / r.run_id: root / r.upstream for r in runs if r.upstream is not None}
    if args.dry_run:
        slurm = cluster.executor == "slurm"
        executor = make_executor(cluster, root / "_submitit", job_name=job_name, plan_only=True)
        plan = plan_submission(dirs, upstream=links, dependencies=slurm, gpus=gpu_counts(cluster, runs, dirs))
        _print_plan(manifest.table, args.profile, cluster, runs, dirs, plan, without_runner)
        if slurm:
            _print_scripts(executor, cluster, plan)
        return 0
    plan, jobs = submit_resolved(runs, root, cluster, job_name)
    submitted = [d for d in dirs if d in jobs]
    arrays = [a for a in plan.arrays if a[0] in jobs]
    print(f"table {manifest.table} ({args.profile}) on cluster profile {cluster.name!r}: {len(dirs)} runs, "
          f"submitted {len(submitted)} as " + (f"{len(arrays)} arrays (one per GPU count)" if len(arrays) > 1 else
                                               "one array")
          + (f" ({without_runner} more have no runner)" if without_runner else "")
          + (f", {sum(d in jobs for d in plan.after)} of them after the run they start from (afterok)"
             if any(d in jobs for d in plan.after) else ""))
    for r, d in zip(runs, dirs, strict=True):
        st, job = plan.statuses[d], jobs.get(d)
        after = f" after {links[d].name}" if d in links else ""
        action = (f"job {job.job_id}{after}" if job is not None else
                  st.detail if st.state == "waiting" else f"skip ({st.state})")
        print(_run_line(r, action))
    return follow(dirs, args.poll) if args.wait else 0


def _run_line(r: Any, action: str, estimate: str = "") -> str:
    from repro.methods import label

    epochs = r.config.get("epochs")
    method = label(r.config.get("method", ""))
    return f"  {r.row:<16} {r.key:<9} {method:<17} epochs {epochs:<7g} {estimate}{r.run_id}  {action}"


def _print_plan(table: int, profile: str, cluster: Any, runs: list[Any], dirs: list[Path], plan: Any,
                without_runner: int) -> None:
    """The dry run's plan: what is submitted how, on how many GPUs each run, its estimated GPU-hours and its
    time-limit bound."""
    import math

    from repro.launch.cluster import describe_shape, shape
    from repro.launch.estimate import gpu_hours, paper_throughput

    todo = plan.array + list(plan.after)
    arrays = plan.arrays
    print(f"table {table} ({profile}) on cluster profile {cluster.name!r}: {len(runs)} runs, would submit "
          f"{len(todo)}" + (f": {len(plan.array)} as {_arrays(arrays)}, {len(plan.after)} after the run they start "
                            "from (afterok)" if plan.after else f" as {_arrays(arrays)}")
          + (f" ({without_runner} more have no runner)" if without_runner else ""))
    hours = cluster.time / 60
    gpus = {d: plan.gpus.get(d, 0) for d in dirs}
    tasks: dict[int, list[str]] = {}  # GPU count -> the tasks of its runs, in order of appearance
    for r, d in zip(runs, dirs, strict=True):
        names = tasks.setdefault(gpus[d], [])
        if r.config.get("task") not in names:
            names.append(str(r.config.get("task")))
    shapes = "; ".join(f"{', '.join(names)}: {describe_shape(shape(cluster, n or None))}"
                       for n, names in tasks.items()) if len(tasks) > 1 else describe_shape(
        shape(cluster, next(iter(tasks), None) or None))
    print(f"per run: {shapes}, time limit {hours:g} h"
          + ("; below each run's estimated GPU-hours (and hours on its GPUs)" if cluster.gpus else ""))
    estimates = {d: gpu_hours(r.config, cluster.speed_vs_3090) if cluster.gpus else None
                 for r, d in zip(runs, dirs, strict=True)}
    known = [estimates[d] for d in todo if estimates[d] is not None]
    if not cluster.gpus:
        print(f"no GPU-hour estimate: cluster profile {cluster.name!r} has no GPUs; time-limit bound: at most "
              f"{len(todo) * hours:g} CPU-job-hours ({len(todo)} runs x {hours:g} h)")
    else:
        if todo:
            print(f"estimated: {sum(known):,.0f} GPU-hours for {len(known)} of the {len(todo)} runs to submit"
                  + (" (the others: the cost model has no compute for their task, model or data set)"
                     if len(known) < len(todo) else ""))
            print(f"  = each run's training compute (equivalent epochs x measured FLOPs per image x images, the cost "
                  f"model) at {paper_throughput().describe()}, x {cluster.speed_vs_3090:g} (speed_vs_3090 of "
                  f"the cluster profile)")
        counts: dict[int, int] = {}  # GPU count -> runs to submit
        for d in todo:
            counts[gpus[d]] = counts.get(gpus[d], 0) + 1
        terms = [f"{k} runs x {n} GPUs x {hours:g} h" for n, k in counts.items()]
        print(f"time-limit bound: at most {sum(k * n for n, k in counts.items()) * hours:,.0f} GPU-hours "
              f"({' + '.join(terms) or f'0 runs x {cluster.gpus} GPUs x {hours:g} h'})")
        long = {d: math.ceil(est / gpus[d] / hours) for d in todo
                if (est := estimates[d]) is not None and est / gpus[d] > hours}
        if long:
            print(f"{len(long)} runs take longer than the {hours:g} h time limit (up to {max(long.values())} "
                  f"limits): each checkpoints at the limit and is requeued")
        over = [d.name for d, n in long.items() if n - 1 > cluster.max_num_timeout]
        if over:
            print(f"warning: {len(over)} runs need more requeues than max_num_timeout={cluster.max_num_timeout} "
                  f"allows ({', '.join(over[:3])}{', ...' if len(over) > 3 else ''}): raise time or "
                  "max_num_timeout in the cluster profile")
    marks = {d: _array_mark(plan, array, i) for array in arrays for i, d in enumerate(array)}
    for r, d in zip(runs, dirs, strict=True):
        st, est, n = plan.statuses[d], estimates[d], gpus[d]
        estimate = (f"{f'no estimate (on {n} GPUs)':<37}" if est is None else
                    f"{f'~{est:,.0f}':>7} GPU-h {f'({est / n:.1f} h on {n} GPUs)':<21}  ") if cluster.gpus else ""
        action = (f"to submit: {marks[d]}" if marks.get(d) else "to submit" if d in marks else
                  f"to submit after {plan.after[d].name}" if d in plan.after else
                  st.detail if st.state == "waiting" else f"skip ({st.state})")
        print(_run_line(r, action, estimate))


def _arrays(arrays: list[list[Path]]) -> str:
    return "one array" if len(arrays) <= 1 else f"{len(arrays)} arrays (one per GPU count)"


def _array_mark(plan: Any, array: list[Path], task: int | None = None) -> str:
    """How the plan marks the runs of an array: ``array task i`` (``i`` for the script's header), the array
    named by its GPU count when there are several (``8-GPU array task i``, ``8-GPU job`` for an array of one);
    nothing for the one run of the one array."""
    name = "" if len(plan.arrays) <= 1 else f"{plan.gpus.get(array[0], 0)}-GPU "
    if len(array) == 1:
        return f"{name}job" if name else ""
    return f"{name}array task {'i' if task is None else task}"


def _print_scripts(executor: Any, cluster: Any, plan: Any) -> None:
    """The sbatch scripts submitit would submit (:func:`repro.launch.cluster.submission_script`): one per job array
    (one per GPU count), and one per GPU count of the runs that start from another run's result."""
    from repro.launch.cluster import dependency, describe_shape, resources, submission_script
    from repro.launch.job import TRAIN_FN

    call = f"RunJob(<run dir>, {TRAIN_FN!r}) (repro.launch.job), pickled by submitit into its folder"
    arrays = plan.arrays
    several = len(arrays) > 1 or len({plan.gpus.get(d) for d in plan.array + list(plan.after)}) > 1
    for array in arrays:
        with resources(executor, cluster, plan.gpus.get(array[0])) as shaped:
            script = submission_script(executor, len(array))
        on = f" on {describe_shape(shaped)}" if several else ""
        mark = _array_mark(plan, array)
        what = (f"the job array of {len(array)} runs{on}; array task i trains the run marked '{mark}' above"
                if len(array) > 1 else f"the job of the run marked '{mark}' above{on}" if mark else
                f"the job of the run to submit{on}")
        print(f"\nsbatch script of {what}; each task runs {call}:\n" + script)
    by_gpus: dict[int | None, list[Path]] = {}
    for d in plan.after:
        by_gpus.setdefault(plan.gpus.get(d), []).append(d)
    for n, after in by_gpus.items():
        with resources(executor, cluster, n) as shaped, dependency(executor, "afterok:JOBID"):
            script = submission_script(executor)
        on = f" on {describe_shape(shaped)}" if several else ""
        print(f"\nsbatch script of each of the {len(after)} runs{on} that start from another run's result (one "
              "job each; JOBID: the job of the run it starts from):\n" + script)


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
