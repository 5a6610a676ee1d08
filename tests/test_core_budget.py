"""Compute accounting, the LR schedule on compute (Table 24) and the early-large-batch rule (eq. 2)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repro.core.batching import scaled_lr, stage_batch_sizes, stage_peak_lrs
from repro.core.budget import WarmupCosine, computation_speedup, curriculum_compute, stage_compute
from repro.core.curriculum import build
from repro.errors import UserError


def test_etpp_saves_one_and_a_half_times():
    """ET++ with 200 equivalent epochs vs the 300-epoch baseline: 1.5x under the ideal cost (Table 7 ~1.5x)."""
    assert computation_speedup(build("etpp")) == pytest.approx(1.5)
    assert computation_speedup(build("baseline")) == pytest.approx(1.0)


def test_table3_relative_costs_under_ideal_cost():
    """Table 3 lists relative training costs of cropping for the first 225/150/75 of 300 epochs. The ideal
    (B/224)^2 model gives 0.18 / 0.33 / 0.51 / 0.73 for the whole run and 0.88 / 0.94 for 75 epochs at
    B = 160 / 192 -- within 0.02 of the paper's DeiT-S column (0.18 / 0.31 / 0.49 / 0.72, 0.87 / 0.93); the
    remaining gap is the cost that does not scale with pixels, which the model zoo measures."""
    def relative(b: int, epochs_at_b: int) -> float:
        return stage_compute([epochs_at_b, 300 - epochs_at_b], [b, 224], lambda x: (x / 224) ** 2, 224) / 300

    paper = {(96, 300): 0.18, (128, 300): 0.31, (160, 300): 0.49, (192, 300): 0.72, (160, 75): 0.87,
             (192, 75): 0.93, (96, 225): 0.38, (160, 150): 0.75}
    for (b, e), value in paper.items():
        assert relative(b, e) == pytest.approx(value, abs=0.025), (b, e)


def test_measured_costs_change_the_real_compute():
    """With a cost that does not scale with pixels (e.g. attention ~ B^4 plus a constant), the real compute
    of a curriculum whose epochs were fixed under the ideal cost differs from its nominal budget."""
    c = build("etpp")
    quartic = lambda b: 0.5 * (b / 224) ** 2 + 0.5 * (b / 224) ** 4  # noqa: E731
    assert curriculum_compute(c, quartic) < curriculum_compute(c)
    assert computation_speedup(c, cost=quartic) > 1.5
    rebuilt = build("etpp", cost=quartic)  # built with the measured cost, the budget is met exactly
    assert curriculum_compute(rebuilt, quartic) == pytest.approx(200)


def test_lr_schedule_table24():
    """Linear warm-up for 20 of 300 epochs to 4e-3, then cosine to min_lr."""
    lr = WarmupCosine.from_epochs(4e-3, 20, 300, min_lr=1e-6)
    assert lr(0.0) == 0.0
    assert lr(10 / 300) == pytest.approx(2e-3)
    assert lr(20 / 300) == pytest.approx(4e-3)
    assert lr((20 + 140) / 300) == pytest.approx((4e-3 + 1e-6) / 2)
    assert lr(1.0) == pytest.approx(1e-6)


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 0.5))
def test_lr_schedule_shape(p, q, warmup):
    lr = WarmupCosine(base_lr=1.0, warmup=warmup, min_lr=0.01)
    lo, hi = sorted((p, q))
    assert 0.0 <= lr(p) <= 1.0 + 1e-12
    if lo >= warmup:  # non-increasing after warm-up
        assert lr(hi) <= lr(lo) + 1e-12
    if hi <= warmup:  # non-decreasing during warm-up
        assert lr(lo) <= lr(hi) + 1e-12


def test_lr_on_compute_for_etpp_and_on_epochs_for_et():
    """Table 6 caption: ET++'s LR follows compute consumed; ET (Table 5) follows epochs."""
    etpp, et = build("etpp"), build("et")
    assert etpp.axis_progress(0.2) == pytest.approx(0.2)
    f = et.stages[0].end  # end of the B=160 stage: 46.9% of compute, but 60% of the epochs
    assert et.axis_progress(f) == pytest.approx(0.6)


def test_eq2_square_root_rule():
    assert scaled_lr(4e-3, 4096, 4096, 8e-3) == pytest.approx(4e-3)
    assert scaled_lr(4e-3, 4 * 4096, 4096, 1.0) == pytest.approx(8e-3)  # sqrt(4) = 2
    assert scaled_lr(4e-3, 4 * 4096, 4096, 6e-3) == pytest.approx(6e-3)  # upper bound LR_max
    with pytest.raises(UserError):
        scaled_lr(4e-3, 0, 4096, 1.0)


def test_early_large_batch_keeps_per_step_compute():
    c = build("etpp")
    sizes = stage_batch_sizes(c, 4096, multiple_of=64)
    assert sizes[-1] == 4096
    # B=96: 4096 * (224/96)^2 = 22300 -> 22272 (multiple of 64); B=160: 8028 -> 7936... rounded down
    assert sizes[0] == 22272 and sizes[1] == 8000
    capped = stage_batch_sizes(c, 4096, max_batch=8192)
    assert capped == [8192, 8028, 4096]
    lrs = stage_peak_lrs(c, capped, 4096, 4e-3, 8e-3)
    assert lrs[0] == pytest.approx(4e-3 * math.sqrt(2)) and lrs[-1] == pytest.approx(4e-3)
