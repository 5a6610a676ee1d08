"""Readers for the data sets of the pre-training and transfer experiments, in the layouts users have on disk
(nothing here downloads; ``repro.data.datasets.build_dataset`` dispatches to :data:`READERS` by name).

* ``imagenet-22k`` -- the Winter 2021 release as distributed: one folder per synset (``n01440764/*.JPEG``), no
  validation split. The held-out split (App. A.2 evaluates the pre-training only through IN-1K fine-tuning, so
  the paper defines none): per synset, the images whose file name hashes (BLAKE2b) to 0 modulo 100, i.e. ~1 %
  -- deterministic, independent of listing order, and stable when images are added. ``train`` is the rest.
* ``cifar-10`` / ``cifar-100`` -- the python pickles (``cifar-10-batches-py/``, ``cifar-100-python/``) read by
  torchvision's CIFAR readers (its MD5 check of a download is replaced by a presence check: a user's copy is
  read as it is); 32x32 images, resized by the recipe's transform (DeiT: 224^2).
* ``digits`` -- scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes, inside the package):
  the CPU proxy's transfer target, a real second data set (digits, not clothing) that needs no network. Split:
  every fifth image (index % 5 == 4) held out (359), 1438 for training.

Flowers-102, Stanford Dogs, Food-101 and NABirds are read as ImageNet-style ``train/`` + ``val/`` folders
(``repro.data.datasets.image_folder``): torchvision's Flowers102 reader needs scipy's ``.mat`` reader for the
original release and Stanford Dogs / NABirds have none.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from repro.errors import UserError

HELD_OUT_PERCENT = 1  # imagenet-22k: images per hundred (by name hash) in the held-out split


def find_root(name: str, root: str | Path | None, probe: Callable[[Path], bool], expect: str) -> Path:
    """The first of ``root``, ``$REPRO_DATA_<NAME>`` and ``$REPRO_DATA/<name>`` that ``probe`` accepts; else a
    one-line error saying where it looked and what it expects there (``expect``)."""
    env = f"REPRO_DATA_{name.upper().replace('-', '_')}"
    candidates = [Path(root)] if root else []
    if os.environ.get(env):
        candidates.append(Path(os.environ[env]))
    if os.environ.get("REPRO_DATA"):
        candidates.append(Path(os.environ["REPRO_DATA"]) / name)
    for c in candidates:
        if probe(c):
            return c
    looked = ", ".join(str(c) for c in candidates) or "nowhere (no root given)"
    raise UserError(f"data set {name!r} not found (looked in {looked}); pass --data-dir DIR or set {env}=DIR, "
                    f"where DIR has {expect}")


def held_out(file_name: str) -> bool:
    digest = hashlib.blake2b(file_name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % 100 < HELD_OUT_PERCENT


def imagenet22k_root(root: str | Path | None = None) -> Path:
    def synsets(path: Path) -> bool:
        return path.is_dir() and any(p.is_dir() and p.name.startswith("n") for p in path.iterdir())

    return find_root("imagenet-22k", root, synsets, "one folder per synset (n01440764/, ...: the Winter 2021 "
                     "release)")


def imagenet22k(split: str, root: str | Path | None = None, undecoded: bool = False) -> Any:
    """The synset folders as a torchvision ``ImageFolder`` restricted to ``split``'s files."""
    from torchvision.datasets import ImageFolder
    from torchvision.datasets.folder import default_loader

    from repro.data.datasets import open_undecoded

    base = imagenet22k_root(root)
    keep = held_out if split == "val" else (lambda name: not held_out(name))
    ds = ImageFolder(str(base), loader=open_undecoded if undecoded else default_loader,
                     is_valid_file=lambda path: keep(Path(path).name) and path.lower().endswith(
                         (".jpeg", ".jpg", ".png")))
    ds.num_classes = len(ds.classes)  # type: ignore[attr-defined]
    return ds


def cifar_root(classes: int, root: str | Path | None = None) -> Path:
    from torchvision.datasets import CIFAR10, CIFAR100

    folder = (CIFAR10 if classes == 10 else CIFAR100).base_folder
    return find_root(f"cifar-{classes}", root, lambda p: (p / folder).is_dir(),
                     f"{folder}/ (the python version's pickles)")


def _cifar(classes: int) -> Callable[..., Any]:
    def read(split: str, root: str | Path | None = None, undecoded: bool = False) -> Any:
        from torchvision.datasets import CIFAR10, CIFAR100

        from repro.data.datasets import ArrayDataset

        reader = CIFAR10 if classes == 10 else CIFAR100

        class Present(reader):  # type: ignore[misc, valid-type]
            """torchvision's reader without its MD5 checks (they check downloads, not a user's copy)."""

            def _check_integrity(self) -> bool:
                return all((Path(self.root) / self.base_folder / f).is_file() for f, _ in self.train_list
                           + self.test_list)

            def _load_meta(self) -> None:
                with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
                    self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
                self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

        ds = Present(str(cifar_root(classes, root)), train=split == "train", download=False)
        return ArrayDataset(np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64), classes)

    return read


def digits(split: str, root: str | Path | None = None, undecoded: bool = False) -> Any:
    from sklearn.datasets import load_digits

    from repro.data.datasets import ArrayDataset

    data = load_digits()
    images = np.round(data.images * (255 / 16)).astype(np.uint8)  # 17 gray levels 0..16 -> 0..255
    index = np.arange(len(images))
    keep = index % 5 == 4 if split == "val" else index % 5 != 4
    return ArrayDataset(images[keep], data.target[keep].astype(np.int64), 10)


Reader = Callable[..., Any]  # (split, root=None, undecoded=False) -> indexable of (PIL image, label)
READERS: dict[str, Reader] = {
    "imagenet-22k": imagenet22k,
    "cifar-10": _cifar(10),
    "cifar-100": _cifar(100),
    "digits": digits,
}
# Where each reader's files are, found without reading them (``repro doctor``); None: nothing on disk (bundled).
ROOTS: dict[str, Callable[[str | Path | None], Path | None]] = {
    "imagenet-22k": imagenet22k_root,
    "cifar-10": lambda root: cifar_root(10, root),
    "cifar-100": lambda root: cifar_root(100, root),
    "digits": lambda root: None,
}
