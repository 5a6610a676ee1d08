"""The three methods are compositions of a curriculum (Tables 5, 6, 24) and a frequency operation (Sec. 4.1, 5.2)."""

from __future__ import annotations

import pytest

from repro.core.curriculum import build
from repro.errors import UserError
from repro.methods import METHODS, get_method


@pytest.mark.parametrize(("name", "op", "proxy_bs", "paper_bs"), [
    ("baseline", "none", [28], [224]),
    ("efficienttrain", "crop", [20, 24, 28], [160, 192, 224]),
    ("efficienttrain++", "downsample", [12, 20, 28], [96, 160, 224]),
])
def test_method_curriculum_and_operation(name: str, op: str, proxy_bs: list[int], paper_bs: list[int]) -> None:
    method = get_method(name)
    assert method.frequency_op == op
    assert list(build(method.schedule).resolutions) == paper_bs
    assert list(build(method.schedule, final_size=28, adapt="linear").resolutions) == proxy_bs


def test_budget_axes_follow_the_paper() -> None:
    """ET++ is defined on compute (200 equivalent epochs, ~1.5x less than the 300-epoch baseline); ET on epochs."""
    etpp = build(get_method("efficienttrain++").schedule)
    et = build(get_method("efficienttrain").schedule)
    assert etpp.axis == "compute" and etpp.equivalent_epochs == pytest.approx(200)
    assert et.axis == "epoch" and et.real_epochs == pytest.approx(300)
    assert 300 / et.equivalent_epochs == pytest.approx(1.5, abs=0.1)  # Table 7: ET ~1.5x


def test_unknown_method_is_a_user_error() -> None:
    assert set(METHODS) == {"baseline", "efficienttrain", "efficienttrain++"}
    with pytest.raises(UserError, match="implemented: baseline"):
        get_method("autoprog")
