"""Data sets behind one interface: an indexable of (PIL image, label) plus its number of classes.

* ``fashion-mnist`` -- the embedded default proxy: the IDX files of the Debian package ``dataset-fashion-mnist``
  (``/usr/share/datasets/fashion-mnist``), or ``$REPRO_DATA/fashion-mnist``, or torchvision's download when
  ``download=True`` and the network allows. 60k train / 10k test 28x28 gray images, returned as RGB.
* ``imagenet-22k``, ``cifar-10``, ``cifar-100``, ``digits`` -- their own layouts (``repro.data.readers``);
* ``folder`` (and ``imagenet-1k``, Flowers-102, Stanford Dogs, ...) -- ImageNet-style ``train/`` and ``val/``
  folders with one sub-folder per class; the root comes from the argument, ``$REPRO_DATA_<NAME>`` or
  ``$REPRO_DATA/<name>``.
"""

from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from repro.errors import UserError

FMNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped) as a numpy array (the format of MNIST and Fashion-MNIST)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:  # type: ignore[operator]
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserError(f"{path}: not an unsigned-byte IDX file; re-install dataset-fashion-mnist")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise UserError(f"{path}: truncated IDX file ({body.size} of {int(np.prod(dims))} bytes); re-install it")
    return body.reshape(dims)


def fashion_mnist_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("REPRO_DATA"):
        dirs.append(Path(os.environ["REPRO_DATA"]) / "fashion-mnist")
    dirs.append(FMNIST_SYSTEM_DIR)
    return dirs


def _find_idx(directory: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


@dataclass
class ArrayDataset:
    """In-memory uint8 images, gray (N, H, W) or RGB (N, H, W, 3), with labels; items are (RGB PIL image, label)."""

    images: np.ndarray
    labels: np.ndarray
    num_classes: int

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.images[index]).convert("RGB"), int(self.labels[index])


def _fashion_mnist_files(split: str, root: str | Path | None) -> tuple[Path, Path] | None:
    for directory in [Path(root)] if root else fashion_mnist_dirs():
        images, labels = (_find_idx(directory, stem) for stem in FMNIST_FILES[split])
        if images and labels:
            return images, labels
    return None


def _fashion_mnist_missing(root: str | Path | None) -> UserError:
    looked = ", ".join(str(d) for d in ([Path(root)] if root else fashion_mnist_dirs()))
    return UserError(
        f"Fashion-MNIST not found (looked in {looked}); as root run 'apt-get install dataset-fashion-mnist', "
        "or set REPRO_DATA=DIR with DIR/fashion-mnist/*-ubyte.gz"
    )


def fashion_mnist(split: str, root: str | Path | None = None, download: bool = False) -> ArrayDataset:
    if split not in FMNIST_FILES:
        raise UserError(f"unknown split {split!r}; use 'train' or 'val'")
    found = _fashion_mnist_files(split, root)
    if found:
        images, labels = found
        return ArrayDataset(_read_idx(images), _read_idx(labels).astype(np.int64), 10)
    dirs = [Path(root)] if root else fashion_mnist_dirs()
    if download:
        from torchvision.datasets import FashionMNIST

        target = dirs[0].parent if root is None and os.environ.get("REPRO_DATA") else Path.home() / ".cache/repro"
        ds = FashionMNIST(str(target), train=split == "train", download=True)
        return ArrayDataset(ds.data.numpy(), ds.targets.numpy().astype(np.int64), 10)
    raise _fashion_mnist_missing(root)


def folder_root(name: str, root: str | Path | None = None) -> Path:
    from repro.data.readers import find_root

    return find_root(name, root, lambda c: (c / "train").is_dir() and (c / "val").is_dir(),
                     "train/ and val/ with one sub-folder per class")


def locate(name: str, root: str | Path | None = None) -> Path | None:
    """Where data set ``name``'s files are (the root :func:`build_dataset` would read), found without reading
    them; None for a data set bundled with a package. Not found: the same one-line error as reading it."""
    from repro.data.readers import ROOTS

    if name == "fashion-mnist":
        found = [_fashion_mnist_files(split, root) for split in FMNIST_FILES]
        if not all(found):
            raise _fashion_mnist_missing(root)
        return found[0][0].parent  # type: ignore[index]
    if name in ROOTS:
        return ROOTS[name](root)
    return folder_root(name, root)


def open_undecoded(path: str) -> Image.Image:
    """The image opened but not decoded (its bytes in memory, no open file): the train transform decodes it,
    a JPEG at reduced scale when the crop allows (:meth:`repro.data.transforms.CurriculumTransform.resized_crop`)."""
    with open(path, "rb") as f:
        return Image.open(io.BytesIO(f.read()))


def image_folder(name: str, split: str, root: str | Path | None = None, undecoded: bool = False) -> Any:
    from torchvision.datasets import ImageFolder
    from torchvision.datasets.folder import default_loader

    ds = ImageFolder(str(folder_root(name, root) / split), loader=open_undecoded if undecoded else default_loader)
    ds.num_classes = len(ds.classes)  # type: ignore[attr-defined]
    return ds


def build_dataset(name: str, split: str, root: str | Path | None = None, max_images: int | None = None,
                  download: bool = False, undecoded: bool = False) -> Any:
    """The named data set's split; ``max_images`` keeps a class-balanced deterministic subset (proxies).
    ``undecoded``: folder images come opened but not decoded (for the train transform's draft decoding)."""
    from repro.data.readers import READERS

    if name == "fashion-mnist":
        ds: Any = fashion_mnist(split, root, download)
    elif name in READERS:
        ds = READERS[name](split, root, undecoded)
    else:
        ds = image_folder(name, split, root, undecoded)
    if max_images is None or max_images >= len(ds):
        return ds
    if isinstance(ds, ArrayDataset):
        keep = _balanced_subset(ds.labels, max_images)
        return ArrayDataset(ds.images[keep], ds.labels[keep], ds.num_classes)
    keep = _balanced_subset(np.asarray(ds.targets), max_images)
    subset = torch.utils.data.Subset(ds, keep.tolist())
    subset.num_classes = ds.num_classes  # type: ignore[attr-defined]
    return subset


def _balanced_subset(labels: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` indices of a class-interleaved order (deterministic, balanced)."""
    order = np.argsort(labels, kind="stable")
    classes = np.unique(labels)
    per_class = [order[labels[order] == c] for c in classes]
    interleaved = [idx for group in zip(*per_class, strict=False) for idx in group]
    return np.sort(np.asarray(interleaved[:count], dtype=np.int64))
