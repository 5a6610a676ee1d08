"""Minimax Curriculum (Zhou & Bilmes, "Minimax Curriculum Learning: Machine Teaching with Desirable
Difficulties and Scheduled Diversity", ICLR'18).

Each stage trains on a subset S that is hard -- a large sum of the current losses -- yet diverse -- a large
submodular coverage F(S) -- of a scheduled size k: ``max_{|S| <= k} sum_{i in S} L_i(w) + lambda F(S)``,
solved by the greedy algorithm (the objective is monotone submodular); between stages k grows,
``k <- (1 + Delta) k``, and the diversity weight decays, ``lambda <- (1 - gamma) lambda`` (its Sec. 2-3,
Alg. 1): small diverse subsets early, larger harder ones later. F is the facility location function
``F(S) = sum_{j in V} max_{i in S} w_ij`` on a non-negative similarity, the paper's choice.

Here a stage is an epoch (``Method.select``): a scoring pass (``repro.methods.scoring``: losses and features of
every training image under the current model, counted in the training time) and the greedy selection of the
epoch's samples, trained in the epoch's order (fewer steps; the schedule follows nominal epochs). Choices, as
the paper tunes its schedule per data set and has no public code: similarity ``w_ij = max(0, cos(f_i, f_j))``
of the centred features; losses divided by their mean and F scaled by ``k / |V|`` so that both terms are
``O(k)``; k grows geometrically from ``K0 = 0.4`` of the data to all of it and lambda decays geometrically
from ``LAMBDA0 = 1`` to ``LAMBDA_END = 0.1`` over the first ``GROW = 0.8`` of the epochs (Delta and gamma
follow from the run's length), then every epoch is the full data (no pass needed). The selection is per class
(k split over the classes in proportion to their sizes; the ground set of each greedy run is one class), so
memory is O(n_c^2) and the subsets keep the class balance; the greedy runs on the trainer's device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repro.methods import register
from repro.methods.scoring import ScoringMethod

if TYPE_CHECKING:  # torch is imported where it is used: name look-ups stay light
    import torch

K0 = 0.4
LAMBDA0, LAMBDA_END = 1.0, 0.1
GROW = 0.8


def schedule(progress: float) -> tuple[float, float]:
    """(k / n, lambda) of the stage at a point of training (0..1)."""
    if progress >= GROW:
        return 1.0, LAMBDA_END
    t = progress / GROW
    return K0 ** (1 - t), LAMBDA0 * (LAMBDA_END / LAMBDA0) ** t


def greedy(hardness: torch.Tensor, similarity: torch.Tensor, k: int, weight: float) -> torch.Tensor:
    """Indices (into the ground set) of the greedy maximiser of ``sum_S hardness + weight * F(S)`` of size
    ``k``, F the facility location on ``similarity`` (n x n, non-negative); ties go to the lower index."""
    import torch

    n = len(hardness)
    cover = torch.zeros(n, dtype=similarity.dtype, device=similarity.device)
    taken = torch.zeros(n, dtype=torch.bool, device=similarity.device)
    chosen: list[int] = []
    for _ in range(min(k, n)):
        gains = hardness + weight * (similarity - cover).clamp(min=0).sum(1)
        gains[taken] = -torch.inf
        i = int(torch.argmax(gains))
        chosen.append(i)
        taken[i] = True
        cover = torch.maximum(cover, similarity[i])
    return torch.tensor(chosen, dtype=torch.int64)


@register
class MinimaxCurriculum(ScoringMethod):
    name = "minimax-curriculum"
    paper = "Zhou & Bilmes, Minimax Curriculum, ICLR'18: hard + facility-location diverse subsets, k up, lambda down"

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.sizes: list[int] = []  # selected samples per epoch (reported)

    def select(self, trainer: Any, epoch: int, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        n = len(order)
        epochs = sum(p.steps * p.batch_size for p in trainer.plan) / n
        fraction, weight = schedule(epoch / epochs)
        if fraction >= 1.0:
            self.sizes.append(n)
            return order, torch.ones(n)
        scores = self.score(trainer, features=True)
        assert scores.features is not None
        device = trainer.device
        hardness = scores.losses / scores.losses.mean().clamp(min=1e-12)
        feats = scores.features - scores.features.mean(0)
        feats = torch.nn.functional.normalize(feats, dim=1)
        keep = torch.zeros(n, dtype=torch.bool)
        for c in torch.unique(scores.labels).tolist():
            members = torch.nonzero(scores.labels == c).squeeze(1)
            k = max(1, round(fraction * len(members)))
            f = feats[members].to(device)
            sim = (f @ f.t()).clamp(min=0)
            picked = greedy(hardness[members].to(device), sim, k, weight * k / len(members))
            keep[members[picked]] = True
        self.sizes.append(int(keep.sum()))
        chosen = order[keep[order]]
        return chosen, torch.ones(len(chosen))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "sizes": list(self.sizes)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.sizes = list(state.get("sizes", []))

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "selected_per_epoch": list(self.sizes)}
