"""Frequency-domain operations of EfficientTrain (Sec. 4.1) and EfficientTrain++ (Sec. 5.2).

* :func:`low_frequency_crop` -- eq. (1), Fig. 5: ``X_c = F^-1 o C_{B,B} o F(X)``: 2-D DFT, keep the centred
  B x B window of the (shifted) spectrum, inverse DFT at size B x B. It keeps exactly the lower-frequency
  spectrum (Proposition 1 a, App. C) and nothing else. Intensities are preserved (DC of the output = mean of
  the input) by the factor ``B_h B_w / (H W)``, as in the official release's ``freq_crop``.
* :func:`circular_filter` -- the circular low-/high-pass filter of radius r of Fig. 2 (Tables 1, 2).
* :func:`lowpass_filter` -- the B x B square low-pass filter of Sec. 5.2 / App. D, without resizing.
* :func:`lowpass_downsample` -- the efficient approximation of Sec. 5.2: B x B low-pass filtering followed by
  B x B down-sampling, done on the CPU with Lanczos resampling (the low-pass filter is a 2-D sinc convolution,
  App. D; Lanczos is a windowed sinc whose support PIL widens by the down-scaling factor, which makes it an
  anti-aliasing low-pass at the new Nyquist frequency followed by sampling). For PIL images this *is*
  ``Image.resize(..., Image.LANCZOS)`` (what the official release inserts after RandAugment); tensors get the
  same separable weights as two matrix products, so batches on any device give the same result.

Realness. For an even window size the centred window ``[-B/2, B/2 - 1]`` contains the frequency -B/2 but not
its conjugate +B/2, so the inverse DFT has a small imaginary part; we return the real part, which is the
inverse DFT of the Hermitian-symmetrised window (the -B/2 line becomes the mean of +-B/2). Odd B is exactly
Hermitian and loses nothing.

Layouts: tensors are channels-first ``(..., H, W)`` (single image ``(C, H, W)``, batch ``(N, C, H, W)``) unless
``channels_last=True`` (``(..., H, W, C)``). PIL images keep their mode.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TypeVar, overload

import numpy as np
import torch
from PIL import Image

from repro.errors import UserError

Size = int | tuple[int, int]
ImageT = TypeVar("ImageT", torch.Tensor, Image.Image)


def _pair(size: Size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def _check(size: Size, h: int, w: int) -> tuple[int, int]:
    bh, bw = _pair(size)
    if not (0 < bh <= h and 0 < bw <= w):
        raise UserError(f"window {bh}x{bw} must be positive and fit the {h}x{w} image")
    return bh, bw


# -- PIL <-> tensor plumbing --------------------------------------------------------------------------------
def _pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """(C, H, W) float32 tensor with the image's raw values (0-255 for 8-bit modes)."""
    arr = np.array(img, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _tensor_to_pil(t: torch.Tensor, mode: str) -> Image.Image:
    arr = t.permute(1, 2, 0).numpy()
    if mode == "F":
        return Image.fromarray(arr[:, :, 0].astype(np.float32), mode="F")
    arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, mode=mode)


def _apply(x: ImageT, fn, channels_last: bool) -> ImageT:  # type: ignore[no-untyped-def]
    """Run ``fn`` on a channels-first float tensor view of ``x`` and convert back to ``x``'s type."""
    if isinstance(x, Image.Image):
        if x.mode not in ("L", "RGB", "F"):
            raise UserError(f"unsupported PIL mode {x.mode!r}; convert the image to 'RGB', 'L' or 'F' first")
        return _tensor_to_pil(fn(_pil_to_tensor(x)), x.mode)
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise UserError(f"expected a PIL image or a tensor with at least 2 dims, got {type(x).__name__}")
    t = x.movedim(-1, -3) if channels_last else x
    if t.is_floating_point():
        out = fn(t.float() if t.dtype in (torch.float16, torch.bfloat16) else t).to(t.dtype)
    else:  # integer images (uint8): round and clamp back into the dtype's range
        info = torch.iinfo(t.dtype)
        out = fn(t.float()).round().clamp(info.min, info.max).to(t.dtype)
    return out.movedim(-3, -1) if channels_last else out


