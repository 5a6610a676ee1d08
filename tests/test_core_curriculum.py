"""Curriculum presets against Tables 5, 6, 10, 25 and the official release; schedule invariants."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repro.core.curriculum import PRESETS, build, ideal_cost, official_stage_epochs
from repro.errors import UserError


def stage_rows(c):
    return [(s.resolution, round(s.start, 6), round(s.end, 6), s.m_start, s.m_end, s.epochs) for s in c.stages]


def test_etpp_is_table6():
    """Table 6: 0-20% B=96, 20-60% B=160, 60-100% B=224; m 0 -> 9 linear on compute; 200 equivalent epochs."""
    c = build("etpp")
    assert c.axis == "compute"
    assert c.equivalent_epochs == pytest.approx(200)
    assert [(s.resolution, s.start, s.end) for s in c.stages] == [(96, 0.0, 0.2), (160, 0.2, 0.6), (224, 0.6, 1.0)]
    assert [(s.m_start, s.m_end) for s in c.stages] == [(0.0, 1.8), (1.8, 5.4), (5.4, 9.0)]
    # real epochs: compute share / (B/224)^2
    assert [s.epochs for s in c.stages] == pytest.approx([40 * (224 / 96) ** 2, 80 * (224 / 160) ** 2, 80])


def test_et_is_table5():
    """Table 5: epochs 1-180 B=160, 181-240 B=192, 241-300 B=224; m = 9 t / T."""
    c = build("et")
    assert c.axis == "epoch"
    assert [s.resolution for s in c.stages] == [160, 192, 224]
    assert [s.epochs for s in c.stages] == pytest.approx([180, 60, 60])
    assert c.real_epochs == pytest.approx(300)
    # m is linear in epochs: 0 at epoch 0, 5.4 at 180, 7.2 at 240, 9 at 300
    assert [(s.m_start, s.m_end) for s in c.stages] == [(0.0, 5.4), (5.4, 7.2), (7.2, 9.0)]
    compute = [180 * (160 / 224) ** 2, 60 * (192 / 224) ** 2, 60.0]
    assert c.equivalent_epochs == pytest.approx(sum(compute))
    assert c.stages[0].end == pytest.approx(compute[0] / sum(compute))
    # ET saves ~1.5x compute vs the 300-epoch baseline (Sec. 4.3 / Table 8: "~1.5x")
    assert 300 / c.equivalent_epochs == pytest.approx(1.531, abs=1e-3)
    # m at epoch 150 (half-way through stage 1) is 4.5
    assert c.magnitude_at(c.fraction_at_epoch(150)) == pytest.approx(4.5)


def test_convnext_variant_replaces_96_with_160():
    assert build("etpp-convnext").resolutions == (160, 160, 224)
    assert build("etpp-discrete-convnext").resolutions == (160,) * 6 + (224,) * 4


@pytest.mark.parametrize(
    ("name", "gamma", "expected"),
    [
        ("et", 384, (160, 272, 384)),  # Table 10: 160, (160 + gamma) / 2, gamma
        ("et", 512, (160, 336, 512)),
        ("etpp", 384, (96, 240, 384)),  # 96, (96 + gamma) / 2, gamma
        ("etpp", 224, (96, 160, 224)),
        ("et", 224, (160, 192, 224)),
    ],
)
def test_final_size_adaptation_table10(name, gamma, expected):
    assert build(name, final_size=gamma).resolutions == expected


def test_linear_adaptation_keeps_relative_costs():
    """Proxies scale B linearly; 56 = 224 / 4 keeps every stage's relative cost exactly."""
    full, proxy = build("etpp"), build("etpp", final_size=56, adapt="linear")
    assert proxy.resolutions == (24, 40, 56)
    assert [s.epochs for s in proxy.stages] == pytest.approx([s.epochs for s in full.stages])


@pytest.mark.parametrize("epochs", [100, 150, 200, 300])
def test_budget_scales_linearly(epochs):
    """Table 25 / Fig. 7: other budgets scale the stage lengths, not the fractions."""
    base, scaled = build("etpp"), build("etpp", epochs=epochs)
    assert scaled.equivalent_epochs == pytest.approx(epochs)
    assert [s.epochs for s in scaled.stages] == pytest.approx([s.epochs * epochs / 200 for s in base.stages])
    assert [(s.start, s.end) for s in scaled.stages] == [(s.start, s.end) for s in base.stages]
    et = build("et", epochs=epochs)
    assert [s.epochs for s in et.stages] == pytest.approx([0.6 * epochs, 0.2 * epochs, 0.2 * epochs])


