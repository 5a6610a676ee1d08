"""Low-frequency cropping (Sec. 4.1, Prop. 1), the square low-pass filter and Lanczos down-sampling (Sec. 5.2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from repro.core.frequency import (
    fourier_shift,
    lanczos_matrix,
    low_frequency_crop,
    lowpass_downsample,
    lowpass_filter,
    resize_grid_offset,
    spectrum_error,
)
from repro.errors import UserError

sizes = st.integers(4, 40)


def shifted_spectrum(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1))


def natural_images(n: int, size: int, alpha: float, seed: int = 0) -> torch.Tensor:
    """Random images with a 1/f^alpha amplitude spectrum (alpha ~ 1 for natural images), scaled to [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    fy, fx = torch.fft.fftfreq(size)[:, None], torch.fft.fftfreq(size)[None, :]
    f = (fx**2 + fy**2).sqrt()
    f[0, 0] = 1.0
    noise = torch.complex(torch.randn(n, 3, size, size, generator=g), torch.randn(n, 3, size, size, generator=g))
    x = torch.fft.ifft2(noise / f**alpha).real.double()
    lo, hi = x.amin(dim=(-2, -1), keepdim=True), x.amax(dim=(-2, -1), keepdim=True)
    return (x - lo) / (hi - lo)


@given(h=sizes, w=sizes, seed=st.integers(0, 2**16))
def test_full_window_is_identity(h, w, seed):
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    torch.testing.assert_close(low_frequency_crop(x, (h, w)), x)
    torch.testing.assert_close(lowpass_filter(x, (h, w)), x)


@given(data=st.data(), h=sizes, w=sizes, seed=st.integers(0, 2**16))
def test_crop_keeps_exactly_the_centred_spectrum(data, h, w, seed):
    """Prop. 1 a): F(X_c) is the centred B x B window of F(X) (times B^2 / HW); odd windows exactly, even windows
    exactly except on the unpaired -B/2 line, which the real part symmetrises."""
    bh, bw = data.draw(st.integers(1, h)), data.draw(st.integers(1, w))
    x = torch.randn(3, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    out = low_frequency_crop(x, (bh, bw))
    assert out.shape == (3, bh, bw) and out.dtype == x.dtype and not out.is_complex()
    top, left = h // 2 - bh // 2, w // 2 - bw // 2
    window = shifted_spectrum(x)[..., top : top + bh, left : left + bw]
    got = shifted_spectrum(out) * (h * w) / (bh * bw)
    r0, c0 = (1 if bh % 2 == 0 else 0), (1 if bw % 2 == 0 else 0)
    torch.testing.assert_close(got[..., r0:, c0:], window[..., r0:, c0:], atol=1e-8 * h * w, rtol=1e-8)
    # the mean intensity (DC) is preserved
    torch.testing.assert_close(out.mean(dim=(-2, -1)), x.mean(dim=(-2, -1)))


@given(k=st.integers(1, 4), b=st.integers(2, 12), seed=st.integers(0, 2**16))
def test_crop_equals_lowpass_then_decimation(k, b, seed):
    """Sec. 5.2: low-pass filtering with a B x B window then down-sampling carries the same information as the
    B x B crop -- exactly, when the size is an integer multiple of B."""
    x = torch.randn(2, b * k, b * k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    torch.testing.assert_close(lowpass_filter(x, b)[..., ::k, ::k], low_frequency_crop(x, b))


def test_lowpass_removes_high_frequencies_only():
    x = torch.randn(1, 32, 32, dtype=torch.float64)
    spec = shifted_spectrum(lowpass_filter(x, 9))
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[16 - 4 : 16 + 5, 16 - 4 : 16 + 5] = True
    assert spec[..., ~inside].abs().max() < 1e-9
    torch.testing.assert_close(spec[..., inside], shifted_spectrum(x)[..., inside])


def test_crop_differs_from_plain_downsampling():
    """Prop. 1 b): down-sampling depends on frequencies outside the window; cropping does not."""
    x = torch.randn(1, 32, 32, dtype=torch.float64)
    high = x - lowpass_filter(x, 15)  # only frequencies outside the centred 15 x 15 window
    assert low_frequency_crop(high, 15).abs().max() < 1e-9
    assert F.interpolate(high[None], size=15, mode="bilinear", align_corners=False).abs().max() > 0.1


@given(seed=st.integers(0, 2**16), b=st.integers(4, 30))
def test_channels_last_matches_channels_first(seed, b):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    nhwc = x.permute(0, 2, 3, 1)
    for op in (low_frequency_crop, lowpass_downsample, lowpass_filter):
        torch.testing.assert_close(op(nhwc, b, channels_last=True), op(x, b).permute(0, 2, 3, 1))


def test_batch_equals_per_image():
    x = torch.rand(4, 3, 40, 40)
    for op in (low_frequency_crop, lowpass_downsample):
        torch.testing.assert_close(op(x, 17), torch.stack([op(img, 17) for img in x]))


def test_dtypes_are_kept():
    x8 = (torch.rand(3, 20, 20) * 255).to(torch.uint8)
    assert low_frequency_crop(x8, 10).dtype == torch.uint8
    assert lowpass_downsample(x8.float().half(), 10).dtype == torch.float16


@pytest.mark.parametrize("mode", ["RGB", "L", "F"])
@pytest.mark.parametrize(("size", "b"), [(64, 24), (63, 40), (28, 12)])
def test_pil_and_tensor_paths_agree(mode, size, b):
    # natural-image statistics in [28, 228]: no overshoot past 0/255, which PIL clips between its two passes
    arr = (natural_images(1, size, 1.5)[0].permute(1, 2, 0) * 200 + 28).numpy()
    img = Image.fromarray(arr.astype(np.uint8), "RGB").convert(mode)
    as_tensor = torch.from_numpy(np.asarray(img, dtype=np.float64).reshape(size, size, -1)).permute(2, 0, 1)
    for op in (lowpass_downsample, low_frequency_crop):
        out = op(img, b)
        assert isinstance(out, Image.Image) and out.size == (b, b) and out.mode == mode
        got = torch.from_numpy(np.asarray(out, dtype=np.float64).reshape(b, b, -1)).permute(2, 0, 1)
        want = op(as_tensor, b)
        if mode != "F":
            want = want.round().clamp(0, 255)
        # uint8 modes: rounding (and PIL's rounding between its two separable passes) moves <= 1 level
        assert (got - want).abs().max() <= (1.0 if mode != "F" else 1e-3)


def test_lanczos_weights_match_pil_float_resize():
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.random((50, 50)).astype(np.float32), "F")
    ref = np.asarray(img.resize((21, 21), Image.Resampling.LANCZOS), dtype=np.float64)
    x = np.asarray(img, dtype=np.float64)
    np.testing.assert_allclose(lanczos_matrix(50, 21) @ x @ lanczos_matrix(50, 21).T, ref, atol=1e-5)
    np.testing.assert_allclose(lanczos_matrix(50, 21).sum(axis=1), 1.0)


# Measured on 16 images of 224^2 with a 1/f amplitude spectrum (natural-image statistics), after aligning the
# exact crop to the resize grid (a sub-pixel shift, not content) and excluding a 2-pixel border (the DFT is
# circular, resizing is not): Lanczos 0.104 / 0.100 / 0.100 relative L2 error at B = 96 / 160 / 192; bicubic
# with antialiasing 0.138 / 0.132 / 0.132; bilinear without antialiasing 0.311 / 0.185 / 0.175. For smoother
# images (1/f^1.5) Lanczos is at 0.027 / 0.021 / 0.019. The tolerances below are those figures plus ~15%.
LANCZOS_TOLERANCE = {1.0: 0.12, 1.5: 0.032}


def _aligned_errors(x: torch.Tensor, b: int) -> dict[str, float]:
    d = resize_grid_offset(x.shape[-1], b)
    exact = low_frequency_crop(fourier_shift(x, d, d), b)[..., 2:-2, 2:-2]
    approx = {
        "lanczos": lowpass_downsample(x, b),
        "bicubic_aa": F.interpolate(x, size=b, mode="bicubic", antialias=True, align_corners=False),
        "bilinear": F.interpolate(x, size=b, mode="bilinear", antialias=False, align_corners=False),
    }
    return {k: spectrum_error(v[..., 2:-2, 2:-2], exact) for k, v in approx.items()}


@pytest.mark.parametrize("alpha", [1.0, 1.5])
@pytest.mark.parametrize("b", [96, 160, 192])
def test_lanczos_approximates_low_frequency_cropping(alpha, b):
    errors = _aligned_errors(natural_images(8, 224, alpha, seed=b), b)
    assert errors["lanczos"] < LANCZOS_TOLERANCE[alpha]
    assert errors["lanczos"] < errors["bicubic_aa"] < errors["bilinear"]


def test_fourier_shift_matches_resize_grid():
    """Sanity of the alignment used above: a band-limited image cropped then shifted equals shift then crop."""
    x = lowpass_filter(torch.randn(1, 48, 48, dtype=torch.float64), 11)
    d = resize_grid_offset(48, 16)
    assert d == pytest.approx(1.0)
    torch.testing.assert_close(fourier_shift(x, d, d)[..., :-1, :-1], x[..., 1:, 1:])


@pytest.mark.parametrize("op", [low_frequency_crop, lowpass_downsample, lowpass_filter])
def test_bad_window_is_a_user_error(op):
    with pytest.raises(UserError, match="must be positive and fit"):
        op(torch.rand(3, 16, 16), 17)
    with pytest.raises(UserError, match="must be positive and fit"):
        op(torch.rand(3, 16, 16), 0)
