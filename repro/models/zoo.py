"""The Table 7 model zoo of EfficientTrain++ (TPAMI 2024): names, builders and the input-size hook.

Every Table 7 architecture is buildable by its paper name (``"Swin-Tiny"``) or its timm name
(``"swin_tiny_patch4_window7_224"``); PVT v1 and CSWin are implemented here (:mod:`repro.models.pvt`,
:mod:`repro.models.cswin`) and registered in timm. ``variant="proxy"`` builds a tiny member of the same family
(well under 1M parameters) for the CPU smoke profile.

EfficientTrain++ changes the input size B during training (low-frequency cropping, Sec. 4.1 / Table 6).
:func:`set_input_size` adapts a model to B *in place* without creating or resizing a parameter, so the
optimizer state stays valid across stage switches:

* DeiT: position embeddings are interpolated on the fly (timm ``dynamic_img_size``).
* PVT: per-stage position embeddings are interpolated on the fly (as in the official PVT code).
* Swin: the window follows the patch grid (official ET++ release: ``window = B // 32``); the relative-position
  bias of a smaller window is read from the centre of the full-size table, so the table is never resized.
* CSWin: stripe widths of stages 3-4 follow the last stage's feature size (official: ``B // 32``).
* ResNet, ConvNeXt, CAFormer: convolutional down-sampling and global pooling, nothing to do.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from repro.errors import UserError

if TYPE_CHECKING:  # torch and timm are imported where used, so that name look-ups stay light
    import torch
    from torch import nn

Variant = Literal["full", "proxy"]


@dataclass(frozen=True)
class ZooEntry:
    """One Table 7 row: paper name, timm name, family and the paper's #Param. (M) / #FLOPs (G) at 224^2."""

    paper: str
    timm: str
    family: str
    params_m: float
    gflops: float
    speedup: float  # Table 7 "Computation" training speedup of EfficientTrain++ (200 equivalent epochs)


TABLE7: tuple[ZooEntry, ...] = (
    ZooEntry("ResNet-50", "resnet50", "resnet", 26, 4.1, 1.49),
    ZooEntry("ConvNeXt-Tiny", "convnext_tiny", "convnext", 29, 4.5, 1.49),
    ZooEntry("ConvNeXt-Small", "convnext_small", "convnext", 50, 8.7, 1.49),
    ZooEntry("ConvNeXt-Base", "convnext_base", "convnext", 89, 15.4, 1.49),
    ZooEntry("DeiT-Tiny", "deit_tiny_patch16_224", "deit", 5, 1.3, 1.56),
    ZooEntry("DeiT-Small", "deit_small_patch16_224", "deit", 22, 4.6, 1.52),
    ZooEntry("PVT-Tiny", "pvt_v1_tiny", "pvt", 13, 1.9, 1.51),
    ZooEntry("PVT-Small", "pvt_v1_small", "pvt", 25, 3.8, 1.51),
    ZooEntry("PVT-Medium", "pvt_v1_medium", "pvt", 44, 6.7, 1.51),
    ZooEntry("PVT-Large", "pvt_v1_large", "pvt", 61, 9.8, 1.51),
    ZooEntry("Swin-Tiny", "swin_tiny_patch4_window7_224", "swin", 28, 4.5, 1.51),
    ZooEntry("Swin-Small", "swin_small_patch4_window7_224", "swin", 50, 8.7, 1.51),
    ZooEntry("Swin-Base", "swin_base_patch4_window7_224", "swin", 88, 15.4, 1.50),
    ZooEntry("CSWin-Tiny", "cswin_tiny_224", "cswin", 23, 4.3, 1.52),
    ZooEntry("CSWin-Small", "cswin_small_224", "cswin", 35, 6.9, 1.52),
    ZooEntry("CSWin-Base", "cswin_base_224", "cswin", 78, 15.0, 1.51),
    ZooEntry("CAFormer-S18", "caformer_s18", "caformer", 26, 4.1, 1.52),
    ZooEntry("CAFormer-S36", "caformer_s36", "caformer", 39, 8.0, 1.52),
    ZooEntry("CAFormer-M36", "caformer_m36", "caformer", 56, 13.2, 1.51),
)
FAMILIES = ("resnet", "convnext", "deit", "pvt", "swin", "cswin", "caformer")
_BY_KEY: dict[str, ZooEntry] = {}
for _e in TABLE7:
    for _k in (_e.paper, _e.timm):
        _BY_KEY[_k.lower()] = _e


def _register() -> None:
    """Register PVT v1 and CSWin in timm's registry (importing the modules does it)."""
    from repro.models import cswin, pvt  # noqa: F401