# -- Sec. 4.1: low-frequency cropping -----------------------------------------------------------------------
def _centred_window(h: int, w: int, bh: int, bw: int) -> tuple[slice, slice]:
    top, left = h // 2 - bh // 2, w // 2 - bw // 2  # zero frequency sits at (h//2, w//2) after fftshift
    return slice(top, top + bh), slice(left, left + bw)


def _crop_tensor(t: torch.Tensor, size: Size) -> torch.Tensor:
    h, w = t.shape[-2:]
    bh, bw = _check(size, h, w)
    spec = torch.fft.fftshift(torch.fft.fft2(t), dim=(-2, -1))
    rows, cols = _centred_window(h, w, bh, bw)
    window = torch.fft.ifftshift(spec[..., rows, cols], dim=(-2, -1))
    return torch.fft.ifft2(window).real * (bh * bw / (h * w))


def _lowpass_tensor(t: torch.Tensor, size: Size) -> torch.Tensor:
    h, w = t.shape[-2:]
    bh, bw = _check(size, h, w)
    spec = torch.fft.fftshift(torch.fft.fft2(t), dim=(-2, -1))
    mask = torch.zeros(h, w, dtype=torch.bool, device=t.device)
    rows, cols = _centred_window(h, w, bh, bw)
    mask[rows, cols] = True
    kept = torch.fft.ifftshift(spec * mask, dim=(-2, -1))
    return torch.fft.ifft2(kept).real


@overload
def low_frequency_crop(x: torch.Tensor, size: Size, *, channels_last: bool = ...) -> torch.Tensor: ...
@overload
def low_frequency_crop(x: Image.Image, size: Size, *, channels_last: bool = ...) -> Image.Image: ...
def low_frequency_crop(x, size, *, channels_last=False):  # type: ignore[no-untyped-def]
    """Eq. (1): the B x B image carrying exactly the centred B x B spectrum of ``x`` (Sec. 4.1, Fig. 5)."""
    return _apply(x, lambda t: _crop_tensor(t, size), channels_last)


@overload
def lowpass_filter(x: torch.Tensor, size: Size, *, channels_last: bool = ...) -> torch.Tensor: ...
@overload
def lowpass_filter(x: Image.Image, size: Size, *, channels_last: bool = ...) -> Image.Image: ...
def lowpass_filter(x, size, *, channels_last=False):  # type: ignore[no-untyped-def]
    """Square B x B low-pass filter at the original size (Sec. 5.2 step 1; App. D: a 2-D sinc convolution)."""
    return _apply(x, lambda t: _lowpass_tensor(t, size), channels_last)


# -- Sec. 4.1, Fig. 2: the circular filters of Tables 1 and 2 ------------------------------------------------
def _circular_tensor(t: torch.Tensor, radius: float, high: bool) -> torch.Tensor:
    h, w = t.shape[-2:]
    if radius <= 0:
        raise UserError(f"filter radius must be positive, got {radius}")
    ky = torch.arange(h, device=t.device, dtype=torch.float32) - h // 2
    kx = torch.arange(w, device=t.device, dtype=torch.float32) - w // 2
    inside = ky[:, None] ** 2 + kx[None, :] ** 2 <= radius * radius
    mask = ~inside if high else inside
    spec = torch.fft.fftshift(torch.fft.fft2(t), dim=(-2, -1))
    return torch.fft.ifft2(torch.fft.ifftshift(spec * mask, dim=(-2, -1))).real


@overload
def circular_filter(x: torch.Tensor, radius: float, *, high: bool = ..., channels_last: bool = ...) -> torch.Tensor: ...
@overload
def circular_filter(x: Image.Image, radius: float, *, high: bool = ..., channels_last: bool = ...) -> Image.Image: ...
def circular_filter(x, radius, *, high=False, channels_last=False):  # type: ignore[no-untyped-def]
    """Fig. 2 (a): map the image to its centred Fourier spectrum, set every component outside (low-pass) or
    inside (``high=True``, high-pass, Table 1) the circle of radius ``radius`` (frequency-index units) around
    the zero frequency to zero, and map back. The size is kept. Low-pass and high-pass at one radius sum to the
    image; a radius is invariant under low-frequency cropping (index k of the cropped spectrum is index k)."""
    return _apply(x, lambda t: _circular_tensor(t, float(radius), high), channels_last)


