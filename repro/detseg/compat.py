"""Every shim the OpenMMLab stack needs on this project's lock, in one place; :func:`install` runs before any
``mmcv`` / ``mmdet`` / ``mmseg`` / ``mmengine`` import (``repro.detseg`` calls it when imported).

Why shims at all: the paper's detection and segmentation results come from MMDetection 3.x and MMSegmentation
1.x (App. A.3), frozen since 2024. They need mmcv < 2.2, whose compiled ops (``mmcv._ext``) exist only in the
full ``mmcv`` source distribution (a ~10 min C++/CUDA compile with an old setuptools); the registry's
``mmcv-lite==2.1.0`` is the same Python code without ``_ext``. The three kernels the paper's models call are
routed to torchvision / torch, which run them on CPU and CUDA alike:

* ``nms`` (every detector's post-processing, RPN proposals) -> ``torchvision.ops.nms``;
* ``roi_align_forward`` / ``roi_align_backward`` (Cascade Mask R-CNN's box and mask RoI extractors, mask
  targets) -> torchvision's ``roi_align`` and its backward kernel; mmcv's ``aligned`` is torchvision's
  ``aligned`` (the half-pixel offset of Detectron2), ``sampling_ratio=0`` is adaptive in both;
* ``sigmoid_focal_loss_forward`` / ``_backward`` (RetinaNet's loss; mmdet calls mmcv's kernel only for CUDA
  tensors and its own ``py_sigmoid_focal_loss`` on CPU) -> the same element-wise formula in torch
  (Lin et al., ICCV 2017, eq. 5; mmcv's ``sigmoid_focal_loss_cuda_kernel.cuh``), its gradient by autograd.

Every other name of ``mmcv._ext`` (mmcv.ops loads ~60 at import time and asserts they exist) raises
``NotImplementedError`` naming itself when called: no model of Tables 17/18 calls one.

The second shim: torch >= 2.6 loads checkpoints with ``weights_only=True`` by default, and mmengine's
``load_checkpoint`` / ``Runner.resume`` call plain ``torch.load``. A resumed Runner reads its message hub
(``mmengine.logging.HistoryBuffer``, numpy scalars and arrays in the log history) and fails. Rather than turning
``weights_only`` off for every load, the classes an mmengine checkpoint holds are registered as safe globals
(``_safe_globals``).
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from collections.abc import Callable
from typing import Any

import torch

EXT = "mmcv._ext"


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, offset: int = 0) -> torch.Tensor:
    """mmcv's ``nms`` kernel: indices kept, by decreasing score. ``offset=1`` (mmcv's legacy pixel convention,
    width = x2 - x1 + 1) is the same as torchvision's IoU on boxes whose far corner moved by one pixel."""
    import torchvision

    if offset:
        boxes = torch.cat([boxes[:, :2], boxes[:, 2:4] + offset], dim=1)
    return torchvision.ops.nms(boxes[:, :4].float(), scores.float(), float(iou_threshold))


def _check_avg(pool_mode: int) -> None:
    if pool_mode != 1:  # mmcv: 0 = max, 1 = avg
        raise NotImplementedError("mmcv._ext.roi_align with pool_mode='max' (torchvision has only average RoIAlign)")


def roi_align_forward(input: torch.Tensor, rois: torch.Tensor, output: torch.Tensor, argmax_y: torch.Tensor,
                      argmax_x: torch.Tensor, aligned_height: int, aligned_width: int, spatial_scale: float,
                      sampling_ratio: int, pool_mode: int, aligned: bool) -> None:
    """mmcv's kernel writes into ``output``; rois are ``(batch index, x1, y1, x2, y2)`` in both libraries."""
    import torchvision

    _check_avg(pool_mode)
    output.copy_(torchvision.ops.roi_align(input, rois.to(input.dtype), (aligned_height, aligned_width),
                                           spatial_scale, sampling_ratio, aligned))


