"""A generated ImageNet-like JPEG folder (``repro bench loader``, draft-decoding tests): no download needed.

Natural images have a power spectrum falling as ~1/f^2 (amplitude ~1/f), which is what makes the low-frequency
part of Sec. 4.1 carry most of the content and what JPEG's DCT quantisation exploits. Each image is coloured
noise with that spectrum (random phases; the three channels share most of their phase, as colour channels of
photographs are strongly correlated), a random smooth colour cast, at sizes spread around ImageNet's typical
500 x 375 (either orientation), saved as baseline JPEG at quality 90 with 4:2:0 chroma subsampling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TYPICAL_SIZE = (500, 375)


def natural_image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """An RGB image with a ~1/f amplitude spectrum."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    amplitude = 1.0 / f ** rng.uniform(1.0, 1.3)
    amplitude[0, 0] = 0.0
    shared = rng.uniform(0, 2 * np.pi, f.shape)
    channels = []
    for _ in range(3):
        phase = shared + 0.4 * rng.standard_normal(f.shape)
        x = np.fft.irfft2(amplitude * np.exp(1j * phase), s=(height, width))
        channels.append((x - x.mean()) / (x.std() + 1e-12))
    img = np.stack(channels, axis=-1) * rng.uniform(35, 60) + rng.uniform(70, 180, size=3)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), mode="RGB")


def imagenet_like_folder(root: str | Path, images: int = 200, classes: int = 4, seed: int = 0,
                         quality: int = 90) -> Path:
    """``root/train/class_k/*.JPEG`` and a small ``root/val`` (an ImageFolder layout); returns ``root``.

    Sizes: the long side ~ N(500, 60) clipped to [300, 800], aspect ~ 4:3 with some spread, 70% landscape.
    Existing folders are reused when they already hold the requested images.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", images), ("val", max(classes, images // 10))):
        for i in range(count):
            path = root / split / f"class_{i % classes}" / f"{split}_{i:05d}.JPEG"
            long_side = int(np.clip(rng.normal(TYPICAL_SIZE[0], 60), 300, 800))
            short_side = int(np.clip(long_side * rng.normal(0.75, 0.06), 200, long_side))
            w, h = (long_side, short_side) if rng.random() < 0.7 else (short_side, long_side)
            image_rng = np.random.default_rng(rng.integers(2**63))
            if path.is_file():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            natural_image(image_rng, w, h).save(path, "JPEG", quality=quality)
    return root
