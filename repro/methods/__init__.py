"""Training methods as hook objects of the one engine (``repro.train.engine``), registered by name (timm-style).

A run names a method or a list of them (``method: efficienttrain++`` or ``method: [efficienttrain++,
infobatch]`` in a manifest or a ``TrainConfig``); :func:`compose` checks the list and the engine calls every
method at the named points below. Each hook's default does nothing, so a method with no hooks is the baseline
(Table 24). One file per method, its paper cited in its docstring with the source of each hyper-parameter.

Hook points (class attributes and methods of :class:`Method`; ``trainer`` is the engine's ``Trainer``):

- ``schedule`` / ``frequency_op`` -- the curriculum: a preset name of ``repro.core.curriculum`` or a
  ``CurriculumSpec`` (input size B per stage and RandAug m along it), and the operation that realises B
  (Sec. 4.1, 5.2). At most one method of a list sets each; none: the baseline's final size throughout.
- ``settings(cfg)`` -- training settings the method's recipe fixes (optimizer, loss, augmentation), applied
  over the run's configuration before anything is built; the effective config is what the run records.
- ``lr_schedule(cfg, axis_epochs)`` -- the LR factor as a function of training progress (0..1) on the
  curriculum's axis, replacing the engine's warm-up + cosine (Table 24). At most one method.
- ``stage_start(trainer, stage, fresh)`` -- at the start of every curriculum stage; ``fresh`` is False when the
  trainer enters the stage to resume inside it (before the checkpoint's tensors are loaded), so the method
  must put the trainer in the stage's configuration (model architecture via ``trainer.replace_model``,
  regularisation) as a function of the stage alone, and may initialise new weights only when ``fresh``.
- ``step_start(trainer, fraction)`` -- before every optimisation step (e.g. an annealed smoothing sigma).
- ``select(trainer, epoch, order)`` -- the samples of an epoch: given the epoch's deterministic permutation
  of the data (``Stream``), return the kept indices in their order and a loss weight per kept sample (e.g.
  InfoBatch's pruning and rescaling), or ``order`` itself with unit weights for a full epoch. A method that
  selects makes the engine train epoch by epoch: the LR and curriculum follow the nominal epochs (each kept
  sample stands for ``n / len(kept)`` samples), so pruned epochs take fewer steps. At most one method.
- ``loss_weights(trainer, indices, losses)`` -- per-sample weights for this process's samples of the step,
  seeing their per-sample losses (detached); weights of several methods multiply.
- ``observe_losses(trainer, indices, losses)`` -- after each step, the per-sample losses of every process
  (gathered), in index order of the global batch: for scores kept across epochs.
- ``targets(trainer, y)`` -- the training targets of this process's samples of the step: class indices (or
  Mixup's soft targets) in, a distribution over the classes per sample out (e.g. the label-similarity
  curriculum's soft labels); the engine's cross-entropy takes them as soft targets. At most one method.
- ``final_phase(trainer)`` -- an extra phase after the main training and before the final evaluation
  (FixRes' fine-tuning at the test size). At most one method.
- ``state_dict()`` / ``load_state_dict(state)`` -- the method's state, saved in every checkpoint: a resumed
  run equals an uninterrupted one.
- ``summary()`` -- entries the method adds to the run's ``summary.json`` (e.g. the cost of its extra passes
  over the data, which the engine counts in the training time).

Combinations with a conflict (two methods setting the same exclusive hook) are refused with one line naming
both.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from repro.errors import UserError

if TYPE_CHECKING:  # torch is imported by the transforms: name look-ups (manifest checks) stay light
    import torch

    from repro.core.curriculum import CurriculumSpec
    from repro.data.transforms import FrequencyOp
    from repro.train.config import TrainConfig


class Method:
    """The hooks of one method; the defaults train the baseline. See the module docstring for each hook."""

    name: ClassVar[str]
    paper: ClassVar[str]
    schedule: ClassVar[str | CurriculumSpec | None] = None
    frequency_op: ClassVar[FrequencyOp | None] = None

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg

    def settings(self, cfg: TrainConfig) -> dict[str, Any]:
        return {}

    def lr_schedule(self, cfg: TrainConfig, axis_epochs: float) -> Callable[[float], float] | None:
        return None

    def stage_start(self, trainer: Any, stage: Any, fresh: bool) -> None:
        return None

    def step_start(self, trainer: Any, fraction: float) -> None:
        return None

    def select(self, trainer: Any, epoch: int, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        return None

    def loss_weights(self, trainer: Any, indices: torch.Tensor, losses: torch.Tensor) -> torch.Tensor | None:
        return None

    def observe_losses(self, trainer: Any, indices: torch.Tensor, losses: torch.Tensor) -> None:
        return None

    def targets(self, trainer: Any, y: torch.Tensor) -> torch.Tensor | None:
        return None

    def final_phase(self, trainer: Any) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None

    def summary(self) -> dict[str, Any]:
        return {}


METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make ``cls`` known by ``cls.name``."""
    if cls.name in METHODS:
        raise ValueError(f"method {cls.name!r} registered twice")
    METHODS[cls.name] = cls
    return cls



# hook points of which a list may set only one (the others compose: weights multiply, hooks run in order)
EXCLUSIVE = {"schedule": "the curriculum", "frequency_op": "the frequency operation",
             "lr_schedule": "the LR schedule", "select": "the samples of an epoch",
             "targets": "the training targets", "final_phase": "the phase after training"}


def names_of(method: str | Sequence[str]) -> list[str]:
    """A run's ``method`` setting as a list of names."""
    return [method] if isinstance(method, str) else list(method)


