"""DIH Curriculum (Zhou, Wang & Bilmes, "Curriculum Learning by Dynamic Instance Hardness", NeurIPS'20).

Dynamic instance hardness (DIH) is an exponential moving average of a sample's instantaneous hardness over the
training history, updated only when the sample is trained on (its eq. (1)):
``r_{t+1}(i) = gamma r_t(i) + (1 - gamma) a_t(i)`` for i in the epoch's subset, else ``r_t(i)``; the hardness
used here is the change of the sample's loss between the two epochs it was last trained in,
``a_t(i) = |l_t(i) - l_{t-1}(i)|`` ("dLoss", the reference code's default; its first observation is the loss).
DIHCL trains each episode on the k samples with the largest DIH (Alg. 1, the greedy variant) and shrinks k:
it needs no extra inference -- the losses are the training steps' own (``Method.observe_losses``).

Hyper-parameters from the reference code (tianyizhou/DIHCL, ``dihcl.py`` and ``dihcl_cifar.sh``):
``--ema_decay 0.9`` (gamma), episodes ending at epochs ``0 5 10 15 20 30 40 60 90 140 210 300`` of 300 (scaled
here to the run's epochs), subset size ``k = 1.0 n`` multiplied by ``1 - dk = 0.9`` per episode down to
``mk = 0.3`` of n (``--k 1.0 --dk 0.1 --mk 0.3``, its CIFAR-10 setting). The first episode is the warm start
on all data. Left out: the reference code's bandit exploration (EXP3/UCB/TS; the paper's greedy variant has
none), its per-episode cosine LR restarts (the run keeps the engine's schedule, as every method of Table 11)
and its mean-teacher and self-supervision options. A sample never trained on yet ranks above all others.
One episode's subset is chosen per epoch (``Method.select``): an epoch trains on the top k of that epoch's
episode, in the epoch's order, with fewer steps; the schedule follows nominal epochs.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from repro.methods import Method, register

if TYPE_CHECKING:  # torch is imported where it is used: name look-ups stay light
    import torch


EMA_DECAY = 0.9
EPISODE_ENDS = (0, 5, 10, 15, 20, 30, 40, 60, 90, 140, 210, 300)  # of the reference's 300 epochs
K0, DK, MK = 1.0, 0.1, 0.3


def subset_fraction(progress: float) -> float:
    """k / n at a point of training (0..1): episode i keeps ``max(MK, K0 (1 - DK)**i)``."""
    episode = bisect.bisect_right(EPISODE_ENDS, progress * EPISODE_ENDS[-1]) - 1
    return max(MK, K0 * (1 - DK) ** episode)


@register
class DIHCurriculum(Method):
    name = "dih-curriculum"
    paper = "Zhou et al., DIHCL, NeurIPS'20: EMA (0.9) of the loss change, top-k, k 1.0n x0.9/episode to 0.3n"

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.dih: torch.Tensor | None = None
        self.last_loss: torch.Tensor | None = None
        self.seen: torch.Tensor | None = None

    def _init(self, n: int) -> None:
        import torch

        if self.dih is None:
            self.dih, self.last_loss = torch.zeros(n), torch.zeros(n)
            self.seen = torch.zeros(n, dtype=torch.bool)

    def select(self, trainer: Any, epoch: int, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        n = len(order)
        self._init(n)
        assert self.dih is not None and self.seen is not None
        epochs = sum(p.steps * p.batch_size for p in trainer.plan) / n
        k = min(n, max(round(subset_fraction(epoch / epochs) * n), max(p.batch_size for p in trainer.plan)))
        rank = torch.where(self.seen, self.dih, torch.full_like(self.dih, float("inf")))
        keep = torch.zeros(n, dtype=torch.bool)
        keep[torch.argsort(rank, descending=True, stable=True)[:k]] = True
        chosen = order[keep[order]]
        return chosen, torch.ones(len(chosen))

    def observe_losses(self, trainer: Any, indices: torch.Tensor, losses: torch.Tensor) -> None:
        import torch

        self._init(trainer.n_train)
        assert self.dih is not None and self.last_loss is not None and self.seen is not None
        losses = losses.to(torch.float32)
        seen = self.seen[indices]
        hardness = torch.where(seen, (losses - self.last_loss[indices]).abs(), losses)
        self.dih[indices] = torch.where(seen, EMA_DECAY * self.dih[indices] + (1 - EMA_DECAY) * hardness, hardness)
        self.last_loss[indices] = losses
        self.seen[indices] = True

    def state_dict(self) -> dict[str, Any]:
        return {"dih": self.dih, "last_loss": self.last_loss, "seen": self.seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dih, self.last_loss, self.seen = state.get("dih"), state.get("last_loss"), state.get("seen")
