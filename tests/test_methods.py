"""Methods as hooks: ET / ET++ are a curriculum + a frequency operation (Tables 5, 6, 24); lists compose, and a
conflicting or unknown list is one line."""

from __future__ import annotations

import pytest

from repro.core.curriculum import build
from repro.errors import UserError
from repro.methods import METHODS, Methods, check_names, label, schedule_of
from repro.train.config import TrainConfig


@pytest.mark.parametrize(("name", "op", "proxy_bs", "paper_bs"), [
    ("baseline", "none", [28], [224]),
    ("efficienttrain", "crop", [20, 24, 28], [160, 192, 224]),
    ("efficienttrain++", "downsample", [12, 20, 28], [96, 160, 224]),
])
def test_method_curriculum_and_operation(name: str, op: str, proxy_bs: list[int], paper_bs: list[int]) -> None:
    methods = Methods(TrainConfig(model="m", method=name))
    assert methods.frequency_op == op
    assert list(build(methods.schedule).resolutions) == paper_bs
    assert list(build(methods.schedule, final_size=28, adapt="linear").resolutions) == proxy_bs


def test_budget_axes_follow_the_paper() -> None:
    """ET++ is defined on compute (200 equivalent epochs, ~1.5x less than the 300-epoch baseline); ET on epochs."""
    etpp = build(schedule_of("efficienttrain++"))
    et = build(schedule_of("efficienttrain"))
    assert etpp.axis == "compute" and etpp.equivalent_epochs == pytest.approx(200)
    assert et.axis == "epoch" and et.real_epochs == pytest.approx(300)
    assert 300 / et.equivalent_epochs == pytest.approx(1.5, abs=0.1)  # Table 7: ET ~1.5x


def test_lists_compose_and_name_themselves_as_the_paper() -> None:
    methods = Methods(TrainConfig(model="m", method=["efficienttrain++", "fixres"]))
    assert methods.label == label(["efficienttrain++", "fixres"]) == "efficienttrain+++fixres"  # Table 11's name
    assert methods.schedule == "etpp" and methods.frequency_op == "downsample"
    assert TrainConfig(model="m", method=["infobatch"]).method == "infobatch"  # one-element list = the name
    assert {"infobatch", "fixres", "budgeted-training", "progressive-learning", "deit-iii", "autoprog",
            "budgeted-vit"} <= set(METHODS)


@pytest.mark.parametrize(("method", "message"), [
    (["efficienttrain++", "progressive-learning"], "efficienttrain\\+\\+ and progressive-learning both set the "
                                                   "curriculum"),
    (["infobatch", "infobatch"], "names a method twice"),
    (["infobatch", "infobatc"], "unknown method 'infobatc' \\(did you mean 'infobatch'"),
    (["autoprog", "efficienttrain++"], "autoprog and efficienttrain\\+\\+ both set the curriculum"),
])
def test_bad_lists_are_one_line(method: str | list[str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        check_names(method)


def test_two_final_phases_conflict(monkeypatch) -> None:
    import repro.methods as methods

    class Other(methods.Method):
        name, paper = "other-phase", "a second fine-tuning phase"

        def final_phase(self, trainer) -> None:  # noqa: ANN001
            return None

    monkeypatch.setitem(methods.METHODS, Other.name, Other)
    with pytest.raises(UserError, match="fixres and other-phase both set the phase after training"):
        check_names(["fixres", "other-phase"])
    assert [c.name for c in check_names(["other-phase", "infobatch"])] == ["other-phase", "infobatch"]

