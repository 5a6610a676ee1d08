"""The scoring pass of the curriculum-learning methods: every training image's loss (and features) under the
current model, a cost these methods add to training and the run counts in its training time.

Self-paced Learning (Kumar et al., NeurIPS'10) re-solves its sample weights from the losses of all samples at
each iteration, Minimax Curriculum (Zhou & Bilmes, ICLR'18) selects hard yet diverse subsets from losses and
features, CurriculumNet (Guo et al., ECCV'18) clusters the samples of each class in a feature space and the
label-similarity curriculum (Dogan et al., ECCV'20) needs a similarity between classes: each is one inference
pass over the training set (the reference implementations do the same, e.g. THUMNLab/CurML's
``SelfPaced._loss_measure``). DIH Curriculum needs none (it scores with the losses of the trained samples).

The pass uses the test-time pre-processing (resize + centre crop, deterministic) at the current training input
size, the model in eval mode (batch-norm running statistics, no dropout) and no gradient. Its wall time, CPU time
(main process and loader workers) and CUDA time are added to the run's training time (``TrainClock``), and each
method reports its passes and their wall time in the summary (``extra_passes``, ``extra_wall_time_s``).
Features are the pre-logits of timm's ``forward_head(..., pre_logits=True)``, projected to at most
:data:`FEATURE_DIM` dimensions by a fixed seeded Gaussian matrix (Johnson-Lindenstrauss: distances and inner
products are kept up to a small relative error), so that a 2048-d ResNet-50 feature of each of IN-1K's 1.28M
images takes 0.65 GB instead of 10 GB.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from repro.errors import UserError
from repro.methods import Method

if TYPE_CHECKING:  # torch is imported where it is used: name look-ups stay light
    import torch


FEATURE_DIM = 128
PROJECTION_SEED = 20240508


@dataclass
class Scores:
    losses: torch.Tensor  # (n,) cross-entropy of each training image against its label
    labels: torch.Tensor  # (n,) int64
    features: torch.Tensor | None  # (n, d) pre-logits, projected, when asked for


class ScoringMethod(Method):
    """A method that runs scoring passes; keeps their count and wall time (in its checkpointed state)."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.passes, self.extra_s = 0, 0.0

    def score(self, trainer: Any, *, features: bool = False) -> Scores:
        """The :class:`Scores` of every training image (all processes' shares, gathered). Call outside a stage's
        training loader (``stage_start``, ``select``): the workers' CPU is counted here, not twice."""
        import torch
        import torch.nn.functional as F

        from repro.data.transforms import EvalDataset, eval_transform
        from repro.train.model import set_input_size
        from repro.train.timing import children_cpu_seconds

        model, device, dist = trainer.model, trainer.device, trainer.dist
        if not hasattr(model, "forward_head") or not hasattr(model, "get_classifier"):
            raise UserError(f"{self.name} scores the training set with the model's pre-logit features; "
                            f"{trainer.cfg.model} lacks timm's forward_head / get_classifier: use a timm model")
        size = trainer.stage_of(trainer.nominal_step()).resolution
        data = EvalDataset(trainer.train_set.base, eval_transform(size, *trainer._norm, trainer._crop_pct))
        n = len(data)
        mine = list(range(dist.rank, n, dist.world))
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(data, mine), batch_size=256,
                                             num_workers=trainer.cfg.workers,
                                             generator=torch.Generator())  # leaves the global RNG alone
        losses = torch.zeros(n, dtype=torch.float32, device=device)
        labels = torch.zeros(n, dtype=torch.int64, device=device)
        feats: torch.Tensor | None = None
        projection: torch.Tensor | None = None
        was_training = model.training
        model.eval()
        set_input_size(model, size)
        children, t0 = children_cpu_seconds(), time.perf_counter()
        with trainer.clock.step(), torch.no_grad():
            start = 0
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                idx = torch.tensor(mine[start : start + len(y)], device=device)
                start += len(y)
                with torch.autocast(device.type, dtype=trainer.autocast_dtype or torch.float32,
                                    enabled=trainer.autocast_dtype is not None):
                    pre = model.forward_head(model.forward_features(x), pre_logits=True)
                    logits = model.get_classifier()(pre)
                losses[idx] = F.cross_entropy(logits.float(), y, reduction="none")
                labels[idx] = y
                if features:
                    pre = pre.float().flatten(1)
                    if projection is None:
                        d = pre.shape[1]
                        projection = (torch.eye(d) if d <= FEATURE_DIM else torch.randn(
                            d, FEATURE_DIM, generator=torch.Generator().manual_seed(PROJECTION_SEED))
                            / FEATURE_DIM**0.5).to(device)
                        feats = torch.zeros(n, projection.shape[1], dtype=torch.float32, device=device)
                    assert feats is not None
                    feats[idx] = pre @ projection
            del loader
            losses, labels = dist.all_reduce_sum(losses), dist.all_reduce_sum(labels)
            if feats is not None:
                feats = dist.all_reduce_sum(feats)
        trainer.clock.workers_cpu_s += max(0.0, children_cpu_seconds() - children)
        self.passes += 1
        self.extra_s += time.perf_counter() - t0
        model.train(was_training)
        return Scores(losses.cpu(), labels.cpu(), None if feats is None else feats.cpu())

    def state_dict(self) -> dict[str, Any]:
        return {"passes": self.passes, "extra_s": self.extra_s}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.passes, self.extra_s = int(state.get("passes", 0)), float(state.get("extra_s", 0.0))

    def summary(self) -> dict[str, Any]:
        return {"extra_passes": self.passes, "extra_wall_time_s": self.extra_s}