def entry(name: str) -> ZooEntry:
    """The Table 7 row for a paper or timm name (case-insensitive); unknown names list close matches."""
    found = _BY_KEY.get(name.lower()) or _BY_KEY.get(name.lower().replace("_", "-"))
    if found is None:
        names = [e.paper for e in TABLE7] + [e.timm for e in TABLE7]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        lowered = {n.lower(): n for n in names}
        close += [lowered[c] for c in difflib.get_close_matches(name.lower(), lowered, n=3, cutoff=0.5)]
        close = list(dict.fromkeys(close))[:4]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown model {name!r}{hint}; known: {', '.join(e.paper for e in TABLE7)}")
    return found


def family_of(name: str) -> str:
    return entry(name).family


# -- builders ----------------------------------------------------------------------------------------------


def _full(e: ZooEntry, num_classes: int, img_size: int, **kwargs: Any) -> nn.Module:
    import timm

    _register()
    kw: dict[str, Any] = dict(pretrained=False, num_classes=num_classes, **kwargs)
    if e.family in ("deit", "pvt", "swin", "cswin"):
        kw["img_size"] = img_size
    if e.family == "deit":
        kw["dynamic_img_size"] = True
    if e.family == "swin":
        kw["strict_img_size"] = False
    return timm.create_model(e.timm, **kw)


