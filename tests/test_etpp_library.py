"""The library API (repro.etpp): the README's example trains a timm model in a plain loop, the step schedule is
Table 6 in steps, the timm scheduler sets what the schedule says, and a sampler started mid-stage continues it."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import torch

from repro import etpp
from repro.errors import UserError

README = Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def readme_example() -> str:
    text = README.read_text()
    block = text[text.index("<!-- library example: begin -->"):text.index("<!-- library example: end -->")]
    return block.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_trains_through_every_stage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(readme_example(), str(README), "exec"), namespace)  # noqa: S102 - the README's own code
    steps = namespace["steps"]
    assert namespace["step"] == steps.total_steps
    lines = out.getvalue().splitlines()
    assert [int(re.search(r"B=(\d+)", line)[1]) for line in lines] == [p.resolution for p in steps.plan] == [27, 46, 64]
    assert torch.isfinite(namespace["loss"])
    # the optimizer holds the LR of the step after the last (the scheduler runs after each update): the cosine's end
    assert namespace["optimizer"].param_groups[0]["lr"] == pytest.approx(steps.at(steps.total_steps).lr)


def test_the_schedule_is_table6_on_compute():
    steps = etpp.schedule(n_train=1000, batch_size=100, lr=4e-3, warmup_epochs=20)  # 200 equivalent epochs at 224
    assert [p.resolution for p in steps.plan] == [96, 160, 224]
    # real epochs per stage: 0.2 * 200 / (96/224)^2 = 217.8, 156.8, 80 (Table 6); 10 steps per epoch
    assert [p.steps for p in steps.plan] == [2178, 1568, 800]
    first, last = steps.at(0), steps.at(steps.total_steps - 1)
    assert (first.resolution, first.magnitude, first.lr) == (96, 0.0, 0.0)  # warm-up from 0, m from 0
    assert last.resolution == 224 and last.magnitude == pytest.approx(9.0, abs=0.01)
    # warm-up ends at 20 of 200 equivalent epochs = 10 % of the compute, inside stage 1 (0-20 %)
    peak = steps.at(steps.plan[0].steps // 2)
    assert peak.fraction == pytest.approx(0.1) and peak.lr_factor == pytest.approx(1.0)
    assert peak.magnitude == pytest.approx(0.9)  # m = 9 x the compute fraction


def test_the_timm_scheduler_sets_each_groups_lr_and_ignores_epochs():
    steps = etpp.schedule(n_train=200, batch_size=20, lr=1e-3, epochs=20, warmup_epochs=2, final_size=64,
                          adapt="linear")
    weights = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.AdamW([{"params": weights[:1]}, {"params": weights[1:], "lr_scale": 0.5}], lr=1e-3)
    scheduler = etpp.CurriculumScheduler(optimizer, steps)
    assert [g["lr"] for g in optimizer.param_groups] == [0.0, 0.0]  # step 0: the warm-up starts at 0
    t = steps.plan[1].first_step + 3
    scheduler.step_update(t)
    lrs = [g["lr"] for g in optimizer.param_groups]
    assert lrs == pytest.approx([steps.at(t).lr, 0.5 * steps.at(t).lr]) and lrs[0] > 0
    scheduler.step(epoch=5)
    assert [g["lr"] for g in optimizer.param_groups] == lrs
    buffer = io.BytesIO()  # its state is plain data: checkpoints load with torch.load(weights_only=True)
    torch.save(scheduler.state_dict(), buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["base_values"] == [1e-3, 1e-3]


def test_a_sampler_started_mid_stage_continues_it_and_workers_get_b_and_m():
    steps = etpp.schedule(n_train=40, batch_size=8, lr=1e-3, epochs=4, warmup_epochs=0.5, final_size=28,
                          adapt="linear")
    stage = steps.plan[1]
    whole = list(etpp.sampler(steps, stage.first_step))
    assert len(whole) == stage.steps
    assert list(etpp.sampler(steps, stage.first_step + 2)) == whole[2:]  # a resume sees the same keys
    keys = whole[0]
    assert {b for _, b, _, _ in keys} == {stage.resolution}
    assert keys[0][2] == pytest.approx(steps.at(stage.first_step).magnitude)
    halves = [list(etpp.sampler(steps, stage.first_step, rank=r, world=2))[0] for r in (0, 1)]
    assert sorted(halves[0] + halves[1]) == sorted(keys)  # DDP ranks split each global batch
    with pytest.raises(UserError, match="outside"):
        etpp.sampler(steps, steps.total_steps)
