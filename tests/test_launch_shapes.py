"""Per-run GPU counts on a GPU cluster: a run's task or manifest profile says how many GPUs it trains on (Tables
17/18: the IN-1K pre-training on the manifests' 32, the detectors and segmentors on the 8 of MMDetection's and
MMSegmentation's shipped 8xb2 configs), and each count is submitted with its own nodes x GPUs per node."""

from __future__ import annotations

import json
import re
from pathlib import Path

import fake_sbatch
import pytest

from repro.cli import main
from repro.errors import UserError
from repro.launch.cluster import executor_parameters, load_cluster_profile, make_executor, resources, run_gpus, shape
from repro.launch.manifest import load_manifest, manifest_path
from repro.launch.resolve import resolve
from repro.launch.rundir import RunDir
from repro.tasks import get_task

TEMPLATE = ["--cluster-profile", "example-a100"]
TABLE17 = ["submit", "17", "--profile", "full", "--dry-run", *TEMPLATE]


def test_shape_arithmetic() -> None:
    p = load_cluster_profile("example-a100")  # 4 nodes x 8 GPUs
    assert shape(p, None) is p and shape(p, 32) is p
    assert [(shape(p, n).nodes, shape(p, n).gpus_per_node) for n in (1, 4, 8, 16, 64)] == [
        (1, 1), (1, 4), (1, 8), (2, 8), (8, 8)]
    with pytest.raises(UserError) as err:
        shape(p, 12)
    assert "12 GPUs does not fill whole nodes of 8 GPUs" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError):
        shape(p, 0)
    one = executor_parameters(shape(p, 8))  # CPUs and memory stay per GPU
    assert {k: one[k] for k in ("nodes", "tasks_per_node", "gpus_per_node", "cpus_per_task", "mem_gb")} == {
        "nodes": 1, "tasks_per_node": 8, "gpus_per_node": 8, "cpus_per_task": 10, "mem_gb": 800.0}
    local = load_cluster_profile("local")  # a CPU profile: nothing changes
    assert shape(local, 8) is local and run_gpus(local, 8, 32) is None


def test_run_gpus_prefers_the_task_then_the_manifest_profile() -> None:
    p = load_cluster_profile("example-a100")
    assert run_gpus(p, 8, 32) == 8 and run_gpus(p, None, 32) == 32 and run_gpus(p, None, None) == 32
    assert run_gpus(p.with_overrides(nodes=1), None, None) == 8
    assert get_task("coco").gpus == 8 and get_task("ade20k").gpus == 8 and get_task("in1k").gpus is None


def test_resources_switch_and_restore_the_executor_parameters(tmp_path: Path) -> None:
    p = load_cluster_profile("example-a100")
    executor = make_executor(p, tmp_path, plan_only=True)
    before = dict(executor._executor.parameters)
    with resources(executor, p, 8) as shaped:
        assert shaped.nodes == 1
        inside = executor._executor.parameters
        assert (inside["nodes"], inside["gpus_per_node"], inside["ntasks_per_node"], inside["mem"]) == (
            1, 8, 8, "800GB")
    assert executor._executor.parameters == before


def test_gpu_counts_are_no_part_of_a_runs_identity() -> None:
    """The manifest profile's count rides on the resolved run, outside its config: Table 17's pre-trainings are
    still Table 7's and 8's runs."""
    table17 = resolve(load_manifest(manifest_path(17)), "full")
    assert {r.gpus for r in table17} == {32} and not any("gpus" in r.config for r in table17)
    shared = {r.run_id for t in (7, 8) for r in resolve(load_manifest(manifest_path(t)), "full")}
    assert {r.run_id for r in table17 if r.spec.task == "in1k"} <= shared
    assert {r.gpus for r in resolve(load_manifest(manifest_path(17)), "smoke")} == {None}


def _line(out: str, key: str, row: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(f"  {row} ") and f" {key} " in line)


