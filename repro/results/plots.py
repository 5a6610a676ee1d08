"""Plots a reader of the paper expects: accuracy vs training cost and the curriculum itself.

* :func:`plot_accuracy_vs_cost` -- Table 7 as a plot: top-1 of the baseline and of the method against their
  relative training wall time, the paper's and the reproduced side by side (the same quantity on both: the
  paper's wall-time speedup, the measured time ratio -- CPU time for runs on CPUs);
* :func:`plot_accuracy_vs_hours` -- top-1 against the measured training time of each run in GPU-hours (CPU-hours
  for runs on CPUs), the axis of the paper's training curves (App. B.1, Fig. 8); the paper gives no
  per-run hours for the Table 7 rows, so only the reproduced runs are drawn;
* :func:`plot_accuracy_vs_epochs` -- Table 25 as the paper's Fig. 7: top-1 against the total training cost for
  100 / 200 / 300 epochs, in epochs of the baseline (the method's epochs divided by its wall-time speedup);
* :func:`plot_curriculum` -- B and m over the compute consumed (Tables 5, 6).

Each model family (Table 7's seven) has its own colour *and* marker, members of a family shades of it;
baselines are hollow, the method filled; seeds pooled in a cell (``n > 1``) get ``std`` error bars. A plot
with no reproduced point to show is not written (the functions return ``None``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from repro.core.curriculum import Curriculum  # noqa: E402
from repro.errors import UserError  # noqa: E402
from repro.launch.rundir import is_finite_number  # noqa: E402
from repro.results.collect import time_measure  # noqa: E402

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h", "<", ">")
METHOD_NAMES = {"baseline": "baseline", "et": "EfficientTrain", "etpp": "EfficientTrain++"}
METHOD_SHORT = {"baseline": "base", "et": "ET", "etpp": "ET++"}


def plot_curriculum(curriculum: Curriculum, path: str | Path) -> Path:
    """Input size B and RandAug magnitude m over the fraction of compute consumed (Table 5 / Table 6)."""
    fig, ax_b = plt.subplots(figsize=(6, 3.2))
    xs, bs, ms = [], [], []
    for s in curriculum.stages:
        xs += [s.start, s.end]
        bs += [s.resolution, s.resolution]
        ms += [s.m_start, s.m_end]
    ax_b.plot([100 * x for x in xs], bs, color="tab:blue", lw=2, label="input size B")
    ax_b.set_xlabel("training compute consumed (%)")
    ax_b.set_ylabel("B (pixels)", color="tab:blue")
    ax_m = ax_b.twinx()
    ax_m.plot([100 * x for x in xs], ms, color="tab:orange", lw=2, ls="--", label="RandAug m")
    ax_m.set_ylabel("RandAug magnitude m", color="tab:orange")
    ax_b.set_title(f"{curriculum.name}: {curriculum.equivalent_epochs:g} equivalent epochs, final size "
                   f"{curriculum.final_size}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path




# -- styles ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Style:
    color: tuple[float, float, float]
    marker: str


def family(row: str) -> str:
    """A row's model family: the model zoo's for Table 7 names, else the label up to its first '-'."""
    from repro.models.zoo import family_of

    try:
        return family_of(row)
    except UserError:
        return row.split("-")[0].lower()


def styles(rows: list[str]) -> dict[str, Style]:
    """One colour and one marker per family (in order of appearance); a family's members get lighter shades of
    its colour, the first the full one."""
    from matplotlib.colors import to_rgb

    families = list(dict.fromkeys(family(r) for r in rows))
    palette = plt.get_cmap("tab10")
    out: dict[str, Style] = {}
    for k, fam in enumerate(families):
        members = [r for r in rows if family(r) == fam]
        base = to_rgb(palette(k % 10))
        for j, row in enumerate(members):
            t = 0.55 * j / max(len(members) - 1, 1)  # 0 (full colour) .. 0.55 (towards white)
            shade = tuple(c + (1 - c) * t for c in base)
            out[row] = Style(shade, MARKERS[k % len(MARKERS)])  # type: ignore[arg-type]
    return out


# -- cells -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    value: float
    err: float | None  # std of the seeds when more than one finished


def _cells(frame: pd.DataFrame, side: str) -> dict[tuple[str, str], Cell]:
    """(row, column) -> the paper's value (``side="paper"``) or the reproduced one with its seeds' std."""
    cells = {}
    for r in frame.itertuples():
        value = getattr(r, side)
        if not is_finite_number(value):
            continue
        err = None
        if side == "reproduced" and is_finite_number(getattr(r, "n", 0)) and getattr(r, "n", 0) > 1:
            std = getattr(r, "std", None)
            err = float(std) if is_finite_number(std) else None
        cells[r.row, r.column] = Cell(float(value), err)
    return cells


def _point(ax: plt.Axes, x: float, y: Cell, style: Style, filled: bool, xerr: float | None = None,
           label: str | None = None) -> None:
    face = style.color if filled else "white"
    if y.err is not None or xerr is not None:
        ax.errorbar([x], [y.value], yerr=y.err, xerr=xerr, fmt="none", ecolor=style.color, elinewidth=1, capsize=2)
    ax.scatter([x], [y.value], marker=style.marker, s=42 if filled else 30, facecolors=[face],
               edgecolors=[style.color], linewidths=1.2, zorder=3, label=label)


def _legend_and_save(fig: plt.Figure, axes: list[plt.Axes], path: str | Path, title: str) -> Path:
    handles: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), fontsize=7, loc="center right", frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.87, 1))
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _meta(frame: pd.DataFrame) -> tuple[str, str, str]:
    """Table number, profile and the reproduced time measure's name ('CPU time' when the runs used it)."""
    measured = "CPU time" if "measure" in frame and (frame["measure"] == "cpu_time").any() else "wall time"
    return str(frame["table"].iloc[0]), str(frame["profile"].iloc[0]), measured


