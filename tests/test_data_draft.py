"""JPEG draft decoding and the crop-to-B path (Sec. 4.1 / 5.2): the same crop draws as the full decode, a small
measured deviation, and without draft exactly the previous pipeline; the generated ImageNet-like folder."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image

from repro.commands.bench_loader import draft_deviation, loader_costs, stage_plan
from repro.data.datasets import build_dataset
from repro.data.synthetic import imagenet_like_folder
from repro.data.transforms import Augment, CurriculumDataset, CurriculumTransform, draft_scale, seed_everything


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return imagenet_like_folder(tmp_path_factory.mktemp("inet"), images=24, classes=3, seed=1)


def test_generated_folder_is_imagenet_like(folder):
    train = build_dataset("folder", "train", folder)
    assert len(train) == 24 and train.num_classes == 3
    sizes = [Image.open(p).size for p, _ in train.samples]
    assert all(300 <= max(s) <= 800 for s in sizes) and 350 < np.median([max(s) for s in sizes]) < 650
    assert Image.open(train.samples[0][0]).format == "JPEG"


def test_draft_scale_keeps_b_pixels():
    assert [draft_scale(side, 96) for side in (95, 191, 192, 383, 384, 768)] == [1, 1, 2, 2, 4, 8]


def test_without_draft_the_pipeline_is_unchanged(folder):
    """draft=False on undecoded images == the previous path (timm's crop on the decoded RGB image)."""
    base = build_dataset("folder", "train", folder, undecoded=True)
    decoded = build_dataset("folder", "train", folder)
    t = CurriculumTransform(Augment(224, "downsample", draft=False))
    for b in (96, 224):
        for i in range(6):
            seed_everything(i)
            new = t(base[i][0], b, 5.0)
            seed_everything(i)
            img = t.flip(t.crop(decoded[i][0]))
            t.set_magnitude(5.0)
            old = t.erase(t.normalize(t.to_tensor(t.reduce(t.randaug(img), b))))
            assert torch.equal(new, old)


@pytest.mark.parametrize("reduce_at_crop", [False, True])
def test_draft_draws_the_same_crop_and_decodes_smaller(folder, reduce_at_crop, monkeypatch):
    base = build_dataset("folder", "train", folder, undecoded=True)
    full = CurriculumTransform(Augment(224, "downsample", draft=False, reduce_at_crop=reduce_at_crop))
    draft = CurriculumTransform(Augment(224, "downsample", draft=True, reduce_at_crop=reduce_at_crop))
    decoded_sizes = []
    original = Image.Image.resize

    def spy(self, size, *args, **kwargs):
        decoded_sizes.append(self.size)
        return original(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", spy)
    drafted = 0
    for i in range(len(base)):
        states = []
        for t in (full, draft):
            seed_everything(i)
            x = t(base[i][0], 96, 9.0)
            states.append((random.random(), np.random.rand(), torch.rand(1).item()))
            assert x.shape == (3, 96, 96)
        assert states[0] == states[1]  # the same number of draws from every RNG
        drafted += decoded_sizes[-1][0] < base[i][0].size[0] / 1.5
    assert drafted >= len(base) // 2  # B = 96 crops of ~500 x 375 images are mostly >= 192 pixels


def test_draft_deviation_is_small_and_below_the_jpeg_error(folder):
    """The figure in CurriculumTransform.resized_crop's docstring, on the generated images."""
    dev = draft_deviation(folder, sizes=(96, 160), images=24)
    assert dev["96"]["draft_pipeline_median"] < 0.1
    assert dev["96"]["drafted_fraction"] > 0.5
    for row in dev.values():
        if row["drafted_fraction"]:
            assert row["median"] < 0.03 and row["max"] < 0.06
            assert row["median"] < 1.5 * row["jpeg_q90_median"]


def test_loader_costs_ratio_structure(tmp_path):
    etpp, baseline = stage_plan()
    assert [b for b, _, _ in etpp] == [96, 160, 224] and sum(e for _, e, _ in baseline) == 300
    out = loader_costs(imagenet_like_folder(tmp_path, images=4, classes=2), repeats=1)
    for path in ("today", "draft", "draft_early"):
        row = out["paths"][path]
        lo, hi = row["loader_ratio_range"]
        assert lo <= row["loader_ratio"] <= hi and row["loader_ratio"] > 0
        assert set(row["per_image_us"]) == {"etpp_96", "etpp_160", "etpp_224", "baseline_224"}
    assert out["decode_only_us"]["1/2"] > 0


def test_trainer_reads_folders_undecoded_with_draft(folder, tmp_path):
    from repro.train.config import TrainConfig
    from repro.train.engine import Trainer

    cfg = TrainConfig(model="test_vit", model_kwargs={"patch_size": 8}, method="efficienttrain++", epochs=1,
                      final_size=56, adapt="linear", dataset="folder", data_root=str(folder), batch_size=8,
                      workers=0, device="cpu", warmup_epochs=0.1, reduce_at_crop=True)
    trainer = Trainer(cfg, tmp_path)
    ds: CurriculumDataset = trainer.train_set
    assert ds.transform.cfg.draft and ds.transform.cfg.reduce_at_crop
    assert ds.base[0][0].tile  # not decoded yet
    x, _ = ds[(0, 32, 3.0, 0)]
    assert x.shape == (3, 32, 32)
