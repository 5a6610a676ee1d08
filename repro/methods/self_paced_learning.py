"""Self-paced Learning (Kumar, Packer & Koller, "Self-Paced Learning for Latent Variable Models", NeurIPS'10).

SPL minimises ``sum_i v_i L_i(w) - (1/K) sum_i v_i`` over the weights w and binary sample weights v,
alternately: for fixed w the optimal v admits exactly the samples whose loss is below the threshold 1/K
(``v_i = 1 iff L_i < 1/K``), and after each iteration K is divided by mu, so the threshold -- the model's "age"
-- grows and harder samples enter the objective until all do (its Sec. 3, Alg. 1). Hyper-parameters from the
paper (Sec. 4): "the initial value of K such that half the samples are considered easy" and mu = 1.3.

Here one SPL iteration is one epoch: at the start of epoch e a scoring pass (``repro.methods.scoring``: every
training image's loss under the current model, counted in the training time) gives the losses, the threshold is
``lambda_e = lambda_0 * mu**e`` with ``lambda_0`` the median loss of the first pass, and the epoch trains on the
samples below it, in the epoch's order (``Method.select``: fewer steps, the schedule on nominal epochs). The
paper's inner solver runs to convergence; one epoch of SGD per iteration is the deep-learning practice (e.g.
THUMNLab/CurML's ``SelfPaced``). Choice: an epoch keeps at least one global batch (the lowest losses) when fewer
samples are below the threshold, so that every epoch trains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repro.methods import register
from repro.methods.scoring import ScoringMethod

if TYPE_CHECKING:  # torch is imported where it is used: name look-ups stay light
    import torch


MU = 1.3  # K <- K / mu per iteration: the threshold 1/K grows by mu
INITIAL_EASY = 0.5  # fraction of the samples below the first threshold


@register
class SelfPacedLearning(ScoringMethod):
    name = "self-paced-learning"
    paper = "Kumar et al., Self-paced Learning, NeurIPS'10: loss threshold from the median, x1.3 per epoch"

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.threshold0: float | None = None
        self.admitted: list[int] = []  # samples admitted per epoch (reported)

    def threshold(self, epoch: int) -> float:
        assert self.threshold0 is not None
        return self.threshold0 * MU**epoch

    def select(self, trainer: Any, epoch: int, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        losses = self.score(trainer).losses
        if self.threshold0 is None:
            self.threshold0 = float(torch.quantile(losses.double(), INITIAL_EASY))
        easy = losses < self.threshold(epoch)
        floor = max(p.batch_size for p in trainer.plan)
        if int(easy.sum()) < floor:
            easy = torch.zeros_like(easy)
            easy[torch.argsort(losses, stable=True)[:floor]] = True
        self.admitted.append(int(easy.sum()))
        chosen = order[easy[order]]
        return chosen, torch.ones(len(chosen))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "threshold0": self.threshold0, "admitted": list(self.admitted)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.threshold0 = state.get("threshold0")
        self.admitted = list(state.get("admitted", []))

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "admitted_per_epoch": list(self.admitted)}