def _proxy(family: str, num_classes: int, img_size: int, **kwargs: Any) -> nn.Module:
    """A tiny member of ``family`` that runs at ``img_size`` and every curriculum B below it.

    Below 112 pixels the strides shrink (DeiT patch 8, Swin patch 2 with 3 stages, PVT patches 2/2/2/2,
    ConvNeXt patch 2) so that the smoke profile's 24-56 pixel inputs keep non-empty feature maps; at 32 pixels
    and below (the proxy profile's native 28-pixel items, B down to 12) they shrink once more (DeiT patch 4, PVT
    patches 1/2/2/2, ConvNeXt patch 1): the same token counts as the smoke models at twice the size.
    """
    small, native = img_size < 112, img_size <= 32
    if family == "resnet":
        from timm.models.resnet import BasicBlock, ResNet

        return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes, stem_width=8,
                      channels=(8, 16, 32, 64), **kwargs)
    if family == "convnext":
        from timm.models.convnext import ConvNeXt

        # timm's ConvNeXt always has 4 stages: /32 with patch 2 (its first stage then strides too), so B >= 32;
        # ConvNeXt's schedules (ET, ET++'s ConvNeXt variant) never go below 32 at 56. Patch 1 (/8) was 12x slower.
        patch = 1 if native else 2 if small else 4
        model = ConvNeXt(depths=(1, 1, 1, 1), dims=(16, 32, 64, 128), patch_size=patch,
                         num_classes=num_classes, **kwargs)
        model.repro_min_input_size = 16 * patch  # type: ignore[assignment]
        return model
    if family == "deit":
        from timm.models.vision_transformer import VisionTransformer

        patch = 4 if native else 8 if small else 16
        return VisionTransformer(img_size=img_size, patch_size=patch, embed_dim=64, depth=2, num_heads=2,
                                 num_classes=num_classes, dynamic_img_size=True, **kwargs)
    if family == "pvt":
        from repro.models.pvt import PyramidVisionTransformer

        patches = (1, 2, 2, 2) if native else (2, 2, 2, 2) if small else (4, 2, 2, 2)
        srs = (4, 2, 1, 1) if small else (8, 4, 2, 1)
        return PyramidVisionTransformer(img_size=img_size, patch_sizes=patches, embed_dims=(16, 32, 48, 64),
                                        num_heads=(1, 1, 2, 2), mlp_ratios=(2, 2, 2, 2), depths=(1, 1, 1, 1),
                                        sr_ratios=srs, num_classes=num_classes, **kwargs)
    if family == "swin":
        from timm.models.swin_transformer import SwinTransformer

        if small:
            cfg: dict[str, Any] = dict(patch_size=2, depths=(1, 1, 2), num_heads=(1, 2, 4), window_size=img_size // 8)
        else:
            cfg = dict(patch_size=4, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 4), window_size=img_size // 32)
        return SwinTransformer(img_size=img_size, embed_dim=16, num_classes=num_classes, strict_img_size=False,
                               **cfg, **kwargs)
    if family == "cswin":
        from repro.models.cswin import CSWinTransformer

        return CSWinTransformer(img_size=img_size, embed_dim=16, depths=(1, 1, 1, 1), num_heads=(2, 2, 4, 4),
                                num_classes=num_classes, **kwargs)
    if family == "caformer":
        from timm.models.metaformer import Attention, LayerNorm2dNoBias, LayerNormNoBias, MetaFormer, SepConv

        return MetaFormer(depths=(1, 1, 1, 1), dims=(16, 32, 64, 64),
                          token_mixers=[SepConv, SepConv, Attention, Attention],
                          norm_layers=[LayerNorm2dNoBias] * 2 + [LayerNormNoBias] * 2,
                          num_classes=num_classes, **kwargs)
    raise UserError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")


def create(
    name: str, variant: Variant = "full", num_classes: int = 1000, img_size: int = 224, **kwargs: Any
) -> nn.Module:
    """Build a Table 7 model (``full``) or a tiny same-family proxy (``proxy``), randomly initialised.

    ``img_size`` is the final input size (the curriculum's gamma); smaller B are reached with
    :func:`set_input_size`. Extra ``kwargs`` go to the model constructor (e.g. ``drop_path_rate``).
    """
    e = entry(name)
    if variant == "full":
        model = _full(e, num_classes, img_size, **kwargs)
    elif variant == "proxy":
        model = _proxy(e.family, num_classes, img_size, **kwargs)
    else:
        raise UserError(f"unknown variant {variant!r}; use 'full' or 'proxy'")
    model.repro_family = e.family  # type: ignore[assignment]
    model.repro_img_size = img_size  # type: ignore[assignment]
    set_input_size(model, img_size)
    return model


# -- input-size switching ------------------------------------------------------------------------------------


def _family(model: nn.Module) -> str | None:
    fam = getattr(model, "repro_family", None)
    if fam is not None:
        return str(fam)
    from timm.models.swin_transformer import SwinTransformer
    from timm.models.vision_transformer import VisionTransformer

    from repro.models.cswin import CSWinTransformer
    from repro.models.pvt import PyramidVisionTransformer

    for cls, f in ((SwinTransformer, "swin"), (VisionTransformer, "deit"), (CSWinTransformer, "cswin"),
                   (PyramidVisionTransformer, "pvt")):
        if isinstance(model, cls):
            return f
    return None


def _rel_index(win: int, table_win: int, device: torch.device) -> torch.Tensor:
    """Relative-position index of a ``win`` x ``win`` window into a table built for ``table_win``."""
    import torch

    coords = torch.stack(torch.meshgrid(torch.arange(win), torch.arange(win), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (table_win - 1)
    return (rel[..., 0] * (2 * table_win - 1) + rel[..., 1]).to(device)


def _swin_set_input_size(model: nn.Module, b: int) -> None:
    """Swin at input size B: window = ref_window * grid / ref_grid (the official ``img_size // 32``), capped at
    the table's window and at each stage's feature size (then no shift, as in the official Swin)."""
    pe = model.patch_embed  # type: ignore[attr-defined]
    if not hasattr(model, "_repro_ref"):
        model._repro_ref = (pe.grid_size[0], model.layers[0].blocks[0].attn.window_size[0])  # type: ignore
    ref_grid, ref_win = model._repro_ref  # type: ignore[attr-defined]
    pe.img_size = (b, b)
    pe.strict_img_size = False
    grid = b // pe.patch_size[0]
    pe.grid_size = (grid, grid)
    pe.num_patches = grid * grid
    target = max(1, min(ref_win, round(ref_win * grid / ref_grid)))
    feat = grid
    for i, layer in enumerate(model.layers):  # type: ignore[attr-defined]
        if i > 0:
            feat = (feat + 1) // 2
        layer.input_resolution = (feat if i == 0 else 2 * feat, feat if i == 0 else 2 * feat)
        layer.output_resolution = (feat, feat)
        for j, blk in enumerate(layer.blocks):
            win = min(target, feat)
            shift = 0 if (feat <= target or j % 2 == 0) else win // 2
            blk.input_resolution = (feat, feat)
            blk.window_size = (win, win)
            blk.shift_size = (shift, shift)
            blk.window_area = win * win
            attn = blk.attn
            table_win = int(round(((attn.relative_position_bias_table.shape[0]) ** 0.5 + 1) / 2))
            attn.window_size = (win, win)
            attn.window_area = win * win
            attn.register_buffer("relative_position_index",
                                 _rel_index(win, table_win, attn.relative_position_bias_table.device),
                                 persistent=False)
            blk._init_buffers()


def _vit_set_input_size(model: nn.Module, b: int) -> None:
    from timm.layers import Format

    pe = model.patch_embed  # type: ignore[attr-defined]
    if not getattr(model, "dynamic_img_size", False):  # a timm ViT built without dynamic_img_size
        model.dynamic_img_size = True  # type: ignore[assignment]
        pe.flatten = False
        pe.output_fmt = Format.NHWC
    pe.strict_img_size = False


def set_input_size(model: nn.Module, b: int) -> nn.Module:
    """Adapt ``model`` in place to input size ``b`` (EfficientTrain++ stage switch); no parameter is replaced.

    Call it whenever the curriculum's B changes (and with the final size before evaluation). Returns the model.
    """
    if b <= 0:
        raise UserError(f"input size must be positive, got {b}")
    fam = _family(model)
    smallest = getattr(model, "repro_min_input_size", 1)
    if b < smallest:
        raise UserError(f"this {fam} model needs inputs of at least {smallest}x{smallest} (its strides), got B={b}")
    if fam == "swin":
        _swin_set_input_size(model, b)
    elif fam == "deit":
        _vit_set_input_size(model, b)
    elif fam == "cswin":
        model.set_input_size(b)  # type: ignore[operator]
    model.repro_input_size = b  # type: ignore[assignment]
    return model
