"""Data sets and the curriculum-aware transforms: B and m reach persistent workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from repro.data.datasets import _balanced_subset, build_dataset, fashion_mnist, folder_root
from repro.data.transforms import (
    FMNIST_MEAN,
    FMNIST_STD,
    Augment,
    CurriculumDataset,
    CurriculumTransform,
    EvalDataset,
    eval_transform,
)
from repro.errors import UserError

FMNIST = Path("/usr/share/datasets/fashion-mnist")
needs_fmnist = pytest.mark.skipif(not (FMNIST / "t10k-images-idx3-ubyte.gz").exists(),
                                  reason="dataset-fashion-mnist not installed")


class _Images:
    """Eight random 28x28 RGB images with labels (no files needed)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.images = [Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)) for _ in range(8)]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return self.images[i], i % 3


def _dataset(op: str = "downsample") -> CurriculumDataset:
    aug = Augment(28, op, (0.35, 1.0), 0.5, 0.5, 0.25, FMNIST_MEAN, FMNIST_STD)  # type: ignore[arg-type]
    return CurriculumDataset(_Images(), CurriculumTransform(aug))


class _Batches:
    """A batch sampler the main process re-points between stages (as the engine does)."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int, float, int]]] = []

    def __iter__(self) -> Iterator[list[tuple[int, int, float, int]]]:
        return iter(list(self.batches))

    def __len__(self) -> int:
        return len(self.batches)


class _MagnitudeProbe(torch.utils.data.Dataset):
    """Reports the magnitude attribute of a timm RandAugment op as seen by whoever fetches the item."""

    def __init__(self) -> None:
        from timm.data.auto_augment import rand_augment_transform

        self.randaug = rand_augment_transform("rand-m9-mstd0.5", {})

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> float:
        return float(self.randaug.ops[0].magnitude)


def test_a_main_process_change_of_randaug_magnitude_is_not_seen_by_persistent_workers() -> None:
    """Why B and m travel in the sample keys: mutating timm's RandAugment in the main process is invisible to
    workers forked before the change (the pitfall the issue names)."""
    probe = _MagnitudeProbe()
    loader = torch.utils.data.DataLoader(probe, batch_size=2, num_workers=1, persistent_workers=True)
    assert [b.tolist() for b in loader] == [[9.0, 9.0]]
    for op in probe.randaug.ops:
        op.magnitude = 2.0
    assert probe[0] == 2.0  # the main process sees it ...
    assert [b.tolist() for b in loader] == [[9.0, 9.0]]  # ... the persistent worker does not


def test_stage_switch_reaches_persistent_workers_with_new_b_and_m() -> None:
    ds = _dataset()
    sampler = _Batches()
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=1, persistent_workers=True)
    sampler.batches = [[(i, 12, 0.0, 100 + i) for i in range(4)]]
    (x1, y1), = list(loader)
    assert x1.shape == (4, 3, 12, 12)
    assert y1.tolist() == [0, 1, 2, 0]
    workers_before = loader._iterator._workers  # type: ignore[union-attr]

    # stage boundary: new B and m, same workers
    sampler.batches = [[(i, 20, 9.0, 100 + i) for i in range(4)]]
    (x2, _), = list(loader)
    assert loader._iterator._workers is workers_before  # type: ignore[union-attr]
    assert x2.shape == (4, 3, 20, 20)
    # the worker applied m = 9: its output is what the main process computes for the same key ...
    expected = torch.stack([ds[(i, 20, 9.0, 100 + i)][0] for i in range(4)])
    torch.testing.assert_close(x2, expected, rtol=0, atol=0)
    # ... and not what m = 0 gives with the same seed
    other = torch.stack([ds[(i, 20, 0.0, 100 + i)][0] for i in range(4)])
    assert not torch.equal(x2, other)


def test_same_key_same_sample_any_process_and_seed_changes_it() -> None:
    ds = _dataset()
    a, b = ds[(3, 20, 5.0, 7)][0], ds[(3, 20, 5.0, 7)][0]
    assert torch.equal(a, b)
    assert not torch.equal(a, ds[(3, 20, 5.0, 8)][0])


@pytest.mark.parametrize(("op", "b"), [("downsample", 12), ("crop", 20), ("bicubic", 12), ("none", 28)])
def test_frequency_ops_give_b_by_b(op: str, b: int) -> None:
    x, _ = _dataset(op)[(0, b, 4.0, 1)]
    assert x.shape == (3, b, b)
    assert torch.isfinite(x).all()


def test_downsample_is_lanczos_of_the_augmented_image() -> None:
    """ET++ (Sec. 5.2): the reduction is PIL's Lanczos resize of the augmented image; with RandAugment, flip
    and erasing switched off and a full crop the output is exactly that of the bare image."""
    aug = Augment(28, "downsample", (1.0, 1.0), 0.0, 0.5, 0.0, (0.0,) * 3, (1.0,) * 3, randaug=False)
    ds = CurriculumDataset(_Images(), CurriculumTransform(aug))
    x, _ = ds[(2, 12, 0.0, 0)]
    ref = np.asarray(_Images()[2][0].resize((12, 12), Image.Resampling.LANCZOS), dtype=np.float32) / 255
    torch.testing.assert_close(x, torch.from_numpy(ref).permute(2, 0, 1), rtol=0, atol=1e-6)


def test_no_reduction_refuses_a_smaller_b() -> None:
    with pytest.raises(UserError, match="needs a reduction"):
        _dataset("none")[(0, 12, 0.0, 1)]


def test_unknown_frequency_op_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown frequency op"):
        Augment(28, "fft")  # type: ignore[arg-type]


def test_eval_transform_resizes_to_the_final_size() -> None:
    ds = EvalDataset(_Images(), eval_transform(56, FMNIST_MEAN, FMNIST_STD, crop_pct=1.0))
    x, y = ds[1]
    assert x.shape == (3, 56, 56) and y == 1
    x2, _ = EvalDataset(_Images(), eval_transform(24, FMNIST_MEAN, FMNIST_STD, crop_pct=0.875))[1]
    assert x2.shape == (3, 24, 24)


@needs_fmnist
def test_fashion_mnist_from_the_debian_package() -> None:
    val = fashion_mnist("val")
    assert val.images.shape == (10000, 28, 28) and val.num_classes == 10
    assert sorted(np.unique(val.labels).tolist()) == list(range(10))
    img, label = val[0]
    assert img.mode == "RGB" and img.size == (28, 28) and 0 <= label < 10
    small = build_dataset("fashion-mnist", "val", max_images=100)
    assert len(small) == 100 and np.bincount(small.labels).tolist() == [10] * 10


def test_missing_fashion_mnist_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=f"looked in {tmp_path}.*REPRO_DATA"):
        fashion_mnist("train", root=tmp_path)


def test_missing_folder_root_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPRO_DATA", raising=False)
    monkeypatch.setenv("REPRO_DATA_IMAGENET_1K", str(tmp_path / "nope"))
    with pytest.raises(UserError, match="REPRO_DATA_IMAGENET_1K"):
        folder_root("imagenet-1k")
    (tmp_path / "in1k" / "train" / "a").mkdir(parents=True)
    (tmp_path / "in1k" / "val" / "a").mkdir(parents=True)
    assert folder_root("imagenet-1k", tmp_path / "in1k") == tmp_path / "in1k"


def test_balanced_subset_is_balanced_and_deterministic() -> None:
    labels = np.repeat(np.arange(5), 20)
    np.random.default_rng(0).shuffle(labels)
    keep = _balanced_subset(labels, 25)
    assert np.bincount(labels[keep]).tolist() == [5] * 5
    assert np.array_equal(keep, _balanced_subset(labels, 25))


def test_randaug_at_the_top_magnitude_does_not_crash() -> None:
    """m = 9 + N(0, 0.5) reaches timm's level 10, where the increasing posterize would keep 0 bits (Pillow
    refuses); the transform caps the level just below."""
    t = CurriculumTransform(Augment(28, "downsample", (0.35, 1.0), 0.5, 0.5, 0.25, FMNIST_MEAN, FMNIST_STD))
    assert t.randaug is not None
    for op in t.randaug.ops:
        op.magnitude, op.magnitude_std, op.prob = 10.0, 0.0, 1.0
        op(_Images()[0][0])  # every op, at the top level
