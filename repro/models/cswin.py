"""CSWin Transformer (Dong et al., "CSWin Transformer", CVPR 2022): the CSWin rows of EfficientTrain++ Table 7.

Own compact implementation of the published architecture: 7x7 stride-4 convolutional stem, four stages joined
by 3x3 stride-2 convolutions, cross-shaped window self-attention (half of the heads attend within horizontal
stripes, half within vertical stripes of width ``split``) with locally-enhanced positional encoding (LePE, a
3x3 depth-wise convolution on V inside each stripe), and full attention in the last stage.

Stripe widths follow the official code: stages 1-2 use 1 and 2; stages 3-4 use the last stage's feature size
(``img_size // 32``, i.e. 7 at 224). :func:`CSWinTransformer.set_input_size` moves them with the curriculum's
input size B (EfficientTrain++ Sec. 4.1) without touching a parameter. A feature map that the stripe width does
not divide is zero-padded to a multiple of it. Registered in timm as ``cswin_{tiny,small,base}_224``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, trunc_normal_
from timm.models import register_model
from torch import nn


def _stripes(x: torch.Tensor, hs: int, ws: int) -> torch.Tensor:
    """(B, C, H, W) -> (B * nWin, C, hs, ws) windows; H, W multiples of hs, ws."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // hs, hs, w // ws, ws).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(-1, c, hs, ws)


