"""Training time: CPU time of the steps (process + loader workers) survives a competing load, wall time does not."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest
import torch

from repro.train.config import TrainConfig
from repro.train.engine import train
from repro.train.timing import TrainClock, children_cpu_seconds

RUN = dict(model="test_vit", model_kwargs={"patch_size": 4}, final_size=28, adapt="linear", max_train_images=512,
           max_val_images=64, batch_size=32, lr=1e-3, warmup_epochs=0.2, workers=1, log_every_steps=8,
           crop_scale=(0.35, 1.0), eval_every_epochs=1.0, seed=3, method="efficienttrain++", epochs=3.0)


def _spin(deadline: float) -> None:
    while time.monotonic() < deadline:
        pass


def _burn(cpu: mp.sharedctypes.Synchronized) -> None:  # type: ignore[name-defined]
    sum(i * i for i in range(3_000_000))
    cpu.value = time.process_time()


def _child_cpu() -> float:
    """Runs a child that burns CPU and returns the CPU time it reports for itself."""
    ctx = mp.get_context("fork")
    cpu = ctx.Value("d", 0.0)
    p = ctx.Process(target=_burn, args=(cpu,))
    p.start()
    p.join()
    return float(cpu.value)


def test_clock_counts_steps_and_exited_children_only():
    clock = TrainClock(torch.device("cpu"))
    clock.stage_started()
    with clock.step():
        sum(i * i for i in range(200_000))
    with clock.excluded():  # a child that is not training: not counted
        first = _child_cpu()
    second = _child_cpu()
    clock.stage_finished()
    assert clock.main_cpu_s > 0 and clock.wall_s >= clock.main_cpu_s * 0.5
    # the second child only: its count (process exit included) is far from both children's, first + second
    assert first > 0.05 and clock.workers_cpu_s == pytest.approx(second, abs=first / 2)
    restored = TrainClock(torch.device("cpu"))
    restored.load_state_dict(clock.state_dict())
    assert restored.summary() == clock.summary()
    assert children_cpu_seconds() >= clock.workers_cpu_s


@pytest.mark.slow
def test_cpu_time_survives_a_competing_load_and_wall_time_does_not(tmp_path):
    quiet = train(TrainConfig(**RUN), tmp_path / "quiet")
    assert quiet["cpu_time_workers_s"] > 0  # the loader worker's decoding and augmentation are counted
    assert quiet["cpu_time_s"] == pytest.approx(quiet["cpu_time_main_s"] + quiet["cpu_time_workers_s"])
    ctx = mp.get_context("fork")
    deadline = time.monotonic() + 120  # bounded even if the test dies before it stops them
    spinners = [ctx.Process(target=_spin, args=(deadline,), daemon=True) for _ in range(2)]
    for p in spinners:
        p.start()
    try:
        busy = train(TrainConfig(**RUN), tmp_path / "busy")
    finally:
        for p in spinners:
            p.terminate()
            p.join()
    assert busy["top1"] == quiet["top1"]  # the same run
    assert busy["wall_time_s"] > 1.3 * quiet["wall_time_s"]
    assert busy["cpu_time_s"] == pytest.approx(quiet["cpu_time_s"], rel=0.2)


def test_cuda_steps_are_timed_by_events(monkeypatch):
    """On CUDA each step is bracketed by two events; their elapsed times are summed when the clock syncs."""

    class FakeEvent:
        clock = 0.0

        def __init__(self, enable_timing: bool) -> None:
            assert enable_timing
            self.at = None

        def record(self) -> None:
            FakeEvent.clock += 0.25  # each record: 250 ms of device time later
            self.at = FakeEvent.clock

        def synchronize(self) -> None:
            assert self.at is not None

        def elapsed_time(self, end: FakeEvent) -> float:
            return (end.at - self.at) * 1000  # milliseconds, as torch.cuda.Event

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    clock = TrainClock(torch.device("cuda", 0))
    for _ in range(3):
        with clock.step():
            pass
    assert clock.summary()["gpu_time_s"] == pytest.approx(0.75)
    assert clock.state_dict()["gpu_s"] == pytest.approx(0.75)  # synced once, not counted twice
    assert "gpu_time_s" not in TrainClock(torch.device("cpu")).summary()


def test_a_paused_stage_keeps_its_workers_cpu_time_and_resumes_exactly(tmp_path):
    """A run paused mid-stage (``pause_at_fraction``) shuts its loader down before the checkpoint, so the workers'
    CPU time of the paused part is counted; the resumed run ends as the uninterrupted one."""
    from repro.launch.signals import Paused

    run = {**RUN, "method": "baseline", "epochs": 2.0}  # one stage: the pause falls inside it
    whole = train(TrainConfig(**run), tmp_path / "whole")
    with pytest.raises(Paused):
        train(TrainConfig(**run, pause_at_fraction=0.5), tmp_path / "paused")
    resumed = train(TrainConfig(**run), tmp_path / "paused")
    assert (resumed["top1"], resumed["steps"]) == (whole["top1"], whole["steps"])
    # without the shutdown, the first half's worker time was lost: 0.57x the uninterrupted run's (0.23 vs 0.41 s);
    # the pause adds a second loader start, whose workers' start-up counts too (measured up to 1.32x)
    ratio = resumed["cpu_time_workers_s"] / whole["cpu_time_workers_s"]
    assert 0.8 <= ratio <= 1.6, ratio
