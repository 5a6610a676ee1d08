"""Compute accounting and the learning-rate schedule defined on compute consumed.

* Relative cost of a stage: ``cost(B) / cost(final)`` for a per-image cost function (ideal ``(B/final)^2`` by
  default, measured FLOPs from the model zoo otherwise). See :mod:`repro.core.curriculum`.
* Computation speedup (Table 7, "Computation" column): compute of the baseline (``baseline_epochs`` standard
  epochs at the final size) divided by the compute of the curriculum.
* LR schedule (Table 24: linear warm-up, then cosine annealing). EfficientTrain++ defines it on the fraction of
  the compute budget consumed (Table 6 caption: "the values of B, m, and the learning rate are configured
  conditioned on how much of the total training cost has been consumed"), so it is a function of progress in
  [0, 1], not of steps; the trainer feeds it :meth:`Curriculum.axis_progress`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from repro.core.curriculum import CostFn, Curriculum, ideal_cost
from repro.errors import UserError


def stage_compute(epochs: Sequence[float], resolutions: Sequence[int], cost: CostFn, final_size: int) -> float:
    """Compute of running ``epochs[i]`` epochs at ``resolutions[i]``, in equivalent epochs at ``final_size``."""
    final_cost = cost(final_size)
    return sum(e * cost(b) / final_cost for e, b in zip(epochs, resolutions, strict=True))


def curriculum_compute(curriculum: Curriculum, cost: CostFn | None = None) -> float:
    """Equivalent epochs of a curriculum's real stage epochs under ``cost`` (default: the ideal cost).

    With the same cost the curriculum was built with this equals ``curriculum.equivalent_epochs``; with another
    (e.g. measured FLOPs for a curriculum whose epochs were fixed by the ideal cost) it tells the real compute.
    """
    cost = cost or ideal_cost(curriculum.final_size)
    return stage_compute([s.epochs for s in curriculum.stages], curriculum.resolutions, cost, curriculum.final_size)


def computation_speedup(
    curriculum: Curriculum, baseline_epochs: float = 300, cost: CostFn | None = None
) -> float:
    """Baseline compute (``baseline_epochs`` at the final size) / curriculum compute (Table 7)."""
    return baseline_epochs / curriculum_compute(curriculum, cost)


@dataclass(frozen=True)
class WarmupCosine:
    """Linear warm-up from ``warmup_lr`` to ``base_lr`` over ``warmup`` of the progress, then cosine to
    ``min_lr`` (Table 24; the ConvNeXt code base the paper follows uses min_lr 1e-6 and warm-up from 0).

    ``progress`` is the fraction of the schedule's axis consumed (compute for ET++, epochs for baseline/ET).
    """

    base_lr: float
    warmup: float  # fraction of the progress axis, e.g. 20 / 300
    min_lr: float = 1e-6
    warmup_lr: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.warmup < 1.0:
            raise UserError(f"warm-up must be a fraction in [0, 1), got {self.warmup}")
        if self.base_lr <= 0:
            raise UserError(f"learning rate must be positive, got {self.base_lr}")

    @classmethod
    def from_epochs(cls, base_lr: float, warmup_epochs: float, total_epochs: float, **kw: float) -> WarmupCosine:
        """Warm-up stated in (equivalent) epochs, as in Table 24 (20 of 300)."""
        return cls(base_lr=base_lr, warmup=warmup_epochs / total_epochs, **kw)

    def __call__(self, progress: float) -> float:
        p = min(max(progress, 0.0), 1.0)
        if p < self.warmup:
            return self.warmup_lr + (self.base_lr - self.warmup_lr) * p / self.warmup
        t = (p - self.warmup) / (1.0 - self.warmup)
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * t))
