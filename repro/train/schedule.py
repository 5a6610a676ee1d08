"""Where a run stands at each optimizer step: its stage, input size B, batch size, RandAug m and learning rate.

The curriculum (:mod:`repro.core.curriculum`) is defined on the fraction of compute consumed; a run takes whole
steps. :func:`plan_stages` turns each stage into a number of steps of its batch size (the early large batch and
the peak LR of eq. (2), Sec. 5.3, when enabled) and :class:`StepSchedule` answers, for any step, what the paper
sets there: B and m from the curriculum (Tables 5, 6; m rescaled to the final magnitude, or fixed for Table 19
(a)), and the LR as linear warm-up + cosine (Table 24) on the curriculum's axis -- compute for ET++, epochs for
the baseline and ET (Table 6 caption). The engine and the library API (:mod:`repro.etpp`) both ask it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from repro.core.batching import scaled_lr, stage_batch_sizes
from repro.core.budget import WarmupCosine
from repro.core.curriculum import Curriculum
from repro.train.config import ConfigError

if TYPE_CHECKING:
    from repro.train.config import TrainConfig


class PlanSettings(Protocol):
    """The settings a plan depends on (a :class:`~repro.train.config.TrainConfig` has them)."""

    @property
    def batch_size(self) -> int: ...
    @property
    def early_large_batch(self) -> bool: ...
    @property
    def max_batch_size(self) -> int | None: ...
    @property
    def lr(self) -> float: ...
    @property
    def lr_max(self) -> float | None: ...
    @property
    def epochs(self) -> float: ...


@dataclass(frozen=True)
class StagePlan:
    index: int
    resolution: int
    start: float
    end: float
    batch_size: int  # global
    peak_lr: float
    first_step: int
    steps: int

    def fraction(self, step: float) -> float:
        return self.start + (self.end - self.start) * (step - self.first_step) / self.steps


def plan_stages(curriculum: Curriculum, cfg: PlanSettings, n_train: int) -> list[StagePlan]:
    """Steps, batch size and peak LR of every stage (early large batch and eq. (2) when enabled), each rounded to
    whole steps. A batch larger than the data set (it would hold images twice) and a stage that rounds to no step
    (giving it one would train more than the budget, silently) are refused."""
    if cfg.batch_size > n_train:
        raise ConfigError("batch_size", f"the global batch of {cfg.batch_size} is larger than the data set "
                          f"({n_train} training images); use at most {n_train}")
    if cfg.early_large_batch:
        sizes = stage_batch_sizes(curriculum, cfg.batch_size, max_batch=cfg.max_batch_size, multiple_of=8)
    else:
        sizes = [cfg.batch_size] * len(curriculum.stages)
    exact = [stage.epochs * n_train / bs for stage, bs in zip(curriculum.stages, sizes, strict=True)]
    short = min(range(len(exact)), key=exact.__getitem__)
    if round(exact[short]) == 0:  # every stage's length scales with the budget: at `need` it gets half a step
        need = math.floor(100 * cfg.epochs * 0.5 / exact[short]) / 100 + 0.01
        b = curriculum.stages[short].resolution
        raise ConfigError("epochs", f"{cfg.epochs:g} epochs leave stage {short + 1} (B={b}) {exact[short]:.2f} steps "
                          f"of {sizes[short]} images ({n_train} training images); every stage needs a step: use at "
                          f"least {need:g}, a smaller {{batch_size}} or more images")
    plans, first = [], 0
    for i, (stage, bs) in enumerate(zip(curriculum.stages, sizes, strict=True)):
        steps = round(exact[i])
        lr = scaled_lr(cfg.lr, bs, cfg.batch_size, cfg.lr_max or math.inf) if cfg.early_large_batch else cfg.lr
        plans.append(StagePlan(i, stage.resolution, stage.start, stage.end, bs, lr, first, steps))
        first += steps
    return plans


@dataclass(frozen=True)
class StepInfo:
    """What the curriculum sets at one optimizer step."""

    step: int
    stage: int  # 0-based index into the plan
    resolution: int  # the input size B
    batch_size: int  # global
    fraction: float  # of the compute budget consumed when the step starts
    magnitude: float  # RandAug m
    lr: float  # absolute learning rate
    lr_factor: float  # lr / the base (peak) LR


@dataclass(frozen=True)
class StepSchedule:
    """A curriculum resolved into whole steps for a data set of ``n_train`` images and a global ``batch_size``.

    ``lr`` is the peak LR at ``batch_size`` (Table 24: 4e-3 at 4096); ``warmup_epochs`` and the length of the
    cosine are on the curriculum's axis (equivalent epochs for ET++, real epochs otherwise); ``lr_shape``, when
    given, replaces the warm-up + cosine by another LR factor over the progress on that axis (a method's own
    schedule, e.g. Budgeted Training's linear decay); ``magnitude`` is the final RandAug m, reached along the
    curriculum (``linear_randaug``) or used throughout. Steps may be fractional (a method that prunes samples
    counts progress in nominal steps).
    """

    curriculum: Curriculum
    n_train: int
    batch_size: int
    lr: float
    warmup_epochs: float = 20.0
    min_lr: float = 1e-6
    warmup_lr: float = 0.0
    magnitude: float = 9.0
    linear_randaug: bool = True
    early_large_batch: bool = False
    max_batch_size: int | None = None
    lr_max: float | None = None
    lr_shape: Callable[[float], float] | None = None

    @classmethod
    def for_config(cls, curriculum: Curriculum, cfg: TrainConfig, n_train: int) -> StepSchedule:
        return cls(curriculum, n_train, cfg.batch_size, cfg.lr, cfg.warmup_epochs, cfg.min_lr, cfg.warmup_lr,
                   cfg.randaug_magnitude, cfg.linear_randaug, cfg.early_large_batch, cfg.max_batch_size, cfg.lr_max)

    @property
    def epochs(self) -> float:
        """Length of the LR axis in epochs: equivalent epochs (compute axis) or real epochs (epoch axis)."""
        c = self.curriculum
        return c.equivalent_epochs if c.axis == "compute" else c.real_epochs

    @property
    def lr_epochs(self) -> float:
        """Length of the whole LR schedule: :attr:`epochs`, longer when the curriculum is the beginning of a longer
        one (``lr_horizon``, Algorithm 2's candidates)."""
        return self.curriculum.lr_epochs

    @functools.cached_property
    def plan(self) -> list[StagePlan]:
        return plan_stages(self.curriculum, self, self.n_train)

    @functools.cached_property
    def _shape(self) -> Callable[[float], float]:
        if self.lr_shape is not None:
            return self.lr_shape
        return WarmupCosine.from_epochs(1.0, self.warmup_epochs, self.lr_epochs, min_lr=self.min_lr / self.lr,
                                        warmup_lr=self.warmup_lr / self.lr)

    @property
    def total_steps(self) -> int:
        return self.plan[-1].first_step + self.plan[-1].steps

    def stage_of(self, step: float) -> StagePlan:
        for plan in self.plan:
            if step < plan.first_step + plan.steps:
                return plan
        return self.plan[-1]

    def lr_at(self, step: float, stage: StagePlan | None = None) -> float:
        """The LR at ``step`` (of ``stage``, default the stage the step falls in): the stage's peak LR (eq. (2)
        with the early large batch) times the schedule's factor at the progress there."""
        stage = stage or self.stage_of(step)
        return stage.peak_lr * self._shape(self.curriculum.lr_progress(stage.fraction(step)))

    def magnitude_at(self, fraction: float) -> float:
        """RandAug m at a point of the curriculum: it rises to the final m with the curriculum (Tables 5, 6; the
        final ``magnitude`` rescales the paper's 9), or stays at the final m (Table 19 (a), no Linear RandAug)."""
        if not self.linear_randaug:
            return self.magnitude
        return self.curriculum.magnitude_at(fraction) * self.magnitude / 9.0

    def at(self, step: int) -> StepInfo:
        stage = self.stage_of(step)
        f = stage.fraction(step)
        lr = self.lr_at(step)
        return StepInfo(step, stage.index, stage.resolution, stage.batch_size, f, self.magnitude_at(f), lr,
                        lr / self.lr)
