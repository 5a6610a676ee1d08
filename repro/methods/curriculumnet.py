"""CurriculumNet (Guo, Huang, Zhang, Zhuang, Dong, Scott & Huang, "CurriculumNet: Weakly Supervised Learning
from Large-Scale Web Images", ECCV'18).

The samples of each class are split by their density in a feature space and trained from the clean subset (the
densest) to the noisy ones (its Sec. 3.1-3.3): an initial model trained on all data gives the features; per class,
the local density of sample i is ``rho_i = sum_j 1[D_ij < d_c] - 1`` on the Euclidean distances D, with the
cut-off d_c the 60 % quantile of the class's n^2 distances (the paper's k = 60), and the class is split into 3
subsets by k-means on the densities, ranked by density: clean, noisy, highly noisy. Training then goes from the
clean subset to clean + noisy to all data. As in the reference code (msight-tech/research-curriculumnet,
``curriculum_clustering/_curriculum_clustering.py``: ``density_t=0.6``, ``n_subsets=3``, sklearn's ``KMeans`` on
the densities; the density-peak distances delta are only auxiliary output there); our k-means is Lloyd's on the
scalars from fixed quantiles (deterministic), and the features are the scoring pass's 128-d projection where the
reference reduces to 256 by PCA.

Choices (the paper trains the initial model to convergence and then trains the curriculum from scratch, each
subset until convergence): within the run's budget, the first quarter of the epochs trains on all data -- the
initial model -- and the clustering uses its features (a scoring pass, ``repro.methods.scoring``, counted in the
training time); the curriculum continues from that model, with the three subsets in turn for a quarter of the
epochs each. The subsets are chosen per epoch (``Method.select``: an epoch in the clean phase trains the clean
samples in the epoch's order, with fewer steps; the schedule follows nominal epochs). The clustering is per
class, on the trainer's device, O(n_c^2) memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repro.methods import register
from repro.methods.scoring import ScoringMethod

if TYPE_CHECKING:  # torch is imported where it is used: name look-ups stay light
    import torch


SUBSETS = 3
DENSITY_T = 0.6  # d_c: this quantile of the class's n^2 distances
PHASES = (0.25, 0.5, 0.75)  # the clean, clean + noisy and all-data phases start here; before: the initial model


def kmeans_1d(values: torch.Tensor, k: int, iterations: int = 100) -> torch.Tensor:
    """Lloyd's k-means on scalars, started at the ``(2i + 1) / 2k`` quantiles (deterministic); cluster per value."""
    import torch

    v = values.double()
    centres = torch.quantile(v, (torch.arange(k, dtype=torch.float64) * 2 + 1) / (2 * k))
    for _ in range(iterations):
        label = (v[:, None] - centres[None, :]).abs().argmin(1)
        new = torch.stack([v[label == c].mean() if bool((label == c).any()) else centres[c] for c in range(k)])
        if torch.equal(new, centres):
            break
        centres = new
    return label


def density_clusters(features: torch.Tensor, subsets: int = SUBSETS) -> torch.Tensor:
    """Subset per sample (0 = the densest, the clean one) of one class's features (n x d)."""
    import torch

    n = len(features)
    if n <= subsets:
        return torch.zeros(n, dtype=torch.int64, device=features.device)
    d = torch.cdist(features.double(), features.double())
    cutoff = torch.sort(d.flatten()).values[int(n * n * DENSITY_T)]
    density = (d < cutoff).sum(1) - 1  # without itself
    label = kmeans_1d(density, subsets)
    means = torch.stack([density[label == c].double().mean() if bool((label == c).any()) else
                         torch.tensor(-1.0, dtype=torch.float64, device=d.device) for c in range(subsets)])
    rank = torch.empty(subsets, dtype=torch.int64, device=d.device)
    rank[torch.argsort(means, descending=True, stable=True)] = torch.arange(subsets, device=d.device)
    return rank[label]


@register
class CurriculumNet(ScoringMethod):
    name = "curriculumnet"
    paper = "Guo et al., CurriculumNet, ECCV'18: density-peak clusters per class (d_c 60%), clean -> noisy"

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.subset: torch.Tensor | None = None  # cluster rank per sample, once clustered

    def select(self, trainer: Any, epoch: int, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        n = len(order)
        progress = epoch / (sum(p.steps * p.batch_size for p in trainer.plan) / n)
        phase = sum(progress >= start for start in PHASES)  # 0: initial model, 1-3: subsets 0, 0-1, 0-2
        if phase in (0, len(PHASES)):
            return order, torch.ones(n)
        if self.subset is None:
            scores = self.score(trainer, features=True)
            assert scores.features is not None
            self.subset = torch.zeros(n, dtype=torch.int64)
            for c in torch.unique(scores.labels).tolist():
                members = torch.nonzero(scores.labels == c).squeeze(1)
                self.subset[members] = density_clusters(scores.features[members].to(trainer.device))
        keep = self.subset < phase
        chosen = order[keep[order]]
        return chosen, torch.ones(len(chosen))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "subset": self.subset}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.subset = state.get("subset")

    def summary(self) -> dict[str, Any]:
        import torch

        if self.subset is None:
            return super().summary()
        return {**super().summary(), "subset_sizes": torch.bincount(self.subset, minlength=SUBSETS).tolist()}
