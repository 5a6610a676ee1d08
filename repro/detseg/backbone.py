"""A model of the repro zoo as an MMDetection / MMSegmentation backbone (Sec. 6.3: "we initialize the backbone
networks ... with the models pre-trained w/ or w/o our method on ImageNet-1K").

The model is built exactly as its upstream IN-1K run built it (``repro.models.create``: same name, variant and
final size, so the Swin windows and ViT patch grid are the pre-trained ones), takes over the run's weights
(:func:`repro.train.finetune.upstream_weights`), and returns multi-scale NCHW features through timm's
``forward_intermediates``:

* hierarchical models (Swin, and any whose stages have growing strides): every stage, as mmdet's / mmseg's own
  Swin (``out_indices=(0, 1, 2, 3)``); Swin runs at any input size (timm's ``strict_img_size=False``: padded
  windows, attention masks per input);
* plain ViTs (DeiT): four blocks evenly spaced over the depth -- DeiT-S's (2, 5, 8, 11), mmseg's ViT
  ``out_indices`` -- rescaled by mmseg's ``MultiLevelNeck`` (the shipped DeiT UperNet config); the position
  embeddings follow the input size (timm's ``dynamic_img_size``).

What the features do not use is removed with timm's ``prune_intermediate_layers`` (the classifier, the final
norm): a parameter without gradient would stop DDP (``find_unused_parameters``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

NAME = "ReproTimmBackbone"


def feature_indices(reductions: list[int]) -> list[int]:
    """The feature taps: every stage of a hierarchical model, four evenly spaced blocks of a plain ViT."""
    if len(set(reductions)) > 1:
        return list(range(len(reductions)))
    depth = len(reductions)
    return [max(0, round((i + 1) * depth / 4) - 1) for i in range(4)]


class TimmBackbone(nn.Module):
    """``model`` / ``variant`` / ``img_size`` as the upstream's resolved config has them; ``upstream`` its run
    directory (None: random initialisation, for tests); ``out_indices`` which of the feature taps to return
    (all by default; mmdet's RetinaNet takes Swin's last three, ``(1, 2, 3)``)."""

    def __init__(self, model: str, variant: str = "full", img_size: int = 224, upstream: str | None = None,
                 drop_path_rate: float = 0.0, out_indices: list[int] | None = None) -> None:
        super().__init__()
        from repro.models import create

        kwargs: dict[str, Any] = {"drop_path_rate": drop_path_rate} if drop_path_rate else {}
        net = create(model, variant=variant, img_size=img_size, **kwargs)  # type: ignore[arg-type]
        if upstream is not None:
            from repro.train.finetune import load_into, upstream_weights

            load_into(net, upstream_weights(upstream), source=f"run {Path(upstream).name}")
        info = net.feature_info
        taps = feature_indices([int(f["reduction"]) for f in info])
        self.taps = [taps[i] for i in out_indices] if out_indices is not None else taps
        unique = sorted(set(self.taps))
        self.channels = [int(info[i]["num_chs"]) for i in self.taps]
        self.strides = [int(info[i]["reduction"]) for i in self.taps]
        net.prune_intermediate_layers(unique, prune_norm=True, prune_head=True)
        self.net = net
        self._position = [unique.index(i) for i in self.taps]  # a shallow proxy ViT repeats a block
        self._unique = unique

    def init_weights(self) -> None:
        """The weights come from the upstream run (or stay timm's initialisation); mmengine must not redo them."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.net.forward_intermediates(x, indices=self._unique, intermediates_only=True)
        return tuple(feats[p] for p in self._position)


def register() -> None:
    """Register :class:`TimmBackbone` as ``ReproTimmBackbone`` in mmdet's and mmseg's model registries."""
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG

    for registry in (DET, SEG):
        if NAME not in registry.module_dict:
            registry.register_module(name=NAME, module=TimmBackbone)
