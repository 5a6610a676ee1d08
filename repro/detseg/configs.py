"""The detectors and segmentors of Tables 17 and 18, each the config MMDetection / MMSegmentation ship, with
the backbone, data root, image scale and schedule replaced (and nothing else).

* ``retinanet-1x``: ``configs/swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py`` -- RetinaNet on Swin, 1x schedule
  (12 epochs, SGD lr 0.01, steps at 8 and 11), FPN on the last three stages (the paper's [123], Swin's
  RetinaNet);
* ``cascade-mask-rcnn-1x``: ConvNeXt's Cascade Mask R-CNN (``configs/convnext/cascade-mask-rcnn_convnext-t-
  p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py``: 4conv1fc box heads with GIoU, SyncBN, AdamW lr 2e-4,
  weight decay 0.05) on the 1x schedule of ``_base_/schedules/schedule_1x.py`` (12 epochs, steps at 8 and 11)
  and the 1x data pipeline of ``_base_/datasets/coco_instance.py`` (1333 x 800, flip). ConvNeXt's layer-wise
  LR decay constructor names ConvNeXt's stages; for Swin the weight decay of norms and relative position
  tables is 0 as in mmdet's Swin configs;
* ``upernet-80k`` / ``upernet-160k``: ``configs/swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_
  ade20k-512x512.py`` for Swin, ``configs/vit/vit_deit-s16_mln_upernet_8xb2-160k_ade20k-512x512.py`` for DeiT
  (AdamW lr 6e-5, poly LR after 1500 warm-up iterations, batch 16, 512 x 512 crops), the schedule's length
  80k or 160k iterations (``_base_/schedules/schedule_80k.py`` / ``_160k.py``).

The backbone's feature strides set the FPN inputs and anchor / RoI strides: the full models' strides (4, 8, 16,
32) give the shipped values; the CPU proxy's Swin (strides 2, 4, 8) gets the same pyramid one octave finer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.errors import UserError


@dataclass(frozen=True)
class Recipe:
    name: str
    package: str  # mmdet | mmseg
    configs: dict[str, str]  # model family -> shipped config (relative to the package's .mim/configs)
    iters: int | None = None  # iteration-based schedules (segmentation)


FAMILY_CONFIGS = {
    "retinanet-1x": Recipe("retinanet-1x", "mmdet", {"swin": "swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py"}),
    "cascade-mask-rcnn-1x": Recipe(
        "cascade-mask-rcnn-1x", "mmdet",
        {"swin": "convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py"}),
    **{f"upernet-{k}k": Recipe(f"upernet-{k}k", "mmseg", {
        "swin": "swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py",
        "deit": "vit/vit_deit-s16_mln_upernet_8xb2-160k_ade20k-512x512.py"}, iters=k * 1000) for k in (80, 160)},
}
DETECTORS = ("retinanet-1x", "cascade-mask-rcnn-1x")
SEGMENTORS = ("upernet-80k", "upernet-160k")
COCO_1X = "_base_/schedules/schedule_1x.py"
COCO_1X_DATA = "_base_/datasets/coco_instance.py"
SHIPPED_SCALE = {"mmdet": 800, "mmseg": 512}  # the short side the shipped pipelines resize / crop to


def recipe(name: str, family: str) -> Recipe:
    if name not in FAMILY_CONFIGS:
        raise UserError(f"unknown detector/segmentor {name!r}; known: {', '.join(FAMILY_CONFIGS)}")
    found = FAMILY_CONFIGS[name]
    if family not in found.configs:
        raise UserError(f"{name} is configured for {', '.join(found.configs)} backbones (the paper's), not {family}")
    return found


def shipped(package: str, relative: str) -> Any:
    """A config the package ships (``<package>/.mim/configs/...``), its ``_base_`` files resolved."""
    import importlib

    from mmengine.config import Config

    root = Path(importlib.import_module(package).__file__).parent / ".mim" / "configs"  # type: ignore[arg-type]
    return Config.fromfile(str(root / relative), import_custom_modules=False)  # ConvNeXt's mmpretrain: replaced


def _scaled(value: Any, factor: float) -> Any:
    if isinstance(value, tuple | list) and all(isinstance(v, int) for v in value):
        return type(value)(max(1, round(v * factor)) for v in value)
    return value


def scale_pipeline(pipeline: list[Any], factor: float) -> list[Any]:
    """The shipped pipeline with every absolute ``scale`` / ``scales`` / ``crop_size`` times ``factor``."""
    out = copy.deepcopy(pipeline)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("scale", "crop_size"):
                if key in node:
                    node[key] = _scaled(node[key], factor)
            if "scales" in node:
                node["scales"] = [_scaled(s, factor) for s in node["scales"]]
            for v in node.values():
                visit(v)
        elif isinstance(node, list):
            for v in node:
                visit(v)

    visit(out)
    return out


def _pyramid(strides: list[int], levels: int) -> list[int]:
    out = list(strides)
    while len(out) < levels:
        out.append(out[-1] * 2)
    return out[:levels]


def set_backbone(cfg: Any, backbone: dict[str, Any], channels: list[int], strides: list[int], name: str) -> None:
    """Replace the shipped backbone and adapt what depends on its channels and strides."""
    model = cfg.model
    model.backbone = dict(type="ReproTimmBackbone", **backbone)
    model.pop("pretrained", None)
    if name == "retinanet-1x":  # FPN on stages 2-4 (the shipped out_indices=(1, 2, 3)), 5 levels
        model.backbone.out_indices = list(range(1, len(channels)))
        model.neck.in_channels = channels[1:]
        model.bbox_head.anchor_generator.strides = _pyramid(strides[1:], model.neck.num_outs)
    elif name == "cascade-mask-rcnn-1x":
        model.neck.in_channels = channels
        model.rpn_head.anchor_generator.strides = _pyramid(strides, model.neck.num_outs)
        rois = model.roi_head
        rois.bbox_roi_extractor.featmap_strides = _pyramid(strides, 4)
        rois.mask_roi_extractor.featmap_strides = _pyramid(strides, 4)
    else:  # UperNet (after mmseg's MultiLevelNeck for a ViT)
        if "neck" in model:
            model.neck.in_channels = channels
            model.neck.out_channels = channels[0]
        model.decode_head.in_channels = channels if "neck" not in model else [channels[0]] * len(model.neck.scales)
        model.decode_head.in_index = list(range(len(model.decode_head.in_channels)))
        aux = model.auxiliary_head
        if aux.in_index >= len(model.decode_head.in_channels):
            aux.in_index = len(model.decode_head.in_channels) - 2
        aux.in_channels = model.decode_head.in_channels[aux.in_index]


def scale_lr(cfg: Any, lr_scale: dict[str, float] | None, name: str) -> None:
    """The shipped optimizer's learning rate times the run's ``lr_scale[name]`` (1 when absent): the CPU proxy's
    few hundred iterations barely move at the shipped rates (experiments/stand_ins.yaml has the measurements)."""
    factor = float((lr_scale or {}).get(name, 1.0))
    if not 0 < factor < float("inf"):
        raise UserError(f"lr_scale of {name} must be a positive number, got {factor}")
    cfg.optim_wrapper.optimizer.lr = cfg.optim_wrapper.optimizer.lr * factor


HEAD_WIDTH_KEYS = ("in_channels", "out_channels", "feat_channels", "channels", "conv_out_channels",
                   "fc_out_channels")


def narrow_heads(model: Any, factor: int) -> None:
    """Divide every neck / head width (the int widths of 256 and more: FPN's 256, the RoI heads' 1024 fc,
    UperNet's 512) by ``factor``. The CPU proxy's detectors need it: the shipped 256-channel heads on a stride-4
    pyramid cost ~100x the tiny proxy backbone (a RetinaNet step of 16 canvases took 2 minutes on 2 shared
    cores). Backbone widths (lists, and a proxy's < 256) are left alone."""
    if isinstance(model, dict):
        for key, value in model.items():
            if key in HEAD_WIDTH_KEYS and isinstance(value, int) and value >= 256:
                model[key] = value // factor
            else:
                narrow_heads(value, factor)
    elif isinstance(model, list | tuple):
        for value in model:
            narrow_heads(value, factor)
