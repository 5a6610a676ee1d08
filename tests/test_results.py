"""Aggregator: run directories -> DataFrame -> paper vs reproduced tables; holes for missing/partial/corrupt."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from repro.cli import main
from repro.launch.manifest import load_manifest, manifest_path
from repro.launch.resolve import resolve
from repro.results.collect import collect_runs, outside_tolerance, reproduce
from repro.results.render import CSV_COLUMNS, column_decimals, counts, write_table


@pytest.fixture
def table7_runs(tmp_path):
    """Fake run directories for three Table 7 rows under the smoke profile."""
    manifest = load_manifest(manifest_path(7))
    runs = {(r.row, r.key): r for r in resolve(manifest, "smoke")}
    root = tmp_path / "runs"

    def make(row, key, summary=None, partial=False, corrupt=False):
        run = runs[row, key]
        d = root / run.run_id
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps(run.config))
        if summary is not None:
            (d / "summary.json").write_text(json.dumps(summary))
        if partial:
            (d / "metrics.jsonl").write_text('{"step": 1}\n')
        if corrupt:
            (d / "summary.json").write_text("{not json")
        return run.run_id

    make("ResNet-50", "baseline", {"top1": 90.1, "top5": 99.0, "wall_time_s": 300.0})
    make("ResNet-50", "etpp", {"top1": 90.4, "top5": 99.1, "wall_time_s": 200.0})
    make("DeiT-Tiny", "baseline", partial=True)
    make("DeiT-Tiny", "etpp", corrupt=True)
    make("Swin-Tiny", "baseline", {"top1": 81.2, "wall_time_s": 100.0})  # etpp missing
    return manifest, root


def test_collect_marks_holes(table7_runs):
    _, root = table7_runs
    with pytest.warns(UserWarning, match="not valid JSON.*counted as corrupt"):
        runs = collect_runs(root)
    assert sorted(runs["status"].value_counts().items()) == [("corrupt", 1), ("finished", 3), ("partial", 1)]
    assert collect_runs(root / "nowhere").empty


def test_reproduce_joins_paper_and_runs(table7_runs):
    manifest, root = table7_runs
    with pytest.warns(UserWarning):
        frame = reproduce(manifest, "smoke", collect_runs(root))
    assert len(frame) == 114
    cell = frame.set_index(["row", "column"])
    r = cell.loc["ResNet-50", "baseline_top1"]
    assert r.paper == 78.8 and r.reproduced == 90.1 and r.delta == pytest.approx(11.3) and r.status == "finished"
    assert cell.loc["ResNet-50", "walltime_speedup"].reproduced == pytest.approx(1.5)  # 300 s / 200 s
    assert cell.loc["DeiT-Tiny", "baseline_top1"].status == "partial"
    assert cell.loc["DeiT-Tiny", "etpp_top1"].status == "corrupt"
    assert cell.loc["Swin-Tiny", "etpp_top1"].status == "missing"
    assert cell.loc["Swin-Tiny", "walltime_speedup"].status == "missing"  # ratio needs both runs
    assert pd.isna(cell.loc["Swin-Tiny", "walltime_speedup"].reproduced)
    assert bool(frame["proxy"].all())
    # outside the column tolerances: ResNet-50's top-1 (+11.3, +10.8); inside: Swin-Tiny's 81.2 vs 81.3
    # (tolerance 0.3) and ResNet-50's wall-time speedup 1.5 vs 1.45 (tolerance 0.05)
    off = outside_tolerance(frame)
    assert {(r.row, r.column) for r in off.itertuples()} == {("ResNet-50", "baseline_top1"), ("ResNet-50", "etpp_top1")}
    assert cell.loc["Swin-Tiny", "baseline_top1"].within_tolerance
    assert len(outside_tolerance(frame, tolerance=100)) == 0


def test_table_command_renders_files(table7_runs, tmp_path, capsys):
    _, root = table7_runs
    out = tmp_path / "results"
    assert main(["table", "7", "--runs", str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # 3 top-1 + 1 ratio from runs, 19 x 3 cost columns from the cost model
    # 61 filled; within tolerance: Swin-T's top-1 and ResNet-50's wall-time ratio (1.5 vs 1.45, tolerance 0.05), the
    # 38 params/FLOPs cells of the cost model and its 19 computation speedups, less 2 FLOPs and 1 speedup cells
    assert "not valid JSON" in printed and "61 of 114 cells filled; " in printed
    md = (out / "table07-smoke.md").read_text()
    # the paper's precision (one decimal) and one digit more
    assert "| ResNet-50 |" in md and "78.8 / **90.10** (+11.30)" in md and "proxy numbers" in md
    assert "(corrupt)" in md and "(partial)" in md and "61 of 114 cells filled; " in md
    csv = pd.read_csv(out / "table07-smoke.csv")
    assert list(csv.columns) == CSV_COLUMNS and len(csv) == 114
    tex = (out / "table07-smoke.tex").read_text()
    assert r"\begin{tabular}" in tex and "78.8 / 90.10" in tex and r"Top-1 Accuracy: Baseline (\%)" not in tex
    for png in ("table07-smoke_accuracy_vs_cost.png", "curriculum_etpp.png", "curriculum_etpp-convnext.png"):
        assert (out / png).stat().st_size > 5000


def test_compare_exit_status(table7_runs, capsys):
    _, root = table7_runs
    assert main(["compare", "--table", "7", "--runs", str(root)]) == 1
    out = capsys.readouterr().out
    assert "ResNet-50 / baseline_top1: paper 78.8, reproduced 90.1" in out
    assert "table 7 (smoke):" in out and "proxy runs (Fashion-MNIST, CPU): only the cost columns" in out
    assert main(["compare", "--table", "7", "--runs", str(root), "--tolerance", "50"]) == 0


def test_shared_runs_resolve_to_one_directory():
    """The same run asked for by two rows/tables has one run id; a changed setting gives another."""
    manifest = load_manifest(manifest_path(7))
    smoke = {(r.row, r.key): r.run_id for r in resolve(manifest, "smoke")}
    full = {(r.row, r.key): r.run_id for r in resolve(manifest, "full")}
    assert smoke["ResNet-50", "baseline"] != full["ResNet-50", "baseline"]
    assert smoke["ResNet-50", "baseline"] == {(r.row, r.key): r.run_id for r in resolve(manifest, "smoke")}[
        "ResNet-50", "baseline"
    ]
    assert len(set(smoke.values())) == len(smoke) == 38


def test_committed_table7_is_in_the_readme():
    """results/table07-smoke.md (from `make table7` on a fresh clone) is what the README shows, and it is complete."""
    root = Path(__file__).resolve().parents[1]
    rendered = (root / "results" / "table07-smoke.md").read_text().strip()
    readme = (root / "README.md").read_text()
    block = readme.split("<!-- results/table07-smoke.md: begin -->")[1].split("<!-- results/table07-smoke.md: end")[0]
    assert block.strip() == rendered
    assert "114 of 114 cells filled" in rendered and "Profile `smoke`" in rendered
    frame = pd.read_csv(root / "results" / "table07-smoke.csv")
    assert len(frame) == 114 and set(frame["status"]) == {"finished"} and set(frame["profile"]) == {"smoke"}


def test_rendering_never_replaces_results_by_holes(tmp_path, capsys):
    """Without a finished run `repro table` writes nothing (a fresh clone keeps its committed results), and each
    profile has its own file names."""
    out = tmp_path / "results"
    out.mkdir()
    committed = out / "table09-smoke.md"
    committed.write_text("committed\n")
    assert main(["table", "9", "--runs", str(tmp_path / "none"), "--out", str(out)]) == 1
    assert "nothing written" in capsys.readouterr().err
    assert committed.read_text() == "committed\n" and sorted(p.name for p in out.iterdir()) == ["table09-smoke.md"]
    # a full-profile run renders under the full profile's own names
    run = next(r for r in resolve(load_manifest(manifest_path(9)), "full"))
    (tmp_path / "runs" / run.run_id).mkdir(parents=True)
    (tmp_path / "runs" / run.run_id / "summary.json").write_text(json.dumps({"top1": 80.0}))
    assert main(["table", "9", "--profile", "full", "--runs", str(tmp_path / "runs"), "--out", str(out)]) == 0
    assert (out / "table09-full.md").exists() and committed.read_text() == "committed\n"


def test_counts_and_precision(table7_runs, tmp_path):
    """'filled' and 'within tolerance' are counted apart; values carry the paper's precision plus one digit."""
    manifest, root = table7_runs
    with pytest.warns(UserWarning):
        frame = reproduce(manifest, "smoke", collect_runs(root))
    frame.loc[frame.column == "baseline_top1", "reproduced"] += 0.1 + 1e-13  # float noise
    assert counts(frame).startswith("4 of 114 cells filled; 2 of the 4")
    write_table(manifest, frame, tmp_path)
    csv = pd.read_csv(tmp_path / "table07-smoke.csv").set_index(["row", "column"])
    assert csv.loc[("ResNet-50", "baseline_top1"), "reproduced"] == 90.2  # 90.2 + 1e-13 rounded to 2 decimals
    assert column_decimals(manifest)["computation_speedup"] == 2 and column_decimals(manifest)["params_m"] == 0


