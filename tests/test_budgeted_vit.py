"""Budgeted ViT (Xia et al., ICLR'23) on timm's ViT: the elastic heads / MLP width compute exactly the active
part, the growing levels of heads / MLP width / tokens, and durations that spend exactly the budget."""

from __future__ import annotations

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from repro.errors import UserError
from repro.models import budgeted_vit as bv
from repro.models.elastic_vit import make_elastic, set_active

DEIT_S = bv.ViTShape(depth=12, embed_dim=384, num_heads=6, head_dim=64, mlp_hidden=1536, patch=16, final_size=224)


def test_full_cost_is_deit_smalls_table7_flops() -> None:
    assert bv.vit_cost(DEIT_S, 224, 6, 1536) / 1e9 == pytest.approx(4.6, abs=0.05)  # Table 7: 4.6 G


def test_levels_grow_heads_mlp_width_and_tokens() -> None:
    assert [bv.structure(DEIT_S, r) for r in bv.RATES] == [(2, 512, 128), (4, 1024, 176), (6, 1536, 224)]
    tiny = bv.ViTShape(depth=12, embed_dim=192, num_heads=3, head_dim=64, mlp_hidden=768, patch=16, final_size=224)
    assert [bv.structure(tiny, r)[0] for r in bv.RATES] == [1, 2, 3]


@pytest.mark.parametrize(("epochs", "budget_epochs"), [(128, 75), (303, 225)])  # Table 11's two rows
def test_durations_spend_exactly_the_budget(epochs: int, budget_epochs: int) -> None:
    levels = bv.schedule(DEIT_S, epochs, budget_epochs / epochs)
    assert sum(lv.epochs for lv in levels) == pytest.approx(epochs)
    assert sum(lv.epochs * lv.cost for lv in levels) == pytest.approx(budget_epochs)
    assert levels[0].epochs == pytest.approx(levels[1].epochs) and all(lv.epochs > 0 for lv in levels)
    assert [lv.cost for lv in levels] == sorted(lv.cost for lv in levels) and levels[-1].cost == 1.0
    assert bv.schedule(DEIT_S, epochs, 1.0)[-1].epochs == pytest.approx(epochs)  # the whole budget: full model
    with pytest.raises(UserError, match="budget"):
        bv.schedule(DEIT_S, epochs, 0.1)  # below what the reduced levels alone cost


def test_elastic_heads_and_mlp_compute_exactly_the_active_part() -> None:
    torch.manual_seed(0)
    model = make_elastic(VisionTransformer(img_size=16, patch_size=8, embed_dim=32, depth=2, num_heads=4,
                                           num_classes=3, dynamic_img_size=True)).eval()
    x = torch.randn(2, 3, 16, 16)
    set_active(model, heads=2, mlp_hidden=48)
    sub = model(x)
    with torch.no_grad():  # zero what the inactive heads / units contribute: the full network is then the same
        for blk in model.blocks:
            blk.attn.proj.weight[:, 2 * blk.attn.head_dim:] = 0
            blk.mlp.fc2.weight[:, 48:] = 0
    set_active(model, heads=None, mlp_hidden=None)
    assert torch.allclose(model(x), sub, atol=1e-5)
    # inactive units get no gradient (the optimizer leaves them as initialised)
    set_active(model, heads=2, mlp_hidden=48)
    model.train()
    model(x).sum().backward()
    g = model.blocks[0].mlp.fc1.weight.grad
    assert g[48:].abs().sum() == 0 and g[:48].abs().sum() > 0
    with pytest.raises(UserError, match="heads"):
        set_active(model, heads=5)
