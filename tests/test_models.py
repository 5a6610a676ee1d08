"""Model zoo (EfficientTrain++ Table 7): names, parameter counts, input-size switching at every curriculum B."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from repro.core.curriculum import build
from repro.errors import UserError
from repro.models import FAMILIES, TABLE7, create, entry, family_of, set_input_size

torch.set_num_threads(1)

CURRICULUM_SIZES = sorted(
    {b for name in ("et", "etpp", "etpp-convnext") for b in build(name).resolutions}
)  # 96, 160, 192, 224
SMOKE_SIZES = (24, 40, 48, 56)  # CPU smoke profile: final size 56
ONE_PER_FAMILY = {f: next(e.paper for e in TABLE7 if e.family == f) for f in FAMILIES}
MIRROR = Path("/work/.mirror/LeapLabTHU+EfficientTrain/repo")


def test_curriculum_sizes_are_the_papers() -> None:
    assert CURRICULUM_SIZES == [96, 160, 192, 224]


def test_table7_has_19_rows_in_paper_order() -> None:
    assert len(TABLE7) == 19
    assert [e.paper for e in TABLE7][:2] == ["ResNet-50", "ConvNeXt-Tiny"]
    assert TABLE7[-1].paper == "CAFormer-M36"
    assert {e.family for e in TABLE7} == set(FAMILIES)


@pytest.mark.parametrize("e", TABLE7, ids=lambda e: e.paper)
def test_names_resolve_both_ways(e) -> None:  # type: ignore[no-untyped-def]
    assert entry(e.paper) is e
    assert entry(e.timm) is e
    assert entry(e.paper.lower()) is e
    assert family_of(e.paper) == e.family


def test_table11_resnet18_builds_full_and_proxy() -> None:
    from repro.models.zoo import OTHERS

    e = entry("ResNet-18")
    assert e in OTHERS and e not in TABLE7 and entry("resnet18") is e and e.speedup is None
    full = create("ResNet-18", num_classes=1000)
    assert sum(p.numel() for p in full.parameters()) / 1e6 == pytest.approx(e.params_m, abs=0.05)
    assert create("ResNet-18", variant="proxy", num_classes=10, img_size=56)(torch.zeros(1, 3, 56, 56)).shape == (1, 10)


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(UserError, match="did you mean.*Swin-Tiny"):
        entry("Swin-Tiyn")
    with pytest.raises(UserError, match="unknown model"):
        entry("alexnet-9000")
    with pytest.raises(UserError, match="variant"):
        create("ResNet-50", variant="huge")  # type: ignore[arg-type]


def test_pvt_and_cswin_are_registered_in_timm() -> None:
    import timm

    import repro.models.cswin  # noqa: F401
    import repro.models.pvt  # noqa: F401

    for name in ("pvt_v1_tiny", "pvt_v1_small", "pvt_v1_medium", "pvt_v1_large",
                 "cswin_tiny_224", "cswin_small_224", "cswin_base_224"):
        assert timm.is_model(name), name


def _meta_params(name: str) -> int:
    with torch.device("meta"):
        model = create(name)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # PVT v1 paper (Wang et al. 2021, Table 2): 13.2M, 24.5M, 44.2M, 61.4M
        ("PVT-Tiny", 13.2), ("PVT-Small", 24.5), ("PVT-Medium", 44.2), ("PVT-Large", 61.4),
    ],
)
def test_pvt_parameter_counts(name: str, expected: float) -> None:
    assert abs(_meta_params(name) / 1e6 - expected) < 0.05


@pytest.mark.parametrize(
    ("name", "official", "paper"),
    [
        # exact counts of the official CSWin code (models/cswin.py of the EfficientTrain release); the CSWin paper
        # (Dong et al. 2022, Table 1) and Table 7 print them rounded up: 23M, 35M, 78M
        ("CSWin-Tiny", 22_320_552, 23), ("CSWin-Small", 34_643_304, 35), ("CSWin-Base", 77_382_184, 78),
    ],
)
def test_cswin_parameter_counts(name: str, official: int, paper: int) -> None:
    n = _meta_params(name)
    assert n == official
    assert abs(n / 1e6 - paper) < 0.7


@pytest.mark.slow
@pytest.mark.parametrize("e", TABLE7, ids=lambda e: e.paper)
def test_every_table7_parameter_count(e) -> None:  # type: ignore[no-untyped-def]
    # Table 7 rounds to whole millions (DeiT-Tiny's 5.7M is printed 5M, as in the DeiT paper)
    assert abs(_meta_params(e.paper) / 1e6 - e.params_m) < 0.8


def _train_step(model: torch.nn.Module, b: int, num_classes: int) -> None:
    set_input_size(model, b)
    y = model(torch.randn(2, 3, b, b))
    assert y.shape == (2, num_classes)
    y.logsumexp(-1).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("final", "sizes"), [(224, tuple(CURRICULUM_SIZES)), (56, SMOKE_SIZES)])
def test_proxy_trains_at_every_curriculum_size(family: str, final: int, sizes: tuple[int, ...]) -> None:
    """Tiny same-family models: forward + backward at every B of the ET / ET++ schedules (and the smoke sizes),
    switching with set_input_size and never replacing a parameter (optimizer state stays valid)."""
    torch.manual_seed(0)
    model = create(ONE_PER_FAMILY[family], variant="proxy", num_classes=5, img_size=final)
    assert sum(p.numel() for p in model.parameters()) < 500_000
    params = [id(p) for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    if family == "convnext" and final == 56:  # /32 proxy: its schedules (et, etpp-convnext) start at B=32 and 40
        with pytest.raises(UserError, match="needs inputs of at least 32x32"):
            set_input_size(model, 24)
        sizes = tuple(b for b in sizes if b >= 32) + (32,)
    for b in (*sizes, *reversed(sizes)):
        opt.zero_grad()
        _train_step(model, b, 5)
        opt.step()
    assert [id(p) for p in model.parameters()] == params


def test_swin_window_follows_input_size_without_new_parameters() -> None:
    from timm.models.swin_transformer import get_relative_position_index

    model = create("Swin-Tiny", variant="proxy", num_classes=3, img_size=224)
    attn = model.layers[0].blocks[0].attn
    table = attn.relative_position_bias_table
    assert torch.equal(attn.relative_position_index, get_relative_position_index(7, 7))
    x = torch.randn(1, 3, 224, 224)
    model.eval()
    with torch.no_grad():
        y0 = model(x)
        for b, win in ((96, 3), (160, 5), (192, 6)):
            set_input_size(model, b)
            assert model.layers[0].blocks[0].window_size == (win, win)
            assert model.layers[0].blocks[0].attn.relative_position_bias_table is table
            model(torch.randn(1, 3, b, b))
        set_input_size(model, 224)
        assert torch.allclose(model(x), y0, atol=1e-5)
    # a 3x3 window reads the centre of the 13x13 table: offset (0, 0) is entry 6 * 13 + 6
    set_input_size(model, 96)
    idx = model.layers[0].blocks[0].attn.relative_position_index
    assert idx.shape == (9, 9) and int(idx[4, 4]) == 6 * 13 + 6


def test_deit_and_pvt_interpolate_position_embeddings() -> None:
    for name in ("DeiT-Small", "PVT-Tiny"):
        model = create(name, variant="proxy", num_classes=3, img_size=224).eval()
        with torch.no_grad():
            for b in (96, 160):
                set_input_size(model, b)
                assert model(torch.randn(1, 3, b, b)).shape == (1, 3)


def test_cswin_split_sizes_follow_official_rule() -> None:
    model = create("CSWin-Tiny", variant="proxy", num_classes=3, img_size=224)
    for b in CURRICULUM_SIZES:
        set_input_size(model, b)
        splits = [stage[0].attns[0].split for stage in model.stages]
        assert splits[:3] == [1, 2, b // 32]  # official: [1, 2, img_size // 32, img_size // 32]


def test_full_model_at_small_size_runs() -> None:
    """A real Table 7 architecture (CSWin-Tiny skeleton, its own code) at B=96 after creation at 224."""
    model = create("cswin_tiny_224", num_classes=4, depths=(1, 1, 1, 1)).eval()
    set_input_size(model, 96)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 96, 96)).shape == (1, 4)


_OFFICIAL_STUB = """
import sys, types, torch.nn as nn
class Rearrange(nn.Module):
    def __init__(self, *a, **k): super().__init__()
    def forward(self, x): return x.flatten(2).transpose(1, 2)
