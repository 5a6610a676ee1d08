"""Run directories -> one pandas DataFrame; manifests + runs + cost model -> paper-vs-reproduced cells.

This is the only place where numbers become tables. Missing, partial and corrupt run directories become
marked holes (with a warning), never errors: a table renders with whatever has finished.

Run directory contract (written by ``repro run`` and the trainer): ``config.json`` (the resolved config),
``summary.json`` when finished (``top1``, ``top5``, ``wall_time_s``, ``gpu_hours``, ``equivalent_epochs``,
``flops``...), ``metrics.jsonl`` while training.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from repro.launch.manifest import TIME_METRIC, Manifest, cell_value
from repro.launch.resolve import ResolvedRun, resolve
from repro.launch.rundir import is_finite_number, run_info

CostLookup = Callable[[str, str, dict[str, Any]], float | None]
"""(paper model name, metric, resolved config) -> value from the cost model, or None when unknown."""

RUN_STATUSES = ("finished", "partial", "corrupt", "missing")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_run(path: Path) -> dict[str, Any]:
    """One run directory as a flat record: ``run_id``, ``status``, config fields and summary metrics; the status
    is :func:`~repro.launch.rundir.run_info`'s (``new`` is a ``missing`` hole), a corrupt one with a warning."""
    record: dict[str, Any] = {"run_id": path.name, "path": str(path)}
    config = _read_json(path / "config.json") or {}
    for key in ("model", "method", "schedule", "profile", "dataset", "epochs"):
        record[key] = config.get(key)
    info = run_info(path)
    if info.summary is not None:
        record.update({k: v for k, v in info.summary.items() if isinstance(v, int | float | str | bool)})
    if info.state == "corrupt":
        warnings.warn(f"{info.detail}; the run is counted as corrupt", stacklevel=2)
    record["status"] = "missing" if info.state == "new" else info.state
    return record


def collect_runs(root: str | Path = "runs") -> pd.DataFrame:
    """Every run directory under ``root``, one row each, indexed by run id."""
    root = Path(root)
    records = [read_run(p) for p in sorted(root.iterdir()) if p.is_dir()] if root.is_dir() else []
    frame = pd.DataFrame.from_records(records, columns=None if records else ["run_id", "status", "path"])
    return frame.set_index("run_id", drop=False)


def time_measure(runs: pd.DataFrame, run_ids: list[str]) -> str:
    """The training-time measure that fits the runs' device: CPU time (process + loader workers) when every run
    trained on a CPU, where wall time moves with whatever else the machine runs; wall time otherwise (dedicated
    GPUs, the paper's measure)."""
    rows = [runs.loc[r] for r in run_ids if r in runs.index]
    on_cpu = rows and all(str(r.get("device", "")).startswith("cpu") and is_finite_number(r.get("cpu_time_s"))
                          for r in rows)
    return "cpu_time" if on_cpu else TIME_METRIC


def _metric(runs: pd.DataFrame, run_id: str, metric: str) -> tuple[float | None, str]:
    if run_id not in runs.index:
        return None, "missing"
    row = runs.loc[run_id]
    if row["status"] != "finished":
        return None, str(row["status"])
    for name in (metric, f"{metric}_s"):
        if name in row.index and row[name] is not None and not pd.isna(row[name]):
            value = row[name]
            if not is_finite_number(value):  # e.g. a hand-edited summary: a hole, not a crash
                return None, f"finished with {name} {value!r}, not a number"
            return float(value), "finished"
    return None, f"finished without {metric!r}"


def seed_values(runs: pd.DataFrame, cell: str, metric: str) -> tuple[dict[int, float], str]:
    """A cell's finished seeds (every ``<cell>-s<k>`` under the runs directory, however many were trained) ->
    their values of ``metric``, and the status of the cell: ``finished``, or why seeds are missing."""
    prefix = f"{cell}-s"
    seeds = {int(r[len(prefix):]): r for r in runs.index if r.startswith(prefix) and r[len(prefix):].isdigit()}
    values: dict[int, float] = {}
    statuses = []
    for seed, run_id in sorted(seeds.items()):
        value, status = _metric(runs, run_id, metric)
        if value is not None:
            values[seed] = value
        else:
            statuses.append(status if len(seeds) == 1 else f"seed {seed} {status}")
    if not seeds:
        return values, "missing"
    return values, "finished" if not statuses else "; ".join(statuses)


def _evaluated(runs: pd.DataFrame, cell: str, seeds: list[int], evaluation: dict[str, Any],
               epoch_scale: float) -> tuple[float | None, float | None, int, str]:
    """A cell evaluated by its ``eval_*`` evaluator (``repro.results.evaluators``) on each finished seed."""
    from repro.errors import UserError
    from repro.results.evaluators import evaluate

    if not seeds:
        return None, None, 0, "missing"
    try:
        values = [evaluate(Path(runs.loc[f"{cell}-s{k}", "path"]), evaluation, epoch_scale) for k in seeds]
    except UserError as err:
        return None, None, 0, str(err)
    return (*mean_std(values), "finished")


