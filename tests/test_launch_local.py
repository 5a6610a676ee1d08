"""`repro run` with the local executor: skip finished, resume partial, report failures and missing runners."""

from __future__ import annotations

import json

import pytest
import toy_task

from repro.cli import main
from repro.errors import UserError
from repro.launch import local
from repro.launch.manifest import load_manifest, manifest_path
from repro.launch.resolve import resolve
from repro.launch.rundir import RunDir, write_json_atomic
from repro.tasks import REGISTRY, task_for


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(REGISTRY, "in1k", toy_task.TASK)
    toy_task.CALLS.clear()
    return toy_task.CALLS


def test_run_then_rerun_is_idempotent(toy, tmp_path, capsys):
    runs = str(tmp_path / "runs")
    assert main(["run", "7", "--only", "ResNet-50", "PVT-Tiny", "--runs", runs]) == 0
    assert len(toy) == 4 and all(not resumed for _, resumed in toy)
    out = capsys.readouterr().out
    assert "table 7 (smoke): 4 finished" in out
    for d in (tmp_path / "runs").iterdir():
        config = json.loads((d / "config.json").read_text())
        assert config["profile"] == "smoke" and config["dataset"] == "fashion-mnist"
        env = json.loads((d / "environment.json").read_text())
        assert env[0]["packages"]["torch"] and "git_sha" in env[0]
    toy.clear()
    assert main(["run", "7", "--only", "ResNet-50", "PVT-Tiny", "--runs", runs]) == 0
    assert toy == [] and "4 skipped" in capsys.readouterr().out
    # and the aggregator sees them
    assert main(["table", "7", "--runs", runs, "--out", str(tmp_path / "res"), "--no-plots"]) == 0
    assert "63 of 114 cells filled" in capsys.readouterr().out  # 4 top-1, 2 ratios, 57 cost cells
    md = (tmp_path / "res" / "table07-smoke.md").read_text()
    assert "78.8 / **90.00**" in md and "79.6 / **90.50**" in md


def test_each_line_says_which_run_of_how_many(toy, tmp_path, capsys):
    runs = str(tmp_path / "runs")
    assert main(["run", "7", "--only", "ResNet-50", "--runs", runs]) == 0
    first = capsys.readouterr().out.splitlines()
    assert [line.split(" [")[0] for line in first[:-1]] == [
        "run 1 of 2: start    ResNet-50 / baseline", "run 1 of 2: done     ResNet-50 / baseline",
        "run 2 of 2: start    ResNet-50 / etpp", "run 2 of 2: done     ResNet-50 / etpp"]
    assert main(["run", "7", "--only", "ResNet-50", "PVT-Tiny", "--runs", runs]) == 0
    again = [line.split(" [")[0] for line in capsys.readouterr().out.splitlines()]
    assert again[:3] == ["run 1 of 4: skip     ResNet-50 / baseline", "run 2 of 4: skip     ResNet-50 / etpp",
                         "run 3 of 4: start    PVT-Tiny / baseline"]  # skipped runs are counted


def test_failures_and_interruptions(toy, tmp_path, capsys):
    runs = str(tmp_path / "runs")
    assert main(["run", "7", "--only", "DeiT-Tiny", "--runs", runs]) == 1
    out = capsys.readouterr().out
    assert "failed" in out and "loss is nan at step 3 (stage 1)" in out and "2 failed" in out
    logs = list((tmp_path / "runs").glob("*/error.log"))
    assert len(logs) == 2 and "RuntimeError" in logs[0].read_text()
    assert main(["run", "7", "--only", "Swin-Tiny", "--runs", runs]) == 130  # interrupted: exit like SIGINT
    assert "repro run: interrupted" in capsys.readouterr().err
    toy.clear()
    assert main(["run", "7", "--only", "Swin-Tiny", "--runs", runs]) == 0
    assert [resumed for _, resumed in toy] == [True, False]  # the interrupted one resumes, the other starts
    assert "resume" in capsys.readouterr().out


