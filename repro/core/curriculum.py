"""Curriculum schedules: which input size B and RandAug magnitude m to use at each point of training.

A schedule is a list of stages over the fraction of the *total compute budget* consumed (0 -> 1). Each stage
has one input size B (low-frequency cropping / down-sampling window, Sec. 4.1 and 5.2) and a RandAug magnitude
that moves linearly from ``m_start`` to ``m_end`` inside the stage (Sec. 4.2, "weaker-to-stronger").

The paper defines its two curricula on different axes:

* EfficientTrain (Table 5) on *epochs*: epochs 1-180 B=160, 181-240 B=192, 241-300 B=224, m = 9 t / T.
  Fractions of compute are derived from the epoch boundaries and the cost of each B.
* EfficientTrain++ (Table 6) on *compute*: 0-20% B=96, 20-60% B=160, 60-100% B=224, m 0 -> 9 linear on
  compute; the budget is stated in *equivalent epochs* (Table 6 caption, Sec. 5.1): the compute of that many
  standard epochs at the final size. Real epochs per stage follow from the cost of each B.

Both are represented the same way here (a :class:`Curriculum` of compute stages); ``axis`` records on which
axis the paper defines m and the learning rate, and :meth:`Curriculum.axis_progress` maps compute to it.

Adapting to a final input size gamma follows Table 10: the B values of the three stages become
``160, (160 + gamma) / 2, gamma`` (EfficientTrain) or ``96, (96 + gamma) / 2, gamma`` (EfficientTrain++).
We store every resolution as an affine function ``offset + slope * gamma`` so that one rule covers all presets.
ConvNeXt replaces B=96 with B=160 in EfficientTrain++ (Sec. 6.1 / App. A.1).

The official release discretises EfficientTrain++ into 10 stages of equal compute, one process each, with a
constant RandAug magnitude per stage (``rand-m{stage}``) and B lists per model family; the ``*-discrete``
presets reproduce them, and :func:`official_stage_epochs` reproduces its integer epoch arithmetic.

Costs are relative: ``cost(B)`` is the cost of one epoch at input size B divided by the cost at the final
size. The default is the ideal ``(B / final) ** 2``; the model zoo plugs measured FLOPs in.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from repro.errors import UserError

CostFn = Callable[[int], float]
"""Relative cost of one epoch at input size B (1.0 at the final size)."""

Axis = Literal["compute", "epoch"]
REFERENCE_SIZE = 224  # the size at which the paper states every schedule


def ideal_cost(final_size: int) -> CostFn:
    """Cost proportional to the number of pixels: (B / final)^2 (what the paper's '2x B' arithmetic assumes)."""
    return lambda b: (b / final_size) ** 2


@dataclass(frozen=True)
class Resolution:
    """An input size that adapts to the final size gamma: ``max(minimum, offset + slope * gamma)`` (Table 10)."""

    offset: float
    slope: float = 0.0
    minimum: int = 0

    def at(self, final_size: int) -> int:
        return max(self.minimum, int(round(self.offset + self.slope * final_size)))

    @staticmethod
    def fixed(b: int) -> Resolution:
        return Resolution(float(b), 0.0)

    @staticmethod
    def midpoint(b: int) -> Resolution:
        """(b + gamma) / 2, the middle stage of Table 10."""
        return Resolution(b / 2.0, 0.5)

    @staticmethod
    def final() -> Resolution:
        return Resolution(0.0, 1.0)


@dataclass(frozen=True)
class CurriculumSpec:
    """A curriculum as the paper states it, before choosing a budget, a final size and a cost function.

    ``boundaries`` are fractions (0 .. 1) of ``axis``: of epochs for EfficientTrain, of compute for ET++.
    ``magnitude`` is either ``(m0, m1)`` with ``linear_magnitude=True`` (m moves linearly along the axis) or one
    constant per stage. ``budget`` is in real epochs for the epoch axis and in equivalent epochs for compute.
    """

    name: str
    axis: Axis
    boundaries: tuple[float, ...]
    resolutions: tuple[Resolution, ...]
    magnitude: tuple[float, ...]
    linear_magnitude: bool
    budget: float
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.boundaries) != len(self.resolutions) + 1:
            raise ValueError(f"{self.name}: need one more boundary than resolutions")
        if self.boundaries[0] != 0.0 or not math.isclose(self.boundaries[-1], 1.0):
            raise ValueError(f"{self.name}: boundaries must run from 0 to 1")
        if any(b <= a for a, b in itertools.pairwise(self.boundaries)):
            raise ValueError(f"{self.name}: boundaries must increase strictly")
        expected = 2 if self.linear_magnitude else len(self.resolutions)
        if len(self.magnitude) != expected:
            raise ValueError(f"{self.name}: magnitude needs {expected} values")


