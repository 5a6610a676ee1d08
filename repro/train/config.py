"""The training configuration: timm's flag names and meanings (Table 24 defaults), validated by pydantic.

A resolved manifest config carries more keys (task, profile, table labels); :func:`resolved_settings` keeps the
training keys, drops the bookkeeping ones and refuses settings the engine does not implement -- an ablation
override the engine would silently ignore is an error, never a wrong number.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from repro.core.curriculum import from_data, get_spec, is_file_name, load
from repro.errors import UserError


def describe(field: str, message: str, name: Callable[[str], str] = str) -> str:
    """``field: message`` for a reader who knows the settings as ``name(field)`` (a command-line flag, a config
    key); ``{other_field}`` in ``message`` names another setting the same way."""
    return f"{name(field)}: " + re.sub(r"\{(\w+)\}", lambda m: name(m[1]), message)


class ConfigError(UserError):
    """A setting the engine cannot train with; ``field`` names it (``{field}`` in the message names others)."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(describe(field, message))

    def render(self, name: Callable[[str], str]) -> str:
        return describe(self.field, self.message, name)


class MaeSettings(BaseModel):
    """Masked-autoencoder pre-training (MAE, He et al. CVPR 2022; ET++ Sec. 6.2, Table 15) instead of supervised
    classification: ``repro.models.mae``. ``decoder`` overrides the decoder's ``dim`` / ``depth`` / ``heads``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    target: Literal["pixel", "hog"] = "pixel"  # hog: MaskFeat's HOG (Table 15's "+ HOG" rows)
    mask_ratio: float = Field(default=0.75, gt=0, lt=1)
    norm_pix_loss: bool = True
    decoder: dict[Literal["dim", "depth", "heads"], int] | None = None


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # what
    model: str = Field(description="timm model name (or a repro model-zoo name)")
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    model_variant: Literal["full", "proxy"] = "full"  # proxy: a tiny same-family model (CPU smoke profile)
    pretrained: bool = False  # start from timm's pretrained weights of the model (timm's --pretrained)
    num_classes: int | None = Field(default=None, gt=0)  # the classifier's outputs; None: the data set's classes
    method: str | list[str] = "baseline"  # a method or a list of them (repro.methods: names and hooks)
    # curriculum: a preset name, or a curriculum's data (a file's content: a file name given here is read, so that
    # the content, not the path, is the run's identity); default from the method
    schedule: str | dict[str, Any] | None = None
    epochs: float = Field(default=300, gt=0)  # real epochs (baseline, ET) or equivalent epochs (ET++)
    final_size: int = Field(default=224, gt=0)
    adapt: Literal["table10", "linear"] = "table10"
    paper_final_size: int | None = Field(default=None, gt=0)  # linear adapt: the paper-scale final size (Table 10)
    # data
    dataset: str = "fashion-mnist"
    data_root: str | None = None
    max_train_images: int | None = Field(default=None, gt=0)
    max_val_images: int | None = Field(default=None, gt=0)
    workers: int = Field(default=2, ge=0)
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_pct: float = Field(default=0.875, gt=0, le=1)
    # JPEG folders: decode at 1/2-1/8 scale when the crop keeps >= B pixels (small deviation, on); ET++ below the
    # final size: crop straight to B and RandAugment at B (cheaper, changes the augmentation order: opt-in)
    draft_decode: bool = True
    reduce_at_crop: bool = False
    # optimisation (Table 24)
    batch_size: int = Field(default=4096, gt=0)  # global
    micro_batch_size: int | None = Field(default=None, gt=0)  # per process; gradient accumulation above it
    opt: str = "adamw"
    opt_betas: tuple[float, float] = (0.9, 0.999)
    lr: float = Field(default=4e-3, gt=0)
    min_lr: float = Field(default=1e-6, ge=0)
    warmup_epochs: float = Field(default=20, ge=0, validate_default=True)  # checked against the epochs
    warmup_lr: float = Field(default=0.0, ge=0)
    weight_decay: float = Field(default=0.05, ge=0)
    clip_grad: float | None = Field(default=None, gt=0)
    drop_path: float = Field(default=0.0, ge=0, lt=1)
    smoothing: float = Field(default=0.1, ge=0, lt=1)
    mixup: float = Field(default=0.8, ge=0)
    cutmix: float = Field(default=1.0, ge=0)
    reprob: float = Field(default=0.25, ge=0, le=1)
    randaug_magnitude: float = Field(default=9.0, ge=0)  # the final m (m rises 0 -> 9 in ET/ET++)
    randaug_std: float = Field(default=0.5, ge=0)
    # DeiT III's recipe (its Sec. 3): 3-Augment instead of RandAug, simple random crop, binary cross-entropy;
    # none: crops and flips only (MAE's pre-training)
    augment: Literal["randaug", "3augment", "none"] = "randaug"
    crop: Literal["random-resized", "simple"] = "random-resized"
    loss: Literal["ce", "bce"] = "ce"
    # Table 11's rows without 'AugRegs': no RandAug, Mixup, CutMix, label smoothing, random erasing, drop path
    augregs: bool = True
    # Budgeted ViT (ICLR'23): the run's cost in epochs of the full model (its epochs train smaller sub-networks)
    budget_epochs: float | None = Field(default=None, gt=0)
    # ablations (Table 19): RandAug m fixed at randaug_magnitude instead of rising with the curriculum (a), and
    # another operation than the method's to reach B (b): crop (ET), downsample (ET++), bicubic (plain resize)
    linear_randaug: bool = True
    frequency_op: Literal["crop", "downsample", "bicubic"] | None = None
    model_ema: bool = False
    model_ema_decay: float = Field(default=0.9999, gt=0, lt=1)
    layer_scale_init_value: float | None = None
    mae: MaeSettings | None = None  # self-supervised pre-training: the model's own loss, no labels
    # fine-tuning from another run (repro.train.finetune): its directory (a manifest's init_from names the run, and
    # the task passes runs/<run id>), which of its weights, the new classifier's init scale, layer-wise LR decay
    init_from: str | None = None
    init_weights: Literal["model", "ema"] = "model"
    head_init_scale: float | None = Field(default=None, gt=0)
    layer_decay: float | None = Field(default=None, gt=0, le=1)
    # EfficientTrain++ options (Sec. 5.3)
    early_large_batch: bool = False
    max_batch_size: int | None = Field(default=None, gt=0)
    lr_max: float | None = Field(default=None, gt=0)
    n_replay: int = Field(default=0, ge=0)
    replay_capacity: int = Field(default=8, ge=1)
    # hardware
    device: str = "auto"
    amp: bool = True  # bf16 autocast on GPU (ignored on CPU)
    amp_dtype: Literal["bfloat16", "float16"] = "bfloat16"
    channels_last: bool = True  # on GPU
    # bookkeeping
    seed: int = 0
    eval_every_epochs: float = Field(default=1.0, gt=0)
    log_every_steps: int = Field(default=20, gt=0)
    checkpoint_minutes: float = Field(default=30.0, gt=0)
    keep_checkpoints: int = Field(default=2, ge=1)
    snapshot_epochs: tuple[float, ...] = ()  # real epochs at which the weights are kept (Table 1's checkpoints)
    wandb: bool = False
    wandb_project: str = "repro"
    wandb_group: str | None = None
    stop_after_steps: int | None = Field(default=None, gt=0)  # testing: simulate an interruption
    # stop (checkpoint, then Paused) once this share of the planned compute is done: runs trained in turns
    pause_at_fraction: float | None = Field(default=None, gt=0, lt=1)

    # messages: "{field}" names another setting (see describe)
    @field_validator("method")
    @classmethod
    def _known_methods(cls, method: str | list[str]) -> str | list[str]:
        from repro.methods import check_names

        try:
            check_names(method)
        except UserError as err:
            raise ValueError(str(err)) from None
        return method[0] if isinstance(method, list) and len(method) == 1 else method

    @model_validator(mode="after")
    def _without_augregs(self) -> TrainConfig:
        """``augregs: false`` (Table 11, Sec. 6.1.2): the holistic augmentation + regularisation pipeline of
        [4], [18]-[21] off -- RandAug (and with it ET's m curriculum), Mixup, CutMix, label smoothing, random
        erasing and stochastic depth -- leaving random-resized crops, flips and weight decay."""
        if not self.augregs:
            for field, off in {"augment": "none", "mixup": 0.0, "cutmix": 0.0, "smoothing": 0.0, "reprob": 0.0,
                               "drop_path": 0.0}.items():
                object.__setattr__(self, field, off)
        return self

    @field_validator("schedule")
    @classmethod
    def _known_schedule(cls, schedule: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        try:
            if isinstance(schedule, dict):
                from_data(schedule)
            elif schedule is not None and is_file_name(schedule):
                return load(schedule)
            elif schedule is not None:
                get_spec(schedule)
        except UserError as err:
            raise ValueError(str(err)) from None
        return schedule

    @model_validator(mode="after")
    def _one_initialisation(self) -> TrainConfig:
        if self.pretrained and self.init_from is not None:
            raise ValueError("give one initialisation: {pretrained} (timm's weights) or {init_from} FILE, not both")
        return self

    @field_validator("opt_betas")
    @classmethod
    def _betas(cls, betas: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam's betas lie in [0, 1), got {betas[0]:g} {betas[1]:g} (Table 24: 0.9 0.999)")
        return betas

    @field_validator("crop_scale")
    @classmethod
    def _area_range(cls, scale: tuple[float, float]) -> tuple[float, float]:
        low, high = scale
        if not 0 < low <= 1 or not 0 < high <= 1:
            raise ValueError(f"the crop area range must lie in (0, 1], got {low} {high} (timm: 0.08 1)")
        if low > high:
            raise ValueError(f"MIN {low} is above MAX {high}; did you mean {high} {low}?")
        return scale

    @field_validator("warmup_epochs")
    @classmethod
    def _warmup_within_run(cls, warmup: float, info: ValidationInfo) -> float:
        epochs = info.data.get("epochs")
        if epochs is not None and warmup >= epochs:  # both on the schedule's axis
            raise ValueError(f"a warm-up of {warmup:g} epochs does not fit a run of {epochs:g} ({{epochs}}); "
                             f"use less, e.g. {{warmup_epochs}} {epochs / 15:.3g} (Table 24's 20 of 300)")
        return warmup

    @field_validator("micro_batch_size", "max_batch_size")
    @classmethod
    def _against_the_batch(cls, size: int | None, info: ValidationInfo) -> int | None:
        batch = info.data.get("batch_size")
        if size is None or batch is None:
            return size
        if info.field_name == "micro_batch_size" and size > batch:
            raise ValueError(f"{size} is above the global batch of {batch} ({{batch_size}}); use at most {batch}")
        if info.field_name == "max_batch_size" and size < batch:
            raise ValueError(f"{size} is below the global batch of {batch} ({{batch_size}}); use at least {batch}")
        return size


# Keys of a resolved manifest config that are bookkeeping, not training settings.
# same_cost_as_baseline (Table 9) is resolved into the run's epochs by repro.launch.resolve.
RESOLVED_ONLY = {"task", "profile", "timm_model", "sched", "input_size", "aa", "same_cost_as_baseline"}


SCHEDULES = ("cosine",)  # timm's --sched values the engine implements: Table 24's warm-up + cosine


def resolved_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The TrainConfig settings of a resolved manifest config (``repro.launch.resolve``), not yet validated;
    unknown settings are refused."""
    known = set(TrainConfig.model_fields)
    data = {k: v for k, v in config.items() if k in known and v is not None}
    unsupported = sorted(k for k in config if k not in known and k not in RESOLVED_ONLY)
    if unsupported:
        raise UserError(f"the training engine does not implement {', '.join(unsupported)} (yet)")
    if config.get("sched", "cosine") not in SCHEDULES:
        raise UserError(f"only the cosine schedule of Table 24 is implemented, got {config['sched']!r}")
    return data


def augment_settings(aa: str) -> dict[str, Any]:
    """timm's auto-augment string (its ``--aa``; a manifest's ``aa``) as the engine's settings, or ValueError for
    a policy or an option the engine does not implement:

    * ``rand-m9-mstd0.5-inc1``: RandAugment with final magnitude 9 (ET / ET++ raise m from 0 to it) and magnitude
      std 0.5 (timm's default without ``mstd``: 0); the engine always draws timm's ``inc1`` operations, 2 per image;
    * ``3a``: DeiT III's 3-Augment (timm's ``3a`` policy);
    * ``none``: neither (crops and flips only).
    """
    text = aa.strip().lower()
    if text in ("", "none"):
        return {"augment": "none"}
    if text == "3a":
        return {"augment": "3augment"}
    sections = text.split("-")
    if sections[0] != "rand":
        raise ValueError(f"{aa!r}: the engine implements RandAugment ('rand-m9-mstd0.5-inc1'), DeiT III's '3a' and "
                         "'none', not timm's other policies (autoaugment, augmix)")
    out: dict[str, Any] = {"augment": "randaug", "randaug_std": 0.0}
    for section in sections[1:]:
        match = re.fullmatch(r"([a-z]+)(\d+(?:\.\d+)?)", section)
        key, value = (match[1], float(match[2])) if match else (section, None)
        if key == "m" and value is not None:
            out["randaug_magnitude"] = value
        elif key == "mstd" and value is not None:
            out["randaug_std"] = value
        elif (key, value) in (("inc", 1.0), ("n", 2.0)):  # what the engine draws anyway
            continue
        else:
            raise ValueError(f"{aa!r}: {section!r} is not implemented (the engine's RandAugment takes m<magnitude> "
                             "and mstd<std>, with inc1 and n2 operations, e.g. rand-m9-mstd0.5-inc1)")
    if "randaug_magnitude" not in out:
        raise ValueError(f"{aa!r}: name the magnitude, e.g. rand-m9-mstd0.5-inc1")
    return out


def validate(data: dict[str, Any], name: Callable[[str], str] = str, prefix: str = "") -> TrainConfig:
    """A TrainConfig, or its first problem as one line naming the setting as ``name(field)``."""
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "config"
        raise UserError(prefix + describe(field, first["msg"].removeprefix("Value error, "), name)) from None
