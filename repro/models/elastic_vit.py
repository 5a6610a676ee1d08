"""Elastic sub-networks of one timm VisionTransformer: active blocks, attention heads and MLP width.

Both model-growing competitors of EfficientTrain++'s Table 11 train a *sub-network* of the final ViT that grows:

* AutoProg (Li et al., CVPR'22, Sec. 4.2 "elastic supernet"; ``models/volo.py`` ``set_sample_config`` of
  changlin31/AutoProg) runs a subset of the blocks -- the others are identity layers ("block skipping");
* Budgeted ViT (Xia et al., ICLR'23) activates a leading subset of each block's attention heads and of its MLP
  hidden units;
* both train on fewer tokens early: a training-mode input is resized (bilinear, antialiased) to the active
  ``size`` before the patch embedding (timm's ``dynamic_img_size`` interpolates the position embeddings), so the
  data pipeline keeps the run's size and the sub-network sees the smaller image. Evaluation runs at the
  loader's size.

Here the model always holds the parameters of the full network and only the active part computes (the weight
slices are taken in the forward pass, so a smaller sub-network is also cheaper). Nothing is created or resized:
the optimizer, the EMA (``timm.utils.ModelEmaV3`` deep-copies the model, classes included) and the checkpoint's
state dict keep the keys and shapes of the full model, so a grown run resumes exactly. The active configuration
itself is not in the state dict; the method that sets it saves it with its own state (:func:`active_config`).

Parameters outside the active part get no gradient, so timm/torch optimizers leave them (and their moments)
untouched. Under DDP such unused parameters need ``find_unused_parameters``; the CPU proxy runs one process.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from timm.models.vision_transformer import Attention, VisionTransformer
from torch import nn

from repro.errors import UserError


class ElasticBlocks(nn.Sequential):
    """``model.blocks`` running only the blocks listed in ``active`` (in order); the rest are skipped."""

    active: list[int] | None = None  # None: every block

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for i in range(len(self)) if self.active is None else self.active:
            x = self[i](x)
        return x


class ElasticAttention(Attention):
    """timm's ``Attention`` with only its first ``active_heads`` heads (qkv and proj weights sliced per head)."""

    active_heads: int | None = None

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None,  # type: ignore[override]
                is_causal: bool = False) -> torch.Tensor:
        h = self.active_heads
        if h is None or h == self.num_heads:
            return super().forward(x, attn_mask=attn_mask, is_causal=is_causal)
        if getattr(self, "gate", None) is not None or not isinstance(self.norm, nn.Identity):
            raise UserError("elastic heads support plain ViT attention (no gate, no attention-output norm)")
        b, n, c = x.shape
        d = self.head_dim
        w = self.qkv.weight.view(3, self.num_heads, d, c)[:, :h].reshape(3 * h * d, c)
        bias = None if self.qkv.bias is None else self.qkv.bias.view(3, self.num_heads, d)[:, :h].reshape(-1)
        q, k, v = F.linear(x, w, bias).reshape(b, n, 3, h, d).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                             dropout_p=self.attn_drop.p if self.training else 0.0)
        out = out.transpose(1, 2).reshape(b, n, h * d)
        return self.proj_drop(F.linear(out, self.proj.weight[:, : h * d], self.proj.bias))


class ElasticMlp(Mlp):
    """timm's ``Mlp`` with only its first ``active_hidden`` hidden units (fc1 rows, fc2 columns)."""

    active_hidden: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        k = self.active_hidden
        if k is None or k == self.fc1.out_features:
            return super().forward(x)
        if not isinstance(self.norm, nn.Identity):
            raise UserError("elastic MLP width supports plain ViT MLPs (no hidden norm)")
        bias = None if self.fc1.bias is None else self.fc1.bias[:k]
        x = self.drop1(self.act(F.linear(x, self.fc1.weight[:k], bias)))
        return self.drop2(F.linear(x, self.fc2.weight[:, :k], self.fc2.bias))


