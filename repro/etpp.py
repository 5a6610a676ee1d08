"""EfficientTrain++ in your own PyTorch / timm training loop: the curriculum, the data pipeline and the LR.

What the engine (:mod:`repro.train.engine`) does for ``repro train``, as three pieces a plain loop can hold:

* :func:`schedule` -- a :class:`~repro.train.schedule.StepSchedule`: the curriculum of Table 6 (or any preset of
  :mod:`repro.core.curriculum`, Table 10's rule for other final sizes) in whole steps of your data set and
  batch; ``schedule.at(step)`` tells the input size B, the RandAug magnitude m and the LR there. ET++ sets all
  three on the fraction of compute consumed (Sec. 5, Table 6 caption), so a step is the unit, not an epoch.
* :func:`train_dataset` + :func:`sampler` -- the transform / sampler pair: the data set is indexed by
  ``(index, B, m, seed)`` keys (:class:`~repro.data.transforms.CurriculumDataset`, the Table 24 augmentation with
  the method's reduction to B: low-pass + Lanczos down-sampling for ET++, Sec. 5.2) and the sampler yields the
  keys of one stage (:class:`~repro.train.engine.KeySampler`). B and m travel with every sample, so data-loader
  workers -- persistent ones included -- follow the curriculum without shared state, and every augmentation is
  a function of the seed and the sample's position (the same with 0 or 8 workers, or after a resume).
* :class:`CurriculumScheduler` -- the LR as a timm scheduler (``step_update(num_updates)`` after each optimizer
  step; it honours timm's ``lr_scale`` of layer-decay groups).

Not here: the early large batch is a :func:`schedule` option (eq. (2), Sec. 5.3), but the replay buffer (Sec.
5.3), checkpoints and DDP bookkeeping are the engine's: use ``repro train`` for those.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from timm.scheduler.scheduler import Scheduler

from repro.core.curriculum import REFERENCE_SIZE, CostFn, build
from repro.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Augment, CurriculumDataset, CurriculumTransform
from repro.errors import UserError
from repro.methods import frequency_op_of, schedule_of
from repro.train.engine import KeySampler, Stream
from repro.train.schedule import StagePlan, StepInfo, StepSchedule

__all__ = ["CurriculumScheduler", "StagePlan", "StepInfo", "StepSchedule", "sampler", "schedule", "train_dataset"]


def schedule(
    *,
    n_train: int,
    batch_size: int,
    lr: float,
    method: str = "efficienttrain++",
    curriculum: str | None = None,
    epochs: float | None = None,
    final_size: int = REFERENCE_SIZE,
    warmup_epochs: float = 20.0,
    min_lr: float = 1e-6,
    cost: CostFn | None = None,
    adapt: Literal["table10", "linear"] = "table10",
    **options: Any,
) -> StepSchedule:
    """The step schedule of ``method``'s curriculum (``curriculum`` overrides the preset, e.g. ``etpp-convnext``).

    ``epochs``: the budget on the curriculum's axis -- *equivalent* epochs for ET++ (the paper's 200 against the
    baseline's 300), real epochs for ET and the baseline; default the preset's. ``lr`` is the peak LR at
    ``batch_size`` (Table 24: 4e-3 at 4096). ``adapt="linear"`` scales the paper's B values by
    ``final_size / 224`` (a small proxy keeps the paper's relative costs) instead of Table 10's rule. ``cost``:
    per-B cost (default ``(B / final)^2``; ``repro.models.flops.cost_fn(model)`` for measured FLOPs). Further
    ``options`` are :class:`~repro.train.schedule.StepSchedule` fields (``magnitude``, ``early_large_batch``,
    ``lr_max`` ...).
    """
    preset = curriculum or schedule_of(method)
    resolved = build(preset, epochs=epochs, final_size=final_size, cost=cost, adapt=adapt)
    return StepSchedule(resolved, n_train, batch_size, lr, warmup_epochs, min_lr, **options)


def train_dataset(
    base: Any,
    *,
    final_size: int,
    method: str = "efficienttrain++",
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
    **augment: Any,
) -> CurriculumDataset:
    """``base`` (anything indexable into ``(PIL image, label)``, e.g. ``torchvision.datasets.ImageFolder(root)``
    without a transform) with the Table 24 augmentation and ``method``'s reduction to B, indexed by the keys
    :func:`sampler` yields. ``augment``: further :class:`~repro.data.transforms.Augment` fields (``scale``,
    ``reprob``, ``randaug`` ...)."""
    cfg = Augment(final_size=final_size, frequency_op=frequency_op_of(method), mean=mean, std=std, **augment)
    return CurriculumDataset(base, CurriculumTransform(cfg))


def sampler(steps: StepSchedule, start_step: int = 0, *, seed: int = 0, rank: int = 0, world: int = 1) -> KeySampler:
    """The batches (lists of keys) from ``start_step`` to the end of its stage: pass it as a DataLoader's
    ``batch_sampler`` and build the next stage's loader when it is exhausted. Each epoch of the stream is a
    permutation drawn from ``seed``; under DDP each of the ``world`` processes takes its ``rank``-th share of
    every global batch (``batch_size`` must be divisible by ``world``)."""
    if not 0 <= start_step < steps.total_steps:
        raise UserError(f"start step {start_step} is outside the schedule's 0..{steps.total_steps - 1}")
    stage = steps.stage_of(start_step)
    if stage.batch_size % world:
        raise UserError(f"the global batch of {stage.batch_size} is not divisible by {world} processes")
    position = sum(p.steps * p.batch_size for p in steps.plan[: stage.index])
    position += (start_step - stage.first_step) * stage.batch_size
    return KeySampler(Stream(steps.n_train, seed), position=position, first_step=start_step,
                      end_step=stage.first_step + stage.steps, batch_size=stage.batch_size,
                      resolution=stage.resolution, n_replay=0, seed=seed,
                      magnitude=lambda step: steps.magnitude_at(stage.fraction(step)), rank=rank, world=world)


class CurriculumScheduler(Scheduler):
    """The step schedule's LR for every parameter group, in timm's scheduler interface.

    ET++ defines the LR on compute (Table 6 caption), so it changes per update: call ``step_update(num_updates)``
    after each optimizer step, as timm's ``train.py`` does; ``step(epoch)`` changes nothing (timm's
    ``t_in_epochs=False``). Each group's LR is its initial LR times ``schedule.at(step).lr_factor`` (times its
    ``lr_scale`` when it has one, e.g. timm's layer decay). The LR of step 0 is set on construction.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, steps: StepSchedule) -> None:
        self.steps = steps
        super().__init__(optimizer, param_group_field="lr", t_in_epochs=False)
        self.step_update(0)

    def _get_lr(self, t: int) -> list[float]:
        factor = self.steps.at(t).lr_factor
        return [base * factor for base in self.base_values]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().state_dict().items() if k != "steps"}  # rebuilt from the settings
