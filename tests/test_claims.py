"""The paper's claims as data: the file is valid, the verdict rules, and ``repro claims`` end to end."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from repro.cli import main
from repro.errors import UserError
from repro.launch.manifest import load_manifest, manifest_path
from repro.launch.resolve import resolve
from repro.results.claims import CLAIMS_FILE, Claim, check, load_claims, needed_runs
from repro.tasks import REGISTRY


def test_every_claim_names_cells_that_exist():
    claims = load_claims()
    assert len(claims.claims) >= 20 and claims.profile == "proxy"
    t7 = next(c for c in claims.claims if c.id == "etpp-matches-baseline")
    assert len(t7.cases) == 7  # one backbone per family of Table 7
    runs = needed_runs(t7, "proxy")
    assert len(runs) == 7 * 2 * 3  # baseline + ET++, 3 seeds each
    assert {r.key for r in runs} == {"baseline", "etpp"}


def _frame(cells):
    return pd.DataFrame([{"row": r, "column": c, "reproduced": m, "std": s, "n": n, "status": "finished",
                          "source": src} for r, c, m, s, n, src in cells])


CLAIM = Claim.model_validate({"id": "x", "table": 7, "says": "", "source": "", "cases": ["A"], "tests": [
    {"terms": {"{case} :: etpp_top1": 1, "{case} :: baseline_top1": -1}, "at_least": -0.3}]})


@pytest.mark.parametrize(("etpp", "std", "verdict"), [
    (80.0, 0.1, "holds"),        # D = 0.0 + 0.3 = 0.3 > 2 se (se = 0.082)
    (79.0, 0.2, "fails"),        # D = -0.7 < -2 se
    (79.7, 0.2, "inconclusive"),  # D = 0.0
    (80.0, 1.0, "inconclusive"),  # D = 0.3 < 2 se (se = 0.816)
])
def test_verdict_is_the_difference_against_twice_its_standard_error(etpp, std, verdict):
    frame = _frame([("A", "etpp_top1", etpp, std, 3, "run"), ("A", "baseline_top1", 80.0, std, 3, "run")])
    (result,) = check(CLAIM, {7: frame})
    assert result.value == pytest.approx(etpp - 80.0)
    assert result.se == pytest.approx((2 * std**2 / 3) ** 0.5)
    assert result.verdict == verdict


def test_one_seed_is_inconclusive_and_cost_cells_are_exact():
    frame = _frame([("A", "etpp_top1", 85.0, None, 1, "run"), ("A", "baseline_top1", 80.0, None, 1, "run")])
    assert check(CLAIM, {7: frame})[0].verdict == "inconclusive"
    cost = Claim.model_validate({"id": "c", "table": 7, "says": "", "source": "", "cases": ["A"], "tests": [
        {"terms": {"{case} :: computation_speedup": 1}, "at_least": 1.45}]})
    for value, verdict in ((1.5, "holds"), (1.45, "holds"), (1.4, "fails")):
        frame = _frame([("A", "computation_speedup", value, None, 0, "cost")])
        assert check(cost, {7: frame})[0].verdict == verdict


def test_a_claim_naming_a_missing_cell_is_one_line(tmp_path, capsys):
    data = yaml.safe_load(CLAIMS_FILE.read_text())
    data["claims"][0]["cases"].append("ResNet-51")
    bad = tmp_path / "claims.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match=r"claim etpp-matches-baseline: table 7 has no row 'ResNet-51'"):
        load_claims(bad)
    assert main(["claims", "--file", str(bad), "--runs", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_claims_report_from_runs(tmp_path, capsys, monkeypatch):
    """Fake proxy runs of Table 7's families: the report gives the T7 claim its verdict with the numbers, the
    runnable claims without runs 'not run' and those whose task has no runner 'not runnable yet' with the reason
    (here COCO's, taken out of the registry)."""
    monkeypatch.delitem(REGISTRY, "coco")
    root = tmp_path / "runs"
    manifest = load_manifest(manifest_path(7))
    t7 = next(c for c in load_claims().claims if c.id == "etpp-matches-baseline")
    for run in resolve(manifest, "proxy", t7.cases):
        top1 = 80.0 + 0.1 * run.seed + (0.5 if run.key == "etpp" else 0.0)
        d = root / run.run_id
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps(run.config))
        (d / "summary.json").write_text(json.dumps({"top1": top1, "wall_time_s": 10.0}))
    out = tmp_path / "claims.md"
    assert main(["claims", "--runs", str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "holds             etpp-matches-baseline" in printed
    assert "not run           same-cost-etpp-beats-baseline  (not in make claims' set; `repro claims --run --only " \
           "same-cost-etpp-beats-baseline` trains its 6 runs)" in printed
    assert "not run           etpp-mae-pretraining-is-lossless" in printed  # MAE runs (tasks mae, mae_finetune)
    assert "not runnable yet  etpp-backbones-detect  (Cascade Mask-RCNN / Swin-T / Baseline / det: no runner for " \
           "task 'coco' yet)" in printed
    text = out.read_text()
    assert "| ResNet-50 | etpp_top1 - baseline_top1 >= -0.3 | etpp_top1 80.60 ± 0.10 (3); baseline_top1 80.10 ± " \
           "0.10 (3) | 0.50 ± 0.08 | holds |" in text
    assert "1 holds" in text

    trained: list = []
    monkeypatch.setattr("repro.launch.local.run_locally", lambda runs, root: trained.extend(runs) or [])
    monkeypatch.setattr("repro.commands.table.write_results", lambda *a: None)
    assert main(["claims", "--run", "--runs", str(root), "--out", str(out)]) == 0
    assert {r.run_id for r in trained} == {r.run_id for r in needed_runs(t7, "proxy")}  # the core claim's only
    trained.clear()
    assert main(["claims", "--run", "--only", "same-cost-etpp-beats-baseline", "--runs", str(root), "--out",
                 str(out)]) == 0
    assert {r.key for r in trained} == {"baseline", "etpp"} and {r.row for r in trained} == {"DeiT-Small"}


def test_the_convergence_bench_doubles_a_run_as_the_profile_would(tmp_path):
    """E vs 2E: the longer run is the profile's own run at twice its epoch_scale (epochs and warm-up alike)."""
    from repro.commands.bench_convergence import doubled

    profile = yaml.safe_load((manifest_path(7).parent / "profiles" / "proxy.yaml").read_text())
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "proxy.yaml").write_text(yaml.safe_dump(profile | {
        "epoch_scale": 2 * profile["epoch_scale"]}))
    (tmp_path / "table07.yaml").write_text(manifest_path(7).read_text())

    def baseline(path):
        return next(r for r in resolve(load_manifest(path), "proxy", ["Swin-Tiny"], 1) if r.key == "baseline")

    short, long = baseline(manifest_path(7)), baseline(tmp_path / "table07.yaml")
    assert short.config["warmup_epochs"] > 0
    assert doubled(short).config == long.config
    assert doubled(short).run_id == long.run_id != short.run_id


def test_the_convergence_bench_compares_the_seeds_it_trained(tmp_path, monkeypatch):
    """E and 2E over the same seeds: a seed of the E run left in the runs directory by another command (make
    claims' 3 seeds) stays out of a ``--seeds 1`` bench (it pooled them: 3 seeds at E against 1 at 2E)."""
    import toy_task

    from repro.tasks import REGISTRY

    monkeypatch.setitem(REGISTRY, "in1k", toy_task.TASK)
    runs, out = tmp_path / "runs", tmp_path / "convergence.json"
    args = ["bench", "convergence", "--rows", "ResNet-50", "--runs", str(runs), "--out", str(out)]
    assert main([*args, "--seeds", "2"]) == 0
    (seed1,) = [d for d in runs.iterdir() if d.name.endswith("-s1") and "baseline" in d.name
                and json.loads((d / "config.json").read_text())["epochs"] == 30]
    (seed1 / "summary.json").write_text(json.dumps({"top1": 50.0, "wall_time_s": 1.0}))  # another seed's result
    assert main([*args, "--seeds", "1"]) == 0
    row = json.loads(out.read_text())["rows"]["ResNet-50"]
    assert (row["top1"], row["n"], row["top1_2x"], row["n_2x"], row["gain_2x"]) == (90.0, 1, 90.0, 1, 0.0)
