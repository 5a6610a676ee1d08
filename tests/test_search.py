"""The curriculum searches (Algorithms 1 and 2): the budget constraint, candidates as resumable runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from repro.core.curriculum import build, load
from repro.launch.search import SearchOptions, alg2_candidate, run_search, within_budget
from repro.tasks.in1k import train_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = {"task": "in1k", "model": "test_vit", "model_kwargs": {"patch_size": 4}, "method": "efficienttrain++",
        "dataset": "fashion-mnist", "final_size": 28, "adapt": "linear", "max_train_images": 64,
        "max_val_images": 32, "batch_size": 16, "workers": 0, "lr": 1e-3, "warmup_epochs": 0.1, "mixup": 0.0,
        "cutmix": 0.0, "reprob": 0.0, "crop_scale": [0.35, 1.0], "crop_pct": 1.0, "eval_every_epochs": 100,
        "log_every_steps": 1}
OPT = SearchOptions(stages=3, candidates=(128, 224), baseline_epochs=1.5, finetune_epochs=0.25)


def test_algorithm2_candidates_are_the_first_part_of_one_schedule() -> None:
    c = build(alg2_candidate(SearchOptions(), [96], 160))
    assert [s.resolution for s in c.stages] == [96, 160, 224]
    assert c.equivalent_epochs == pytest.approx(2 * 40 + 10)  # two stages of T / N = 40, then T_ft = 10
    assert c.lr_epochs == pytest.approx(200)  # the LR of the whole beta T0 = 200 schedule
    assert (c.stages[1].m_start, c.stages[1].m_end, c.stages[2].m_end) == pytest.approx((1.8, 3.6, 4.05))


def verbs(lines: list[str]) -> list[str]:
    """What the local executor did with each run (its lines read ``run k of N: VERB ...``)."""
    return [line.split(": ", 1)[1].split()[0] for line in lines if line.startswith("run ")]


def test_algorithm2_respects_its_budget_and_resumes_without_retraining(tmp_path: Path) -> None:
    lines: list[str] = []
    path = run_search(BASE, OPT, root=tmp_path / "runs", out=tmp_path / "found", log=lines.append)
    found = load(path)
    assert within_budget(found, OPT)
    assert build(found).equivalent_epochs == pytest.approx(OPT.beta * OPT.baseline_epochs)
    assert build(found).resolutions[-1] == 224
    report = json.loads((tmp_path / "found" / "report.json").read_text())
    assert [len(s["candidates"]) for s in report["steps"]] == [2, 2] and report["within_budget"]
    assert verbs(lines).count("start") == 4

    # an interruption: the last step's candidates lost (one gone entirely); the search is run again
    last = report["steps"][-1]["candidates"]
    shutil.rmtree(tmp_path / "runs" / last[0]["run_id"])
    lines.clear()
    again = run_search(BASE, OPT, root=tmp_path / "runs", out=tmp_path / "again", log=lines.append)
    assert verbs(lines).count("start") == 1 and verbs(lines).count("skip") == 3
    assert load(again)["stages"] == found["stages"]
    # what repro train --schedule reads
    cfg = train_config({**BASE, "schedule": yaml.safe_load(again.read_text()), "epochs": found["budget"]})
    assert build(cfg.schedule).resolutions == build(found).resolutions


@pytest.mark.slurm
@pytest.mark.timeout(600)
def test_each_step_goes_as_one_array_on_slurm_and_a_rerun_submits_nothing(local_slurm, tmp_path: Path) -> None:
    from repro.launch.cluster import load_cluster_profile
    from repro.launch.job import read_events
    from repro.launch.search import on_cluster

    runs, lines = tmp_path / "runs", []
    execute = on_cluster(load_cluster_profile("local"), runs, poll=1, log=lines.append)
    path = run_search(BASE, OPT, root=runs, out=tmp_path / "found", log=lines.append, execute=execute)
    assert within_budget(load(path), OPT) and build(load(path)).resolutions[-1] == 224
    report = json.loads((tmp_path / "found" / "report.json").read_text())
    for step in report["steps"]:  # a step's candidates are the tasks of one array, each trained by its job
        jobs = [next(e for e in read_events(runs / c["run_id"]) if e["event"] == "submitted")["job_id"]
                for c in step["candidates"]]
        assert len({j.split("_")[0] for j in jobs}) == 1 and all("_" in j for j in jobs), jobs
        assert all(any(e["event"] == "end" and e["outcome"] == "finished" for e in read_events(runs / c["run_id"]))
                   for c in step["candidates"])
    submitted = [line.split(" (job ")[0] for line in lines if "candidates submitted" in line]
    assert submitted == ["search: stage 1: 2 of 2 candidates submitted", "search: stage 2: 2 of 2 candidates submitted"]

    lines.clear()  # resumed: every candidate finished, so nothing is submitted and the same curriculum comes out
    again = run_search(BASE, OPT, root=runs, out=tmp_path / "again", log=lines.append, execute=execute)
    assert load(again)["stages"] == load(path)["stages"]
    assert [line.split(" on cluster")[0] for line in lines if "submitted" in line] == [
        "search: stage 1: 0 of 2 candidates submitted", "search: stage 2: 0 of 2 candidates submitted"]


def test_repro_search_on_slurm_names_a_missing_cluster_profile_before_training(tmp_path: Path, capsys) -> None:
    from repro.cli import main

    runs = tmp_path / "runs"
    assert main(["search", "--model", "DeiT-Small", "--profile", "smoke", "--cluster", "slurm",
                 "--cluster-profile", "nosuch", "--runs", str(runs)]) == 2
    assert "nosuch.yaml: no such cluster profile; available: " in capsys.readouterr().err
    assert not runs.exists()