def test_discrete_release_has_ten_equal_compute_stages():
    c = build("etpp-discrete")
    assert len(c.stages) == 10
    assert [s.end - s.start for s in c.stages] == pytest.approx([0.1] * 10)
    assert [s.m_start for s in c.stages] == list(range(10))  # --aa rand-m{ET_index}
    assert all(s.m_start == s.m_end for s in c.stages)
    assert c.resolutions == (96,) * 2 + (160,) * 4 + (224,) * 4
    assert build("etpp-discrete-deit").resolutions == (96,) * 2 + (160,) * 4 + (192,) * 2 + (224,) * 2
    assert build("et-discrete").resolutions == (160, 160, 160, 192, 224)


def test_official_integer_epochs():
    """_ET_pp_main_*.py: rp = int(E (224/B)^2), end = int(rp/10 (i+1)), start rescaled by round(...)."""
    epochs = official_stage_epochs((96,) * 2 + (160,) * 4 + (224,) * 4, 200)
    # B=96: rp = int(200 * 5.444) = 1088, ends 108, 217; B=160: rp = 392, start round(217 * 0.36) = 78, ...
    assert epochs[:3] == [108, 109, 39]
    assert epochs[-4:] == [20, 20, 20, 20]
    compute = sum(e * (b / 224) ** 2 for e, b in zip(epochs, (96,) * 2 + (160,) * 4 + (224,) * 4, strict=True))
    assert compute == pytest.approx(200, abs=0.5)  # integer rounding moves the budget by a fraction of an epoch
    # truncating the rescaled start epoch (the accounting behind Table 7's speedups) gives the first B=224 stage
    # one more epoch: 235 * (160/224)^2 = 119.9 -> 119 instead of 120
    floor = official_stage_epochs((96,) * 2 + (160,) * 4 + (224,) * 4, 200, resume="floor")
    assert floor == epochs[:6] + [21, 20, 20, 20]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive"),
        ({"epochs": -5}, "epochs must be a positive"),
        ({"final_size": 0}, "final size must be a positive"),
        ({"final_size": 128}, "does not fit the final size"),  # et's B=160 > 128
    ],
)
def test_impossible_arguments(kwargs, message):
    with pytest.raises(UserError, match=message):
        build("et", **kwargs)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UserError, match="did you mean etpp"):
        build("etp")


@given(
    name=st.sampled_from(sorted(PRESETS)),
    epochs=st.floats(1, 1000),
    gamma=st.integers(160, 640),
    fractions=st.lists(st.floats(0, 1), min_size=1, max_size=20),
)
def test_schedule_invariants(name, epochs, gamma, fractions):
    c = build(name, epochs=epochs, final_size=gamma)
    stages = c.stages
    assert stages[0].start == 0 and stages[-1].end == 1
    assert all(math.isclose(a.end, b.start) for a, b in zip(stages, stages[1:], strict=False))
    assert all(s.resolution <= gamma for s in stages) and stages[-1].resolution == gamma
    # B never shrinks, m never decreases (easier -> harder)
    assert all(a.resolution <= b.resolution for a, b in zip(stages, stages[1:], strict=False))
    ms = [m for s in stages for m in (s.m_start, s.m_end)]
    assert ms == sorted(ms)
    # compute bookkeeping: sum over stages of epochs * relative cost = equivalent epochs
    cost = ideal_cost(gamma)
    assert sum(s.epochs * cost(s.resolution) for s in stages) == pytest.approx(c.equivalent_epochs)
    for f in fractions:
        stage = c.stage_at(f)
        assert stage.start <= f <= stage.end
        assert c.fraction_at_epoch(c.epoch_at(f)) == pytest.approx(f, abs=1e-9)
        assert 0 <= c.axis_progress(f) <= 1


def test_linear_adaptation_of_a_table10_run():
    """A proxy of a Table 10 run (384^2, proxy final 96) takes the paper's B at 384 (ET: 160, 272, 384 -- Sec.
    6.1.1's 160, (160+gamma)/2, gamma) scaled by 96/384, not the 224 B scaled by 96/224 (which gave 69: no
    Swin patch grid and another curriculum); at 224 nothing changes."""
    assert build("et", final_size=96, adapt="linear", reference_final=384).resolutions == (40, 68, 96)
    assert build("etpp", final_size=128, adapt="linear", reference_final=512).resolutions == (24, 76, 128)
    assert build("et", final_size=56, adapt="linear").resolutions == (40, 48, 56)
