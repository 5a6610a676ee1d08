"""Fine-tuning from another run: initialise a model with the weights an upstream run ended with.

Every downstream experiment of the paper is a pre-training followed by a fine-tuning with the fine-tuning
recipe's own optimizer, schedule and augmentation (App. A.2: IN-22K -> IN-1K following ConvNeXt; App. A.4:
transfer following DeiT). A manifest says which run a fine-tuning starts from (a run link, ``init_from``);
the engine calls :func:`init_from_run` once, when it builds the model (``Trainer.__init__``), and resumes the
fine-tuning itself from its own checkpoints like any run. What is taken over from the upstream:

* the weights of its newest checkpoint -- the model's, or its EMA's (``init_weights: ema``; ConvNeXt's
  ``--model_key model_ema``) -- read with ``torch.load(weights_only=True)`` after its checksum matched
  (:func:`repro.train.checkpoint.read`); the upstream must be finished (a ``summary.json`` with a finite top-1);
* every tensor whose shape fits. The classifier (timm's ``get_classifier()``) is re-initialised when the class
  count differs (IN-22K's 21841 -> IN-1K's 1000, IN-1K -> CIFAR-10), its initial weights scaled by
  ``head_init_scale`` (ConvNeXt's fine-tuning: 0.001, ``models/convnext.py`` of facebookresearch/ConvNeXt);
  absolute position embeddings of another grid (a 224^2 pre-training fine-tuned at 384^2) are interpolated with
  timm's ``resample_abs_pos_embed`` (bicubic, prefix tokens kept, as timm's and DeiT's checkpoint filters do).
  Any other mismatch is another model: a one-line error naming the tensor.

Layer-wise learning-rate decay (``layer_decay``: ConvNeXt's 0.8, BEiT/MAE's) is timm's
``param_groups_layer_decay`` through ``create_optimizer_v2(layer_decay=...)``; the engine applies each group's
``lr_scale`` on top of the schedule.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from repro.errors import UserError
from repro.launch.rundir import run_info
from repro.train import checkpoint as ckpt


def file_weights(path: Path, ema: bool = False) -> dict[str, torch.Tensor]:
    """The model (or EMA) weights in a checkpoint file (``repro train --initial-checkpoint``): a repro checkpoint
    (its checksum must match), timm's train.py checkpoint (``state_dict`` / ``state_dict_ema``), a plain state
    dict (``torch.save(model.state_dict())``) or a ``.safetensors`` file (timm's published weights)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        elif ckpt.digest_path(path).exists():
            state = ckpt.read(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - unreadable, whatever the reason
        why = ckpt.why(err) if isinstance(err, ckpt.UnusableCheckpoint) else type(err).__name__
        raise UserError(f"init_from: {path} is not a checkpoint torch can read ({why})") from None
    if not isinstance(state, dict):
        raise UserError(f"init_from: {path} holds a {type(state).__name__}, not weights")
    keys = ("ema", "state_dict_ema", "model_ema") if ema else ("model", "state_dict")
    weights = next((state[k] for k in keys if isinstance(state.get(k), dict)), None)
    if weights is None and not ema and state and all(isinstance(v, torch.Tensor) for v in state.values()):
        weights = state  # a bare state dict
    if weights is None:
        raise UserError(f"init_from: {path} holds no {'EMA ' if ema else ''}model weights (none of the keys "
                        f"{', '.join(keys)})")
    return {k.removeprefix("module."): v for k, v in weights.items()}  # DDP's and ModelEmaV3's prefix


def upstream_weights(upstream: str | Path, ema: bool = False) -> dict[str, torch.Tensor]:
    """The model (or EMA) weights of the newest checkpoint of the finished run ``upstream`` (a directory), or of
    the checkpoint file ``upstream`` (:func:`file_weights`)."""
    path = Path(upstream)
    if path.is_file():
        return file_weights(path, ema)
    info = run_info(path)
    if info.state != "finished":
        why = {"new": "has not started", "partial": "has not finished"}.get(info.state, f"is {info.state}")
        raise UserError(f"init_from: upstream run {path} {why}" + (f" ({info.detail})" if info.detail else "")
                        + "; train it first (repro run runs a table's runs upstream first)")
    found = ckpt.checkpoints(path)
    if not found:
        raise UserError(f"init_from: upstream run {path} is finished but holds no checkpoint-*.pt to start from")
    state = ckpt.read(found[0])
    weights = state.get("ema") if ema else state.get("model")
    if weights is None:
        raise UserError(f"init_from: {found[0]} holds no {'EMA' if ema else 'model'} weights"
                        + ("; use init_weights model (the upstream trained without model_ema)" if ema else ""))
    if ema:  # timm's ModelEmaV3 keeps the model as its `module`
        weights = {k.removeprefix("module."): v for k, v in weights.items()}
    if info.summary is not None and info.summary.get("objective") == "mae":
        from repro.models.mae import encoder_weights

        weights = encoder_weights(weights)  # an MAE pre-training (Table 15) hands over its encoder, a timm ViT
    return weights


def _classifier_names(model: torch.nn.Module) -> set[str]:
    get = getattr(model, "get_classifier", None)
    head = get() if callable(get) else None
    if not isinstance(head, torch.nn.Module):
        return set()
    for prefix, module in model.named_modules():
        if module is head:
            return {f"{prefix}.{name}" if prefix else name for name, _ in head.named_parameters()}
    return set()


def _resample_pos_embed(model: torch.nn.Module, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    from timm.layers import resample_abs_pos_embed

    prefix = int(getattr(model, "num_prefix_tokens", 0))
    side = math.isqrt(new.shape[1] - prefix)
    return resample_abs_pos_embed(old, [side, side], num_prefix_tokens=prefix)


def load_into(model: torch.nn.Module, weights: dict[str, torch.Tensor], head_init_scale: float | None = None,
              source: str = "the upstream run") -> list[str]:
    """Copy ``weights`` into ``model`` (see the module doc); returns the names of the re-initialised tensors."""
    own = model.state_dict()
    head = _classifier_names(model)
    # a classifier the upstream lacks (a self-supervised pre-training has none) is new, like one of another size
    missing, unexpected = own.keys() - weights.keys() - head, weights.keys() - own.keys()
    if missing or unexpected:
        example = sorted(missing or unexpected)[0]
        raise UserError(f"init_from: {source} is another model ({len(missing)} tensors missing, {len(unexpected)} "
                        f"unexpected, e.g. {example!r}); fine-tune the same model as the upstream")
    loaded, fresh = {}, []
    for name, tensor in own.items():
        old = weights.get(name)
        if old is not None and old.shape == tensor.shape:
            loaded[name] = old
        elif name in head:  # another class count or none upstream: the recipe's new classifier
            loaded[name] = tensor
            fresh.append(name)
        elif name.split(".")[-1].startswith("pos_embed") and old.ndim == 3 and tensor.ndim == 3:
            loaded[name] = _resample_pos_embed(model, old, tensor)
        else:
            raise UserError(f"init_from: {name!r} is {tuple(old.shape)} in {source} and {tuple(tensor.shape)} here; "
                            "only the classifier and absolute position embeddings may differ")
    model.load_state_dict(loaded)
    if fresh and head_init_scale is not None:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in fresh:
                    param.mul_(head_init_scale)
    return fresh


def init_from_run(model: torch.nn.Module, upstream: str | Path, ema: bool = False,
                  head_init_scale: float | None = None) -> list[str]:
    """Initialise ``model`` from the finished run ``upstream`` (its newest checkpoint); returns the re-initialised
    tensor names (the classifier when the class count differs)."""
    what = "checkpoint" if Path(upstream).is_file() else "run"
    return load_into(model, upstream_weights(upstream, ema), head_init_scale, source=f"{what} {Path(upstream).name}")
