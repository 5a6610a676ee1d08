"""`repro submit` / `repro status` without a cluster: plans (--dry-run), the local path, run states."""

from __future__ import annotations

import json
import os
import re

import fake_sbatch
import pytest
import toy_task

from repro.cli import main
from repro.launch.manifest import load_manifest, manifest_path
from repro.tasks import REGISTRY


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(REGISTRY, "in1k", toy_task.TASK)
    toy_task.CALLS.clear()
    return toy_task.CALLS


TEMPLATE = ["--cluster-profile", "example-a100"]


def test_full_dry_run_prints_a_plan(tmp_path, capsys):
    assert main(["submit", "7", "--profile", "full", "--dry-run", "--runs", str(tmp_path), *TEMPLATE]) == 0
    out = capsys.readouterr().out
    assert "38 runs, would submit 38 as one array" in out
    assert "4 node(s) x 8 GPU(s), time limit 48 h" in out
    assert "time-limit bound: at most 58,368 GPU-hours (38 runs x 32 GPUs x 48 h)" in out
    assert "#SBATCH --gpus-per-node=8" in out and "#SBATCH --ntasks-per-node=8" in out
    # the script submitit submits: the array, the job's real name, the command that runs each task
    assert "#SBATCH --array=0-37%38\n" in out and "#SBATCH --job-name=table07-full\n" in out
    assert f"python -u -m submitit.core._submit {(tmp_path / '_submitit').absolute()}\n" in out
    assert "epochs 300" in out and "epochs 200" in out
    assert "to submit: array task 0" in out and "to submit: array task 37" in out
    assert not any(tmp_path.iterdir())  # a dry run writes nothing


def _estimates(out: str) -> dict[tuple[str, str], float]:
    rows = {}
    for line in out.splitlines():
        m = re.match(r"  (\S+)\s+(\S+)\s+.*~([\d,]+) GPU-h", line)
        if m:
            rows[m.group(1), m.group(2)] = float(m.group(3).replace(",", ""))
    return rows


def test_dry_run_estimates_gpu_hours_from_the_cost_model(tmp_path, capsys):
    """The estimate is the cost model's compute at the paper's throughput, stated; not runs x GPUs x limit."""
    assert main(["submit", "7", "--profile", "full", "--dry-run", "--runs", str(tmp_path), *TEMPLATE]) == 0
    out = capsys.readouterr().out
    per_run = _estimates(out)
    assert len(per_run) == 38
    total = re.search(r"estimated: ([\d,]+) GPU-hours for 38 of the 38 runs to submit", out)
    assert total and abs(float(total.group(1).replace(",", "")) - sum(per_run.values())) <= 38
    assert "T multiply-accumulates/s per GPU, the NVIDIA 3090 throughput of the paper's own runs" in out
    # ET++ saves what Table 7's computation column says (ResNet-50 1.49x, DeiT-Tiny 1.56x)
    assert per_run["ResNet-50", "baseline"] / per_run["ResNet-50", "etpp"] == pytest.approx(1.49, abs=0.02)
    assert per_run["DeiT-Tiny", "baseline"] / per_run["DeiT-Tiny", "etpp"] == pytest.approx(1.56, abs=0.05)
    # a GPU twice as fast as the paper's halves them
    assert main(["submit", "7", "--profile", "full", "--dry-run", "--runs", str(tmp_path), *TEMPLATE,
                 "--only", "ResNet-50", "--set", "speed_vs_3090=2"]) == 0
    faster = _estimates(capsys.readouterr().out)
    assert faster["ResNet-50", "baseline"] == pytest.approx(per_run["ResNet-50", "baseline"] / 2, abs=1)


