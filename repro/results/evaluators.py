"""Evaluators: how a table cell evaluates a trained run other than by its own final top-1 (the manifests'
``eval_*`` overrides, not part of the run's identity), outside the training loop.

``filtered`` (Table 1, Sec. 4.1): the run's weights at epoch ``eval_epoch`` (kept by ``snapshot_epochs``) on the
validation set with every image low- or high-pass filtered by the circular filter of Fig. 2
(``repro.core.frequency.circular_filter``, before Normalize, as in training). ``eval_filter_radius: matched`` is
Table 1's calibration -- "the bandwidths of the low/high-pass filters are configured to make the finally trained
model have the same accuracy on the two validation sets": the integer radius at which the final weights' low- and
high-pass accuracies are closest (low-pass accuracy rises with r, high-pass falls; bisection on r), one radius
for both filters, as the paper's single bandwidth per set implies. A number is a radius at 224, scaled with the
final size. Results are cached in the run directory (``evaluations.json``).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repro.core.curriculum import REFERENCE_SIZE
from repro.errors import UserError
from repro.launch.rundir import write_json_atomic

CACHE = "evaluations.json"


class _Weights:
    """A run's trainer (its val set, model and device) to evaluate kept weights with, built once."""

    def __init__(self, run_dir: Path) -> None:
        import torch

        from repro.train.config import TrainConfig
        from repro.train.engine import Trainer

        config = run_dir / "train_config.json"
        if not config.is_file():
            raise UserError(f"{run_dir}: no train_config.json (not a finished training run)")
        self.cfg = TrainConfig.model_validate({**json.loads(config.read_text()), "wandb": False})
        self._scratch = tempfile.TemporaryDirectory(prefix="repro-eval-")
        self.trainer = Trainer(self.cfg, self._scratch.name)
        self.run_dir, self._torch, self._loaded = run_dir, torch, None

    def load(self, epoch: float) -> None:
        from repro.train import checkpoint as ckpt

        if self._loaded == epoch:
            return
        path = ckpt.snapshot_path(self.run_dir, epoch)
        if not path.is_file():
            raise UserError(f"{self.run_dir}: no weights kept at epoch {epoch:g} ({path.name}); the run's "
                            "snapshot_epochs must name it")
        self.trainer.model.load_state_dict(self._torch.load(path, map_location="cpu", weights_only=True)["model"])
        self.trainer.step = self.trainer.total_steps  # evaluate at the final size
        self._loaded = epoch

    def top1(self, kind: str, radius: float) -> float:
        from torchvision import transforms as T

        from repro.core.frequency import circular_filter
        from repro.data.transforms import EvalDataset, eval_transform

        t = self.trainer
        plain = eval_transform(t.eval_size, *t._norm, t._crop_pct).transforms
        steps = [*plain[:-1], T.Lambda(lambda x: circular_filter(x, radius, high=kind == "high-pass")), plain[-1]]
        t.val_set = EvalDataset(t._base_val, T.Compose(steps))
        return float(t.evaluate()["top1"])

    def close(self) -> None:
        self.trainer.log.close()
        self.trainer.dist.cleanup()
        self._scratch.cleanup()


def _matched_radius(score: Callable[[str, float], float], final_size: int) -> int:
    """The integer radius where low- and high-pass accuracies are closest (bisection on their difference)."""
    lo, hi = 1, int(math.ceil(final_size / math.sqrt(2)))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if score("low-pass", mid) < score("high-pass", mid):
            lo = mid
        else:
            hi = mid
    return min((lo, hi), key=lambda r: abs(score("low-pass", r) - score("high-pass", r)))


def filtered(run_dir: Path, evaluation: dict[str, Any], epoch_scale: float) -> float:
    """Table 1's cell: top-1 of the weights at ``eval_epoch`` (paper epochs, scaled like the run's) on the
    ``eval_filter`` filtered validation set."""
    kind, radius = evaluation["eval_filter"], evaluation.get("eval_filter_radius", "matched")
    if kind not in ("low-pass", "high-pass"):
        raise UserError(f"eval_filter: {kind!r}; use low-pass or high-pass")
    config = json.loads((run_dir / "train_config.json").read_text())
    epoch = float(evaluation["eval_epoch"]) * epoch_scale
    cache_path = run_dir / CACHE
    cache: dict[str, float] = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    weights: _Weights | None = None

    def score(at: float, which: str, r: float) -> float:
        nonlocal weights
        key = f"{at:g}/{which}/{r:g}"
        if key not in cache:
            weights = weights or _Weights(run_dir)
            weights.load(at)
            cache[key] = weights.top1(which, r)
            write_json_atomic(cache_path, cache)
        return cache[key]

    try:
        if radius == "matched":
            final = max(config["snapshot_epochs"])
            key = f"matched/{final:g}"
            if key not in cache:
                cache[key] = _matched_radius(lambda w, r: score(final, w, r), int(config["final_size"]))
                write_json_atomic(cache_path, cache)
            r = cache[key]
        else:
            r = float(radius) * int(config["final_size"]) / REFERENCE_SIZE
        return score(epoch, kind, r)
    finally:
        if weights is not None:
            weights.close()


EVALUATORS: dict[frozenset[str], Callable[[Path, dict[str, Any], float], float]] = {
    frozenset({"eval_filter", "eval_filter_radius", "eval_epoch"}): filtered,
    frozenset({"eval_filter", "eval_epoch"}): filtered,
}


def evaluate(run_dir: Path, evaluation: dict[str, Any], epoch_scale: float) -> float:
    """A cell's value from its ``eval_*`` overrides, by the evaluator that takes exactly those keys."""
    evaluator = EVALUATORS.get(frozenset(evaluation))
    if evaluator is None:
        raise UserError(f"no evaluator for {', '.join(sorted(evaluation))}")
    return evaluator(run_dir, evaluation, epoch_scale)
