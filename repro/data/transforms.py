"""Per-sample train/eval transforms with curriculum hooks (Table 24 augmentation, Sec. 4.1 / 5.2 down-sampling).

Train pipeline, in the order of the official release (``datasets_buffer.py``): RandomResizedCrop to the final
size, horizontal flip, RandAugment(m, 0.5) (timm ``rand-m{m}-mstd0.5-inc1``), then the curriculum's reduction to
B x B, ToTensor, Normalize, random erasing (0.25, pixel mode). Mixup 0.8 / CutMix 1.0 and label smoothing are
batch-level (main process, :mod:`repro.train.engine`). The reduction to B is the method's:

* ``none`` -- baseline: B is the final size;
* ``crop`` -- EfficientTrain (Sec. 4.1, eq. 1): :func:`repro.core.frequency.low_frequency_crop` on the
  float tensor (before Normalize; both are linear and keep constants, so the order does not matter);
* ``downsample`` -- EfficientTrain++ (Sec. 5.2): :func:`repro.core.frequency.lowpass_downsample`, PIL's
  antialiased Lanczos on the augmented image (what the release inserts after RandAugment);
* ``bicubic`` -- a plain bicubic resize (the reference of the down-sampling cost, ``repro bench speedup``).

Curriculum hooks reach data-loader workers by construction: the curriculum's B and m are *part of each sample's
key* (``(index, B, m, seed)``, yielded by :class:`repro.train.engine.KeySampler` in the main process and
sent to workers with the indices). A persistent worker therefore uses the new B and m from the first batch of a
new stage, with no shared state to race on; mutating a transform object in the main process (e.g. timm's
``RandAugment`` ops' ``magnitude`` attribute) would not be seen by already-forked workers
(``tests/test_data_transforms.py`` shows both). The per-sample seed makes every random choice a function of the
run seed and the sample's position in the data stream, so the output is independent of the number of workers,
of the number of DDP processes and of interruptions.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from repro.errors import UserError

FrequencyOp = Literal["none", "crop", "downsample", "bicubic"]
FREQUENCY_OPS: tuple[str, ...] = ("none", "crop", "downsample", "bicubic")

FMNIST_MEAN, FMNIST_STD = (0.2860,) * 3, (0.3530,) * 3
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

SampleKey = tuple[int, int, float, int]
"""(dataset index, B, RandAug magnitude m, per-sample seed)."""


@dataclass(frozen=True)
class Augment:
    """Table 24 augmentation (timm names). ``scale`` is RandomResizedCrop's area range; ``frequency_op`` is how
    the curriculum's B is realised (see the module docstring).

    ``draft``: decode JPEGs at reduced scale when the crop allows (:meth:`CurriculumTransform.resized_crop`).
    ``reduce_at_crop`` (ET++ below the final size): one Lanczos resize from the crop region straight to B, then
    flip and RandAugment at B, instead of RandAugment at the final size and Lanczos after it (the release's
    order). Off by default: it changes the augmentation itself, not only the decoding -- relative L2 of a
    sample against the release's order, median 7 % / 5 % at B = 96 / 160, 10 % of samples above 24 % / 22 %
    (geometric ops interpolated at B, posterize / solarize thresholds on other pixel values), against 3.5 % /
    0 % (above 11 % / 5 %) for ``draft`` alone; it cuts ET++'s loader CPU by ~1/3 (``repro bench loader``)."""

    final_size: int = 224
    frequency_op: FrequencyOp = "none"
    scale: tuple[float, float] = (0.08, 1.0)
    hflip: float = 0.5
    magnitude_std: float = 0.5
    reprob: float = 0.25
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    randaug: bool = True
    draft: bool = True  # JPEG draft-mode decoding when the crop allows (see CurriculumTransform.resized_crop)
    reduce_at_crop: bool = False  # ET++ below the final size: crop straight to B, augment at B
    three_augment: bool = False  # DeiT III's 3-Augment (see three_augment)
    simple_crop: bool = False  # DeiT III's simple random crop instead of RandomResizedCrop

    def __post_init__(self) -> None:
        if self.frequency_op not in FREQUENCY_OPS:
            raise UserError(f"unknown frequency op {self.frequency_op!r}; known: {', '.join(FREQUENCY_OPS)}")


def draft_scale(side: int, size: int) -> int:
    """The largest JPEG draft scale (1, 2, 4 or 8) that keeps at least ``size`` pixels of a ``side``-pixel crop."""
    scale = 8
    while scale > 1 and side < scale * size:
        scale //= 2
    return scale


