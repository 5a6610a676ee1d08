"""`repro bench speedup` pieces that do not train: the down-sampling cost measurement (Sec. 5.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from repro.commands.bench import downsample_costs
from repro.core.curriculum import build

needs_fmnist = pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").exists(),
                                  reason="dataset-fashion-mnist not installed")


@needs_fmnist
def test_downsample_cost_ratio_is_the_weighted_ratio_of_per_image_times() -> None:
    resolutions = {12: 3.0, 20: 1.0}
    out = downsample_costs(28, resolutions, images=20, repeats=1)
    per = out["per_resolution"]
    assert set(per) == {"12", "20"}
    for row in per.values():
        assert row["lanczos_us"] > 0 and row["bicubic_us"] > 0
        assert row["ratio"] == pytest.approx(row["lanczos_us"] / row["bicubic_us"])
    weighted = sum(w * per[str(b)]["lanczos_us"] for b, w in resolutions.items()) / sum(
        w * per[str(b)]["bicubic_us"] for b, w in resolutions.items())
    assert out["ratio"] == pytest.approx(weighted)


def test_etpp_budget_ratio_is_the_papers() -> None:
    """The bench gives ET++ epochs / 1.5 equivalent epochs: Table 6's 200 against the baseline's 300."""
    from repro.commands.bench import ETPP_BUDGET_RATIO

    paper = build("baseline").equivalent_epochs / build("etpp").equivalent_epochs
    assert paper == pytest.approx(ETPP_BUDGET_RATIO)