@dataclass(frozen=True)
class Stage:
    """One curriculum stage, in fractions of the total compute budget."""

    start: float
    end: float
    resolution: int
    m_start: float
    m_end: float
    epochs: float  # real epochs this stage runs (at its own resolution)

    def magnitude(self, fraction: float) -> float:
        """RandAug magnitude at compute fraction ``fraction`` (linear inside the stage)."""
        width = self.end - self.start
        t = 0.0 if width <= 0 else min(max((fraction - self.start) / width, 0.0), 1.0)
        return self.m_start + (self.m_end - self.m_start) * t

    def to_dict(self) -> dict[str, float | int]:
        return {
            "start": self.start,
            "end": self.end,
            "resolution": self.resolution,
            "m_start": self.m_start,
            "m_end": self.m_end,
            "epochs": self.epochs,
        }


@dataclass(frozen=True)
class Curriculum:
    """A resolved schedule: stages over compute fractions, for one budget, final size and cost function."""

    name: str
    final_size: int
    axis: Axis
    stages: tuple[Stage, ...]
    equivalent_epochs: float  # total compute / compute of one epoch at the final size
    relative_costs: dict[int, float] = field(compare=False, repr=False)

    # -- lookups -----------------------------------------------------------------------------------------
    @property
    def real_epochs(self) -> float:
        return sum(s.epochs for s in self.stages)

    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(s.resolution for s in self.stages)

    def stage_index(self, fraction: float) -> int:
        """Index of the stage running at compute fraction ``fraction`` (a boundary belongs to the next stage)."""
        starts = [s.start for s in self.stages]
        return max(0, min(bisect.bisect_right(starts, fraction) - 1, len(self.stages) - 1))

    def stage_at(self, fraction: float) -> Stage:
        return self.stages[self.stage_index(fraction)]

    def resolution_at(self, fraction: float) -> int:
        return self.stage_at(fraction).resolution

    def magnitude_at(self, fraction: float) -> float:
        return self.stage_at(fraction).magnitude(fraction)

    def epoch_at(self, fraction: float) -> float:
        """Real epochs elapsed when ``fraction`` of the compute has been consumed."""
        fraction = min(max(fraction, 0.0), 1.0)
        done = 0.0
        for s in self.stages:
            if fraction >= s.end:
                done += s.epochs
            else:
                if fraction > s.start:
                    done += s.epochs * (fraction - s.start) / (s.end - s.start)
                break
        return done

    def fraction_at_epoch(self, epoch: float) -> float:
        """Inverse of :meth:`epoch_at`."""
        remaining = max(epoch, 0.0)
        for s in self.stages:
            if remaining <= s.epochs:
                return s.start + (s.end - s.start) * (remaining / s.epochs if s.epochs else 1.0)
            remaining -= s.epochs
        return 1.0

    def axis_progress(self, fraction: float) -> float:
        """Position on the axis the paper defines the LR schedule on (compute for ET++, epochs for ET)."""
        if self.axis == "compute":
            return min(max(fraction, 0.0), 1.0)
        return self.epoch_at(fraction) / self.real_epochs

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "final_size": self.final_size,
            "axis": self.axis,
            "equivalent_epochs": self.equivalent_epochs,
            "real_epochs": self.real_epochs,
            "stages": [s.to_dict() for s in self.stages],
        }


# -- presets ---------------------------------------------------------------------------------------------
_R = Resolution
_ETPP_RES = (_R.fixed(96), _R.midpoint(96), _R.final())  # Table 6 / Table 10

