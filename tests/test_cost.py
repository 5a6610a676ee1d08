"""The cost model: FLOP counting (attention included), the JSON cache, `repro cost` against Tables 3 and 7."""

from __future__ import annotations

import contextlib
import csv
import io

import pandas as pd
import pytest
import torch

from repro.cli import main
from repro.core.curriculum import build, official_stage_epochs
from repro.models.cost import (
    OFFICIAL_B_LISTS,
    TABLE3_PAPER,
    computation_speedup,
    lookup,
    official_epochs,
    table3,
    table7,
)
from repro.models.flops import cost_fn, count_macs, measure, measured
from repro.models.zoo import TABLE7

torch.set_num_threads(1)


def _vit_macs(img: int, patch: int, dim: int, depth: int, mlp: int, classes: int) -> int:
    """Analytic MACs of a timm ViT with a class token: patch embedding, qkv/proj/MLP, both attention
    products (N^2 d each) and the head."""
    n = (img // patch) ** 2 + 1
    embed = (img // patch) ** 2 * 3 * patch * patch * dim
    block = n * dim * 3 * dim + 2 * n * n * dim + n * dim * dim + 2 * n * dim * mlp
    return embed + depth * block + dim * classes


@pytest.mark.parametrize("fused", [True, False])
def test_attention_products_are_counted(fused: bool) -> None:
    from timm.models.vision_transformer import VisionTransformer

    m = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2,
                          num_classes=10, dynamic_img_size=True)
    for mod in m.modules():
        if hasattr(mod, "fused_attn"):
            mod.fused_attn = fused  # count_macs must see the products either way
    m.repro_family = "deit"  # type: ignore[assignment]
    for img in (32, 16):
        assert count_macs(m, img) == _vit_macs(img, 8, 32, 2, 64, 10)
    assert all(mod.fused_attn == fused for mod in m.modules() if hasattr(mod, "fused_attn"))  # restored


def test_cache_matches_a_live_measurement() -> None:
    live = measure("PVT-Tiny", 96)
    cached = measured("pvt_v1_tiny", 96)
    assert (live.params, live.macs) == (cached.params, cached.macs)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["resnet", "convnext", "deit", "pvt", "swin", "cswin", "caformer"])
def test_cache_is_current_for_every_family(family: str) -> None:
    """The committed JSON must equal what the current zoo measures (at a switched size, B=160)."""
    name = next(e.timm for e in TABLE7 if e.family == family)
    live, cached = measure(name, 160), measured(name, 160)
    assert (live.params, live.macs) == (cached.params, cached.macs)


def test_table7_csv_has_19_rows_in_paper_order() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["cost", "table7", "--format", "csv"]) == 0
    text = out.getvalue()
    assert text.splitlines()[0] == "model,params_m,gflops,computation_speedup"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["model"] for r in rows] == [e.paper for e in TABLE7]
    assert rows[0]["model"] == "ResNet-50" and rows[-1]["model"] == "CAFormer-M36"


def test_table7_agrees_with_the_paper() -> None:
    rows = table7()
    assert len(rows) == 19
    for r in rows:
        assert abs(r.speedup_dev) <= 0.01, r
        # the paper prints one decimal: DeiT-Tiny's 1.254 G is its "1.3G"
        assert abs(r.gflops_rel_dev) <= 0.02 or round(r.gflops, 1) == r.paper_gflops, r
    exact = sum(round(r.computation_speedup, 2) == r.paper_speedup for r in rows)
    assert exact >= 18


def test_speedup_accountings() -> None:
    assert computation_speedup("ResNet-50", "algorithm2") == pytest.approx(1.5)
    assert computation_speedup("ResNet-50", "ideal") == pytest.approx(1.5)
    # attention makes small inputs cheaper than (B/224)^2: ViTs save more than convolutional networks
    assert computation_speedup("DeiT-Tiny") > computation_speedup("DeiT-Small") > computation_speedup("ResNet-50")


def test_official_epochs_round_matches_the_core() -> None:
    for b_list in OFFICIAL_B_LISTS.values():
        assert official_epochs(b_list, 200, resume="round") == official_stage_epochs(b_list, 200)
    floor = official_epochs(OFFICIAL_B_LISTS["default"], 200)
    assert floor == [108, 109, 39, 39, 40, 39, 21, 20, 20, 20]


