"""Progressive Learning (Tan & Le, "EfficientNetV2: Smaller Models and Faster Training", ICML'21, Sec. 4.2).

Training is divided into M = 4 stages of equal epochs; in stage i the image size and the regularisation grow
together, linearly from their first to their last value (Alg. 1: ``S_i = S_0 + (S_e - S_0) i / (M - 1)``, the
same for each regularisation magnitude). Values: EfficientNetV2-S's ImageNet row of Table 6 -- size 128 to the
final size (300 there, the run's final size here: 224 in Table 11), RandAugment magnitude 5 to 15 and dropout
0.1 to 0.3; Mixup alpha grows from 0 to the run's Mixup (0 to 0 for V2-S; the run's setting is Table 24's).
RandAug m is scaled to this suite's range: 5/15 of the run's final m (Table 24's 9) up to that m. Smaller
images are plain bicubic resizes of the final-size crop (the paper resizes the crop, no frequency operation);
dropout is timm's classifier dropout (``drop_rate`` / ``head_drop``), the paper's dropout before the head.
"""

from __future__ import annotations

from typing import Any

from repro.core.curriculum import CurriculumSpec, Resolution
from repro.methods import Method, register

STAGES = 4
FIRST_SIZE = 128  # at a 224 final size
M_FIRST, M_LAST = 5.0, 15.0  # RandAugment, EfficientNetV2-S (Table 6)
DROPOUT = (0.1, 0.3)


def _linear(first: float, last: float, i: int) -> float:
    return first + (last - first) * i / (STAGES - 1)


SPEC = CurriculumSpec(
    name="progressive-learning", axis="epoch",
    boundaries=tuple(i / STAGES for i in range(STAGES + 1)),
    resolutions=tuple(Resolution(_linear(FIRST_SIZE, 0.0, i), i / (STAGES - 1)) for i in range(STAGES)),
    magnitude=tuple(9.0 * _linear(M_FIRST, M_LAST, i) / M_LAST for i in range(STAGES)),  # in units of m = 9
    linear_magnitude=False, budget=350,
    description="EfficientNetV2 progressive learning: 4 equal stages, size 128 -> final, m 5/15 -> 1 of final",
    source="Tan & Le, ICML'21, Alg. 1 and Table 6 (EfficientNetV2-S)",
)


def set_dropout(model: Any, rate: float) -> None:
    """timm's classifier dropout: ``drop_rate`` (read in ``forward_head`` by ResNets, ConvNeXts...) and the
    ``head_drop`` module of ViTs."""
    if hasattr(model, "drop_rate"):
        model.drop_rate = rate
    head_drop = getattr(model, "head_drop", None)
    if head_drop is not None and hasattr(head_drop, "p"):
        head_drop.p = rate


@register
class ProgressiveLearning(Method):
    name = "progressive-learning"
    paper = "Tan & Le, EfficientNetV2, ICML'21: size + RandAug m + Mixup + dropout grown over 4 stages"
    schedule = SPEC
    frequency_op = "bicubic"

    def stage_start(self, trainer: Any, stage: Any, fresh: bool) -> None:
        i = stage.index
        set_dropout(trainer.model, _linear(*DROPOUT, i))
        if trainer.mixup is not None:  # timm's Mixup reads its alphas at each call
            trainer.mixup.mixup_alpha = _linear(0.0, trainer.cfg.mixup, i)
            trainer.mixup.cutmix_alpha = _linear(0.0, trainer.cfg.cutmix, i)
            trainer.mixup.mixup_enabled = trainer.mixup.mixup_alpha > 0 or trainer.mixup.cutmix_alpha > 0
