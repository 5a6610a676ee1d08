"""Progress and ETA along a plan (cost-weighted, not steps per second), progress.json, and the plain log lines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from repro.core.curriculum import build
from repro.train.log import MetricsLog
from repro.train.progress import PlanProgress, format_duration, read_progress, write_progress
from repro.train.schedule import StagePlan, plan_stages

# two stages of 10 steps each: the first (B=12 of 28) is a fifth of the compute, the second four fifths
TWO_STAGES = [StagePlan(0, 12, 0.0, 0.2, 32, 1e-3, 0, 10), StagePlan(1, 28, 0.2, 1.0, 32, 1e-3, 10, 10)]


class Clock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_eta_weighs_steps_by_their_cost() -> None:
    clock = Clock()
    progress = PlanProgress(TWO_STAGES, clock=clock)
    assert progress.eta_s(0) is None  # nothing timed yet
    clock.t = 10.0  # the cheap stage took 10 s: half the steps, a fifth of the compute
    assert progress.done(10) == pytest.approx(0.2)
    assert progress.eta_s(10) == pytest.approx(40.0)  # a flat 1 step/s would say 10 s
    clock.t = 30.0
    assert progress.done(15) == pytest.approx(0.6) and progress.eta_s(15) == pytest.approx(20.0)
    assert progress.done(20) == 1.0 and progress.eta_s(20) == 0.0


def test_once_a_stage_has_timed_steps_its_own_rate_counts() -> None:
    """A small B uses the device less well than its FLOPs say: the second stage's rate, not the first's, predicts
    the rest."""
    clock = Clock()
    progress = PlanProgress(TWO_STAGES, clock=clock)
    clock.t = 10.0
    assert progress.eta_s(10) == pytest.approx(40.0)  # stage 2 not timed yet: the first stage's rate
    clock.t = 14.0  # 0.4 of the compute in 4 s
    assert progress.eta_s(15) == pytest.approx(4.0)  # over the whole run, 14 s for 0.6, it would say 9.3 s


def test_a_resumed_run_times_only_its_own_steps() -> None:
    clock = Clock(100.0)
    progress = PlanProgress(TWO_STAGES, start_step=10, clock=clock)
    clock.t = 110.0  # 0.4 of the compute in 10 s; 0.4 left
    assert progress.eta_s(15) == pytest.approx(10.0)
    at = progress.at(15, images_per_s=3.0)
    assert (at.step, at.total_steps, at.stage, at.stages, at.resolution) == (15, 20, 2, 2, 28)
    assert progress.at(10, TWO_STAGES[0]).stage == 1  # the stage its last step ran in, when the engine says so


def test_progress_follows_the_plans_compute() -> None:
    """On a real ET++ plan (early large batch: steps differ in images too) the progress at each stage's end is the
    share of sum(steps x batch x (B / final)^2) trained so far."""

    class Settings:
        batch_size, early_large_batch, max_batch_size, lr, lr_max, epochs = 32, True, None, 1e-3, None, 20.0

    curriculum = build("etpp", epochs=20, final_size=28, adapt="linear")
    plan = plan_stages(curriculum, Settings(), 960)
    cost = [p.steps * p.batch_size * (p.resolution / 28) ** 2 for p in plan]
    progress = PlanProgress(plan)
    assert len({p.batch_size for p in plan}) > 1
    for i, p in enumerate(plan):
        assert progress.done(p.first_step + p.steps) == pytest.approx(sum(cost[: i + 1]) / sum(cost), abs=0.01)


def test_progress_file_round_trip(tmp_path: Path) -> None:
    assert read_progress(tmp_path) is None
    (tmp_path / "progress.json").write_text("{}")
    assert read_progress(tmp_path) is None  # not a progress record
    at = PlanProgress(TWO_STAGES).at(5)
    write_progress(tmp_path, at)
    assert read_progress(tmp_path) == at
    assert at.remaining_s(at.time + 1e9) == (None if at.eta_s is None else 0.0)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (None, 4.6, 65, 3 * 3600 + 7 * 60 + 20, 2 * 86400 + 4 * 3600)] == [
        "?", "5s", "1m05s", "3h07m", "2d04h"]


def test_plain_lines_carry_step_compute_and_eta_without_flooding(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    progress = PlanProgress(TWO_STAGES, clock=clock)
    log = MetricsLog(tmp_path, plain_every_s=3600)
    for step in (2, 4, 10, 12, 14, 20):
        clock.t = float(step)
        stage = TWO_STAGES[0] if step <= 10 else TWO_STAGES[1]
        log.write({"kind": "train", "step": step, "loss": 2.5, "images_per_s": 64.0, "stage": stage.index + 1},
                  progress=progress.at(step, stage, 64.0))
    log.close()
    lines = capsys.readouterr().out.splitlines()  # not a TTY under pytest: plain lines, no progress bar
    assert [line.split()[1] for line in lines] == ["step=2/20", "step=12/20", "step=20/20"]  # first, stage 2, last
    assert lines[0].startswith("[train] step=2/20 compute=4.0% stage=1/2 B=12 ") and lines[0].endswith(" eta=48s")
    assert "images_per_s=64" in lines[0] and lines[-1].endswith("compute=100.0% stage=2/2 B=28 loss=2.5 "
                                                                "images_per_s=64 eta=0s")
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 6  # every record is kept
    assert json.loads((tmp_path / "progress.json").read_text())["step"] == 20


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_a_tiny_run_logs_progress_lines_off_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from repro.train.config import TrainConfig
    from repro.train.engine import train

    cfg = TrainConfig(model="test_vit", model_kwargs={"patch_size": 4}, final_size=28, adapt="linear",
                      max_train_images=64, max_val_images=32, batch_size=16, lr=1e-3, warmup_epochs=0.2, workers=0,
                      log_every_steps=1, eval_every_epochs=100.0, method="efficienttrain++", epochs=1, seed=0)
    total = train(cfg, tmp_path)["steps"]
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[train]")]
    pattern = (rf"\[train\] step=(\d+)/{total} compute=(\d+\.\d)% stage=([123])/3 B=(?:12|20|28) epoch=\S+ lr=\S+ "
               r"loss=\S+ images_per_s=\S+ eta=(\d+[smhd]\S*)")
    parsed = [m.groups() for line in lines if (m := re.fullmatch(pattern, line))]
    assert len(parsed) == len(lines) < total, lines  # every line has k/N, % and ETA; not one line per record
    stages = [stage for _, _, stage, _ in parsed]
    assert stages == sorted(stages) and set(stages) == {"1", "2", "3"}  # each stage's first record is shown
    assert parsed[-1][:2] == (str(total), "100.0") and parsed[-1][3] == "0s"
    done = read_progress(tmp_path)
    assert done is not None and (done.step, done.done) == (total, 1.0)