# -- Sec. 5.2: low-pass filtering + down-sampling with Lanczos ----------------------------------------------
LANCZOS_A = 3  # PIL's Lanczos window (support 3)


def _lanczos(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) < LANCZOS_A, np.sinc(x) * np.sinc(x / LANCZOS_A), 0.0)


@lru_cache(maxsize=256)
def lanczos_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) resampling weights, computed exactly as PIL's ``precompute_coeffs`` for Lanczos.

    When down-sampling, the kernel is stretched by ``in/out`` (antialiasing): it low-pass filters at the
    output's Nyquist frequency before sampling -- the two steps of Sec. 5.2 in one separable pass.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = LANCZOS_A * filterscale
    weights = np.zeros((out_size, in_size), dtype=np.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        taps = _lanczos((np.arange(xmin, xmax) - center + 0.5) / filterscale)
        total = taps.sum()
        weights[xx, xmin:xmax] = taps / total if total != 0 else taps
    return weights


def _downsample_tensor(t: torch.Tensor, size: Size) -> torch.Tensor:
    h, w = t.shape[-2:]
    bh, bw = _check(size, h, w)
    wh = torch.as_tensor(lanczos_matrix(h, bh), dtype=t.dtype, device=t.device)
    ww = torch.as_tensor(lanczos_matrix(w, bw), dtype=t.dtype, device=t.device)
    return wh @ t @ ww.T


@overload
def lowpass_downsample(x: torch.Tensor, size: Size, *, channels_last: bool = ...) -> torch.Tensor: ...
@overload
def lowpass_downsample(x: Image.Image, size: Size, *, channels_last: bool = ...) -> Image.Image: ...
def lowpass_downsample(x, size, *, channels_last=False):  # type: ignore[no-untyped-def]
    """Sec. 5.2: B x B low-pass filtering + down-sampling, approximating :func:`low_frequency_crop` on CPU."""
    if isinstance(x, Image.Image) and x.mode in ("L", "RGB", "F"):
        bh, bw = _check(size, x.height, x.width)
        return x.resize((bw, bh), Image.Resampling.LANCZOS)  # PIL takes (width, height)
    return _apply(x, lambda t: _downsample_tensor(t, size), channels_last)


def resize_grid_offset(in_size: int, out_size: int) -> float:
    """Sub-pixel offset (in input pixels) of a pixel-centre resize grid relative to the DFT grid.

    Low-frequency cropping samples the band-limited image at ``n * in / out``; resizing (PIL, torch) samples at
    ``(n + 0.5) * in / out - 0.5``. Comparing the two needs this shift, not a change of content.
    """
    return 0.5 * (in_size / out_size - 1.0)


def fourier_shift(t: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    """Circularly resample ``t`` (..., H, W) at ``(y + dy, x + dx)``: exact for band-limited periodic images."""
    h, w = t.shape[-2:]
    fy = torch.fft.fftfreq(h, dtype=torch.float64, device=t.device)
    fx = torch.fft.fftfreq(w, dtype=torch.float64, device=t.device)
    ramp = torch.exp(2j * torch.pi * (fy[:, None] * dy + fx[None, :] * dx))
    return torch.fft.ifft2(torch.fft.fft2(t) * ramp).real.to(t.dtype)


def spectrum_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    """Relative L2 error ``||approx - exact|| / ||exact - mean(exact)||`` (mean removed so a constant offset
    of the image does not hide the error); the measure we state the Lanczos tolerance in."""
    centred = exact - exact.mean(dim=(-2, -1), keepdim=True)
    return float(torch.linalg.vector_norm(approx - exact) / torch.linalg.vector_norm(centred).clamp_min(1e-12))


__all__ = [
    "low_frequency_crop",
    "lowpass_filter",
    "lowpass_downsample",
    "lanczos_matrix",
    "spectrum_error",
    "fourier_shift",
    "resize_grid_offset",
]