def test_table17_full_plans_pretrainings_on_32_gpus_and_detectors_on_8(tmp_path, capsys) -> None:
    pytest.importorskip("mmdet")
    assert main([*TABLE17, "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "16 runs, would submit 16: 7 as one array, 9 after the run they start from (afterok)" in out
    assert "per run: in1k: 4 node(s) x 8 GPU(s); coco: 1 node(s) x 8 GPU(s), time limit 48 h" in out
    assert "time-limit bound: at most 14,208 GPU-hours (7 runs x 32 GPUs x 48 h + 9 runs x 8 GPUs x 48 h)" in out
    pretrain = _line(out, "pretrain_baseline", "Cascade Mask-RCNN / Swin-B / EfficientTrain++")
    m = re.search(r"~([\d,]+) GPU-h \(([\d.]+) h on 32 GPUs\)", pretrain)
    assert m and float(m.group(2)) == pytest.approx(float(m.group(1).replace(",", "")) / 32, abs=0.05)
    det = _line(out, "det", "RetinaNet / Swin-T / Baseline")
    assert "no estimate (on 8 GPUs)" in det and "to submit after swin-tiny-baseline-" in det
    array, detectors = fake_sbatch.printed_scripts(out)
    assert out.count("\nsbatch script of ") == 2
    assert "#SBATCH --nodes=4\n" in array and "#SBATCH --array=0-6%7\n" in array and "--mem=800GB" in array
    for flag in ("--nodes=1", "--gpus-per-node=8", "--ntasks-per-node=8", "--mem=800GB", "--dependency=afterok:JOBID"):
        assert f"#SBATCH {flag}\n" in detectors
    assert "each of the 9 runs on 1 node(s) x 8 GPU(s) that start from another run's result" in out
    assert not any(tmp_path.iterdir())


def test_a_count_that_fills_no_whole_nodes_is_refused(tmp_path, capsys) -> None:
    """32 GPUs on 12-GPU nodes: one line, before anything is planned."""
    assert main([*TABLE17, "--runs", str(tmp_path), "--set", "gpus_per_node=12"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a run on 32 GPUs does not fill whole nodes of 12 GPUs" in err


def _finish(runs_dir: Path, run_id: str, config: dict) -> None:
    RunDir(runs_dir / run_id).prepare(config)
    (runs_dir / run_id / "summary.json").write_text(json.dumps({"top1": 81.2}))



def test_two_gpu_counts_go_as_two_arrays_and_dependents_keep_afterok(tmp_path, monkeypatch, capsys) -> None:
    """Swin-T's baseline pre-training finished: its detector goes as an 8-GPU array, the EfficientTrain
    pre-training as a 32-GPU one, and that one's detector after it, on 8 GPUs; what a submission hands to
    sbatch is what the dry run prints."""
    pytest.importorskip("mmdet")
    runs_dir = tmp_path / "runs"
    only = ["--only", "RetinaNet / Swin-T / Baseline", "RetinaNet / Swin-T / EfficientTrain"]
    resolved = {r.key + "/" + r.row: r for r in resolve(load_manifest(manifest_path(17)), "full", only[1:])}
    baseline = resolved["pretrain/RetinaNet / Swin-T / Baseline"]
    _finish(runs_dir, baseline.run_id, baseline.config)
    args = ["submit", "17", "--profile", "full", "--runs", str(runs_dir), *only, *TEMPLATE]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would submit 3: 2 as 2 arrays (one per GPU count), 1 after the run they start from (afterok)" in out
    assert "to submit: 8-GPU job" in _line(out, "det", "RetinaNet / Swin-T / Baseline")
    assert "to submit: 32-GPU job" in _line(out, "pretrain", "RetinaNet / Swin-T / EfficientTrain")
    assert "time-limit bound: at most 2,304 GPU-hours (2 runs x 8 GPUs x 48 h + 1 runs x 32 GPUs x 48 h)" in out
    planned = fake_sbatch.printed_scripts(out)
    assert len(planned) == 3
    assert "#SBATCH --nodes=1\n" in planned[0] and "#SBATCH --nodes=4\n" in planned[1]
    assert "--array" not in planned[0] + planned[1] and "#SBATCH --nodes=1\n" in planned[2]

    kept = fake_sbatch.install(tmp_path, monkeypatch)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "submitted 3 as 2 arrays (one per GPU count), 1 of them after the run they start from (afterok)" in out
    submitted = [(kept / f"{i}.sh").read_text() for i in range(3)]
    assert submitted[:2] == planned[:2]
    assert submitted[2] == planned[2].replace("afterok:JOBID", "afterok:101")  # the EfficientTrain pre-training's
