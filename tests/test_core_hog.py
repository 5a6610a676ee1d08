"""MaskFeat's HOG target (repro.core.hog) on hand-computed edge images."""

from __future__ import annotations

import pytest
import torch

from repro.core.hog import gaussian_window, hog, hog_target_dim, hog_targets
from repro.errors import UserError


def _step(size: int = 32, vertical: bool = True) -> torch.Tensor:
    """A step edge between pixels 15 and 16: dark left (top) half, bright right (bottom) half, 3 channels."""
    img = torch.zeros(1, 3, size, size)
    if vertical:
        img[..., size // 2:] = 1.0
    else:
        img[..., size // 2:, :] = 1.0
    return img


def test_vertical_step_edge_is_all_in_the_horizontal_gradient_bin_of_the_edge_cells() -> None:
    # Sobel gx = 4 (I(x-1) - I(x+1)) is -4 at columns 15 and 16 only, gy = 0: orientation atan2(gx, gy) = -pi/2,
    # bin floor(-4.5) mod 9 = 4; columns 15 and 16 lie in cell columns 1 and 2 of the 4x4 cells
    out = hog(_step(), window=None)
    assert out.shape == (1, 3, 9, 4, 4)
    expected = torch.zeros(1, 3, 9, 4, 4)
    expected[:, :, 4, :, 1:3] = 1.0
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_horizontal_step_edge_is_all_in_bin_0_and_the_window_does_not_change_normalised_cells() -> None:
    expected = torch.zeros(1, 3, 9, 4, 4)
    expected[:, :, 0, 1:3, :] = 1.0
    for window in (None, 16):  # the Gaussian scales a cell's magnitudes, the L2 normalisation removes the scale
        torch.testing.assert_close(hog(_step(vertical=False), window=window), expected, rtol=0, atol=1e-6)


def test_unsigned_orientation_and_one_bin_per_pi_over_9() -> None:
    # a ramp I = x cos(t) + y sin(t) has one gradient direction everywhere; its bin is floor(9 a / pi) mod 9 for
    # a = atan2(gx, gy); the reversed ramp (gradient turned by pi) falls in the same bin
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    for degrees in (5.0, 33.0, 77.0, 128.0):  # away from the bin edges (t = 10 mod 20 degrees)
        t = torch.tensor(degrees).deg2rad()
        ramp = (x * torch.cos(t) + y * torch.sin(t))[None, None]
        gx, gy = -8 * torch.cos(t), -8 * torch.sin(t)  # Sobel: 4 (I(x-1) - I(x+1)) = -8 dI/dx on a ramp
        b = int(torch.floor(torch.atan2(gx, gy) * 9 / torch.pi).item()) % 9
        for sign in (1.0, -1.0):
            cells = hog(sign * ramp, window=None)[0, 0, :, 1, 1]  # an interior cell: no padding effect
            assert int(cells.argmax()) == b and float(cells[b]) == pytest.approx(1.0, abs=1e-6)


def test_batched_equals_one_by_one_and_channels_are_independent() -> None:
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(4, 3, 32, 48, generator=g)
    batch = hog(imgs)
    for i in range(4):
        torch.testing.assert_close(batch[i:i + 1], hog(imgs[i:i + 1]))
        torch.testing.assert_close(batch[i:i + 1, 1:2], hog(imgs[i:i + 1, 1:2]))
    norms = batch.norm(dim=2)
    torch.testing.assert_close(norms, torch.ones_like(norms))  # every cell of a noise image has gradients


def test_patch_targets_take_the_cells_of_each_patch_in_maskfeat_order() -> None:
    imgs = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(1))
    t = hog_targets(imgs, 16)
    assert t.shape == (2, 2 * 3, hog_target_dim(16)) and hog_target_dim(16) == 108  # MaskFeat's 108
    cells = hog(imgs, window=16)  # (2, 3, 9, 4, 6)
    r, c = 1, 2  # patch (1, 2) is token 1 * 3 + 2 and holds cells rows 2-3, columns 4-5
    expected = cells[:, :, :, 2:4, 4:6].reshape(2, 27, 2, 2).reshape(2, 108)
    torch.testing.assert_close(t[:, r * 3 + c], expected)


def test_gaussian_window_is_maskfeats() -> None:
    w = gaussian_window(16)
    assert float(w.sum()) == pytest.approx(1.0) and w.argmax() in (7 * 16 + 7, 7 * 16 + 8, 8 * 16 + 7, 8 * 16 + 8)
    torch.testing.assert_close(w, w.T)
    assert float(w[0, 0] / w[7, 7]) == pytest.approx(float(torch.exp(torch.tensor(-(7.5**2 - 0.5**2) / 64))))


def test_sizes_that_are_not_whole_cells_are_refused() -> None:
    with pytest.raises(UserError, match="multiple of 8"):
        hog(torch.zeros(1, 3, 20, 16), window=None)
    with pytest.raises(UserError, match="patch size"):
        hog_targets(torch.zeros(1, 3, 24, 24), 12)