PRESETS: dict[str, CurriculumSpec] = {
    spec.name: spec
    for spec in (
        CurriculumSpec(
            name="baseline",
            axis="epoch",
            boundaries=(0.0, 1.0),
            resolutions=(_R.final(),),
            magnitude=(9.0,),
            linear_magnitude=False,
            budget=300,
            description="Standard training: final size throughout, RandAug(9, 0.5)",
            source="Table 24",
        ),
        CurriculumSpec(
            name="et",
            axis="epoch",
            boundaries=(0.0, 180 / 300, 240 / 300, 1.0),
            resolutions=(_R.fixed(160), _R.midpoint(160), _R.final()),
            magnitude=(0.0, 9.0),
            linear_magnitude=True,
            budget=300,
            description="EfficientTrain: low-frequency cropping, epochs 1-180 B=160, 181-240 B=192, 241-300 B=224",
            source="Table 5",
        ),
        CurriculumSpec(
            name="etpp",
            axis="compute",
            boundaries=(0.0, 0.2, 0.6, 1.0),
            resolutions=_ETPP_RES,
            magnitude=(0.0, 9.0),
            linear_magnitude=True,
            budget=200,
            description="EfficientTrain++: 0-20% B=96, 20-60% B=160, 60-100% B=224 of the compute budget",
            source="Table 6",
        ),
        CurriculumSpec(
            name="etpp-convnext",
            axis="compute",
            boundaries=(0.0, 0.2, 0.6, 1.0),
            # (96 + gamma) / 2 is 160 at gamma = 224; ConvNeXt never goes below 160, so it is the floor
            resolutions=(_R.fixed(160), Resolution(48.0, 0.5, minimum=160), _R.final()),
            magnitude=(0.0, 9.0),
            linear_magnitude=True,
            budget=200,
            description="EfficientTrain++ for ConvNeXt: B=160 replaces B=96 (zero gradients of 7x7 kernels)",
            source="Sec. 6.1 / App. A.1",
        ),
        CurriculumSpec(
            name="et-discrete",
            axis="epoch",
            boundaries=tuple(i / 5 for i in range(6)),
            resolutions=(_R.fixed(160),) * 3 + (_R.midpoint(160), _R.final()),
            magnitude=(1.0, 3.0, 5.0, 7.0, 9.0),
            linear_magnitude=False,
            budget=300,
            description="EfficientTrain as released: 5 equal-epoch stages, m = 1, 3, 5, 7, 9",
            source="official ET_training.py",
        ),
        CurriculumSpec(
            name="etpp-discrete",
            axis="compute",
            boundaries=tuple(i / 10 for i in range(11)),
            resolutions=(_R.fixed(96),) * 2 + (_R.midpoint(96),) * 4 + (_R.final(),) * 4,
            magnitude=tuple(float(i) for i in range(10)),
            linear_magnitude=False,
            budget=200,
            description="EfficientTrain++ as released: 10 equal-compute stages, m = stage index",
            source="official _ET_pp_main_*.py",
        ),
        CurriculumSpec(
            name="etpp-discrete-convnext",
            axis="compute",
            boundaries=tuple(i / 10 for i in range(11)),
            resolutions=(_R.fixed(160),) * 6 + (_R.final(),) * 4,
            magnitude=tuple(float(i) for i in range(10)),
            linear_magnitude=False,
            budget=200,
            description="EfficientTrain++ for ConvNeXt as released: B=160 for 60% of compute, then 224",
            source="official _ET_pp_main_convnext*.py",
        ),
        CurriculumSpec(
            name="etpp-discrete-deit",
            axis="compute",
            boundaries=tuple(i / 10 for i in range(11)),
            resolutions=(_R.fixed(96),) * 2 + (_R.midpoint(96),) * 4 + (_R.midpoint(160),) * 2 + (_R.final(),) * 2,
            magnitude=tuple(float(i) for i in range(10)),
            linear_magnitude=False,
            budget=200,
            description="EfficientTrain++ for DeiT as released ('tailored for DeiT'): B=192 in stages 7-8",
            source="official _ET_pp_main_deitS.py",
        ),
    )
}


class StageSizeError(UserError):
    """A stage's input size B does not fit the final size (``needed``: the smallest final size that fits)."""

    def __init__(self, message: str, schedule: str, b: int, needed: int) -> None:
        super().__init__(message)
        self.schedule, self.b, self.needed = schedule, b, needed


def preset_names() -> list[str]:
    return sorted(PRESETS)


def get_spec(name: str) -> CurriculumSpec:
    try:
        return PRESETS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, PRESETS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown schedule {name!r}{hint}; known: {', '.join(preset_names())}") from None


