"""Budgeted Training (Li, Yumer & Ramanan, "Budgeted Training: Rethinking Deep Neural Network Training Under
Resource Constraints", ICLR'20).

The run trains for a reduced number of epochs (the budget: Table 11's DeiT-Small row trains 225 of 300 epochs,
i.e. 75 %) and the learning rate decays *linearly to zero over that budget* -- the budget-aware schedule the
paper finds best among step, cosine, exponential and linear (Sec. 4, Table 2 / Fig. 3: "linear schedule ...
smoothly decays the learning rate to 0 at the end of the budget"). The warm-up of the run's setting (Table 24's
20 of 300 epochs, scaled with the budget) is kept: the paper's schedules are stated after warm-up for the
ImageNet ViT recipes it follows; the decay then starts from the peak LR and reaches exactly 0 at the last step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from repro.methods import Method, register

if TYPE_CHECKING:
    from repro.train.config import TrainConfig


@register
class BudgetedTraining(Method):
    name = "budgeted-training"
    paper = "Li et al., Budgeted Training, ICLR'20: linear decay to zero over the budget (Sec. 4)"

    def lr_schedule(self, cfg: TrainConfig, axis_epochs: float) -> Callable[[float], float] | None:
        warm = min(cfg.warmup_epochs / axis_epochs, 1.0)
        start = cfg.warmup_lr / cfg.lr

        def factor(progress: float) -> float:
            if progress < warm:
                return start + (1.0 - start) * progress / warm
            return max(0.0, (1.0 - progress) / (1.0 - warm))

        return factor
