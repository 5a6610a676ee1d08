"""Model creation and the input-size switch the engine calls at stage boundaries (in one place).

Switching must keep the parameters (and thus the optimizer state) intact: ViTs are created with timm's
``dynamic_img_size`` (position embeddings interpolated in the forward pass); models of the repro zoo switch
through ``repro.models.set_input_size``; convolutional networks need nothing (App. A.1).
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

import torch

from repro.errors import UserError
from repro.train.config import ConfigError, TrainConfig


def build_model(cfg: TrainConfig, num_classes: int) -> torch.nn.Module:
    import timm

    if cfg.pretrained and (cfg.mae is not None or cfg.model_variant != "full"):
        raise ConfigError("pretrained", "timm's pretrained weights are those of the full-size classifier; an MAE "
                          "pre-training or a proxy model starts from random weights")
    if cfg.mae is not None:  # MAE pre-training (Sec. 6.2): a ViT encoder and MAE's decoder, no classes
        from repro.models import mae

        drop_path = {"drop_path_rate": cfg.drop_path} if cfg.drop_path else {}
        return mae.create(cfg.model, cfg.model_variant, cfg.final_size, **cfg.mae.model_dump(), **drop_path,
                          **cfg.model_kwargs)

    zoo = _zoo()
    if zoo is not None and _zoo_knows(zoo, cfg.model):  # Table 7 names (and their timm names), full or proxy
        kwargs = {"drop_path_rate": cfg.drop_path} if cfg.drop_path else {}
        model = zoo.create(cfg.model, variant=cfg.model_variant, num_classes=num_classes, img_size=cfg.final_size,
                           **kwargs, **cfg.model_kwargs)
        if cfg.pretrained:  # the zoo builds the model itself: timm's weights of its timm name, adapted
            from repro.train.finetune import load_into

            timm_name = zoo.entry(cfg.model).timm
            try:
                load_into(model, _pretrained(lambda: timm.create_model(timm_name, pretrained=True), timm_name)
                          .state_dict(), source=f"timm's pretrained {timm_name}")
            except UserError as err:
                raise ConfigError("pretrained", str(err).removeprefix("init_from: ")) from None
        return model
    if cfg.model_variant != "full":
        raise UserError(f"model {cfg.model!r} has no {cfg.model_variant!r} variant (only Table 7 models do)")
    if not timm.is_model(cfg.model):
        names = timm.list_models() + ([e.timm for e in zoo.TABLE7] if zoo is not None else [])
        close = difflib.get_close_matches(cfg.model, names, n=4)
        raise ConfigError("model", f"unknown model {cfg.model!r}" + (f" (did you mean {', '.join(close)}?)" if close
                                                                     else "") + "; timm's names: timm.list_models()")
    kwargs: dict[str, Any] = {"pretrained": cfg.pretrained, "num_classes": num_classes, **cfg.model_kwargs}
    if cfg.drop_path:
        kwargs["drop_path_rate"] = cfg.drop_path
    if cfg.layer_scale_init_value is not None and "convnext" in cfg.model:
        kwargs["ls_init_value"] = cfg.layer_scale_init_value
    for extra in ({"img_size": cfg.final_size, "dynamic_img_size": True}, {"img_size": cfg.final_size}, {}):
        try:
            return _pretrained(functools.partial(timm.create_model, cfg.model, **kwargs, **extra), cfg.model,
                               cfg.pretrained)
        except TypeError:
            continue
    raise UserError(f"cannot build {cfg.model!r} with {kwargs}")


def _pretrained(create: Any, name: str, pretrained: bool = True) -> torch.nn.Module:
    """``create()``; where it fetches timm's pretrained weights, a failure to get them (offline, none published)
    is one line naming ``--pretrained``."""
    try:
        return create()  # type: ignore[no-any-return]
    except TypeError:
        raise
    except Exception as err:  # noqa: BLE001 - the hub's, timm's or torch's error: no weights either way
        if not pretrained:
            raise
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise ConfigError("pretrained", f"cannot get timm's pretrained weights of {name} ({type(err).__name__}: "
                          f"{first}); on a machine without network, put them in the Hugging Face cache first, or "
                          "start from a file: {init_from} FILE") from None


def _zoo() -> Any:
    try:
        import repro.models as zoo
    except ImportError:  # pragma: no cover
        return None
    return zoo


def _zoo_knows(zoo: Any, name: str) -> bool:
    try:
        zoo.entry(name)
    except (UserError, AttributeError):
        return False
    return True


def set_input_size(model: torch.nn.Module, size: int) -> None:
    """Prepare ``model`` for inputs of ``size`` x ``size`` without replacing any parameter."""
    if getattr(model, "_repro_input_size", None) == size:
        return
    zoo = _zoo()
    if zoo is not None and hasattr(zoo, "set_input_size"):
        zoo.set_input_size(model, size)
    elif getattr(model, "dynamic_img_size", False):
        pass  # interpolates position embeddings per forward pass
    model._repro_input_size = size  # type: ignore[assignment]