# -- plots -------------------------------------------------------------------------------------------------
def plot_accuracy_vs_cost(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    baseline: str = "baseline_top1",
    method: str = "etpp_top1",
    speedup: str = "walltime_speedup",
) -> Path | None:
    """Top-1 vs relative training wall time per model (Table 7): the baseline at 1, the method at 1 / speedup.

    Both panels show the same quantity: the paper's wall-time speedup (GPUs) and the reproduced time ratio
    (CPU time for runs on CPUs, whose wall time moves with the machine's other load); separate panels because
    proxy accuracies are not on the paper's scale. ``None`` (no file) when no reproduced pair has all three
    cells."""
    rows = list(dict.fromkeys(frame["row"]))
    style = styles(rows)
    table, profile, measured = _meta(frame)
    drawn = {"paper": 0, "reproduced": 0}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True)  # one x scale: like with like
    for ax, side in zip(axes, drawn, strict=True):
        cells = _cells(frame, side)
        for row in rows:
            b, m, s = cells.get((row, baseline)), cells.get((row, method)), cells.get((row, speedup))
            if b is None or m is None or s is None or s.value <= 0:
                continue
            x = 1.0 / s.value
            xerr = s.err / s.value**2 if s.err is not None else None  # the std of 1 / s to first order
            ax.plot([1.0, x], [b.value, m.value], color=style[row].color, lw=0.8, zorder=2)
            _point(ax, 1.0, b, style[row], filled=False)
            _point(ax, x, m, style[row], filled=True, xerr=xerr, label=row)
            drawn[side] += 1
        ax.set_ylabel("top-1 accuracy (%)")
        if side == "paper":
            ax.set_title("paper (GPUs)", fontsize=9)
            ax.set_xlabel("relative training wall time (baseline = 1)")
        else:
            ax.set_title(f"reproduced ({profile})", fontsize=9)
            ax.set_xlabel(f"relative training {measured}, measured (baseline = 1)")
        ax.grid(alpha=0.3)
    if not drawn["reproduced"]:
        plt.close(fig)
        return None
    name = METHOD_NAMES.get(method.removesuffix("_top1"), method)
    return _legend_and_save(fig, list(axes), path, f"Table {table}: baseline (hollow) vs {name} (filled)")


def plot_accuracy_vs_hours(
    frame: pd.DataFrame,
    runs: pd.DataFrame,
    path: str | Path,
    *,
    columns: tuple[str, ...] = ("baseline_top1", "etpp_top1"),
) -> Path | None:
    """Top-1 vs each run's measured training time (the paper's Fig. 8 axis): GPU-hours (``gpu_hours``: wall time
    x GPUs), or CPU-hours (``cpu_time_s``) when every run trained on a CPU. A cell's point is the mean over its
    finished seeds (error bars: their std); a model's cells are joined in ``columns`` order, the first hollow,
    each labelled with its method; the x axis is logarithmic when the times span more than 10x.
    ``None`` when no model has two such cells (a baseline alone compares nothing)."""
    rows = list(dict.fromkeys(frame["row"]))
    style = styles(rows)
    table, profile, _ = _meta(frame)
    cells = _cells(frame, "reproduced")
    ids = {(r.row, r.column): [i for i in str(r.run_id).split(",") if i and i != "nan"] for r in frame.itertuples()
           if r.column in columns}
    measure = time_measure(runs, [i for v in ids.values() for i in v])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn, spread = 0, []
    for row in rows:
        line = []
        for k, col in enumerate(columns):
            top1, hours = cells.get((row, col)), _hours(runs, ids.get((row, col), []), measure)
            if top1 is None or hours is None:
                continue
            _point(ax, hours[0], top1, style[row], filled=k > 0, xerr=hours[1], label=row if k > 0 else None)
            short = col.removesuffix("_top1")
            ax.annotate(METHOD_SHORT.get(short, short), (hours[0], top1.value), xytext=(4, 3),
                        textcoords="offset points", fontsize=6, color="0.3")
            line.append((hours[0], top1.value))
        if len(line) > 1:
            ax.plot(*zip(*line, strict=True), color=style[row].color, lw=0.8, zorder=2)
            drawn += 1
            spread += [x for x, _ in line]
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("training CPU-hours, measured" if measure == "cpu_time" else "training GPU-hours, measured")
    ax.set_ylabel("top-1 accuracy (%)")
    if max(spread) > 10 * min(spread):  # models of very different cost (Table 7's 19)
        ax.set_xscale("log")
    ax.margins(x=0.08)  # room for the labels
    ax.grid(alpha=0.3, which="both")
    ax.set_title(f"reproduced ({profile})", fontsize=9)
    names = " -> ".join(METHOD_NAMES.get(c.removesuffix("_top1"), c) for c in columns)
    return _legend_and_save(fig, [ax], path, f"Table {table}: top-1 vs training time ({names})")


