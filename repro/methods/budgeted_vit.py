"""Budgeted ViT (Xia et al., "Budgeted Training for Vision Transformer", ICLR'23) as a method of the engine: the
ViT trains with a growing share of its attention heads, MLP hidden units and tokens, for durations that make the
run cost ``budget_epochs`` epochs of the full model (:mod:`repro.models.budgeted_vit` states the levels, the
duration rule and which of them are our choices).

The run's ``epochs`` are its real epochs (Table 11: 128 and 303) and ``budget_epochs`` its cost in full-model
epochs (75 and 225: 25 % and 75 % of the 300-epoch training, Table 11's 1.34x). The data pipeline delivers the
final size; the network resizes its training input to the level's size (``repro.models.elastic_vit``). The LR
follows the run's warm-up + cosine over its real epochs (the paper's schedule on the epochs it trains).
"""

from __future__ import annotations

import itertools
from typing import Any

from repro.methods import Method, register


@register
class BudgetedViT(Method):
    name = "budgeted-vit"
    paper = "Xia et al., Budgeted Training for ViT, ICLR'23: heads / MLP width / tokens grown within a budget"

    def __init__(self, cfg: Any) -> None:
        from repro.models.elastic_vit import require_vit
        from repro.train.config import ConfigError

        super().__init__(cfg)
        require_vit(cfg.model, self.name)
        if cfg.budget_epochs is None or cfg.budget_epochs > cfg.epochs:
            raise ConfigError("budget_epochs", f"budgeted-vit needs the run's budget in full-model epochs, at most "
                              f"its {cfg.epochs:g} epochs ({{epochs}}), e.g. Table 11's 75 for 128 epochs")
        self.levels: list[Any] = []
        self.level = -1  # the active level (a function of the progress: not part of the state)

    def stage_start(self, trainer: Any, stage: Any, fresh: bool) -> None:
        from repro.models import budgeted_vit as bv
        from repro.models.elastic_vit import make_elastic

        models = [trainer.model] + ([trainer.ema.module] if trainer.ema is not None else [])
        for model in models:
            make_elastic(model)
        shape = bv.ViTShape.of(trainer.model, self.cfg.final_size)
        self.levels = bv.schedule(shape, self.cfg.epochs, self.cfg.budget_epochs / self.cfg.epochs)
        self.level = -1

    def level_at(self, fraction: float) -> int:
        """The level trained at ``fraction`` of the run's epochs."""
        ends = list(itertools.accumulate(lv.epochs / self.cfg.epochs for lv in self.levels))
        return next((i for i, end in enumerate(ends) if fraction < end - 1e-12), len(self.levels) - 1)

    def step_start(self, trainer: Any, fraction: float) -> None:
        from repro.models import budgeted_vit as bv

        i = self.level_at(fraction)
        if i == self.level:
            return
        for model in [trainer.model] + ([trainer.ema.module] if trainer.ema is not None else []):
            bv.apply(model, self.levels[i])
        lv = self.levels[i]
        if self.level >= 0 or i > 0:
            trainer.log.info(f"Budgeted ViT: level {i + 1}/{len(self.levels)}: {lv.heads} heads, {lv.mlp_hidden} MLP "
                             f"units, {lv.size}x{lv.size} ({lv.cost:.2f} of the full cost)")
        self.level = i
