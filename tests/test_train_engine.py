"""The engine on tiny runs: stage crossing with worker-side (B, m), bit-exact resume (replay included),
corrupt-checkpoint fallback, NaN stop, and DDP (2 gloo processes) == 1 process with the same global batch."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from repro.core.curriculum import build
from repro.errors import UserError
from repro.tasks.in1k import train_config
from repro.train.config import ConfigError, TrainConfig
from repro.train.engine import NonFiniteLoss, Trainer, train
from repro.train.schedule import plan_stages
from repro.train.timing import TIMING_KEYS

TINY = dict(model="test_vit", model_kwargs={"patch_size": 4}, final_size=28, adapt="linear", max_train_images=192,
            max_val_images=64,
            batch_size=32, lr=1e-3, warmup_epochs=0.2, workers=0, log_every_steps=2, crop_scale=(0.35, 1.0),
            eval_every_epochs=1.0, seed=3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def without_times(recs: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in recs]


def assert_same_run(a: Path, b: Path) -> None:
    """Two run directories trained the same: equal metrics (times aside) and equal weights in the newest checkpoint."""
    assert without_times(records(a)) == without_times(records(b))
    ca = torch.load(sorted(a.glob("checkpoint-*.pt"))[-1], weights_only=True)
    cb = torch.load(sorted(b.glob("checkpoint-*.pt"))[-1], weights_only=True)
    for name, tensor in ca["model"].items():
        assert torch.equal(tensor, cb["model"][name]), name


def test_etpp_crosses_every_stage_with_worker_side_b_and_m(tmp_path, monkeypatch):
    """Persistent workers receive (B, m) with every sample: record what the transform actually applied."""
    import repro.data.transforms as tr

    seen = tmp_path / "seen.txt"
    original = tr.CurriculumTransform.__call__

    def spy(self, img, resolution, magnitude):
        with open(seen, "a") as f:
            f.write(f"{os.getpid()} {resolution} {magnitude:.4f} {self.randaug.ops[0].magnitude:.4f}\n")
        out = original(self, img, resolution, magnitude)
        assert out.shape[-1] == resolution
        return out

    monkeypatch.setattr(tr.CurriculumTransform, "__call__", spy)
    summary = train(cfg(method="efficienttrain++", epochs=2, workers=2), tmp_path / "run")
    rows = [line.split() for line in seen.read_text().splitlines()]
    assert {r[0] for r in rows} - {str(os.getpid())}, "transforms ran in worker processes"
    assert [int(r) for r in dict.fromkeys(r[1] for r in rows)] == [12, 20, 28]  # 96/160/224 scaled to 28
    mags = [float(r[2]) for r in rows]
    assert min(mags) < 0.5 and max(mags) > 8.0  # m rises 0 -> 9 on compute ...
    for pid in {r[0] for r in rows}:  # ... in the order each worker received its batches
        mine = [float(r[2]) for r in rows if r[0] == pid]
        assert mine == sorted(mine)
    assert all(abs(float(r[2]) - float(r[3])) < 1e-9 for r in rows)  # RandAugment used that m
    train_recs = [r for r in records(tmp_path / "run") if r["kind"] == "train"]
    assert [r["resolution"] for r in train_recs] == sorted(r["resolution"] for r in train_recs)
    assert summary["equivalent_epochs"] == pytest.approx(2, rel=0.05)
    assert [s["resolution"] for s in summary["stages"]] == [12, 20, 28]
    assert (tmp_path / "run" / "summary.json").exists()


@pytest.mark.parametrize("method,extra", [("efficienttrain++", {"n_replay": 1, "replay_capacity": 3}),
                                          ("efficienttrain", {}), ("baseline", {"model_ema": True}),
                                          # drop path draws from the global RNG, as a resumed loader did
                                          ("baseline", {"drop_path": 0.1, "workers": 1}),
                                          ("efficienttrain++", {"drop_path": 0.1, "workers": 1})])
def test_interrupt_and_resume_is_bit_identical(tmp_path, method, extra):
    kw = dict(method=method, epochs=2, **extra)
    reference = train(cfg(**kw), tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        train(cfg(**kw, stop_after_steps=3), tmp_path / "b")  # mid-stage, mid-replay for n_replay=1
    with pytest.raises(KeyboardInterrupt):
        train(cfg(**kw, stop_after_steps=8), tmp_path / "b")
    resumed = train(cfg(**kw), tmp_path / "b")
    for key in ("top1", "top5", "val_loss", "steps", "equivalent_epochs"):
        assert resumed[key] == reference[key]
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_corrupt_newest_checkpoint_falls_back(tmp_path, capfd):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(cfg(method="efficienttrain++", epochs=2, stop_after_steps=18), run)
    ckpts = sorted(run.glob("checkpoint-*.pt"))
    assert len(ckpts) == 2
    ckpts[-1].write_bytes(ckpts[-1].read_bytes()[:100])  # a torn write
    summary = train(cfg(method="efficienttrain++", epochs=2), run)
    err = capfd.readouterr().err
    assert f"{ckpts[-1]}: unusable checkpoint" in err and "falling back to the previous one" in err
    reference = train(cfg(method="efficienttrain++", epochs=2), tmp_path / "ref")
    assert summary["top1"] == reference["top1"]


def test_nan_stops_with_step_and_stage(tmp_path):
    with pytest.raises(NonFiniteLoss, match=r"loss is (nan|inf) at step \d+ \(stage 1, B=12\)"):
        train(cfg(method="efficienttrain++", epochs=2, lr=1e12, warmup_epochs=0, weight_decay=0), tmp_path / "r")


def test_unsupported_settings_are_refused():
    with pytest.raises(UserError, match="does not implement lowpass_radius"):
        train_config({"model": "test_convnext", "lowpass_radius": 40})
    with pytest.raises(UserError, match="batch_size"):
        train_config({"model": "test_convnext", "batch_size": -1})


def test_plan_follows_the_curriculum(tmp_path):
    trainer = Trainer(cfg(method="efficienttrain++", epochs=2, early_large_batch=True, lr_max=1.5e-3), tmp_path)
    plan = trainer.plan
    assert [p.resolution for p in plan] == [12, 20, 28]
    # per-step compute of the final stage, rounded down to a multiple of 8: 32 / (12/28)^2 = 174 -> 168, 62.7 -> 56
    assert [p.batch_size for p in plan] == [168, 56, 32]
    assert plan[0].peak_lr == pytest.approx(1.5e-3)  # eq. (2) capped by lr_max
    assert plan[2].peak_lr == pytest.approx(1e-3)


def test_a_budget_too_short_for_a_stage_is_refused_with_its_minimum():
    """A stage that rounds to no step is refused (one step would train more than asked), naming the least budget
    that gives every stage a step."""
    def plan(epochs: float) -> list:
        config = cfg(method="efficienttrain++", epochs=epochs, batch_size=16, warmup_epochs=0)
        return plan_stages(build("etpp", epochs=epochs, final_size=28, adapt="linear"), config, 64)

    with pytest.raises(ConfigError, match=r"stage 3 \(B=28\) 0.32 steps of 16 images \(64 training images\)") as info:
        plan(0.2)
    assert info.value.field == "epochs"
    need = float(re.search(r"use at least ([\d.]+)", str(info.value))[1])
    assert min(p.steps for p in plan(need)) == 1
    with pytest.raises(ConfigError):
        plan(need - 0.01)
    with pytest.raises(ConfigError, match="larger than the data set"):
        plan_stages(build("baseline", epochs=1, final_size=28), cfg(batch_size=65), 64)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_match_one(tmp_path):
    """Same global batch on 1 and on 2 gloo processes: same curve up to float summation order."""
    config = cfg(method="efficienttrain++", epochs=1,
                 mixup=0, cutmix=0, reprob=0, max_train_images=128)
    (tmp_path / "cfg.json").write_text(config.model_dump_json())
    single = train(config, tmp_path / "one")
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2",
           "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "repro.train.engine", str(tmp_path / "cfg.json"),
                               str(tmp_path / "two")], env={**env, "RANK": str(r), "LOCAL_RANK": str(r)})
             for r in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    double = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert double["world_size"] == 2 and double["steps"] == single["steps"]
    losses1 = [r["loss"] for r in records(tmp_path / "one") if r["kind"] == "train"]
    losses2 = [r["loss"] for r in records(tmp_path / "two") if r["kind"] == "train"]
    assert losses2 == pytest.approx(losses1, rel=1e-3, abs=1e-4)
    assert double["val_loss"] == pytest.approx(single["val_loss"], rel=1e-3)
    # the final metrics: each rank evaluates its share of the validation set, all-reduced
    assert (double["top1"], double["top5"]) == (single["top1"], single["top5"])
    assert double["real_epochs"] == single["real_epochs"] and double["stages"] == single["stages"]


@pytest.mark.slow
def test_gradient_accumulation_keeps_the_global_batch(tmp_path):
    """Micro-batches of 8 accumulated to the global batch of 32 train the same model as batches of 32."""
    kw = dict(method="efficienttrain++", epochs=1, max_train_images=96, drop_path=0.0)
    whole = train(cfg(**kw), tmp_path / "whole")
    accumulated = train(cfg(**kw, micro_batch_size=8), tmp_path / "acc")
    assert accumulated["steps"] == whole["steps"]
    losses = [[r["loss"] for r in records(tmp_path / d) if r["kind"] == "train"] for d in ("whole", "acc")]
    assert losses[1] == pytest.approx(losses[0], rel=1e-4, abs=1e-5)
    a = torch.load(sorted((tmp_path / "whole").glob("checkpoint-*.pt"))[-1], weights_only=True)["model"]
    b = torch.load(sorted((tmp_path / "acc").glob("checkpoint-*.pt"))[-1], weights_only=True)["model"]
    for name, tensor in a.items():
        torch.testing.assert_close(b[name], tensor, rtol=1e-3, atol=1e-4)  # Adam amplifies float-order noise


def test_two_fresh_runs_with_loader_workers_are_identical(tmp_path):
    """With workers the main process's NumPy RNG is never touched by the per-sample seeding; mixup is seeded per
    step, so two runs of the same config give the same losses (they did not before)."""
    kw = dict(method="efficienttrain++", epochs=1, max_train_images=64, max_val_images=32, batch_size=16, workers=1,
              log_every_steps=1)
    a, b = train(cfg(**kw), tmp_path / "a"), train(cfg(**kw), tmp_path / "b")
    losses = [[r["loss"] for r in records(tmp_path / d) if r["kind"] == "train"] for d in ("a", "b")]
    assert len(losses[0]) == a["steps"] and losses[0] == losses[1]
    assert a["top1"] == b["top1"]


def test_lamb_gets_the_configured_betas(tmp_path):
    """CSWin-Base and CAFormer train with LAMB (App. A.1): it must receive betas, not None (which crashes its step)."""
    trainer = Trainer(cfg(opt="lamb", lr=8e-3), tmp_path)
    assert trainer.optimizer.defaults["betas"] == (0.9, 0.999)
    assert Trainer(cfg(opt="sgd"), tmp_path / "sgd").optimizer.defaults.get("betas") is None


def test_table19_ablations_fixed_randaug_and_other_frequency_op(tmp_path):
    """Table 19 (a): without Linear RandAug every sample gets m = 9 from the first step; (b): frequency_op
    replaces the method's way of reaching B (ET++'s low-pass + Lanczos by a plain bicubic resize)."""
    def magnitudes(trainer: Trainer) -> set[float]:
        keys = trainer._loader(trainer.plan[0], 0).batch_sampler
        return {m for batch in keys for (_, _, m, _) in batch}

    linear = Trainer(cfg(method="efficienttrain++", epochs=2), tmp_path / "a")
    fixed = Trainer(cfg(method="efficienttrain++", epochs=2, linear_randaug=False), tmp_path / "b")
    assert max(magnitudes(linear)) < 2.0 and magnitudes(fixed) == {9.0} and fixed.schedule.magnitude_at(0.0) == 9.0
    assert linear.train_set.transform.cfg.frequency_op == "downsample"
    resize = Trainer(cfg(method="efficienttrain++", epochs=2, frequency_op="bicubic"), tmp_path / "c")
    assert resize.train_set.transform.cfg.frequency_op == "bicubic"
    x, _ = resize.train_set[(0, 12, 9.0, 0)]
    assert x.shape[-1] == 12
    with pytest.raises(ValueError, match="frequency_op"):
        cfg(frequency_op="nearest")