def build(
    spec: CurriculumSpec | str,
    *,
    epochs: float | None = None,
    final_size: int = REFERENCE_SIZE,
    cost: CostFn | None = None,
    adapt: Literal["table10", "linear"] = "table10",
    reference_final: int = REFERENCE_SIZE,
) -> Curriculum:
    """Resolve a curriculum for a budget, a final size and a cost function.

    ``epochs`` overrides the spec's budget on its own axis (real epochs for ``et``, equivalent epochs for
    ``etpp``; Table 25 / Fig. 7 scale it linearly). ``adapt`` chooses how B values follow ``final_size``:
    ``table10`` is the paper's rule (Table 10); ``linear`` takes the B values of the paper's rule at
    ``reference_final`` (the paper-scale final size the run stands for: 224, or 384 / 512 in Table 10) and scales
    them by final_size / reference_final (for proxies whose relative costs must stay those of the paper: 56 for
    224 keeps every B an integer, as does 96 for 384: ET's 160, 272, 384 -> 40, 68, 96).
    """
    if isinstance(spec, str):
        spec = get_spec(spec)
    budget = spec.budget if epochs is None else float(epochs)
    if not math.isfinite(budget) or budget <= 0:
        raise UserError(f"epochs must be a positive number, got {epochs!r}")
    if final_size <= 0:
        raise UserError(f"final size must be a positive number of pixels, got {final_size}")

    if adapt == "table10":
        resolutions = [r.at(final_size) for r in spec.resolutions]
    elif adapt == "linear":
        resolutions = [int(round(r.at(reference_final) * final_size / reference_final)) for r in spec.resolutions]
    else:
        raise UserError(f"unknown adaptation {adapt!r}; use 'table10' or 'linear'")
    for b in resolutions:
        if b <= 0 or b > final_size:
            raise StageSizeError(
                f"schedule {spec.name!r} has a stage at B={b}, which does not fit the final size {final_size}; "
                f"choose a final size >= {max(resolutions)} or another schedule",
                spec.name, b, max(resolutions),
            )

    cost = cost or ideal_cost(final_size)
    final_cost = cost(final_size)
    rel = {b: cost(b) / final_cost for b in sorted(set(resolutions) | {final_size})}
    for b, c in rel.items():
        if not (c > 0 and math.isfinite(c)):
            raise UserError(f"cost function returned {c!r} at B={b}; costs must be positive")

    n = len(resolutions)
    width = [spec.boundaries[i + 1] - spec.boundaries[i] for i in range(n)]
    if spec.axis == "compute":
        compute = [w * budget for w in width]  # in equivalent epochs
        epochs_per_stage = [c / rel[b] for c, b in zip(compute, resolutions, strict=True)]
    else:
        epochs_per_stage = [w * budget for w in width]
        compute = [e * rel[b] for e, b in zip(epochs_per_stage, resolutions, strict=True)]
    total = sum(compute)

    stages: list[Stage] = []
    done = 0.0
    for i, b in enumerate(resolutions):
        f0, f1 = done / total, (done + compute[i]) / total
        done += compute[i]
        if spec.linear_magnitude:
            m0, m1 = spec.magnitude
            a0, a1 = spec.boundaries[i], spec.boundaries[i + 1]
            ms, me = round(m0 + (m1 - m0) * a0, 9), round(m0 + (m1 - m0) * a1, 9)
        else:
            ms = me = spec.magnitude[i]
        stages.append(Stage(f0, f1, b, ms, me, epochs_per_stage[i]))
    last = stages[-1]
    stages[-1] = replace(last, end=1.0)
    return Curriculum(
        name=spec.name,
        final_size=final_size,
        axis=spec.axis,
        stages=tuple(stages),
        equivalent_epochs=total,
        relative_costs=rel,
    )


def official_stage_epochs(
    resolutions: Sequence[int],
    epochs: int,
    reference_size: int = REFERENCE_SIZE,
    resume: Literal["round", "floor"] = "round",
) -> list[int]:
    """Integer epochs per stage that the official ET++ release actually runs (``_ET_pp_main_*.py``).

    Stage i (of N equal-compute stages) is launched with ``--epochs rp_i = int(E * (224 / B_i)^2)`` and
    ``--end_epoch int(rp_i / N * (i + 1))``; on resume the start epoch is the previous end rescaled by
    ``B_{i-1}^2 / B_i^2``, rounded in the mirrored ``utils_buffer.auto_load_model`` (``resume="round"``). The paper's
    Table 7 speedups are reproduced with that rescaling truncated instead (``resume="floor"``; see
    :mod:`repro.models.cost`). The rounding makes each stage's compute differ slightly from 1/N of the budget.
    """
    n = len(resolutions)
    out: list[int] = []
    prev_end, prev_b = 0, None
    for i, b in enumerate(resolutions):
        rp = int(epochs * (reference_size * reference_size) / (b * b))
        end = int(rp / n * (i + 1))
        if prev_b is None:
            start = 0
        else:
            scaled = prev_end * (prev_b**2) / (b**2)
            start = math.floor(scaled) if resume == "floor" else round(scaled)
        out.append(max(0, end - start))
        prev_end, prev_b = end, b
    return out