def test_setup_error_stops_the_table_with_one_line(toy, tmp_path, capsys):
    """A UserError (e.g. no data set) would hit every run: stop at the first, one line, exit 2, log kept."""
    assert main(["run", "7", "--only", "CSWin-Tiny", "CSWin-Small", "--runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CSWin-Tiny / baseline" in err and "Fashion-MNIST not found (toy)" in err
    assert len(toy) == 1  # the other three runs were not started
    assert "UserError" in next(tmp_path.glob("cswin-tiny-baseline-*/error.log")).read_text()


def test_missing_runner_is_reported_by_name(monkeypatch, tmp_path, capsys):
    """What can run, runs; what cannot is named with the reason, and the exit status says so (3, not 0)."""
    monkeypatch.setitem(REGISTRY, "in1k", toy_task.TASK)
    monkeypatch.setattr(toy_task, "SUPPORTED_METHODS", {"baseline"})
    assert main(["run", "7", "--only", "ResNet-50", "--runs", str(tmp_path)]) == 3
    captured = capsys.readouterr()
    assert "no runner for method 'efficienttrain++' yet" in captured.out and "1 finished, 1 no-runner" in captured.out
    assert captured.err == "repro run: 1 of 2 runs could not start (see the 'no-run' and 'blocked' lines)\n"
    assert len(list(tmp_path.glob("*/summary.json"))) == 1  # the runnable one finished
    monkeypatch.delitem(REGISTRY, "in1k")
    runs = resolve(load_manifest(manifest_path(7)), "smoke", ["ResNet-50"])
    outcomes = local.run_locally(runs, tmp_path / "other", log=lambda _: None)
    assert [o.detail for o in outcomes] == ["no runner for task 'in1k' yet"] * 2


def test_unknown_row_and_profile(capsys):
    assert main(["run", "7", "--only", "ResNet-51"]) == 2
    assert "table 7 has no row 'ResNet-51'" in capsys.readouterr().err


def test_rundir_guards(tmp_path):
    d = RunDir(tmp_path / "r")
    assert d.state() == "new"
    d.prepare({"a": 1})
    assert d.state() == "partial"
    with pytest.raises(UserError, match=r"holds a different config \(a 1 -> 2; b None -> 0.15\)"):
        d.prepare({"a": 2, "b": 0.1 + 0.05}, group="table99")
    assert not (d.path / "wandb_group.txt").exists()  # a refused start leaves nothing behind
    d.prepare({"a": 1})  # same config: fine, a second start is recorded
    assert len(json.loads((d.path / "environment.json").read_text())) == 2
    (d.path / "summary.json").write_text("{torn")
    assert d.state() == "corrupt" and "not valid JSON" in d.info().detail and not d.info().blocked
    write_json_atomic(d.path / "summary.json", {"top1": 1.0})
    assert d.state() == "finished"
    assert not list(d.path.glob(".*.tmp"))


def test_docs_list_what_runs_today():
    """docs/tables.md's 'What runs today' table: per manifest, runs with a runner / distinct runs (smoke profile)."""
    import re
    from pathlib import Path

    from repro.launch.manifest import all_manifests

    doc = (Path(__file__).resolve().parents[1] / "docs" / "tables.md").read_text()
    listed = {int(n): (int(a), int(b)) for n, a, b in re.findall(r"^\| (\d+) \| (\d+) / (\d+) \|", doc, re.M)}
    actual = {}
    for path in all_manifests():
        manifest = load_manifest(path)
        runs = {r.run_id: r for r in resolve(manifest, "smoke")}
        runnable = sum(task_for(r.config)[0] is not None for r in runs.values())
        actual[manifest.table] = (runnable, len(runs))
    assert listed == actual


def test_same_cost_as_baseline_resolves_to_epochs():
    """Table 9: ET at the baseline's cost. Table 5's ET costs 195.9 equivalent epochs per 300 real ones, so the
    same cost as 300 standard epochs is 459 real epochs; ET++ (compute axis) stays at 300; the engine accepts it."""
    from repro.launch.resolve import same_cost_epochs
    from repro.tasks.in1k import train_config

    assert same_cost_epochs("et", 300, 224, "table10") == 459.0
    assert same_cost_epochs("etpp", 300, 224, "table10") == 300.0
    runs = {(r.row, r.key): r.config for r in resolve(load_manifest(manifest_path(9)), "full")}
    assert runs["DeiT-Tiny", "et"]["epochs"] == 459.0 and runs["DeiT-Tiny", "baseline"]["epochs"] == 300
    smoke = {(r.row, r.key): r.config for r in resolve(load_manifest(manifest_path(9)), "smoke")}
    assert smoke["DeiT-Small", "et"]["epochs"] == pytest.approx(459 * 0.02)
    assert train_config(smoke["DeiT-Small", "et"]).epochs == pytest.approx(9.18)


def test_table10_proxies_follow_the_paper_rule_at_their_size():
    """Table 10's 384/512 runs at smoke: final 96/128 and the paper's B at 384/512 scaled down; the 224 runs (and
    Table 7's) carry no paper_final_size, so their run ids do not change."""
    from repro.core.curriculum import build
    from repro.tasks.in1k import train_config

    runs = {(r.row, r.key): r.config for r in resolve(load_manifest(manifest_path(10)), "smoke")}
    et384 = train_config(runs["EfficientTrain", "r384"])
    assert (et384.final_size, et384.paper_final_size) == (96, 384)
    assert build("et", final_size=96, adapt="linear", reference_final=384).resolutions == (40, 68, 96)
    assert "paper_final_size" not in runs["EfficientTrain", "r224"]
    assert all("paper_final_size" not in r.config for r in resolve(load_manifest(manifest_path(7)), "smoke"))


def test_a_runs_overrides_win_over_the_profiles(tmp_path):
    """A run's own overrides are what its row varies: the smoke profile's lr, batch and eval interval must not
    replace them (they did, silently, and the run got the unmodified run's id)."""
    import yaml

    data = yaml.safe_load(manifest_path(7).read_text())
    runs = data["rows"][0]["runs"]
    runs["fast"] = dict(runs["baseline"], overrides={"lr": 0.01, "batch_size": 32, "eval_every_epochs": 5})
    path = tmp_path / "table07.yaml"
    path.write_text(yaml.safe_dump(data))
    resolved = {r.key: r for r in resolve(load_manifest(path), "smoke", ["ResNet-50"])}
    fast, baseline = resolved["fast"], resolved["baseline"]
    assert (fast.config["lr"], fast.config["batch_size"], fast.config["eval_every_epochs"]) == (0.01, 32, 5)
    assert (baseline.config["lr"], baseline.config["batch_size"]) == (2e-3, 64)  # the profile's, elsewhere
    assert fast.run_id != baseline.run_id and fast.evaluation == {}


@pytest.mark.usefixtures("one_torch_thread")
def test_a_timed_pair_trains_in_turns_and_ends_as_uninterrupted_runs(tmp_path):
    """The runs a wall-time ratio divides train in turns (each pausing with a checkpoint at its share of the
    compute, the other resuming), so that a machine's drifting speed slows both alike; their results are those of
    the same runs trained one after the other."""
    from repro.launch.manifest import RunSpec
    from repro.launch.resolve import ResolvedRun

    base = {"task": "in1k", "model": "test_vit", "model_kwargs": {"patch_size": 4}, "dataset": "fashion-mnist",
            "final_size": 28, "adapt": "linear", "max_train_images": 64, "max_val_images": 32, "batch_size": 16,
            "workers": 0, "lr": 1e-3, "warmup_epochs": 0.1, "mixup": 0.0, "cutmix": 0.0, "reprob": 0.0,
            "crop_scale": [0.35, 1.0], "eval_every_epochs": 100, "seed": 0}
    runs = [ResolvedRun(7, "Toy", key, "smoke", RunSpec(model="test_vit", method=method),
                        {**base, "method": method, "epochs": epochs}, f"toy-{key}-s0", {})
            for key, method, epochs in (("baseline", "baseline", 3.0), ("etpp", "efficienttrain++", 2.0))]
    lines: list[str] = []
    paired = local.run_locally(runs, tmp_path / "paired", log=lines.append,
                               side_by_side=[("toy-baseline-s0", "toy-etpp-s0")])
    assert [o.status for o in paired] == ["finished", "finished"]
    turns = [line.split(" [")[0] for line in lines if " of 4) " in line]
    assert turns[:4] == ["run 1 of 2: (turn 1 of 4) start    Toy / baseline",
                         "run 1 of 2: (turn 1 of 4) paused   Toy / baseline",
                         "run 2 of 2: (turn 1 of 4) start    Toy / etpp",
                         "run 2 of 2: (turn 1 of 4) paused   Toy / etpp"]
    assert lines[1].endswith("[toy-baseline-s0] at 25% of its compute")
    assert turns[-4:] == ["run 1 of 2: (turn 4 of 4) resume   Toy / baseline", "run 1 of 2: (turn 4 of 4) done     "
                          "Toy / baseline", "run 2 of 2: (turn 4 of 4) resume   Toy / etpp",
                          "run 2 of 2: (turn 4 of 4) done     Toy / etpp"]
    alone = local.run_locally(runs, tmp_path / "alone", log=lambda line: None)
    assert [o.status for o in alone] == ["finished", "finished"]
    for run in runs:
        a, b = (json.loads((tmp_path / d / run.run_id / "summary.json").read_text()) for d in ("paired", "alone"))
        assert (a["top1"], a["steps"], a["val_loss"]) == (b["top1"], b["steps"], b["val_loss"])
        assert json.loads((tmp_path / "paired" / run.run_id / "config.json").read_text()) == json.loads(
            (tmp_path / "alone" / run.run_id / "config.json").read_text())  # the pause is not part of the run
