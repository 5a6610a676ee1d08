"""Tasks ``mae`` and ``mae_finetune``: Table 15 (ET++ Sec. 6.2) -- masked-autoencoder pre-training of a ViT with
the one engine (``repro.models.mae``; MAE's recipe, ``experiments/base/mae.yaml``), then end-to-end fine-tuning
of its encoder on the classification set (MAE's fine-tuning recipe, ``experiments/base/mae_finetune.yaml``),
a run that starts from the pre-training (``init_from``).

The curriculum changes only the inputs (Sec. 6.2: "it only modifies the training inputs"), so a pre-training run
takes every method of the engine as a supervised one does. Both tasks build the same ViT: the base config's timm
model (ViT-B: ``vit_base_patch16_224``) at full size, the model zoo's ViT proxy on the CPU profile
(:data:`repro.models.mae.PROXY_ENCODER`), so the fine-tuning loads the pre-trained encoder tensor for tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.errors import UserError
from repro.tasks import Task, in1k, register


def _vit(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the model the engine builds: the timm ViT (full) or the zoo's ViT proxy."""
    from repro.models.mae import PROXY_ENCODER

    proxy = config.get("model_variant") == "proxy"
    return {**config, "model": PROXY_ENCODER if proxy else config.get("timm_model") or config["model"]}


def check_pretraining(config: dict[str, Any]) -> str:
    if not config.get("mae"):
        return "an MAE pre-training needs its objective (the base config's mae setting)"
    return in1k.check(_vit(config))


def pretrain(config: dict[str, Any], run_dir: Path) -> None:
    in1k.run(_vit(config), run_dir)


def _finetune_config(config: dict[str, Any]) -> dict[str, Any]:
    if config.get("mae"):
        raise UserError("an MAE fine-tuning trains a classifier: remove its mae setting")
    if not config.get("init_from"):
        raise UserError("an MAE fine-tuning starts from an MAE pre-training: name it with init_from")
    return _vit(config)


def check_finetuning(config: dict[str, Any]) -> str:
    try:
        return in1k.check(_finetune_config(config))
    except UserError as err:
        return str(err)


def finetune(config: dict[str, Any], run_dir: Path) -> None:
    in1k.run(_finetune_config(config), run_dir)  # finds the upstream run beside this one


PRETRAIN = register(Task("mae", run=pretrain, check=check_pretraining, pauses=True))
FINETUNE = register(Task("mae_finetune", run=finetune, check=check_finetuning, upstream=frozenset({"mae"}),
                         requires_upstream=True, pauses=True))