def test_table3_relative_costs() -> None:
    rows = table3()
    assert len(rows) == 2 * 4 * 4
    for r in rows:
        assert abs(r["relative_cost"] - r["paper"]) <= 0.0051, r
    assert set(TABLE3_PAPER) == {"DeiT-Small", "Swin-Tiny"}


def test_cost_fn_plugs_into_the_core() -> None:
    cost = cost_fn("DeiT-Small")
    c = build("etpp", cost=cost)
    assert c.equivalent_epochs == pytest.approx(200)
    assert c.stages[0].epochs > build("etpp").stages[0].epochs  # B=96 is relatively cheaper than ideal


def test_results_lookup() -> None:
    assert lookup("Swin-Tiny", "gflops", {}) == pytest.approx(4.49, abs=0.01)
    assert lookup("Swin-Tiny", "computation_speedup", {}) == pytest.approx(1.51, abs=0.01)
    assert lookup("not-a-model", "gflops", {}) is None
    # Table 3: 150 epochs of low-frequency crops at B=128, then 150 at 224 (paper: 0.66 for both models)
    run = {"method": "lfc-curriculum", "epochs": 300, "lfc_window": 128, "lfc_epochs": [1, 150]}
    assert lookup("DeiT-Small", "relative_cost", run) == pytest.approx(0.66, abs=0.006)
    assert lookup("Swin-Tiny", "relative_cost", {**run, "lfc_epochs": [1, 300], "lfc_window": 96}) == pytest.approx(
        0.18, abs=0.006)
    assert lookup("Swin-Tiny", "relative_cost", {"method": "baseline", "epochs": 300}) == 1.0
    assert lookup("Swin-Tiny", "relative_cost", {"method": "efficienttrain++"}) is None


def test_unknown_model_is_one_line_with_close_matches(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "Swin-T"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Swin-Tiny" in err


def test_model_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "DeiT-Small", "--schedule", "etpp-discrete"]) == 0
    out = capsys.readouterr().out
    assert "schedule etpp-discrete" in out and "96" in out


def test_speedup_cells_follow_the_rows_method_and_schedule() -> None:
    """A cost column's computation speedup is that of the row's run: 1.0 for a baseline (Tables 19 (a), 22 (e)),
    ET's Table 5 curriculum for ET rows (~1.5, Table 19), Table 7's official ET++ accounting for ET++ at 200."""
    from repro.launch.manifest import load_manifest, manifest_path
    from repro.results.collect import reproduce
    from repro.results.costs import cost_lookup

    def speedups(table: int, column: str) -> dict[str, float]:
        frame = reproduce(load_manifest(manifest_path(table)), "smoke", pd.DataFrame(), cost_lookup())
        cells = frame[(frame.column == column) & frame.reproduced.notna()]
        return dict(zip(cells.row, cells.reproduced, strict=True))

    t19 = speedups(19, "training_speedup")
    assert t19["(a) Baseline"] == 1.0
    assert all(1.5 <= v <= 1.6 for row, v in t19.items() if row != "(a) Baseline")
    assert speedups(7, "computation_speedup")["ConvNeXt-Tiny"] == pytest.approx(1.49, abs=0.005)
    baselines = [v for row, v in speedups(22, "training_speedup_e").items() if "Baseline" in row]
    assert baselines and all(v == 1.0 for v in baselines)
    assert lookup("DeiT-Tiny", "computation_speedup", {"method": "efficienttrain", "epochs": 300}) == pytest.approx(
        300 / build("et", epochs=300, cost=cost_fn("DeiT-Tiny")).equivalent_epochs)


def test_cost_model_doc_shows_the_real_output() -> None:
    """docs/cost-model.md's comparison table is what `repro cost table7 --compare --format md` prints."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "cost-model.md").read_text()
    marker = "<!-- repro cost table7 --compare --format md: "
    shown = doc.split(marker + "begin -->")[1].split(marker + "end -->")[0].strip()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["cost", "table7", "--compare", "--format", "md"]) == 0
    assert shown == out.getvalue().strip()