einops, layers = types.ModuleType("einops"), types.ModuleType("einops.layers")
tl = types.ModuleType("einops.layers.torch")
tl.Rearrange = Rearrange; sys.modules.update({"einops": einops, "einops.layers": layers, "einops.layers.torch": tl})
"""


def test_cswin_matches_official_code(tmp_path: Path) -> None:
    """Same weights, same outputs as the official CSWin (read from the EfficientTrain mirror, run as-is)."""
    try:
        src = subprocess.run(["git", "-C", str(MIRROR), "show", "HEAD:models/cswin.py"], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("official CSWin code not mirrored here")
    src = src.replace("from timm.models.helpers import load_pretrained", "")
    (tmp_path / "official_cswin.py").write_text(src)
    exec(_OFFICIAL_STUB, {})  # einops is not installed; the stem's Rearrange is a plain flatten
    sys.path.insert(0, str(tmp_path))
    try:
        import official_cswin  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    kw = dict(embed_dim=16, depth=[1, 1, 1, 1], num_heads=[2, 2, 4, 4], num_classes=7)
    torch.manual_seed(0)
    official = official_cswin.CSWinTransformer(img_size=64, patch_size=4, **kw).eval()
    ours = create("CSWin-Tiny", num_classes=7, img_size=64, embed_dim=16, depths=(1, 1, 1, 1),
                  num_heads=(2, 2, 4, 4)).eval()
    renames = {"stage1_conv_embed.0": "stem", "stage1_conv_embed.2": "stem_norm", "merge1.conv": "merges.0",
               "merge2.conv": "merges.1", "merge3.conv": "merges.2", "merge1.norm": "merge_norms.0",
               "merge2.norm": "merge_norms.1", "merge3.norm": "merge_norms.2"}
    state = {}
    for k, v in official.state_dict().items():
        for a, b in renames.items():
            if k.startswith(a + "."):
                k = b + k[len(a):]
        if k.startswith("stage"):
            i, rest = k[len("stage"):].split(".", 1)
            k = f"stages.{int(i) - 1}.{rest}"
        state[k] = v
    ours.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), official(x), atol=1e-5)


@pytest.mark.parametrize(
    ("timm_name", "kw"),
    [("deit_tiny_patch16_224", {"depth": 1}), ("swin_tiny_patch4_window7_224", {"depths": (1, 1, 1, 1)})],
)
def test_hook_works_on_models_built_by_timm_directly(timm_name: str, kw: dict[str, object]) -> None:
    """The trainer may build a model with timm.create_model; the hook still adapts it (and 224 is unchanged)."""
    import timm

    model = timm.create_model(timm_name, num_classes=3, **kw).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        y0 = model(x)
        for b in (96, 160):
            set_input_size(model, b)
            assert model(torch.randn(1, 3, b, b)).shape == (1, 3)
        set_input_size(model, 224)
        assert torch.allclose(model(x), y0, atol=1e-5)


def test_name_lookups_do_not_import_torch() -> None:
    """`repro.models` is imported by the results aggregator and the CLI; names must not pull torch in."""
    code = "import sys, repro.models as m; m.entry('Swin-Tiny'); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