def mean_std(values: list[float]) -> tuple[float | None, float | None, int]:
    """mean, sample standard deviation (None for one seed) and n."""
    n = len(values)
    if not n:
        return None, None, 0
    mean = sum(values) / n
    std = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else None
    return mean, std, n


def reproduce(
    manifest: Manifest,
    profile: str,
    runs: pd.DataFrame,
    cost: CostLookup | None = None,
) -> pd.DataFrame:
    """Long-form frame: one line per (row, column) with the paper's value, the reproduced one and their delta.

    A run cell pools its seeds: ``reproduced`` is their mean, ``std`` their sample standard deviation and ``n``
    how many finished; a ratio cell (speedups) is the mean of the per-seed ratios of the seeds both runs have."""
    resolved: dict[tuple[str, str], ResolvedRun] = {}
    for r in resolve(manifest, profile):
        resolved.setdefault((r.row, r.key), r)
    proxy = manifest.profiles[profile].dataset != "imagenet-1k"
    lines = []
    for row in manifest.rows:
        for col in manifest.columns:
            paper = cell_value(row.cells[col.key])
            value: float | None = None
            std: float | None = None
            n = 0
            status, run_ids = "not reproduced", []
            measure, wall_ratio = None, None  # time-ratio cells: the measure used, and the wall-time ratio
            if col.source == "run" and (row.label, col.run) in resolved:
                run = resolved[row.label, col.run]  # type: ignore[index]
                values, status = seed_values(runs, run.cell, col.metric or "")
                run_ids = [f"{run.cell}-s{k}" for k in values] or [run.run_id]
                value, std, n = mean_std(list(values.values()))
                if run.evaluation:  # e.g. Table 1: the trained runs evaluated on filtered inputs
                    value, std, n, status = _evaluated(runs, run.cell, list(values), run.evaluation,
                                                       manifest.profiles[profile].epoch_scale)
            elif col.source == "ratio" and (row.label, col.numerator) in resolved:
                num = resolved[row.label, col.numerator]  # type: ignore[index]
                den = resolved.get((row.label, col.denominator or ""))
                run_ids = [num.cell] + ([den.cell] if den else [])
                if col.metric == TIME_METRIC:
                    measure = time_measure(runs, [i for i in runs.index if any(i.startswith(c) for c in run_ids)])
                    wall_ratio = mean_std(list(_ratios(runs, num, den, TIME_METRIC)[0].values()))[0]
                ratios, status = _ratios(runs, num, den, measure or col.metric or "")
                value, std, n = mean_std(list(ratios.values()))
            elif col.source == "cost":
                chosen = resolved.get((row.label, col.run or "")) or next(
                    (r for (label, _), r in resolved.items() if label == row.label), None)
                model = chosen.spec.model if chosen else row.label
                # cost columns describe the paper's full-size model, whatever profile produced the runs
                config = {"final_size": (chosen.spec.final_size if chosen else None) or 224}
                if chosen:  # the paper-level run settings (Table 3's cropping window and epochs)
                    config |= {"method": chosen.spec.method, "schedule": chosen.spec.schedule,
                               "epochs": chosen.spec.epochs, **chosen.spec.overrides}
                value = cost(model, col.metric or "", config) if cost else None
                status = "finished" if value is not None else "cost model unavailable"
            delta = None if value is None or paper is None else value - paper
            within = None if delta is None or col.tolerance is None else abs(delta) <= col.tolerance + 1e-9
            lines.append(
                {
                    "table": manifest.table,
                    "row": row.label,
                    "column": col.key,
                    "label": col.label,
                    "unit": col.unit,
                    "source": col.source,
                    "paper": paper,
                    "reproduced": value,
                    "std": std,
                    "n": n,
                    "delta": delta,
                    "within_tolerance": within,
                    "tolerance": col.tolerance,
                    "profile": profile,
                    "proxy": proxy,
                    "run_id": ",".join(run_ids),
                    "status": status,
                    "measure": measure,
                    "wall_time_ratio": wall_ratio,
                }
            )
    return pd.DataFrame(lines)


def _ratios(runs: pd.DataFrame, num: ResolvedRun, den: ResolvedRun | None,
            metric: str) -> tuple[dict[int, float], str]:
    """Per-seed ratios ``num / den`` of ``metric`` over the seeds both cells finished."""
    a, status_a = seed_values(runs, num.cell, metric)
    b, status_b = seed_values(runs, den.cell, metric) if den else ({}, "missing")
    ratios = {k: a[k] / b[k] for k in a if b.get(k)}
    return ratios, status_a if status_a != "finished" else status_b


def outside_tolerance(frame: pd.DataFrame, tolerance: float | None = None) -> pd.DataFrame:
    """Cells whose reproduced value differs from the paper's by more than the column's (or a given) tolerance
    plus twice the spread of the cell's seeds: a difference the seeds themselves show is not a finding. Columns
    without a tolerance are skipped."""
    have = frame.dropna(subset=["reproduced", "paper"])
    tol = pd.to_numeric(have["tolerance"] if tolerance is None else pd.Series(tolerance, index=have.index))
    spread = 2 * pd.to_numeric(have["std"]).fillna(0.0)
    return have[tol.notna() & ((have["reproduced"] - have["paper"]).abs() > tol + spread + 1e-9)]