def seed_everything(seed: int) -> None:
    """Seed the three RNGs the timm / torchvision transforms draw from.

    Only torch's CPU generator: ``torch.manual_seed`` also queues a lazy CUDA seeding that captures a stack
    trace on every call (~60 us, a quarter of a proxy sample's transform time); the transforms never use CUDA.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.default_generator.manual_seed(seed)


class CurriculumTransform:
    """The train pipeline for one sample at a given (B, m); built lazily in each worker process."""

    def __init__(self, cfg: Augment) -> None:
        from timm.data.auto_augment import rand_augment_transform
        from timm.data.random_erasing import RandomErasing
        from timm.data.transforms import RandomResizedCropAndInterpolation
        from torchvision import transforms as T

        self.cfg = cfg
        self.crop = RandomResizedCropAndInterpolation(cfg.final_size, scale=cfg.scale, interpolation="bicubic")
        self.flip = T.RandomHorizontalFlip(cfg.hflip)
        fill = tuple(round(255 * x) for x in cfg.mean)
        # magnitude_max just below timm's level 10: at level 10 the increasing posterize keeps 0 bits, which
        # Pillow >= 10 refuses (a sampled m of 9 + N(0, 0.5) reaches 10 now and then)
        hparams = {"translate_const": int(cfg.final_size * 0.45), "img_mean": fill, "magnitude_max": 9.99}
        self.randaug = (rand_augment_transform(f"rand-m9-mstd{cfg.magnitude_std}-inc1", hparams)
                        if cfg.randaug else None)
        self._randaug_at: dict[int, Any] = {cfg.final_size: self.randaug}
        self._hparams = hparams
        self.to_tensor = T.ToTensor()
        self.normalize = T.Normalize(cfg.mean, cfg.std)
        self.erase = (RandomErasing(cfg.reprob, mode="pixel", max_count=1, device="cpu")
                      if cfg.reprob > 0 else None)

    def set_magnitude(self, m: float) -> None:
        """Worker-local: RandAugment's ops read ``magnitude`` at call time (timm ``AugmentOp``)."""
        for randaug in self._randaug_at.values():
            for op in randaug.ops if randaug is not None else ():
                op.magnitude = m

    def randaug_at(self, size: int) -> Any:
        """RandAugment for ``size`` x ``size`` images: translations scaled from the final size (the other ops
        are relative to the image); the same random draws whatever the size."""
        if size not in self._randaug_at:
            from timm.data.auto_augment import rand_augment_transform

            hparams = {**self._hparams, "translate_const": int(size * 0.45)}
            self._randaug_at[size] = rand_augment_transform(f"rand-m9-mstd{self.cfg.magnitude_std}-inc1", hparams)
        return self._randaug_at[size]

    def resized_crop(self, img: Image.Image, size: int, resample: Image.Resampling, keep: int) -> Image.Image:
        """RandomResizedCrop to ``size`` x ``size``, decoding a not yet decoded JPEG at 1/2, 1/4 or 1/8 scale
        (PIL draft mode) when the crop region is at least that many times ``keep`` (the B the sample is reduced
        to in the end) on its short side.

        The crop parameters are timm's, drawn from the image's original size before decoding (the same RNG draws
        as without draft mode); the box is then mapped into the reduced image by the draft scale s exactly
        (reduced pixel k covers original pixels [ks, (k+1)s), so the box divides by s; PIL resamples a
        fractional box). Without a draft (small crops, other formats, ``draft=False``) this is timm's crop.

        Draft decoding *is* low-frequency cropping, done by the decoder: libjpeg's scaled IDCT keeps the lowest
        8/s x 8/s DCT coefficients of each 8 x 8 block and inverts them at size 8/s -- eq. (1) of Sec. 4.1 with
        the block DCT in place of the image DFT -- and skips the inverse transform and colour conversion above
        that band (not the entropy decoding, which bounds the saving). The crop keeps at least ``keep``
        reduced pixels per side, so the band it drops lies above the Nyquist frequency of the B x B output,
        which ET++'s low-pass + Lanczos down-sampling (Sec. 5.2) removes anyway. Block-wise truncation is not
        an ideal low-pass, hence a small difference, measured by ``repro bench loader`` on generated ImageNet-like
        JPEGs (``results/bench/loader.json``, ``draft_deviation``): relative L2 of draft + Lanczos vs full
        decode + Lanczos to B, median 1.5 % at B = 96 (max 5 %), 2.0 % at 160 (max 4.6 %), below the error the
        quality-90 JPEG encoding itself leaves at B (2.0 %, 3.3 %); ``tests/test_data_draft.py`` bounds it.
        Hence ``draft`` is on by default: a JPEG data set already carries a larger error of the same kind.
        """
        from torchvision.transforms import functional as F

        i, j, h, w = self.crop.get_params(img, self.crop.scale, self.crop.ratio)
        scale = 1
        if self.cfg.draft and getattr(img, "format", None) == "JPEG" and img.tile:
            scale = draft_scale(min(h, w), keep)
            if scale > 1:
                width = img.width
                drafted = img.draft("RGB", (width // scale, img.height // scale))
                scale = round(width / drafted[1][2]) if drafted else 1  # its box: (0, 0, W / s, H / s)
        if img.mode != "RGB":
            img = img.convert("RGB")
        if scale == 1 and resample == Image.Resampling.BICUBIC and size == self.cfg.final_size:
            return F.resized_crop(img, i, j, h, w, self.crop.size, self.crop.interpolation)
        return img.resize((size, size), resample, box=(j / scale, i / scale, (j + w) / scale, (i + h) / scale))

    def reduce(self, img: Image.Image, b: int) -> Image.Image | torch.Tensor:
        r = self.cfg.frequency_op
        if b == self.cfg.final_size or r == "none":
            return img
        if r == "downsample":
            from repro.core.frequency import lowpass_downsample

            return lowpass_downsample(img, b)
        if r == "bicubic":
            return img.resize((b, b), Image.Resampling.BICUBIC)
        if r == "crop":
            from repro.core.frequency import low_frequency_crop

            return low_frequency_crop(self.to_tensor(img), b)
        raise AssertionError(r)

    def __call__(self, img: Image.Image, b: int, m: float) -> torch.Tensor:
        if self.cfg.frequency_op == "none" and b != self.cfg.final_size:
            raise UserError(f"input size {b} needs a reduction (method without down-sampling got B != final)")
        # ET++ below the final size, reduce_at_crop: one Lanczos resize from the crop region to B is the low-pass +
        # down-sampling of Sec. 5.2 applied to the crop; flip and RandAugment then run on B x B images
        early = self.cfg.reduce_at_crop and self.cfg.frequency_op == "downsample" and b < self.cfg.final_size
        size = b if early else self.cfg.final_size
        if self.cfg.simple_crop:  # DeiT III's SRC: short side to the size, random crop with 4-pixel reflect pad
            from torchvision import transforms as T

            img = img.convert("RGB") if img.mode != "RGB" else img
            img = T.RandomCrop(size, padding=4, padding_mode="reflect")(
                T.Resize(size, interpolation=T.InterpolationMode.BICUBIC)(img))
        else:
            img = self.resized_crop(img, size, Image.Resampling.LANCZOS if early else Image.Resampling.BICUBIC, b)
        img = self.flip(img)
        if self.cfg.three_augment:
            img = three_augment(img)
        if self.randaug is not None:
            self.set_magnitude(m)
            img = self.randaug_at(size)(img)
        out = img if early else self.reduce(img, b)
        x = out if isinstance(out, torch.Tensor) else self.to_tensor(out)
        x = self.normalize(x)
        if self.erase is not None:
            x = self.erase(x)
        return x


def three_augment(img: Image.Image) -> Image.Image:
    """DeiT III's 3-Augment (Touvron et al., ECCV'22, Sec. 3; ``augment.py`` of facebookresearch/deit): one of
    grayscale, solarization (threshold 128) and Gaussian blur (radius uniform in [0.1, 2]) chosen uniformly,
    then colour jitter 0.3 (brightness, contrast, saturation). Draws from Python's ``random`` and torch's RNG,
    which the key's seed fixes."""
    import random

    from PIL import ImageFilter, ImageOps
    from torchvision import transforms as T

    op = random.randrange(3)
    if op == 0:
        img = ImageOps.grayscale(img).convert("RGB")
    elif op == 1:
        img = ImageOps.solarize(img, 128)
    else:
        img = img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))
    return T.ColorJitter(0.3, 0.3, 0.3)(img)


