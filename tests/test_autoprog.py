"""AutoProg on timm's ViT (Li et al., CVPR'22): schedule, MoGrow's layer mapping and EMA copy, the elastic
supernet's sub-networks and sampling, and the growth choice from the loss-vs-time fit."""

from __future__ import annotations

import copy

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from repro.core import autoprog as ap
from repro.errors import UserError
from repro.models import autoprog as grow
from repro.models.elastic_vit import active_config, make_elastic, set_active


def _vit(depth: int = 4, seed: int = 0) -> VisionTransformer:
    torch.manual_seed(seed)
    return make_elastic(VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=depth, num_heads=2,
                                          num_classes=5, dynamic_img_size=True))


def test_schedule_is_the_releases_for_deit_at_224() -> None:
    # scripts/train_autoprog.sh: 4 stages, r/l/aa scale 0.5, drop path and erasing from 0
    stages = ap.progressive_schedule(300, final_size=224, depth=12, magnitude=9, drop_path=0.1, reprob=0.25)
    assert [s.start_epoch for s in stages] == [0, 75, 150, 225]
    assert [s.size for s in stages] == [128, 160, 192, 224]
    assert [s.depth for s in stages] == [6, 8, 10, 12]
    # linspace(0.5, 1, 4) x 9 = 4.5, 6, 7.4999..., 9 rounded as in the release
    assert [s.magnitude for s in stages] == [4, 6, 7, 9]
    assert [round(s.drop_path, 4) for s in stages] == [0.0, 0.0333, 0.0667, 0.1]
    assert stages[-1].reprob == 0.25
    # the smoke profile's final size 56 keeps the ratios: 128..224 x 1/4
    assert [s.size for s in ap.progressive_schedule(6, final_size=56, depth=2, magnitude=9, drop_path=0,
                                                    reprob=0)] == [32, 40, 48, 56]
    with pytest.raises(UserError, match="one epoch per stage"):
        ap.progressive_schedule(3, final_size=224, depth=12, magnitude=9, drop_path=0, reprob=0)


def test_layer_mapping_interpolates_and_supernet_skips_the_first_grown_layers() -> None:
    assert ap.layer_map(6, 12) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert ap.layer_map(6, 8) == [0, 1, 2, 3, 4, 4, 5, 5]
    assert ap.new_layers(6, 8) == [5, 7]
    assert ap.new_layers(6, 12) == [1, 3, 5, 7, 9, 11]
    assert ap.subnet_blocks(6, 8, 6) == [0, 1, 2, 3, 4, 6]
    assert ap.subnet_blocks(6, 8, 7) == [0, 1, 2, 3, 4, 6, 7]
    assert ap.subnet_blocks(6, 8, 8) == list(range(8))
    with pytest.raises(UserError):
        ap.subnet_blocks(6, 8, 9)


def test_mogrow_initialises_the_grown_network_from_the_ema_weights() -> None:
    model = _vit()
    set_active(model, blocks=[0, 1])
    ema = copy.deepcopy(model)
    with torch.no_grad():  # the momentum network differs from the online one
        for p in ema.parameters():
            p.add_(torch.randn_like(p))
    before = copy.deepcopy(ema)
    grow.mogrow(model, ema, prev_depth=2, new_depth=4)
    src = ap.layer_map(2, 4)
    assert src == [0, 0, 1, 1]
    for net in (model, ema):
        assert net.blocks.active == [0, 1, 2, 3]
        for j, i in enumerate(src):
            for (_, a), (_, b) in zip(net.blocks[j].state_dict().items(), before.blocks[i].state_dict().items(),
                                      strict=True):
                assert torch.equal(a, b)
        assert torch.equal(net.pos_embed, before.pos_embed) and torch.equal(net.head.weight, before.head.weight)
    x = torch.randn(2, 3, 32, 32)
    model.eval(), ema.eval()
    assert torch.equal(model(x), ema(x))


def test_sub_network_inherits_the_supernet_blocks() -> None:
    model = _vit()
    ema = copy.deepcopy(model)
    blocks = ap.subnet_blocks(2, 4, 3)  # [0, 1, 3]
    set_active(model, blocks=blocks)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    expected = model(x)
    grow.keep_subnet(model, ema, blocks)
    assert active_config(model)["blocks"] == [0, 1, 2]
    assert torch.allclose(model(x), expected)


def test_supernet_sampler_is_uniform_deterministic_and_resumable() -> None:
    model = _vit()
    sampler = grow.SupernetSampler(model, sizes=[16, 24, 32], depths=[2, 3, 4], seed=7)
    seen, shapes = [], []
    model.register_forward_hook(lambda m, args, out: shapes.append(args[0].shape[-1]))
    model.train()
    for _ in range(60):
        model(torch.randn(1, 3, 32, 32))
        seen.append(sampler.last)
    assert shapes == [s for s, _ in seen]  # the batch was resized to the drawn size
    assert {s for s, _ in seen} == {16, 24, 32} and {d for _, d in seen} == {2, 3, 4}
    resumed = grow.SupernetSampler(_vit(), sizes=[16, 24, 32], depths=[2, 3, 4], seed=7)
    resumed.load_state_dict({"step": 30})
    assert [resumed.draw(30 + i) for i in range(30)] == seen[30:]
    assert sampler.state_dict() == {"step": 60}
    model.eval()
    sampler.remove()
    model(torch.randn(1, 3, 32, 32))
    assert shapes[-1] == 32


def test_candidate_losses_evaluate_each_sub_network() -> None:
    model = _vit()
    batches = [(torch.randn(4, 3, 32, 32), torch.randint(0, 5, (4,)))]
    losses = grow.candidate_losses(model, sizes=[16, 32], depths=[2, 4], batches=batches)
    assert set(losses) == {(16, 2), (32, 2), (16, 4), (32, 4)}
    model.eval()
    set_active(model, blocks=None)
    full = torch.nn.functional.cross_entropy(model(batches[0][0]), batches[0][1]).item()
    assert losses[(32, 4)] == pytest.approx(full, rel=1e-5)
    assert model.blocks.active is None  # the search leaves the network as it was


def test_growth_choice_is_the_candidate_furthest_below_the_loss_time_trend() -> None:
    keys = [(s, d) for s in (128, 160) for d in (8, 10, 12)]
    on_trend = {k: [3.0 * ap.relative_cost(*k) ** -0.2] for k in keys}
    assert ap.fit_exponent([ap.relative_cost(*k) for k in keys], [v[0] for v in on_trend.values()]) == \
        pytest.approx(0.2)
    below = dict(on_trend)
    below[(160, 10)] = [0.9 * on_trend[(160, 10)][0]]
    assert ap.choose(below) == (160, 10)
    # a loss that does not fall with time (w = 0): the lowest loss wins
    flat = {k: [1.0 + 0.01 * i] for i, k in enumerate(keys)}
    assert ap.choose(flat) == keys[0]


def test_search_space_follows_the_release() -> None:
    sizes, depths = [128, 160, 192, 224], [6, 8, 10, 12]
    assert ap.search_space(0, sizes, depths, 128, 6) == ([128, 192, 224], [6, 10, 12])
    assert ap.search_space(1, sizes, depths, 160, 8) == ([160, 192], [10, 12])
    assert ap.search_space(2, sizes, depths, 224, 12) == ([224], [12])