def _resize_input(model: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...] | None:
    size = getattr(model, "elastic_size", None)
    x = args[0]
    if not model.training or size is None or x.shape[-1] == size:
        return None
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < x.shape[-1])
    return (x, *args[1:])


def require_vit(model_name: str, method: str) -> None:
    """Refuse a Table 7 model of another family than DeiT before anything is built (a timm name outside the zoo
    is checked when it is made elastic)."""
    from repro.models.zoo import entry
    from repro.train.config import ConfigError

    try:
        family = entry(model_name).family
    except UserError:
        return
    if family != "deit":
        raise ConfigError("model", f"{method} trains sub-networks of a ViT (DeiT-Tiny / DeiT-Small), not "
                          f"{model_name} ({family})")


def make_elastic(model: nn.Module) -> VisionTransformer:
    """Turn a timm ``VisionTransformer`` into its elastic form in place (class swaps: state dict unchanged)."""
    if not isinstance(model, VisionTransformer):
        raise UserError(f"elastic sub-networks need a timm VisionTransformer (DeiT), got {type(model).__name__}")
    if not getattr(model, "dynamic_img_size", False):
        raise UserError("elastic sub-networks train at several input sizes: build the ViT with dynamic_img_size")
    if not isinstance(model.blocks, ElasticBlocks):
        model.blocks.__class__ = ElasticBlocks
        model.register_forward_pre_hook(_resize_input)
    for blk in model.blocks:
        if type(blk.attn) is Attention:
            blk.attn.__class__ = ElasticAttention
        if type(blk.mlp) is Mlp:
            blk.mlp.__class__ = ElasticMlp
        if not isinstance(blk.attn, ElasticAttention) or not isinstance(blk.mlp, ElasticMlp):
            raise UserError(f"block {type(blk).__name__} has no plain timm Attention / Mlp to make elastic")
    return model


_KEEP: Any = ...


def set_active(model: nn.Module, *, blocks: list[int] | None = _KEEP, heads: int | None = _KEEP,
               mlp_hidden: int | None = _KEEP, size: int | None = _KEEP) -> None:
    """Choose the active sub-network of an elastic ViT and its training input size: each dimension given is set
    (``None`` = all of it, the loader's size), the others are kept."""
    if not isinstance(model.blocks, ElasticBlocks):
        raise UserError("set_active needs a model made elastic first (make_elastic)")
    depth = len(model.blocks)
    if blocks is not _KEEP:
        if blocks is not None and (not blocks or any(not 0 <= i < depth for i in blocks)):
            raise UserError(f"active blocks {blocks} must be a non-empty list of indices below the depth {depth}")
        model.blocks.active = None if blocks is None else list(blocks)
    if size is not _KEEP:
        if size is not None and size < 1:
            raise UserError(f"the training input size must be positive, got {size}")
        model.elastic_size = size
    for blk in model.blocks:
        if heads is not _KEEP:
            if heads is not None and not 1 <= heads <= blk.attn.num_heads:
                raise UserError(f"active heads must be 1..{blk.attn.num_heads}, got {heads}")
            blk.attn.active_heads = heads
        if mlp_hidden is not _KEEP:
            if mlp_hidden is not None and not 1 <= mlp_hidden <= blk.mlp.fc1.out_features:
                raise UserError(f"active MLP hidden units must be 1..{blk.mlp.fc1.out_features}, got {mlp_hidden}")
            blk.mlp.active_hidden = mlp_hidden


def active_config(model: nn.Module) -> dict[str, Any]:
    """The active sub-network as plain data (for a method's checkpointed state): ``set_active(model, **it)``."""
    blk = model.blocks[0]
    return {"blocks": model.blocks.active, "heads": blk.attn.active_heads, "mlp_hidden": blk.mlp.active_hidden,
            "size": getattr(model, "elastic_size", None)}
