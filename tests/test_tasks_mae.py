"""Tasks mae / mae_finetune (Table 15): the resolved runs carry MAE's pre-training and fine-tuning recipes, build
the same ViT, and the fine-tuning names its upstream."""

from __future__ import annotations

import pytest
import torch

from repro.launch.manifest import load_manifest, manifest_path
from repro.launch.resolve import resolve
from repro.tasks import task_for
from repro.tasks.in1k import train_config
from repro.tasks.mae import _finetune_config, _vit


def _runs(profile: str) -> dict[tuple[str, str], dict]:
    return {(r.row, r.key): r.config for r in resolve(load_manifest(manifest_path(15)), profile)}


def test_full_pretrainings_follow_maes_recipe_with_hog_targets() -> None:
    runs = _runs("full")
    for row, epochs, method in (("MAE 1600-epoch + HOG", 1600, "baseline"), ("MAE 400-epoch + HOG", 400, "baseline"),
                                ("MAE (ET++) 400-epoch + HOG", 400, "efficienttrain++")):
        cfg = train_config(_vit(runs[row, "pretrain"]))
        assert (cfg.model, cfg.method, cfg.epochs) == ("vit_base_patch16_224", method, epochs)
        assert cfg.mae is not None and cfg.mae.target == "hog" and cfg.mae.mask_ratio == 0.75
        # MAE Table 8: AdamW (0.9, 0.95), 1.5e-4 x 4096 / 256, wd 0.05, 40 warm-up epochs, crops of 20-100 %
        assert (cfg.opt, cfg.opt_betas, cfg.lr, cfg.weight_decay, cfg.batch_size) == (
            "adamw", (0.9, 0.95), pytest.approx(1.5e-4 * 4096 / 256), 0.05, 4096)
        assert (cfg.warmup_epochs, cfg.crop_scale, cfg.augment, cfg.mixup, cfg.cutmix, cfg.reprob) == (
            40, (0.2, 1.0), "none", 0.0, 0.0, 0.0)
    assert runs["MAE 400-epoch + HOG", "baseline"] == runs["MAE 1600-epoch + HOG", "pretrain"]  # trained once


def test_finetunings_start_from_their_pretraining_with_maes_recipe() -> None:
    full = {(r.row, r.key): r for r in resolve(load_manifest(manifest_path(15)), "full")}
    for row in ("MAE 1600-epoch + HOG", "MAE 400-epoch + HOG", "MAE (ET++) 400-epoch + HOG"):
        ft = full[row, "finetune"].config
        assert ft["init_from"] == full[row, "pretrain"].run_id
        vit = _finetune_config(ft)
        # MAE Table 9 (ViT-B): 5e-4 x 1024 / 256, layer decay 0.65, 100 epochs, 5 warm-up, drop path 0.1
        assert (vit["model"], vit["lr"], vit["layer_decay"], vit["batch_size"], vit["epochs"]) == (
            "vit_base_patch16_224", pytest.approx(5e-4 * 1024 / 256), 0.65, 1024, 100)
        assert (vit["warmup_epochs"], vit["drop_path"], vit["smoothing"], vit["mixup"], vit["cutmix"]) == (
            5, 0.1, 0.1, 0.8, 1.0)
        assert "mae" not in vit


def test_smoke_pretrainings_run_on_the_zoo_vit_proxy() -> None:
    from repro.models.mae import PROXY_ENCODER

    for (_row, key), config in _runs("smoke").items():
        if key == "pretrain":
            task, why = task_for(config)
            assert task is not None and task.name == "mae", why
            assert train_config(_vit(config)).model == PROXY_ENCODER


def test_a_finetuning_without_upstream_is_refused_in_one_line() -> None:
    config = _runs("smoke")["MAE 400-epoch + HOG", "finetune"]
    task, why = task_for({k: v for k, v in config.items() if k != "init_from"})
    assert task is None and why == "an MAE fine-tuning starts from an MAE pre-training: name it with init_from"


def test_a_finetuning_starts_from_the_pretrained_encoder_with_a_new_small_head(tmp_path, one_torch_thread) -> None:
    from test_train_mae import MAE

    from repro.models.mae import encoder_weights
    from repro.train.config import TrainConfig
    from repro.train.engine import Trainer, train

    train(TrainConfig(**{**MAE, "epochs": 0.5, "warmup_epochs": 0.1, "method": "baseline"}), tmp_path / "pre")
    state = torch.load(sorted((tmp_path / "pre").glob("checkpoint-*.pt"))[-1], weights_only=True)
    encoder = encoder_weights(state["model"])
    ft = TrainConfig(**{k: v for k, v in MAE.items() if k not in ("mae", "augment")}, init_from=str(tmp_path / "pre"),
                     layer_decay=0.65, head_init_scale=0.001)
    model = Trainer(ft, tmp_path / "ft").model
    own = model.state_dict()
    assert own.keys() - encoder.keys() == {"head.weight", "head.bias"}
    for name, tensor in encoder.items():
        assert torch.equal(own[name], tensor), name
    assert 0 < float(own["head.weight"].std()) < 1e-4  # MAE's fine-tuning: the new head at std 2e-5
