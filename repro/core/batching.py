"""Early large batch (Sec. 5.3, Table 13): a larger batch and learning rate while B is small.

The per-step cost of a mini-batch at a small B is a fraction of that at the final size, which starves many GPUs
(Table 13, 64 GPUs). Growing the batch for small B restores per-step work; the peak learning rate follows the
upper-bounded square-root rule of eq. (2):

    LR_B = min(LR_224 * sqrt(BS_B / BS_224), LR_max)

The paper does not state how BS_B is chosen; :func:`stage_batch_sizes` keeps the per-step compute of the final
stage (BS_B = BS_final * cost(final) / cost(B)), rounded down to a multiple and capped -- the natural reading of
"increasing the batch size when B is small". (The official EfficientTrain release doubled the per-GPU batch for
B < 224 and kept the global batch with gradient accumulation.)
"""

from __future__ import annotations

import math

from repro.core.curriculum import Curriculum
from repro.errors import UserError


def scaled_lr(lr_final: float, batch: int, batch_final: int, lr_max: float) -> float:
    """Eq. (2): peak LR for a stage run with ``batch`` instead of ``batch_final``."""
    if batch <= 0 or batch_final <= 0:
        raise UserError(f"batch sizes must be positive, got {batch} and {batch_final}")
    return min(lr_final * math.sqrt(batch / batch_final), lr_max)


def stage_batch_sizes(
    curriculum: Curriculum,
    batch_final: int,
    *,
    max_batch: int | None = None,
    multiple_of: int = 1,
) -> list[int]:
    """Per-stage global batch size keeping the per-step compute of the final size (capped at ``max_batch``)."""
    if batch_final <= 0 or multiple_of <= 0:
        raise UserError("batch size and multiple must be positive")
    if max_batch is not None and max_batch < batch_final:
        raise UserError(f"max batch {max_batch} is below the final batch {batch_final}")
    sizes = []
    for stage in curriculum.stages:
        bs = int(batch_final / curriculum.relative_costs[stage.resolution]) // multiple_of * multiple_of
        if max_batch is not None:
            bs = min(bs, max_batch)
        sizes.append(max(bs, batch_final))
    return sizes


def stage_peak_lrs(curriculum: Curriculum, batch_sizes: list[int], batch_final: int, lr_final: float,
                   lr_max: float) -> list[float]:
    """Eq. (2) for every stage."""
    return [scaled_lr(lr_final, bs, batch_final, lr_max) for bs in batch_sizes]
