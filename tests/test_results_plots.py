"""Plots: what each draws (points, error bars, axes), and that a plot with nothing to show is not written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import repro.results.plots as plots
from repro.models.zoo import TABLE7


def frame(cells: dict, table: int = 7, measure: str | None = None) -> pd.DataFrame:
    """{(row, column): (paper, reproduced, std, n[, run ids])} as the aggregator's long frame."""
    lines = []
    for (row, column), (paper, reproduced, std, n, *ids) in cells.items():
        lines.append({"table": table, "row": row, "column": column, "paper": paper, "reproduced": reproduced,
                      "std": std, "n": n, "profile": "smoke", "measure": measure, "run_id": ",".join(ids)})
    return pd.DataFrame(lines)


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plots save, with their axes, instead of only the files."""
    figures = []
    original = plots._legend_and_save

    def keep(fig, axes, path, title):
        figures.append((axes, title))
        return original(fig, axes, path, title)

    monkeypatch.setattr(plots, "_legend_and_save", keep)
    return figures


def same(a: list, b: list) -> bool:
    return len(a) == len(b) and np.allclose(sorted(a), sorted(b))


def points(ax) -> list[tuple[float, float]]:
    """The markers drawn (scatter collections; error bars are line collections)."""
    from matplotlib.collections import PathCollection

    return sorted(tuple(map(float, xy)) for c in ax.collections if isinstance(c, PathCollection)
                  for xy in np.asarray(c.get_offsets()))


def test_families_differ_by_colour_and_marker_members_by_shade():
    rows = [e.paper for e in TABLE7]
    style = plots.styles(rows)
    first = {plots.family(r): style[r] for r in reversed(rows)}  # each family's first member
    assert len(first) == 7
    assert len({s.color for s in first.values()}) == 7 and len({s.marker for s in first.values()}) == 7
    assert len({(s.color, s.marker) for s in style.values()}) == 19  # every model distinguishable
    swin = [style[r] for r in ("Swin-Tiny", "Swin-Small", "Swin-Base")]
    assert {s.marker for s in swin} == {first["swin"].marker} and len({s.color for s in swin}) == 3


def test_table7_plot_puts_wall_time_on_both_panels_with_seed_error_bars(tmp_path, drawn):
    f = frame({("ResNet-50", "baseline_top1"): (78.8, 60.0, 1.0, 3), ("ResNet-50", "etpp_top1"): (79.6, 61.0, 2.0, 3),
               ("ResNet-50", "walltime_speedup"): (1.45, 1.25, 0.05, 3),
               ("ResNet-50", "computation_speedup"): (1.49, 1.49, None, 0),
               ("DeiT-Tiny", "baseline_top1"): (72.5, 30.0, None, 1), ("DeiT-Tiny", "etpp_top1"): (73.7, None, None, 0),
               ("DeiT-Tiny", "walltime_speedup"): (1.64, None, None, 0)}, measure="cpu_time")
    path = plots.plot_accuracy_vs_cost(f, tmp_path / "t7.png")
    assert path is not None and path.stat().st_size > 5000
    (paper, ours), title = drawn[0]
    # the paper's wall-time speedups (not the computation ones): 1 / 1.45 and 1 / 1.64; DeiT-Tiny has no reproduced
    # ET++ run yet, so only ResNet-50 is on the reproduced panel, at 1 / 1.25
    assert same(points(paper), sorted([(1.0, 78.8), (1 / 1.45, 79.6), (1.0, 72.5), (1 / 1.64, 73.7)]))
    assert same(points(ours), sorted([(1.0, 60.0), (0.8, 61.0)]))
    assert "wall time" in paper.get_xlabel() and "CPU time" in ours.get_xlabel()
    assert ours.get_shared_x_axes().joined(paper, ours)
    bars = [c for c in ours.collections if type(c).__name__ == "LineCollection"]
    assert len(bars) == 3  # the baseline's y, the method's y and the method's x (3 seeds each)
    assert "ResNet-50" in [t.get_text() for t in ours.figure.legends[0].get_texts()]


def test_no_plot_without_a_reproduced_pair(tmp_path):
    """Table 9 today: paper numbers, no finished run -- and Table 9 has no wall-time column at all."""
    f = frame({("DeiT-Tiny", "baseline_top1"): (72.5, None, None, 0), ("DeiT-Tiny", "etpp_top1"): (74.4, None, None, 0),
               ("DeiT-Tiny", "walltime_speedup"): (1.5, None, None, 0)})
    assert plots.plot_accuracy_vs_cost(f, tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists()


def test_table25_plot_places_the_method_at_its_epochs_over_the_speedup(tmp_path, drawn):
    cells = {}
    for e, b, et in ((100, 65.8, 68.1), (200, 70.5, 71.8), (300, 72.5, 73.3)):
        cells["DeiT-Tiny", f"baseline_top1_{e}ep"] = (b, b - 40, None, 1)
        cells["DeiT-Tiny", f"et_top1_{e}ep"] = (et, et - 40, None, 1)
    cells["DeiT-Tiny", "walltime_speedup"] = (1.55, 1.25, None, 1)
    path = plots.plot_accuracy_vs_epochs(frame(cells, table=25), tmp_path / "t25.png")
    assert path is not None
    (paper, ours), title = drawn[0]
    assert "EfficientTrain" in title and "100/200/300" in title
    assert same(points(paper), sorted([(100, 65.8), (200, 70.5), (300, 72.5), (100 / 1.55, 68.1),
                                                  (200 / 1.55, 71.8), (300 / 1.55, 73.3)]))
    assert same(points(ours), sorted([(100, 25.8), (200, 30.5), (300, 32.5), (80, 28.1), (160, 31.8),
                                                 (240, 33.3)]))
    cells["DeiT-Tiny", "walltime_speedup"] = (1.55, None, None, 0)  # no 300-epoch pair yet: the method has no x
    assert plots.plot_accuracy_vs_epochs(frame(cells, table=25), tmp_path / "none.png") is None


def test_hours_plot_reads_each_runs_time_and_needs_a_pair(tmp_path, drawn):
    runs = pd.DataFrame([{"run_id": "b-s0", "device": "cpu", "cpu_time_s": 7200.0},
                         {"run_id": "b-s1", "device": "cpu", "cpu_time_s": 10800.0},
                         {"run_id": "e-s0", "device": "cpu", "cpu_time_s": 3600.0}]).set_index("run_id", drop=False)
    cells = {("DeiT-Tiny", "baseline_top1"): (72.5, 30.0, 1.0, 2, "b-s0", "b-s1"),
             ("DeiT-Tiny", "etpp_top1"): (74.4, 35.0, None, 1, "e-s0")}
    path = plots.plot_accuracy_vs_hours(frame(cells), runs, tmp_path / "h.png")
    assert path is not None
    (ax,), _ = drawn[0]
    assert same(points(ax), [(1.0, 35.0), (2.5, 30.0)])  # CPU-hours, the baseline's two seeds' mean
    assert "CPU-hours" in ax.get_xlabel() and ax.get_xscale() == "linear"  # a 2.5x span: no log axis
    assert sorted(t.get_text() for t in ax.texts) == ["ET++", "base"]  # each point names its method
    alone = {k: v for k, v in cells.items() if k[1] == "baseline_top1"}
    assert plots.plot_accuracy_vs_hours(frame(alone), runs, tmp_path / "alone.png") is None


def test_a_table_without_finished_runs_writes_no_plot(tmp_path):
    """`repro table` asks every plot its table has columns for; none has a reproduced point, none is written."""
    from repro.commands.table import _plots
    from repro.launch.manifest import load_manifest, manifest_path
    from repro.results.collect import collect_runs, reproduce

    runs = collect_runs(tmp_path / "runs")
    for table in (7, 9, 25):
        manifest = load_manifest(manifest_path(table))
        assert _plots(manifest, reproduce(manifest, "smoke", runs), runs, tmp_path) == []
    assert list(tmp_path.iterdir()) == []