def _hours(runs: pd.DataFrame, run_ids: list[str], measure: str) -> tuple[float, float | None] | None:
    """Mean and (for several seeds) std of the runs' training hours in ``measure``; None when one lacks it."""
    values = []
    for run_id in run_ids:
        if run_id not in runs.index:
            return None
        r = runs.loc[run_id]
        value = r.get("cpu_time_s") if measure == "cpu_time" else r.get("gpu_hours")
        if not is_finite_number(value) or value <= 0:
            return None
        values.append(float(value) / 3600 if measure == "cpu_time" else float(value))
    if not values:
        return None
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else None
    return mean, std


EPOCH_COLUMN = re.compile(r"^(?P<method>[a-z]+)_top1_(?P<epochs>\d+)ep$")


def epoch_columns(keys: list[str]) -> dict[str, dict[int, str]]:
    """``{method: {epochs: column}}`` for columns named ``<method>_top1_<E>ep`` (Table 25)."""
    out: dict[str, dict[int, str]] = {}
    for key in keys:
        m = EPOCH_COLUMN.match(key)
        if m:
            out.setdefault(m["method"], {})[int(m["epochs"])] = key
    return out


def plot_accuracy_vs_epochs(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    speedup: str = "walltime_speedup",
) -> Path | None:
    """Top-1 vs total training cost for a varying number of epochs (Table 25 drawn as the paper's Fig. 7).

    The cost is in epochs of the baseline: the baseline's E epochs cost E, the method's E / its wall-time speedup
    (Table 25 gives one speedup per model, "the same as 300-epoch"; reproduced: the measured 300-epoch ratio).
    A model's budgets are joined per method: dashed and hollow the baseline, solid and filled the method.
    ``None`` when the reproduced panel would have no point of the method (no speedup or no top-1 yet)."""
    columns = epoch_columns(list(dict.fromkeys(frame["column"])))
    base = columns.pop("baseline", {})
    if not base or len(columns) != 1:
        raise UserError(f"an accuracy-vs-epochs plot needs baseline_top1_<E>ep and one method's columns, got "
                        f"{sorted(dict.fromkeys(frame['column']))}")
    (method, ours), = columns.items()
    rows = list(dict.fromkeys(frame["row"]))
    style = styles(rows)
    table, profile, measured = _meta(frame)
    drawn = {"paper": 0, "reproduced": 0}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True)  # one x scale: like with like
    for ax, side in zip(axes, drawn, strict=True):
        cells = _cells(frame, side)
        for row in rows:
            s = cells.get((row, speedup))
            for name, cols, scale in (("baseline", base, 1.0), (method, ours, s.value if s else None)):
                if scale is None or scale <= 0:
                    continue
                points = [(e / scale, cells[row, c]) for e, c in sorted(cols.items()) if (row, c) in cells]
                for x, y in points:
                    _point(ax, x, y, style[row], filled=name != "baseline", label=row if name != "baseline" else None)
                if len(points) > 1:
                    ax.plot([x for x, _ in points], [y.value for _, y in points], color=style[row].color, lw=0.8,
                            ls="--" if name == "baseline" else "-", zorder=2)
                drawn[side] += len(points) if name != "baseline" else 0
        ax.set_ylabel("top-1 accuracy (%)")
        if side == "paper":
            ax.set_title("paper (GPUs)", fontsize=9)
            ax.set_xlabel("training cost: wall time in baseline epochs")
        else:
            ax.set_title(f"reproduced ({profile})", fontsize=9)
            ax.set_xlabel(f"training cost: {measured} in baseline epochs (paper's epochs)")
        ax.grid(alpha=0.3)
    if not drawn["reproduced"]:
        plt.close(fig)
        return None
    name = METHOD_NAMES.get(method, method)
    budgets = "/".join(str(e) for e in sorted(base))
    return _legend_and_save(fig, list(axes), path, f"Table {table}: baseline (hollow, dashed) vs {name} (filled) "
                            f"at {budgets} epochs")
