"""Plots a reader of the paper expects: accuracy vs training cost (Fig. 1 / Fig. 7) and the curriculum itself."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from repro.core.curriculum import Curriculum  # noqa: E402


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


def plot_accuracy_vs_cost(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    baseline: str = "baseline_top1",
    method: str = "etpp_top1",
    speedup: str = "computation_speedup",
    walltime: str = "walltime_speedup",
) -> Path:
    """Top-1 vs relative training cost per model (like Fig. 1): baseline at cost 1, EfficientTrain++ at
    1 / speedup. Left panel: the paper; right panel: the reproduced runs (cost from the measured time ratio: CPU
    time for runs on CPU). Separate panels because proxy accuracies are not on the paper's scale."""
    wide = {
        "paper": frame.pivot(index="row", columns="column", values="paper"),
        "reproduced": frame.pivot(index="row", columns="column", values="reproduced"),
    }
    order = list(dict.fromkeys(frame["row"]))
    profile = frame["profile"].iloc[0] if len(frame) else ""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True)
    cmap = plt.get_cmap("tab20")
    for ax, (name, table) in zip(axes, wide.items(), strict=True):
        for i, model in enumerate(order):
            r = table.loc[model]
            if pd.isna(r.get(baseline)) or pd.isna(r.get(method)):
                continue
            ratio = r.get(walltime) if name == "reproduced" else r.get(speedup)
            if pd.isna(ratio) or not ratio:
                continue
            color = cmap(i % 20)
            ax.plot([1.0, 1.0 / ratio], [r[baseline], r[method]], color=color, lw=1)
            ax.scatter([1.0], [r[baseline]], color=color, marker="o", s=20)
            ax.scatter([1.0 / ratio], [r[method]], color=color, marker="*", s=70, label=model)
        measured = "CPU time" if (frame["measure"] == "cpu_time").any() else "wall time"
        ax.set_xlabel("relative training computation (baseline = 1)" if name == "paper"
                      else f"relative training {measured}, measured (baseline = 1)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title("paper" if name == "paper" else f"reproduced ({profile})", fontsize=10)
        if not ax.get_legend_handles_labels()[0]:
            ax.text(0.5, 0.5, "no finished pairs of runs yet", ha="center", transform=ax.transAxes)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, fontsize=7, ncol=1, loc="center right")
    table_no = frame["table"].iloc[0] if len(frame) else ""
    fig.suptitle(f"Table {table_no}: baseline (o) vs EfficientTrain++ (*)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
