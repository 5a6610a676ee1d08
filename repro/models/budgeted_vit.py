"""Budgeted ViT (Xia et al., "Budgeted Training for Vision Transformer", ICLR'23) on timm's VisionTransformer:
the model's attention heads, MLP hidden units and tokens grow over training, and the time spent at each level of
complexity is set so that the whole run costs the training budget.

What the paper states (abstract, Sec. 1): a ViT is more redundant early in training -- in its attention heads,
its MLP hidden dimension and its tokens -- so training "dynamically control[s] the activation rate of the model
structure along the training process" and "meet[s] the demand on the training budget by adjusting the duration
on each level of model complexity". The text of the paper available to this project is its abstract and
introduction, and its official code is not in the reference index; the constants below are therefore our
choices, each said here, and a reader with the paper's Sec. 4 should check them:

* three levels of activation rate ``RATES = 1/3, 2/3, 1``: the first ``rate x H`` heads (rounded up; DeiT-S
  2/4/6, DeiT-Tiny 1/2/3), the first ``rate x hidden`` MLP units (DeiT-S 512/1024/1536) and about ``rate x``
  the tokens through the input size (``sqrt(rate) x final``, a multiple of the patch: 128/176/224 for DeiT-S,
  64/121/196 tokens), realised with :mod:`repro.models.elastic_vit` (weight slices; nothing is resized);
* units not yet active keep their initial weights until their stage activates them (the model always holds
  the full parameters: the "activation rate" reading of the abstract);
* durations: the levels below full complexity get equal numbers of epochs and the full model the rest, solved
  so that ``sum(epochs_s x cost_s) = budget x epochs`` with ``cost_s`` the level's FLOPs per image relative to
  the full model (:func:`vit_cost`). Table 11's two Budgeted ViT rows (DeiT-Small, 128 and 303 epochs, 1.34x
  each) are budgets of 75 and 225 full-model epochs: 25 % and 75 % of the 300-epoch training (100 / 75 =
  300 / 225 = 1.33x), so ``budget = 75 / 128`` and ``225 / 303`` of their own epochs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from repro.errors import UserError
from repro.models.elastic_vit import set_active

RATES: tuple[float, ...] = (1 / 3, 2 / 3, 1.0)


@dataclass(frozen=True)
class ViTShape:
    """What the cost and the structure of a timm ViT depend on."""

    depth: int
    embed_dim: int
    num_heads: int
    head_dim: int
    mlp_hidden: int
    patch: int
    final_size: int

    @classmethod
    def of(cls, model: nn.Module, final_size: int) -> ViTShape:
        blk = model.blocks[0]
        return cls(len(model.blocks), model.embed_dim, blk.attn.num_heads, blk.attn.head_dim,
                   blk.mlp.fc1.out_features, model.patch_embed.patch_size[0], final_size)


@dataclass(frozen=True)
class Level:
    rate: float
    heads: int
    mlp_hidden: int
    size: int
    cost: float  # FLOPs per image relative to the full model
    epochs: float


def structure(shape: ViTShape, rate: float) -> tuple[int, int, int]:
    """Active heads, MLP hidden units and input size at activation rate ``rate``."""
    heads = max(1, math.ceil(rate * shape.num_heads - 1e-9))
    hidden = max(1, math.ceil(rate * shape.mlp_hidden - 1e-9))
    size = max(shape.patch, round(math.sqrt(rate) * shape.final_size / shape.patch) * shape.patch)
    return heads, hidden, size


def vit_cost(shape: ViTShape, size: int, heads: int, mlp_hidden: int) -> float:
    """Multiply-adds per image of the ViT with ``heads`` heads and ``mlp_hidden`` MLP units at ``size``^2:
    qkv + output projection, attention (scores and weighted sum), MLP, patch embedding (class token included)."""
    n = (size // shape.patch) ** 2 + 1
    inner = heads * shape.head_dim
    block = n * (4 * shape.embed_dim * inner + 2 * n * inner + 2 * shape.embed_dim * mlp_hidden)
    return shape.depth * block + (n - 1) * 3 * shape.patch**2 * shape.embed_dim


def schedule(shape: ViTShape, epochs: float, budget: float, rates: tuple[float, ...] = RATES) -> list[Level]:
    """The levels of complexity and their epochs for a run of ``epochs`` costing ``budget x epochs`` full-model
    epochs: equal epochs for the reduced levels, the rest at the full model."""
    if not rates or rates[-1] != 1.0 or any(b <= a for a, b in zip(rates, rates[1:], strict=False)):
        raise UserError(f"activation rates must rise to 1, got {rates}")
    full = vit_cost(shape, shape.final_size, shape.num_heads, shape.mlp_hidden)
    levels = [(r, *structure(shape, r)) for r in rates]
    costs = [vit_cost(shape, size, h, k) / full for _, h, k, size in levels]
    reduced = len(rates) - 1
    lowest = sum(costs[:-1]) / reduced if reduced else 1.0
    if not lowest <= budget <= 1.0:
        raise UserError(f"a Budgeted ViT budget must lie in [{lowest:.3f}, 1] of the run's full-model cost (the "
                        f"mean cost of its reduced levels, and the full model throughout), got {budget:g}")
    each = (epochs - budget * epochs) / (reduced - sum(costs[:-1])) if reduced else 0.0
    spans = [each] * reduced + [epochs - reduced * each]
    return [Level(r, h, k, size, c, e) for (r, h, k, size), c, e in zip(levels, costs, spans, strict=True)]


def apply(model: nn.Module, level: Level) -> None:
    """Activate ``level``'s heads, MLP width and training input size."""
    set_active(model, heads=level.heads, mlp_hidden=level.mlp_hidden, size=level.size)
