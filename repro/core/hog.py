"""MaskFeat's HOG reconstruction target (Wei et al., "Masked Feature Prediction for Self-Supervised Visual
Pre-Training", CVPR 2022, Sec. 3.2 / 4.1), the target of Table 15's MAE + HOG rows (ET++ Sec. 6.2).

MaskFeat: "HOG [...] with 9 orientation bins [...] histograms of 8x8-pixel cells, [...] gradients weighted by a
Gaussian window, L2-normalised per cell" -- computed on each colour channel, and the histograms of the cells in a
patch concatenated into that patch's target (16x16 patches: 2 x 2 cells x 9 bins x 3 channels = 108 values).

The arithmetic follows MaskFeat's public implementation (facebookresearch/SlowFast
``slowfast/models/operators.py`` ``HOGLayerC``, also mmpretrain ``HOGGenerator``), batched and in torch:

* gradients: 3x3 Sobel filters per channel on the reflect-padded image;
* orientation: ``atan2(gx, gy)``, i.e. measured from the image's vertical axis, unsigned (modulo pi), in
  ``bins`` hard bins of pi / bins each: a horizontal gradient (a vertical edge) has orientation pi/2 and falls
  in bin 4 of 9, a vertical gradient (a horizontal edge) in bin 0;
* magnitude ``sqrt(gx^2 + gy^2)`` multiplied by a Gaussian of ``window`` pixels (std ``window / 2``) tiled over
  the image -- MaskFeat's window is the patch (16), so every patch weighs its centre most;
* per-cell sums of the magnitudes in each bin, L2-normalised over the bins (a cell without gradient stays 0).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from repro.errors import UserError

BINS = 9  # MaskFeat's orientation bins
CELL = 8  # MaskFeat's cell size in pixels


def gaussian_window(size: int, device: torch.device | None = None) -> torch.Tensor:
    """MaskFeat's ``size`` x ``size`` Gaussian weights (std ``size // 2`` about the window centre), summing to 1."""
    n = torch.arange(size, dtype=torch.float32, device=device)
    w = torch.exp(-0.5 * ((n - n.mean()) / (size // 2)) ** 2)
    kernel = torch.outer(w, w)
    return kernel / kernel.sum()


def hog(images: torch.Tensor, *, bins: int = BINS, cell: int = CELL, window: int | None = 16) -> torch.Tensor:
    """Histograms of oriented gradients of ``images`` (N, C, H, W): (N, C, bins, H / cell, W / cell), each cell's
    histogram L2-normalised. ``window``: the Gaussian window's size (None: unweighted); H and W must be
    multiples of ``cell`` and of ``window``."""
    if images.ndim != 4:
        raise UserError(f"HOG takes a batch of images (N, C, H, W), got a tensor of shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    for what, size in (("cell", cell), ("window", window or 1)):
        if h % size or w % size:
            raise UserError(f"HOG: the {h}x{w} image is not a whole number of {size}-pixel {what}s; use an input "
                            f"size that is a multiple of {size}")
    x = images.float()
    sobel_x = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]], device=x.device)
    weights = torch.stack([sobel_x, sobel_x.T])[:, None].repeat(c, 1, 1, 1)  # (2C, 1, 3, 3): gx, gy per channel
    grad = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), weights, groups=c).view(n, c, 2, h, w)
    gx, gy = grad[:, :, 0], grad[:, :, 1]
    magnitude = torch.sqrt(gx * gx + gy * gy)
    if window:
        magnitude = magnitude * gaussian_window(window, x.device).repeat(h // window, w // window)
    # orientation in [-pi, pi] -> [-bins, bins]; floor modulo bins folds it to unsigned hard bins
    index = torch.floor(torch.atan2(gx, gy) * (bins / math.pi)).long().remainder(bins)
    hist = torch.zeros(n, c, bins, h, w, dtype=x.dtype, device=x.device)
    hist.scatter_add_(2, index[:, :, None], magnitude[:, :, None])
    cells = hist.view(n, c, bins, h // cell, cell, w // cell, cell).sum(dim=(4, 6))
    return F.normalize(cells, p=2, dim=2)


def hog_targets(images: torch.Tensor, patch: int, *, bins: int = BINS, cell: int = CELL) -> torch.Tensor:
    """Per-patch HOG targets (N, L, C * bins * (patch / cell)^2), patches in row-major order (timm's token order),
    MaskFeat's layout (each patch: channel-major histograms, bin-major, then the patch's cells row-major),
    Gaussian window = ``patch``."""
    if patch % cell:
        raise UserError(f"HOG: a {patch}-pixel patch is not a whole number of {cell}-pixel cells; use a patch size "
                        f"that is a multiple of {cell}")
    cells = hog(images, bins=bins, cell=cell, window=patch)  # (N, C, bins, gh, gw)
    n, c, _, gh, gw = cells.shape
    u = patch // cell
    # (N, C*bins, gh/u, u, gw/u, u) -> (N, gh/u, gw/u, C*bins, u, u) -> (N, L, C*bins*u*u), mmpretrain's order
    grid = cells.reshape(n, c * bins, gh // u, u, gw // u, u).permute(0, 2, 4, 1, 3, 5)
    return grid.reshape(n, (gh // u) * (gw // u), c * bins * u * u)


def hog_target_dim(patch: int, channels: int = 3, *, bins: int = BINS, cell: int = CELL) -> int:
    """Length of one patch's HOG target (108 for MaskFeat's 16x16 RGB patches)."""
    return channels * bins * (patch // cell) ** 2