def test_full_profile_takes_no_template_silently(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("REPRO_CLUSTER_PROFILE", raising=False)
    args = ["submit", "7", "--profile", "full", "--dry-run", "--runs", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "copy slurm/profiles/example-a100.yaml to slurm/profiles/<site>.yaml" in err
    assert "--cluster-profile example-a100 shows the template's plan" in err
    monkeypatch.setenv("REPRO_CLUSTER_PROFILE", "example-a100")  # named: taken
    assert main(args) == 0
    assert "on cluster profile 'example-a100'" in capsys.readouterr().out
    monkeypatch.delenv("REPRO_CLUSTER_PROFILE")
    assert main(["submit", "7", "--dry-run", "--runs", str(tmp_path), "--only", "ResNet-50"]) == 0
    out = capsys.readouterr().out  # the smoke profile's default: the local test cluster, CPU only
    assert "on cluster profile 'local'" in out and "no GPU-hour estimate: cluster profile 'local' has no GPUs" in out


def test_runs_without_a_runner_are_named_not_submitted(tmp_path, capsys):
    """Table 12 at full size: CSWin-Large has no implementation, so its 4 pre-trainings and 8 fine-tunings are
    named, not planned (a job would only fail); the fine-tunings of the others wait for their pre-training."""
    assert main(["submit", "12", "--profile", "full", "--dry-run", "--runs", str(tmp_path), *TEMPLATE]) == 0
    out = capsys.readouterr().out
    assert out.count("no implementation of model 'CSWin-Large'") == 12
    assert ("30 runs, would submit 30: 10 as one array, 20 after the run they start from (afterok) (12 more have "
            "no runner)") in out
    assert out.count("to submit after in22k-convnext-base-") == 6  # ConvNeXt-B's 3 pre-trainings x 224^2, 384^2
    assert "#SBATCH --array=0-9%10\n" in out and "#SBATCH --dependency=afterok:JOBID\n" in out


def test_overrides_reach_the_sbatch_script(tmp_path, capsys):
    args = ["submit", "7", "--profile", "full", "--dry-run", "--runs", str(tmp_path), "--only", "DeiT-Tiny", *TEMPLATE]
    assert main([*args, "--set", "partition=a100", "--set", "time=12:00:00", "--set", "nodes=1"]) == 0
    out = capsys.readouterr().out
    assert "#SBATCH --partition=a100" in out and "#SBATCH --time=720" in out and "2 runs" in out
    assert main([*args, "--set", "nodes=zero"]) == 2
    assert "nodes" in capsys.readouterr().err



@pytest.mark.parametrize(("table", "only", "jobs"), [("7", "ResNet-50", 1), ("12", "CSWin-Base / Baseline", 3)])
def test_dry_run_scripts_are_what_submitit_submits(table, only, jobs, tmp_path, monkeypatch, capsys):
    """The dry run's scripts against what a real submission hands to sbatch (a fake sbatch keeps each file):
    Table 7's pair as one array; Table 12's pre-training as one job and its two fine-tunings each after it."""
    kept = fake_sbatch.install(tmp_path, monkeypatch)
    args = ["submit", table, "--profile", "full", "--runs", str(tmp_path / "runs"), "--only", only, *TEMPLATE]
    assert main([*args, "--dry-run"]) == 0
    planned = fake_sbatch.printed_scripts(capsys.readouterr().out)
    assert main(args) == 0
    out = capsys.readouterr().out
    submitted = [(kept / f"{i}.sh").read_text() for i in range(len(list(kept.iterdir())))]
    assert len(submitted) == jobs
    assert submitted[0] == planned[0]
    for script in submitted[1:]:  # the fine-tunings wait for job 100, the pre-training's
        assert script == planned[1].replace("afterok:JOBID", "afterok:100")
    assert "job 100" in out
def test_local_cluster_and_status(toy, tmp_path, capsys):
    runs = str(tmp_path)
    assert main(["status", "7", "--only", "ResNet-50", "--runs", runs]) == 0
    assert "table 7 (smoke): 2 pending" in capsys.readouterr().out
    assert main(["submit", "7", "--cluster", "local", "--only", "ResNet-50", "Swin-Tiny", "--runs", runs]) == 130
    capsys.readouterr()
    assert main(["status", "7", "--only", "ResNet-50", "Swin-Tiny", "--runs", runs]) == 0
    out = capsys.readouterr().out
    assert "2 finished, 1 partial, 1 pending" in out  # Swin-Tiny's baseline was interrupted (toy runner)
    summary = json.loads(next(tmp_path.glob("resnet-50-baseline-*/summary.json")).read_text())
    assert summary["top1"] == 90.0


def test_status_shows_step_compute_and_eta_per_run(toy, tmp_path, capsys):
    """Run directories at several states: finished, trained now by a live process on this host, interrupted, and
    never started; the plain table (stdout is no terminal here) has step k/N, the compute done and the ETA."""
    import socket
    import time

    from repro.launch.resolve import resolve
    from repro.launch.rundir import RunDir
    from repro.train.progress import Progress, write_progress

    runs = resolve(load_manifest(manifest_path(7)), "smoke", ["ResNet-50", "PVT-Tiny"])
    finished, running, stopped, _ = (tmp_path / r.run_id for r in runs)
    for d, r in zip((finished, running, stopped), runs, strict=False):
        RunDir(d).prepare(r.config)
    now = time.time()
    write_progress(finished, Progress(400, 400, 1.0, 3, 3, 28, 0.0, 90.0, now - 60))
    (finished / "summary.json").write_text(json.dumps({"top1": 90.0}))
    write_progress(running, Progress(120, 400, 0.021, 1, 3, 12, 4300.0, 90.0, now - 600))
    (running / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                               "command": "repro run 7"}))
    write_progress(stopped, Progress(300, 400, 0.6, 2, 3, 20, 500.0, 90.0, now - 7200))
    assert main(["status", "7", "--only", "ResNet-50", "PVT-Tiny", "--runs", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    cells = [line.split() for line in lines[1:5]]
    assert lines[0].split() == ["state", "run", "step", "compute", "eta", "updated", "run", "id", "detail"]
    assert [c[:2] + c[4:7] for c in cells] == [
        ["finished", "ResNet-50", "400/400", "100.0%", "-"],
        ["running", "ResNet-50", "120/400", "2.1%", "1h01m"],  # 4300 s at the record, 600 s ago
        ["partial", "PVT-Tiny", "300/400", "60.0%", "-"],  # not training: no ETA
        ["pending", "PVT-Tiny", "-", "-", "-"]]
    assert [c[7] for c in cells] == ["-", cells[1][7], "2h00m", "-"] and cells[1][7].startswith("10m0")
    assert lines[2].endswith(f"pid {os.getpid()} (repro run 7)")
    assert lines[-1] == "table 7 (smoke): 1 finished, 1 partial, 1 pending, 1 running"
