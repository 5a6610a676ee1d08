"""The smoke profile's COCO and ADE20K: Fashion-MNIST items pasted on black canvases, written in the real
formats, so the detectors and segmentors run their real data pipelines and metrics.

Each canvas (:data:`CANVAS` pixels square) is a 2 x 2 grid of cells; 1-3 cells hold an item, enlarged 1.5x (42
pixels, between the 28 of Fashion-MNIST and the 56 at which the smoke classification proxy saw them) and
shifted at random within its cell, so items never overlap. The size is a cost: on 128^2 canvases with 56-pixel
items a proxy Cascade Mask R-CNN step took 0.50 s, on 96^2 ones 0.43 s (Swin-T, batch 8, 2 cores), and reached
about the same AP^box after 300 iterations (29.0 vs 31.5). An item's mask is its pixels above
:data:`THRESHOLD`, its box the mask's extent, its class the Fashion-MNIST label. Training canvases use the
training split's items, validation canvases the test split's (never seen in pre-training either).

* COCO layout: ``annotations/instances_{train,val}2017.json`` (categories 1-10, annotation ids from 1:
  pycocotools never matches an annotation with id 0), ``train2017/`` and ``val2017/`` PNGs, masks as RLE;
* ADE20K layout: ``ADEChallengeData2016/images/{training,validation}/*.jpg`` and ``annotations/.../*.png``
  label maps, 0 for the background (ADE20K's "other", ignored with ``reduce_zero_label`` as in ADE20K) and
  1-10 for the items' classes.

The data sets are generated on first use (a few seconds) into ``$REPRO_DATA/<name>`` or
``~/.cache/repro/<name>``, in a directory named after the generator's parameters.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

CANVAS = 96
CELL = CANVAS // 2
ITEM = 42
THRESHOLD = 32
VERSION = 2
FMNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                  "Ankle boot")


def canvases(items: np.ndarray, labels: np.ndarray, count: int, seed: int) -> list[list[dict[str, Any]]]:
    """``count`` canvases' items: for each, a list of {image (ITEM x ITEM uint8), label, x, y}."""
    rng = np.random.default_rng(seed)
    out, next_item = [], 0
    for _ in range(count):
        cells = rng.choice(4, size=int(rng.integers(1, 4)), replace=False)
        placed = []
        for cell in cells:
            k = next_item % len(items)
            next_item += 1
            big = np.asarray(Image.fromarray(items[k]).resize((ITEM, ITEM), Image.Resampling.BICUBIC))
            x = int(cell % 2) * CELL + int(rng.integers(0, CELL - ITEM + 1))
            y = int(cell // 2) * CELL + int(rng.integers(0, CELL - ITEM + 1))
            placed.append({"image": big, "label": int(labels[k]), "x": x, "y": y})
        out.append(placed)
    return out


def render(placed: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """The canvas (H, W) and its label map (0 background, label + 1 per item pixel)."""
    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    labels = np.zeros((CANVAS, CANVAS), np.uint8)
    for item in placed:
        window = (slice(item["y"], item["y"] + ITEM), slice(item["x"], item["x"] + ITEM))
        canvas[window] = item["image"]
        labels[window][item["image"] > THRESHOLD] = item["label"] + 1
    return canvas, labels


def _source(split: str) -> tuple[np.ndarray, np.ndarray]:
    from repro.data.datasets import fashion_mnist

    ds = fashion_mnist("train" if split == "train" else "val")
    return ds.images, ds.labels


def _root(name: str, params: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
    base = Path(os.environ["REPRO_DATA"]) if os.environ.get("REPRO_DATA") else Path.home() / ".cache" / "repro"
    return base / name / f"v{VERSION}-{digest}"


def _params(train: int, val: int, seed: int) -> dict[str, Any]:
    """What a generated data set depends on: its directory's name."""
    return {"train": train, "val": val, "seed": seed, "canvas": CANVAS, "item": ITEM}


def _build(root: Path, write: Any) -> Path:
    """Write into a temporary sibling and rename: a concurrent or interrupted build leaves no half data set."""
    if (root / "done").is_file():
        return root
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    (tmp / "done").write_text("")
    try:
        tmp.rename(root)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def coco(train: int, val: int, seed: int = 0) -> Path:
    """A COCO-2017-layout proxy with ``train`` / ``val`` canvases; returns its root."""
    def write(tmp: Path) -> None:
        from pycocotools import mask as rle

        (tmp / "annotations").mkdir(parents=True)
        categories = [{"id": i + 1, "name": n, "supercategory": "fashion"} for i, n in enumerate(FMNIST_CLASSES)]
        for split, count, offset in (("train", train, 0), ("val", val, 1)):
            folder = tmp / f"{split}2017"
            folder.mkdir()
            images, annotations = [], []
            for i, placed in enumerate(canvases(*_source(split), count, seed + offset)):
                canvas, _ = render(placed)
                file = f"{i:06d}.png"
                Image.fromarray(canvas).convert("RGB").save(folder / file)
                images.append({"id": i + 1, "file_name": file, "height": CANVAS, "width": CANVAS})
                for item in placed:
                    mask = np.zeros((CANVAS, CANVAS), np.uint8, order="F")
                    mask[item["y"]:item["y"] + ITEM, item["x"]:item["x"] + ITEM] = item["image"] > THRESHOLD
                    ys, xs = np.nonzero(mask)
                    encoded = rle.encode(np.asfortranarray(mask))
                    encoded["counts"] = encoded["counts"].decode()
                    box = [float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()),
                           float(ys.max() + 1 - ys.min())]
                    annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                        "category_id": item["label"] + 1, "bbox": box,
                                        "area": float(mask.sum()), "iscrowd": 0, "segmentation": encoded})
            (tmp / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(
                {"images": images, "annotations": annotations, "categories": categories}))

    return _build(_root("coco-proxy", _params(train, val, seed)), write)


def ade20k(train: int, val: int, seed: int = 0) -> Path:
    """An ADEChallengeData2016-layout proxy; returns the directory that holds ``ADEChallengeData2016``."""
    def write(tmp: Path) -> None:
        base = tmp / "ADEChallengeData2016"
        for split, count, offset in (("training", train, 0), ("validation", val, 1)):
            (base / "images" / split).mkdir(parents=True)
            (base / "annotations" / split).mkdir(parents=True)
            source = _source("train" if split == "training" else "val")
            for i, placed in enumerate(canvases(*source, count, seed + offset)):
                canvas, labels = render(placed)
                Image.fromarray(canvas).convert("RGB").save(base / "images" / split / f"{i:06d}.jpg", quality=95)
                Image.fromarray(labels).save(base / "annotations" / split / f"{i:06d}.png")

    return _build(_root("ade20k-proxy", _params(train, val, seed)), write)