def label(method: str | Sequence[str]) -> str:
    """How a run names its methods: ``efficienttrain++`` or ``efficienttrain+++fixres`` (the paper's '+')."""
    return "+".join(names_of(method))


def _sets(cls: type[Method], hook: str) -> bool:
    return getattr(cls, hook) is not getattr(Method, hook)


def check_names(method: str | Sequence[str]) -> list[type[Method]]:
    """The method classes of a list, refusing unknown names, repeats and conflicting combinations (one line)."""
    names = names_of(method)
    if not names:
        raise UserError("method: the list is empty; name at least one method, e.g. baseline")
    if len(set(names)) < len(names):
        raise UserError(f"method: {label(names)} names a method twice")
    classes = []
    for name in names:
        if name in METHODS:
            classes.append(METHODS[name])
        else:
            close = difflib.get_close_matches(name, list(METHODS), n=3)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            raise UserError(f"unknown method {name!r}{hint}; implemented: {', '.join(METHODS)}")
    for hook, what in EXCLUSIVE.items():
        owners = [c.name for c in classes if _sets(c, hook)]
        if len(owners) > 1:
            raise UserError(f"method: {' and '.join(owners)} both set {what}; a list may combine at most one of "
                            "them with methods that do not")
    return classes


def schedule_of(method: str | Sequence[str]) -> str | CurriculumSpec:
    """The curriculum a list of methods trains on (the baseline's when none sets one)."""
    owner = next((c for c in check_names(method) if c.schedule is not None), None)
    return owner.schedule if owner is not None and owner.schedule is not None else "baseline"


def frequency_op_of(method: str | Sequence[str]) -> FrequencyOp:
    """The operation that realises the curriculum's B for a list of methods ("none" when no method sets one)."""
    owner = next((c for c in check_names(method) if _sets(c, "frequency_op")), None)
    return owner.frequency_op if owner is not None and owner.frequency_op is not None else "none"


class Methods:
    """A run's list of methods, composed: what the engine calls."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.names = names_of(cfg.method)
        self.items = [cls(cfg) for cls in check_names(cfg.method)]

    def _owner(self, hook: str) -> Method | None:
        return next((m for m in self.items if _sets(type(m), hook)), None)

    @property
    def label(self) -> str:
        return label(self.names)

    @property
    def schedule(self) -> str | CurriculumSpec:
        return schedule_of(self.names)

    @property
    def frequency_op(self) -> FrequencyOp:
        return frequency_op_of(self.names)

    @property
    def selects(self) -> bool:
        return self._owner("select") is not None

    def settings(self, cfg: TrainConfig) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for m in self.items:
            out.update(m.settings(cfg))
        return out

    def lr_schedule(self, cfg: TrainConfig, axis_epochs: float) -> Callable[[float], float] | None:
        owner = self._owner("lr_schedule")
        return owner.lr_schedule(cfg, axis_epochs) if owner is not None else None

    def stage_start(self, trainer: Any, stage: Any, fresh: bool) -> None:
        for m in self.items:
            m.stage_start(trainer, stage, fresh)

    def step_start(self, trainer: Any, fraction: float) -> None:
        for m in self.items:
            m.step_start(trainer, fraction)

    def select(self, trainer: Any, epoch: int, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        owner = self._owner("select")
        return owner.select(trainer, epoch, order) if owner is not None else None

    def loss_weights(self, trainer: Any, indices: torch.Tensor, losses: torch.Tensor) -> torch.Tensor | None:
        weights = None
        for m in self.items:
            w = m.loss_weights(trainer, indices, losses)
            if w is not None:
                weights = w if weights is None else weights * w
        return weights

    @property
    def wants_losses(self) -> bool:
        """Whether any method sees per-sample losses (the engine then needs the batch's sample indices)."""
        return any(_sets(type(m), h) for m in self.items for h in ("loss_weights", "observe_losses"))

    def observe_losses(self, trainer: Any, indices: torch.Tensor, losses: torch.Tensor) -> None:
        for m in self.items:
            m.observe_losses(trainer, indices, losses)

    def targets(self, trainer: Any, y: torch.Tensor) -> torch.Tensor:
        owner = self._owner("targets")
        out = owner.targets(trainer, y) if owner is not None else None
        return y if out is None else out

    def final_phase(self, trainer: Any) -> None:
        owner = self._owner("final_phase")
        if owner is not None:
            owner.final_phase(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {m.name: m.state_dict() for m in self.items}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for m in self.items:
            m.load_state_dict(state.get(m.name, {}))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for m in self.items:
            out.update(m.summary())
        return out


# the registry: one module per method (imported for its @register)
from repro.methods import (  # noqa: E402
    autoprog,
    baseline,
    budgeted_training,
    budgeted_vit,
    curriculumnet,
    deit3,
    dih_curriculum,
    efficienttrain,
    efficienttrain_pp,
    fixres,
    frequency_studies,
    infobatch,
    label_similarity_curriculum,
    minimax_curriculum,
    progressive_learning,
    self_paced_learning,
    smoothing_curriculum,
)

__all__ = ["METHODS", "Method", "Methods", "check_names", "label", "register", "schedule_of",
           "autoprog", "baseline", "budgeted_training", "budgeted_vit", "curriculumnet", "deit3", "dih_curriculum",
           "efficienttrain", "efficienttrain_pp", "fixres", "frequency_studies", "infobatch",
           "label_similarity_curriculum", "minimax_curriculum", "progressive_learning", "self_paced_learning",
           "smoothing_curriculum"]
