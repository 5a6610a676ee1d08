"""On the local SLURM: a manifest submitted as one array trains real tiny models through the
engine, finishes, renders, and a second submission submits nothing.

The manifest is Table 7's, copied next to a ``profiles/smoke.yaml`` that shrinks the shared smoke profile to a
fraction of an epoch (the shared-profile lookup prefers a profile beside the manifest), so the array's jobs
take seconds of training each; everything else -- resolution, run directories, the job, the engine, the
aggregator -- is what ``make table7 CLUSTER=slurm`` uses.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from repro.cli import main

pytestmark = pytest.mark.slurm
EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _tiny_table7(tmp_path: Path) -> Path:
    shutil.copy(EXPERIMENTS / "table07.yaml", tmp_path / "table07.yaml")
    profile = yaml.safe_load((EXPERIMENTS / "profiles" / "smoke.yaml").read_text())
    profile.update(epoch_scale=0.002, max_train_images=256)
    profile["overrides"].update(max_val_images=128)
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "smoke.yaml").write_text(yaml.safe_dump(profile))
    return tmp_path / "table07.yaml"


def test_manifest_array_finishes_renders_and_is_idempotent(local_slurm, tmp_path, capsys):
    manifest, runs = _tiny_table7(tmp_path), tmp_path / "runs"
    args = ["submit", str(manifest), "--profile", "smoke", "--only", "ResNet-50", "--runs", str(runs)]
    assert main([*args, "--dry-run"]) == 0
    planned = capsys.readouterr().out.split("\nsbatch script of ")[1]
    planned = planned[planned.index("#!/bin/bash"):].rstrip("\n") + "\n"
    assert main([*args, "--wait", "--poll", "1"]) == 0  # follows the array to its end
    out = capsys.readouterr().out
    assert "submitted 2 as one array" in out and out.rstrip().endswith("2 finished")
    (submitted,) = (runs / "_submitit").glob("*_submission.sh")  # what sbatch was given, kept by submitit
    assert submitted.read_text() == planned
    assert main(["status", str(manifest), "--only", "ResNet-50", "--runs", str(runs)]) == 0
    assert "table 7 (smoke): 2 finished" in capsys.readouterr().out
    assert main(args) == 0
    assert "submitted 0 as one array" in capsys.readouterr().out

    # real engine runs: the curriculum's stages, a measured top-1, the table's wandb group
    for d in runs.iterdir():
        if d.name.startswith("_"):
            continue
        summary = json.loads((d / "summary.json").read_text())
        assert 0 < summary["top1"] <= 100 and summary["wall_time_s"] > 0
        assert summary["method"] in ("baseline", "efficienttrain++")
        assert (d / "wandb_group.txt").read_text().strip() == "table07"
        assert json.loads((d / "environment.json").read_text())[0]["packages"]["torch"]
    assert main(["table", str(manifest), "--runs", str(runs), "--out", str(tmp_path / "res"), "--no-plots"]) == 0
    rendered = {(r["row"], r["column"]): r for r in _csv(tmp_path / "res" / "table07-smoke.csv")}
    for column in ("baseline_top1", "etpp_top1", "walltime_speedup"):
        assert rendered["ResNet-50", column]["reproduced"] not in ("", None), column
    assert rendered["ResNet-50", "baseline_top1"]["paper"] == "78.8"


def _csv(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open() as f:
        return list(csv.DictReader(f))
