"""Label-similarity Curriculum (Dogan, Deshmukh, Machura & Igel, "Label-Similarity Curriculum Learning",
ECCV'20).

Early in training the target of an image is not its one-hot label but a distribution that also puts
probability on the classes similar to the true one; the targets are annealed to the one-hot labels over
training, so the network first learns the coarse distinctions (its Sec. 3). Here the target of class c at
training progress t (0..1) is ``(1 - alpha_t) e_c + alpha_t P_c`` with ``P_c = softmax_j(s_cj / TAU)`` over the
class similarities s (``s_cc = 1`` is the largest, so the true class always has the most mass) and
``alpha_t = max(0, 1 - t / ANNEAL)``: one-hot from ``ANNEAL`` of training on (``Method.targets``; the engine's
cross-entropy takes soft targets).

Choices: the paper takes the similarity from word embeddings of the class names (or from a pre-trained
network); this suite downloads neither, so the similarity is the cosine of the centred class means of the
network's own pre-logit features at initialisation (a random-feature embedding of the images: one scoring pass,
``repro.methods.scoring``, counted in the training time, kept in the checkpoint). ``TAU = 0.1``, ``ANNEAL = 0.5``
(the targets are one-hot for the second half of training) are our choice. Label smoothing, Mixup/CutMix and
BCE define other targets: a run with them is refused (Table 11's row trains without AugRegs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repro.methods import register
from repro.methods.scoring import ScoringMethod

if TYPE_CHECKING:  # torch is imported where it is used: name look-ups stay light
    import torch


TAU = 0.1
ANNEAL = 0.5


def similarity_targets(features: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    """``P`` (classes x classes): row c is softmax over the cosine similarity of class c's centred mean feature
    to every class's, at temperature TAU."""
    import torch
    import torch.nn.functional as F

    means = torch.zeros(classes, features.shape[1], dtype=torch.float64)
    means.index_add_(0, labels, features.double())
    means /= torch.bincount(labels, minlength=classes).clamp(min=1)[:, None]
    means = F.normalize(means - means.mean(0), dim=1)
    return torch.softmax(means @ means.t() / TAU, dim=1).to(torch.float32)


def alpha_at(progress: float) -> float:
    return max(0.0, 1.0 - progress / ANNEAL)


@register
class LabelSimilarityCurriculum(ScoringMethod):
    name = "label-similarity-curriculum"
    paper = "Dogan et al., Label-similarity Curriculum, ECCV'20: class-similarity targets annealed to one-hot"

    def __init__(self, cfg: Any) -> None:
        from repro.train.config import ConfigError

        super().__init__(cfg)
        for field, on in (("smoothing", cfg.smoothing > 0), ("mixup", cfg.mixup > 0 or cfg.cutmix > 0),
                          ("loss", cfg.loss != "ce")):
            if on:
                raise ConfigError(field, f"{self.name} trains on its own soft targets; it cannot combine with "
                                  "label smoothing, Mixup/CutMix or BCE: set {smoothing} 0, {mixup} and {cutmix} "
                                  "0 and {loss} ce (or {augregs} false)")
        self.similarity: torch.Tensor | None = None
        self.alpha = 1.0

    def stage_start(self, trainer: Any, stage: Any, fresh: bool) -> None:
        if self.similarity is None:
            scores = self.score(trainer, features=True)
            assert scores.features is not None
            self.similarity = similarity_targets(scores.features, scores.labels, trainer.num_classes)

    def step_start(self, trainer: Any, fraction: float) -> None:
        self.alpha = alpha_at(trainer.curriculum.axis_progress(fraction))

    def targets(self, trainer: Any, y: torch.Tensor) -> torch.Tensor | None:
        if self.alpha <= 0:
            return None
        import torch
        import torch.nn.functional as F

        assert self.similarity is not None
        onehot = F.one_hot(y, trainer.num_classes).to(torch.float32)
        return (1 - self.alpha) * onehot + self.alpha * self.similarity.to(y.device)[y]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "similarity": self.similarity}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.similarity = state.get("similarity")
