"""PVT v1 (Wang et al., "Pyramid Vision Transformer", ICCV 2021): the PVT rows of EfficientTrain++ Table 7.

Own compact implementation of the published architecture: 4 stages with non-overlapping patch embeddings
(patch sizes 4/2/2/2), spatial-reduction attention (SR ratios 8/4/2/1), per-stage learned position embeddings
and a class token in the last stage. Position embeddings are bilinearly resized on the fly when the input size
differs from ``img_size`` (as the official code does), so the curriculum's input size B (EfficientTrain++
Sec. 4.1) changes nothing in the parameters. Registered in timm as ``pvt_v1_{tiny,small,medium,large}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, trunc_normal_
from timm.models import register_model
from torch import nn


class SRAttention(nn.Module):
    """Multi-head attention whose keys/values come from a spatially reduced (SR ratio) feature map.

    Explicit matmuls (no fused SDPA) so that FLOP counting sees the attention products.
    """

    def __init__(self, dim: int, num_heads: int, sr_ratio: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr: nn.Module = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm: nn.Module = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        h = self.num_heads
        q = self.q(x).reshape(b, n, h, c // h).transpose(1, 2)
        if self.sr_ratio > 1:
            extra = n - hw[0] * hw[1]  # the class token (last stage) bypasses the reduction
            tokens = x[:, extra:].transpose(1, 2).reshape(b, c, hw[0], hw[1])
            kv_in = self.norm(self.sr(tokens).flatten(2).transpose(1, 2))
            if extra:
                kv_in = torch.cat([x[:, :extra], kv_in], dim=1)
        else:
            kv_in = x
        kv = self.kv(kv_in).reshape(b, -1, 2, h, c // h).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, sr_ratio: int, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SRAttention(dim, num_heads, sr_ratio)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), hw))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, in_chans: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.proj(x)
        hw = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose(1, 2)), hw


class PyramidVisionTransformer(nn.Module):
    """PVT v1 classifier. ``img_size`` only sets the position-embedding grids; any multiple of the stride works."""

    def __init__(
        self,
        img_size: int = 224,
        in_chans: int = 3,
        num_classes: int = 1000,
        patch_sizes: Sequence[int] = (4, 2, 2, 2),
        embed_dims: Sequence[int] = (64, 128, 320, 512),
        num_heads: Sequence[int] = (1, 2, 5, 8),
        mlp_ratios: Sequence[float] = (8, 8, 4, 4),
        depths: Sequence[int] = (2, 2, 2, 2),
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        **_: Any,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_stages = len(depths)
        self.img_size = img_size
        total = max(sum(depths) - 1, 1)
        dpr = [drop_path_rate * i / total for i in range(sum(depths))]
        self.patch_embeds = nn.ModuleList()
        self.pos_embeds = nn.ParameterList()
        self.stages = nn.ModuleList()
        self.grids: list[int] = []
        grid, chans, cur = img_size, in_chans, 0
        for i in range(self.num_stages):
            grid //= patch_sizes[i]
            self.grids.append(grid)
            self.patch_embeds.append(PatchEmbed(patch_sizes[i], chans, embed_dims[i]))
            extra = 1 if i == self.num_stages - 1 else 0
            pos = nn.Parameter(torch.zeros(1, grid * grid + extra, embed_dims[i]))
            trunc_normal_(pos, std=0.02)
            self.pos_embeds.append(pos)
            self.stages.append(
                nn.ModuleList(
                    Block(embed_dims[i], num_heads[i], mlp_ratios[i], sr_ratios[i], dpr[cur + j])
                    for j in range(depths[i])
                )
            )
            cur += depths[i]
            chans = embed_dims[i]
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims[-1]))
        trunc_normal_(self.cls_token, std=0.02)
        self.pos_drop = nn.Dropout(drop_rate)
        self.norm = nn.LayerNorm(embed_dims[-1])
        self.num_features = embed_dims[-1]
        self.head = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"cls_token"} | {f"pos_embeds.{i}" for i in range(self.num_stages)}

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def _pos(self, i: int, hw: tuple[int, int]) -> torch.Tensor:
        pos = self.pos_embeds[i]
        g = self.grids[i]
        if hw == (g, g):
            return pos
        extra = pos.shape[1] - g * g
        grid = pos[:, extra:].reshape(1, g, g, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=hw, mode="bilinear", align_corners=False).flatten(2).transpose(1, 2)
        return torch.cat([pos[:, :extra], grid], dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        for i in range(self.num_stages):
            x, hw = self.patch_embeds[i](x)
            if i == self.num_stages - 1:
                x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1)
            x = self.pos_drop(x + self._pos(i, hw))
            for blk in self.stages[i]:
                x = blk(x, hw)
            if i < self.num_stages - 1:
                x = x.transpose(1, 2).reshape(b, -1, hw[0], hw[1])
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x[:, 0]
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


_PVT_DEPTHS = {"tiny": (2, 2, 2, 2), "small": (3, 4, 6, 3), "medium": (3, 4, 18, 3), "large": (3, 8, 27, 3)}


def _pvt(variant: str, pretrained: bool, **kwargs: Any) -> PyramidVisionTransformer:
    if pretrained:
        raise ValueError("no pretrained weights for pvt_v1 in this reproduction")
    kwargs.pop("pretrained_cfg", None)
    kwargs.pop("pretrained_cfg_overlay", None)
    kwargs.setdefault("depths", _PVT_DEPTHS[variant])
    return PyramidVisionTransformer(**kwargs)


@register_model
def pvt_v1_tiny(pretrained: bool = False, **kwargs: Any) -> PyramidVisionTransformer:
    """PVT-Tiny (13.2M params, 1.9 GFLOPs; Wang et al. 2021 Table 2)."""
    return _pvt("tiny", pretrained, **kwargs)


@register_model
def pvt_v1_small(pretrained: bool = False, **kwargs: Any) -> PyramidVisionTransformer:
    """PVT-Small (24.5M params, 3.8 GFLOPs)."""
    return _pvt("small", pretrained, **kwargs)


@register_model
def pvt_v1_medium(pretrained: bool = False, **kwargs: Any) -> PyramidVisionTransformer:
    """PVT-Medium (44.2M params, 6.7 GFLOPs)."""
    return _pvt("medium", pretrained, **kwargs)


@register_model
def pvt_v1_large(pretrained: bool = False, **kwargs: Any) -> PyramidVisionTransformer:
    """PVT-Large (61.4M params, 9.8 GFLOPs)."""
    return _pvt("large", pretrained, **kwargs)