def eval_transform(final_size: int, mean: tuple[float, ...], std: tuple[float, ...],
                   crop_pct: float = 0.875) -> Callable[[Image.Image], torch.Tensor]:
    """Resize to ``final_size / crop_pct`` + centre crop at the final size (the timm / DeiT convention);
    ``crop_pct=1`` (the Fashion-MNIST proxy, already framed) resizes straight to the final size."""
    from torchvision import transforms as T

    bicubic = T.InterpolationMode.BICUBIC
    if crop_pct >= 1.0:
        ops: list[Any] = [T.Resize((final_size, final_size), interpolation=bicubic)]
    else:
        ops = [T.Resize(int(final_size / crop_pct), interpolation=bicubic), T.CenterCrop(final_size)]
    return T.Compose([*ops, T.ToTensor(), T.Normalize(mean, std)])


class CurriculumDataset(torch.utils.data.Dataset):
    """Wraps a data set of (PIL image, label); indexed by :data:`SampleKey` ``(index, B, m, seed)``.

    The transform runs wherever the item is fetched (a persistent worker included) with the B and m of the key,
    after seeding Python, NumPy and torch with the key's seed.
    """

    def __init__(self, base: Any, transform: CurriculumTransform) -> None:
        self.base = base
        self.transform = transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: SampleKey) -> tuple[torch.Tensor, int]:  # type: ignore[override]
        index, b, m, seed = key
        img, label = self.base[index]
        seed_everything(seed)
        self.transform.set_magnitude(m)  # worker-local state, set from the key before the call
        return self.transform(img, b, m), int(label)


class EvalDataset(torch.utils.data.Dataset):
    def __init__(self, base: Any, transform: Callable[[Image.Image], torch.Tensor]) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img, label = self.base[index]
        return self.transform(img), int(label)
