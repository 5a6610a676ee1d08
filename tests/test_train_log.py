"""metrics.jsonl, plain log lines off a terminal, and the wandb mirror (offline) resuming the same run id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repro.launch.rundir import RunDir
from repro.train.log import MetricsLog
from repro.train.progress import PlanProgress
from repro.train.schedule import StagePlan


def test_metrics_jsonl_and_plain_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = MetricsLog(tmp_path)
    progress = PlanProgress([StagePlan(0, 12, 0.0, 1.0, 32, 1e-3, 0, 10)]).at(1)
    log.write({"kind": "train", "step": 1, "loss": 2.5, "resolution": 12}, progress=progress)
    log.write({"kind": "eval", "step": 1, "top1": 50.0})
    log.truncate(1)  # what a resume from a checkpoint written after the first record does
    log.close()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [{"kind": "train", "step": 1, "loss": 2.5, "resolution": 12}]
    out = capsys.readouterr().out  # not a TTY under pytest: plain lines, no progress bar
    assert "[train] step=1/10 compute=10.0% stage=1/1 B=12 loss=2.5 eta=" in out and "[eval] step=1 top1=50" in out


@pytest.mark.slow
def test_wandb_offline_resumes_the_same_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    RunDir(tmp_path).prepare({"lr": 1e-3}, group="table07")  # as the launcher does: the table is the group
    first = MetricsLog(tmp_path, wandb=True, config={"lr": 1e-3})
    assert first._wandb is not None, "wandb failed to start"
    assert first._wandb.group == "table07"
    run_id = (tmp_path / "wandb_id.txt").read_text()
    first.write({"kind": "train", "step": 1, "loss": 2.5})
    first.close()
    RunDir(tmp_path).prepare({"lr": 1e-3}, group="table12")  # a second table sharing the run keeps the group
    second = MetricsLog(tmp_path, wandb=True, config={"lr": 1e-3})
    assert second._wandb is not None and second._wandb.id == run_id and second._wandb.group == "table07"
    second.close()
    runs = sorted(p.name for p in (tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(run_id in r for r in runs)  # "-1" suffix when both start in one second
