"""Fine-tuning from a run (repro.train.finetune) and the readers of the pre-training / transfer data sets:
tiny data sets in each on-disk format, a tiny upstream run, one short fine-tuning from its checkpoint."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from repro.data.datasets import build_dataset
from repro.data.readers import held_out
from repro.errors import UserError
from repro.train import checkpoint as ckpt
from repro.train.config import TrainConfig
from repro.train.engine import Trainer, train

TINY = {"model": "test_vit", "model_kwargs": {"patch_size": 4}, "method": "baseline", "epochs": 1,
        "final_size": 28, "adapt": "linear", "max_train_images": 64, "max_val_images": 32, "batch_size": 32,
        "lr": 1e-3, "warmup_epochs": 0, "workers": 0, "crop_scale": (0.35, 1.0), "mixup": 0, "cutmix": 0,
        "reprob": 0, "log_every_steps": 1}


def write_cifar100(root: Path, n: int = 40) -> Path:
    """CIFAR-100's python layout (cifar-100-python/{train,test,meta} pickles) with ``n`` random images each."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        labels = [i % 100 for i in range(n)]
        (folder / split).write_bytes(pickle.dumps({"data": data, "fine_labels": labels, "coarse_labels": labels}))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]}))
    return root


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Path:
    """A finished tiny Fashion-MNIST run with EMA weights (10 classes, 28^2: a 7x7 patch grid)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("upstream")
    # 4 steps: timm's ModelEmaV3 copies the model at its first two updates, then averages
    train(TrainConfig(**{**TINY, "epochs": 2}, model_ema=True, model_ema_decay=0.5), out)
    return out


def test_cifar_pickles_read_as_rgb(tmp_path):
    root = write_cifar100(tmp_path)
    ds = build_dataset("cifar-100", "train", root)
    image, label = ds[3]
    assert ds.num_classes == 100 and len(ds) == 40 and image.size == (32, 32) and image.mode == "RGB"
    assert label == 3 and np.array_equal(np.asarray(image), ds.images[3])


def test_imagenet22k_synset_folders_and_their_held_out_split(tmp_path):
    names = [f"img{i:03d}.JPEG" for i in range(300)]
    for synset in ("n01440764", "n01443537"):
        (tmp_path / synset).mkdir()
        for name in names:
            Image.new("RGB", (8, 8)).save(tmp_path / synset / name, format="JPEG")
    train_set, val = (build_dataset("imagenet-22k", split, tmp_path) for split in ("train", "val"))
    expected = sum(held_out(n) for n in names)
    assert 0 < expected < 10 and len(val) == 2 * expected and len(train_set) + len(val) == 600
    assert val.num_classes == 2 and {Path(p).name for p, _ in val.samples} == {n for n in names if held_out(n)}


def test_digits_split(tmp_path):
    train_set, val = build_dataset("digits", "train"), build_dataset("digits", "val")
    assert (len(train_set), len(val), train_set.num_classes) == (1438, 359, 10)
    assert train_set[0][0].size == (8, 8) and train_set.images.max() == 255


def test_fine_tune_loads_weights_new_head_resampled_pos_embed_layer_decay(upstream, tmp_path, one_torch_thread):
    """CIFAR-100 at 32^2 from a 10-class 28^2 run: every weight but the head and the position embedding is the
    upstream's; the head is new and scaled; the position embedding is resampled 7x7 -> 8x8; layer decay."""
    from timm.layers import resample_abs_pos_embed

    root = write_cifar100(tmp_path / "data")
    cfg = TrainConfig(**{**TINY, "dataset": "cifar-100", "data_root": str(root), "final_size": 32, "opt": "sgd",
                         "init_from": str(upstream), "head_init_scale": 0.001, "layer_decay": 0.75})
    trainer = Trainer(cfg, tmp_path / "ft")
    old = ckpt.read(ckpt.checkpoints(upstream)[0])["model"]
    new = trainer.model.state_dict()
    assert new["head.weight"].shape == (100, old["head.weight"].shape[1])
    assert float(new["head.weight"].abs().max()) < 0.01  # timm's init (std 0.02 at most) x 0.001
    assert torch.equal(new["pos_embed"], resample_abs_pos_embed(old["pos_embed"], [8, 8], num_prefix_tokens=1))
    same = [k for k in new if k not in ("head.weight", "head.bias", "pos_embed")]
    assert same and all(torch.equal(new[k], old[k]) for k in same)
    scales = sorted({g["lr_scale"] for g in trainer.optimizer.param_groups})
    assert scales[-1] == 1.0 and scales[0] == pytest.approx(0.75 ** (len(scales) - 1))
    summary = trainer.train()  # the fine-tuning itself: one step of 32 of the 40 images
    assert summary["steps"] == 1 and np.isfinite(summary["top1"])


def test_fine_tune_from_the_ema_weights(upstream, tmp_path, one_torch_thread):
    ema = ckpt.read(ckpt.checkpoints(upstream)[0])["ema"]
    model = Trainer(TrainConfig(**{**TINY, "init_from": str(upstream), "init_weights": "ema"}), tmp_path).model
    loaded = model.state_dict()
    assert loaded and all(torch.equal(loaded[k], ema[f"module.{k}"]) for k in loaded)
    raw = ckpt.read(ckpt.checkpoints(upstream)[0])["model"]
    assert any(not torch.equal(loaded[k], raw[k]) for k in loaded)  # the EMA, not the model


def test_unfinished_or_other_upstream_is_one_line(upstream, tmp_path):
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "metrics.jsonl").write_text("")
    for where, message in ((tmp_path / "partial", "has not finished"), (tmp_path / "none", "has not started")):
        with pytest.raises(UserError, match=f"init_from: upstream run {where} {message}; train it first"):
            Trainer(TrainConfig(**{**TINY, "init_from": str(where)}), tmp_path / "ft")
    with pytest.raises(UserError, match="is another model"):
        Trainer(TrainConfig(**{**TINY, "model_kwargs": {"patch_size": 4, "depth": 2}, "init_from": str(upstream)}),
                tmp_path / "ft2")
    assert not (tmp_path / "ft").exists() and not (tmp_path / "ft2").exists()  # refused before writing