def _unstripes(x: torch.Tensor, b: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`_stripes` for (B * nWin, C, hs, ws)."""
    _, c, hs, ws = x.shape
    x = x.view(b, h // hs, w // ws, c, hs, ws).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c, h, w)


class LePEAttention(nn.Module):
    """Self-attention inside stripes of ``split`` rows (``axis=0``) or columns (``axis=1``), or the whole map
    (``axis=-1``), plus LePE. Explicit matmuls so FLOP counting sees the attention products."""

    def __init__(self, dim: int, num_heads: int, axis: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.axis = axis
        self.scale = (dim // num_heads) ** -0.5
        self.get_v = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim)
        self.split = 1

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q, k, v: (B, C, H, W) -> (B, C, H, W)."""
        b, c, h, w = q.shape
        if self.axis == -1:
            hs, ws = h, w
        else:
            s = min(self.split, h if self.axis == 1 else w)
            hs, ws = (h, s) if self.axis == 0 else (s, w)
        ph, pw = (-h) % hs, (-w) % ws
        if ph or pw:
            q, k, v = (F.pad(t, (0, pw, 0, ph)) for t in (q, k, v))
        hp, wp = h + ph, w + pw
        nh, d = self.num_heads, c // self.num_heads
        qw, kw, vw = (_stripes(t, hs, ws) for t in (q, k, v))
        lepe = self.get_v(vw)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(-1, nh, d, hs * ws).transpose(-2, -1)

        attn = ((heads(qw) * self.scale) @ heads(kw).transpose(-2, -1)).softmax(dim=-1)
        out = attn @ heads(vw) + heads(lepe)
        out = out.transpose(-2, -1).reshape(-1, c, hs, ws)
        return _unstripes(out, b, hp, wp)[:, :, :h, :w]


class CSWinBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, last_stage: bool, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.full = last_stage
        if last_stage:
            self.attns = nn.ModuleList([LePEAttention(dim, num_heads, -1)])
        else:
            self.attns = nn.ModuleList(LePEAttention(dim // 2, num_heads // 2, axis) for axis in (0, 1))
        self.proj = nn.Linear(dim, dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def set_split(self, split: int) -> None:
        for a in self.attns:
            a.split = split

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(self.norm1(x)).transpose(1, 2).reshape(b, 3, c, hw[0], hw[1])
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        if self.full:
            out = self.attns[0](q, k, v)
        else:  # half of the channels/heads in vertical stripes, half in horizontal ones
            half = c // 2
            parts = (slice(0, half), slice(half, c))
            out = torch.cat([a(q[:, sl], k[:, sl], v[:, sl]) for a, sl in zip(self.attns, parts, strict=True)], dim=1)
        x = x + self.drop_path(self.proj(out.flatten(2).transpose(1, 2)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class CSWinTransformer(nn.Module):
    """CSWin classifier. ``split_sizes`` entries of 0 mean "the last stage's feature size" (official rule)."""

    def __init__(
        self,
        img_size: int = 224,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 64,
        depths: Sequence[int] = (1, 2, 21, 1),
        num_heads: Sequence[int] = (2, 4, 8, 16),
        split_sizes: Sequence[int] = (1, 2, 0, 0),
        mlp_ratio: float = 4.0,
        stem_stride: int = 4,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        **_: Any,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.split_sizes = tuple(split_sizes)
        self.stem_stride = stem_stride
        self.stem = nn.Conv2d(in_chans, embed_dim, kernel_size=stem_stride + 3, stride=stem_stride,
                              padding=(stem_stride + 3) // 2 - (stem_stride // 2 - 1 if stem_stride > 1 else 0))
        self.stem_norm = nn.LayerNorm(embed_dim)
        n = len(depths)
        total = max(sum(depths) - 1, 1)
        dpr = [drop_path_rate * i / total for i in range(sum(depths))]
        dims = [embed_dim * 2**i for i in range(n)]
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()
        cur = 0
        for i in range(n):
            if i > 0:
                self.merges.append(nn.Conv2d(dims[i - 1], dims[i], 3, 2, 1))  # 3x3 stride-2 merging
            self.stages.append(
                nn.ModuleList(
                    CSWinBlock(dims[i], num_heads[i], mlp_ratio, i == n - 1, dpr[cur + j]) for j in range(depths[i])
                )
            )
            cur += depths[i]
        self.merge_norms = nn.ModuleList(nn.LayerNorm(d) for d in dims[1:])
        self.norm = nn.LayerNorm(dims[-1])
        self.num_features = dims[-1]
        self.drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)
        self.set_input_size(img_size)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def feature_sizes(self, img_size: int) -> list[int]:
        k, st = self.stem.kernel_size[0], self.stem.stride[0]
        s = (img_size + 2 * self.stem.padding[0] - k) // st + 1
        sizes = [s]
        for _ in range(len(self.stages) - 1):
            s = (s + 1) // 2  # 3x3 stride-2 conv, padding 1
            sizes.append(s)
        return sizes

    def set_input_size(self, img_size: int) -> None:
        """Stripe widths for input size ``img_size`` (official: ``[1, 2, img // 32, img // 32]``); no parameter
        changes, so an optimizer keeps its state across EfficientTrain++ stage switches."""
        sizes = self.feature_sizes(img_size)
        self.img_size = img_size
        for stage, split in zip(self.stages, self.split_sizes, strict=True):
            eff = max(1, sizes[-1]) if split == 0 else split
            for blk in stage:
                blk.set_split(eff)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = self.merges[i - 1](x)
            b, c, h, w = x.shape
            norm = self.stem_norm if i == 0 else self.merge_norms[i - 1]
            t = norm(x.flatten(2).transpose(1, 2))
            for blk in stage:
                t = blk(t, (h, w))
            x = t.transpose(1, 2).reshape(b, c, h, w)
        return self.norm(x.flatten(2).transpose(1, 2))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(x.mean(dim=1))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


_CFGS: dict[str, dict[str, Any]] = {
    "tiny": dict(embed_dim=64, depths=(1, 2, 21, 1), num_heads=(2, 4, 8, 16)),
    "small": dict(embed_dim=64, depths=(2, 4, 32, 2), num_heads=(2, 4, 8, 16)),
    "base": dict(embed_dim=96, depths=(2, 4, 32, 2), num_heads=(4, 8, 16, 32)),
}


def _cswin(variant: str, pretrained: bool, **kwargs: Any) -> CSWinTransformer:
    if pretrained:
        raise ValueError("no pretrained weights for cswin in this reproduction")
    kwargs.pop("pretrained_cfg", None)
    kwargs.pop("pretrained_cfg_overlay", None)
    return CSWinTransformer(**{**_CFGS[variant], **kwargs})


@register_model
def cswin_tiny_224(pretrained: bool = False, **kwargs: Any) -> CSWinTransformer:
    """CSWin-T (23M params, 4.3 GFLOPs; Dong et al. 2022 Table 1)."""
    return _cswin("tiny", pretrained, **kwargs)


@register_model
def cswin_small_224(pretrained: bool = False, **kwargs: Any) -> CSWinTransformer:
    """CSWin-S (35M params, 6.9 GFLOPs)."""
    return _cswin("small", pretrained, **kwargs)


@register_model
def cswin_base_224(pretrained: bool = False, **kwargs: Any) -> CSWinTransformer:
    """CSWin-B (78M params, 15.0 GFLOPs)."""
    return _cswin("base", pretrained, **kwargs)
