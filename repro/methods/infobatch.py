"""InfoBatch (Qin et al., "InfoBatch: Lossless Training Speed Up by Unbiased Dynamic Data Pruning", ICLR'24).

Soft pruning with expectation rescaling (its Sec. 3, Alg. 1), on the engine's deterministic stream:

- every sample has a score, its latest per-sample loss (scores start equal, so the first epoch is full);
- at the start of each epoch, the samples whose score is below the mean are "well learned"; of those, a
  random ``1 - r`` are kept and the rest pruned for the epoch (the reference code draws exactly
  ``int((1 - r) * #well-learned)`` without replacement), and the kept well-learned samples' losses are
  rescaled by ``1 / (1 - r)`` so that the expected gradient equals the full data's;
- in the last ``1 - delta`` fraction of training (epochs ``>= delta * E``) nothing is pruned (annealing).

Hyper-parameters: ``r = 0.5``, ``delta = 0.875`` -- the reference code's command (README of
NUS-HPC-AI-Lab/InfoBatch: ``cifar_example.py ... --ratio 0.5 --delta 0.875``; its ImageNet code is not released,
and the TPAMI paper does not give the values of its reproduction for Tables 11 and 23). Kept samples keep the
epoch's permutation order (the reference shuffles them; ours are already in a random order, and deterministic);
the pruning draw is seeded by (run seed, epoch), so a resumed run prunes exactly as an uninterrupted one. With a
curriculum (ET++, Table 23) the epochs are the real epochs of the stream, and the curriculum and LR follow
nominal epochs (``repro.train.engine.SelectedEpoch``): a pruned epoch is shorter, the schedule is not.
The reference code is not used: it patches torch's DataLoader iterator process-wide and re-prunes on every
``iter()`` of its sampler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repro.methods import Method, register

if TYPE_CHECKING:
    import torch

    from repro.train.config import TrainConfig

RATIO = 0.5  # r: fraction of the well-learned samples pruned each epoch
DELTA = 0.875  # fraction of the epochs during which pruning is on


@register
class InfoBatch(Method):
    name = "infobatch"
    paper = "Qin et al., InfoBatch, ICLR'24: soft pruning (r=0.5) + rescaling, full data after delta=0.875"

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__(cfg)
        self.scores: torch.Tensor | None = None

    def select(self, trainer: Any, epoch: int, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        n = len(order)
        if self.scores is None:
            self.scores = torch.ones(n, dtype=torch.float32)  # the reference code's initial scores
        weights = torch.ones(n, dtype=torch.float32)
        epochs = sum(p.steps * p.batch_size for p in trainer.plan) / n
        if epoch >= DELTA * epochs:
            return order, weights[order]
        well = self.scores < self.scores.mean()
        candidates = torch.nonzero(well).squeeze(1)
        g = torch.Generator().manual_seed(trainer.cfg.seed * 1_000_003 + epoch)
        kept = candidates[torch.randperm(len(candidates), generator=g)[: int((1 - RATIO) * len(candidates))]]
        keep = ~well
        keep[kept] = True
        weights[kept] = 1.0 / (1.0 - RATIO)
        chosen = order[keep[order]]
        return chosen, weights[chosen]

    def observe_losses(self, trainer: Any, indices: torch.Tensor, losses: torch.Tensor) -> None:
        if self.scores is not None:
            self.scores[indices] = losses.to(self.scores.dtype)

    def state_dict(self) -> dict[str, Any]:
        return {"scores": self.scores}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scores = state.get("scores")