def test_time_ratios_use_cpu_time_on_cpu_and_wall_time_on_gpu(tmp_path):
    """On CPU the wall-time speedup cell is the CPU-time ratio (the wall one stays in the frame); on GPU the wall."""
    manifest = load_manifest(manifest_path(7))
    runs = {(r.row, r.key): r for r in resolve(manifest, "smoke")}
    root = tmp_path / "runs"
    for key, wall, cpu, device in (("baseline", 300.0, 90.0, "cpu"), ("etpp", 250.0, 60.0, "cpu")):
        d = root / runs["ResNet-50", key].run_id
        d.mkdir(parents=True)
        summary = {"top1": 50.0, "wall_time_s": wall, "cpu_time_s": cpu, "device": device}
        (d / "summary.json").write_text(json.dumps(summary))
    cell = reproduce(manifest, "smoke", collect_runs(root)).set_index(["row", "column"]).loc[
        ("ResNet-50", "walltime_speedup")]
    assert (cell.reproduced, cell.measure, cell.wall_time_ratio) == (1.5, "cpu_time", 1.2)
    for key in ("baseline", "etpp"):
        path = root / runs["ResNet-50", key].run_id / "summary.json"
        path.write_text(path.read_text().replace('"cpu"', '"cuda:0"'))
    cell = reproduce(manifest, "smoke", collect_runs(root)).set_index(["row", "column"]).loc[
        ("ResNet-50", "walltime_speedup")]
    assert (cell.reproduced, cell.measure) == (1.2, "wall_time")