def roi_align_backward(grad_output: torch.Tensor, rois: torch.Tensor, argmax_y: torch.Tensor,
                       argmax_x: torch.Tensor, grad_input: torch.Tensor, aligned_height: int, aligned_width: int,
                       spatial_scale: float, sampling_ratio: int, pool_mode: int, aligned: bool) -> None:
    import torchvision  # noqa: F401  (registers torch.ops.torchvision)

    _check_avg(pool_mode)
    n, c, h, w = grad_input.shape
    grad = torch.ops.torchvision._roi_align_backward(grad_output, rois.to(grad_output.dtype), spatial_scale,
                                                    aligned_height, aligned_width, n, c, h, w, sampling_ratio,
                                                    aligned)
    grad_input.copy_(grad)


def _focal(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, gamma: float,
           alpha: float) -> torch.Tensor:
    """Element-wise sigmoid focal loss of logits ``input`` (N, C) for labels ``target`` (N,; C = background)."""
    p = input.sigmoid()
    positive = target[:, None] == torch.arange(input.shape[1], device=input.device)[None]
    tiny = torch.finfo(input.dtype).tiny  # the kernel's log(max(p, FLT_MIN))
    loss = torch.where(positive, -alpha * (1 - p).pow(gamma) * p.clamp_min(tiny).log(),
                       -(1 - alpha) * p.pow(gamma) * (1 - p).clamp_min(tiny).log())
    if weight.numel():  # a per-class weight, taken at each sample's label
        loss = loss * weight[target.clamp_max(weight.numel() - 1)][:, None]
    return loss


def sigmoid_focal_loss_forward(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                               output: torch.Tensor, gamma: float, alpha: float) -> None:
    output.copy_(_focal(input, target, weight, gamma, alpha))


def sigmoid_focal_loss_backward(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                                grad_input: torch.Tensor, gamma: float, alpha: float) -> None:
    with torch.enable_grad():
        x = input.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(_focal(x, target, weight, gamma, alpha).sum(), x)
    grad_input.copy_(grad)


IMPLEMENTED: dict[str, Callable[..., Any]] = {
    f.__name__: f for f in (nms, roi_align_forward, roi_align_backward, sigmoid_focal_loss_forward,
                            sigmoid_focal_loss_backward)
}


def _missing(name: str) -> Callable[..., Any]:
    if name.startswith("__"):  # __file__, __path__...: introspection (inspect.getmodule) must see them absent
        raise AttributeError(name)

    def kernel(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{EXT}.{name}: a compiled mmcv kernel that repro.detseg.compat does not route "
                                  "(mmcv-lite has no compiled ops; only nms, roi_align and sigmoid focal loss are)")

    kernel.__name__ = name
    return kernel


def _ext_module() -> types.ModuleType:
    module = types.ModuleType(EXT, "torchvision/torch stand-ins for mmcv's compiled ops (repro.detseg.compat)")
    # a spec: mmengine's mmcv_full_available() asks pkgutil.find_loader, which raises on a module without one
    # (Runner.from_cfg calls it); no loader, so mmengine takes the mmcv-lite paths
    module.__spec__ = importlib.machinery.ModuleSpec(EXT, loader=None, origin=__name__)
    module.__dict__.update(IMPLEMENTED)
    module.__getattr__ = _missing  # type: ignore[method-assign]  # hasattr() is all mmcv.ops asks at import
    return module


def _safe_globals() -> list[Any]:
    """What an mmengine Runner checkpoint holds besides tensors: its message hub's log history (HistoryBuffer,
    numpy arrays and scalars, collections.Counter) and what numpy's scalars pickle through (``_codecs.encode``,
    ``builtins.getattr``) -- the GLOBAL opcodes of an epoch checkpoint, listed with pickletools."""
    import builtins
    import codecs
    import collections

    import numpy as np
    from mmengine.logging import HistoryBuffer

    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 renamed it (pickles name the new module)
    return [HistoryBuffer, collections.Counter, codecs.encode, builtins.getattr, np.dtype, np.ndarray,
            core.multiarray._reconstruct, core.multiarray.scalar,
            *{type(np.dtype(t)) for t in ("f8", "f4", "i8", "i4", "u1", "b1")}]


def install() -> None:
    """Install every shim (idempotent)."""
    if EXT not in sys.modules:
        sys.modules[EXT] = _ext_module()
    torch.serialization.add_safe_globals(_safe_globals())
