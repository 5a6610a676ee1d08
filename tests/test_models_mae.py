"""MAE pre-training (repro.models.mae): masking, loss on masked patches, grid-rebuilt sin-cos embeddings, the
HOG target, and the encoder loading into timm.create_model for fine-tuning."""

from __future__ import annotations

import math

import pytest
import timm
import torch

from repro.models.mae import (
    MaskedAutoencoder,
    create,
    encoder_weights,
    patchify,
    random_masking,
    sincos_position_embedding,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = dict(decoder={"dim": 16, "depth": 1, "heads": 2}, patch_size=4)


def tiny(**kw) -> MaskedAutoencoder:
    torch.manual_seed(0)
    return create("test_vit", "full", 28, **{**TINY, **kw})


def test_masking_keeps_a_quarter_of_each_sample_at_random_and_reproducibly() -> None:
    ids, mask = random_masking(3, 49, 0.75, torch.Generator().manual_seed(1), torch.device("cpu"))
    assert ids.shape == (3, 12) and mask.shape == (3, 49)  # int(49 * 0.25) = 12 visible, as MAE
    assert torch.equal(mask.sum(1), torch.full((3,), 37.0))
    for i in range(3):
        assert torch.equal(mask[i, ids[i]], torch.zeros(12)) and len(set(ids[i].tolist())) == 12
    assert not torch.equal(ids[0].sort().values, ids[1].sort().values)  # per-sample masks
    again, _ = random_masking(3, 49, 0.75, torch.Generator().manual_seed(1), torch.device("cpu"))
    assert torch.equal(ids, again)


def test_loss_reads_only_the_masked_patches_and_normalises_each_patch() -> None:
    model = tiny()
    images = torch.rand(2, 3, 28, 28, generator=torch.Generator().manual_seed(2))
    target = model.targets(images)
    torch.testing.assert_close(target.mean(-1), torch.zeros(2, 49), atol=1e-5, rtol=0)  # norm_pix_loss
    torch.testing.assert_close(target.var(-1), torch.ones(2, 49), atol=1e-3, rtol=0)
    _, _, mask = model.forward_encoder(images, torch.Generator().manual_seed(3))
    pred = torch.zeros_like(target)
    changed = pred + 100 * (1 - mask)[..., None]  # wrong only where the patch is visible
    assert model.loss(images, changed, mask).item() == pytest.approx(model.loss(images, pred, mask).item())
    exact = torch.where(mask[..., None].bool(), target, pred)
    assert model.loss(images, exact, mask).item() == pytest.approx(0.0, abs=1e-10)
    raw = tiny(norm_pix_loss=False).targets(images)
    torch.testing.assert_close(raw, patchify(images, 4))
    assert torch.equal(raw[0, 1, :3], images[0, :, 0, 4])  # MAE's layout: pixel (0, 0) of patch 1, channels last


def test_sincos_embedding_is_maes_at_the_final_grid_and_the_same_locations_at_smaller_grids() -> None:
    dim, grid = 16, 4
    emb = sincos_position_embedding(dim, grid, grid)
    omega = [1 / 10000 ** (k / 4) for k in range(4)]
    for r, c in ((0, 0), (1, 3), (3, 2)):  # MAE util/pos_embed.py: [sin, cos](column w), [sin, cos](row h)
        ref = [math.sin(c * w) for w in omega] + [math.cos(c * w) for w in omega] + \
              [math.sin(r * w) for w in omega] + [math.cos(r * w) for w in omega]
        torch.testing.assert_close(emb[r * grid + c], torch.tensor(ref), atol=1e-6, rtol=0)
    # a 2x2 grid over the 4x4 grid's image: patch centres at 0.5 and 2.5 of the final grid
    small = sincos_position_embedding(dim, 2, 4)
    torch.testing.assert_close(small[3, :4], torch.tensor([math.sin(2.5 * w) for w in omega]))
    model = tiny()
    torch.testing.assert_close(model.encoder.pos_embed[0, 1:], sincos_position_embedding(64, 7, 7))
    assert not model.encoder.pos_embed.requires_grad  # fixed, as in MAE


@pytest.mark.parametrize("target", ["pixel", "hog"])
def test_every_curriculum_size_trains_every_parameter(target: str) -> None:
    kw = {"patch_size": 8} if target == "hog" else {}
    model = create("test_vit", "full", 56, target=target, **{**TINY, **kw})
    assert model.decoder_pred.out_features == (27 if target == "hog" else 48)  # 3 x 9 x 1 cell; 4 x 4 x 3
    for b in (24, 40, 56) if target == "hog" else (12, 20, 28):
        model.zero_grad()
        loss = model(torch.randn(2, 3, b, b), torch.Generator().manual_seed(b))
        loss.backward()
        assert math.isfinite(loss.item())
        unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not unused, unused


def test_the_encoder_loads_into_timm_create_model_and_computes_the_same_features() -> None:
    model = tiny()
    finetune = timm.create_model("test_vit", pretrained=False, num_classes=10, img_size=28, patch_size=4)
    missing, unexpected = finetune.load_state_dict(encoder_weights(model.state_dict()), strict=False)
    assert sorted(missing) == ["head.bias", "head.weight"] and not unexpected
    images = torch.randn(2, 3, 28, 28)
    model.eval()
    finetune.eval()
    latent, ids, _ = model.forward_encoder(images, torch.Generator().manual_seed(0), ratio=0.0)  # keep all
    order = ids[:, :, None].expand(-1, -1, latent.shape[-1])
    tokens = torch.zeros_like(latent[:, 1:]).scatter(1, order, latent[:, 1:])
    features = finetune.forward_features(images)
    torch.testing.assert_close(features[:, 0], latent[:, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(features[:, 1:], tokens, atol=1e-5, rtol=1e-5)


def test_vit_b_is_maes_model() -> None:
    with torch.device("meta"):
        model = create("vit_base_patch16_224", "full", 224, target="hog")
    encoder = sum(p.numel() for p in model.encoder.parameters())
    assert round(encoder / 1e6) == 86  # Table 15's #Param.
    assert model.decoder_pred.out_features == 108 and len(model.decoder_blocks) == 8  # MaskFeat's target, MAE's
    assert model.decoder_embed.out_features == 512                                  # 512 x 8 decoder


def test_targets_are_float32_under_amp() -> None:
    model = create("test_vit", "full", 32, target="hog", **{**TINY, "patch_size": 8})
    images = torch.randn(2, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        amp = model.targets(images)
    assert amp.dtype == torch.float32 and torch.equal(amp, model.targets(images))