def test_seeds_are_runs_and_cells_pool_them(tmp_path):
    """Each seed is its own run (``seed`` in the config, ``-s<k>`` in the id, the rest shared); a cell shows the
    mean, sample std and n of its finished seeds, and a speedup the mean of the per-seed ratios."""
    manifest = load_manifest(manifest_path(7))
    runs = [r for r in resolve(manifest, "proxy", ["ResNet-50"]) if r.key == "baseline"]
    assert [r.seed for r in runs] == [0, 1, 2] and len({r.cell for r in runs}) == 1
    assert [r.run_id for r in runs] == [f"{runs[0].cell}-s{k}" for k in range(3)]
    assert {json.dumps({k: v for k, v in r.config.items() if k != "seed"}, sort_keys=True) for r in runs} == {
        json.dumps({k: v for k, v in runs[0].config.items() if k != "seed"}, sort_keys=True)}
    assert len(resolve(manifest, "smoke", ["ResNet-50"])) == 2  # one seed unless asked
    assert len(resolve(manifest, "smoke", ["ResNet-50"], seeds=4)) == 8

    root = tmp_path / "runs"
    both = {(r.key, r.seed): r for r in resolve(manifest, "proxy", ["ResNet-50"])}
    for (key, seed), top1, wall in [(("baseline", 0), 90.0, 300.0), (("baseline", 1), 91.0, 330.0),
                                    (("baseline", 2), 92.0, 360.0), (("etpp", 0), 89.0, 200.0),
                                    (("etpp", 1), 90.0, 200.0)]:  # etpp seed 2 not trained
        d = root / both[key, seed].run_id
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps(both[key, seed].config))
        (d / "summary.json").write_text(json.dumps({"top1": top1, "wall_time_s": wall}))
    cell = reproduce(manifest, "proxy", collect_runs(root)).set_index(["row", "column"])
    base, etpp = cell.loc["ResNet-50", "baseline_top1"], cell.loc["ResNet-50", "etpp_top1"]
    assert (base.reproduced, base["std"], base.n) == (pytest.approx(91.0), pytest.approx(1.0), 3)
    assert (etpp.reproduced, etpp["std"], etpp.n) == (pytest.approx(89.5), pytest.approx(0.5 ** 0.5), 2)
    speed = cell.loc["ResNet-50", "walltime_speedup"]
    assert (speed.reproduced, speed.n) == (pytest.approx((1.5 + 1.65) / 2), 2)  # seeds 0 and 1 pair up


def test_seed_spread_widens_the_tolerance_of_compare():
    """A cell is outside tolerance only when its delta exceeds the tolerance plus twice its seeds' std."""
    frame = pd.DataFrame({"reproduced": [80.0, 80.0, 80.0], "paper": [81.0, 81.0, 81.0], "std": [0.2, 0.4, None],
                          "tolerance": [0.3, 0.3, None], "within_tolerance": [False, False, None]})
    assert list(outside_tolerance(frame).index) == [0]
    assert list(outside_tolerance(frame, tolerance=0.1).index) == [0, 1, 2]
