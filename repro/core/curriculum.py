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

A curriculum can also be *data* (:func:`from_data`, :func:`load`: a YAML / JSON file, ``repro train --schedule
FILE``, a manifest's ``schedule: FILE``): stages over the fraction of compute or of epochs, each with its B (at
``reference_size``, scaled with the final size like the presets' B), its RandAug m (a constant or a range) and
optionally a circular low-pass radius (Sec. 4.1, Fig. 2 / Table 2); ``lr_horizon`` > 1 makes the curriculum the
first ``1 / lr_horizon`` of a longer LR schedule (Algorithm 2's candidates stop there). A run stores the content,
not the path, so the content is part of the run's identity.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
    # data curricula (from_data): RandAug m as a (start, end) range per stage (then ``magnitude`` is unused), a
    # circular low-pass radius per stage (None: unfiltered) at reference_size, and the LR schedule's length in
    # units of this curriculum's length (> 1: the curriculum is the beginning of a longer run, Algorithm 2)
    magnitude_ranges: tuple[tuple[float, float], ...] = ()
    lowpass: tuple[float | None, ...] = ()
    reference_size: int = REFERENCE_SIZE
    lr_horizon: float = 1.0

    def __post_init__(self) -> None:
        if len(self.boundaries) != len(self.resolutions) + 1:
            raise ValueError(f"{self.name}: need one more boundary than resolutions")
        if self.boundaries[0] != 0.0 or not math.isclose(self.boundaries[-1], 1.0):
            raise ValueError(f"{self.name}: boundaries must run from 0 to 1")
        if any(b <= a for a, b in itertools.pairwise(self.boundaries)):
            raise ValueError(f"{self.name}: boundaries must increase strictly")
        expected = 2 if self.linear_magnitude else len(self.resolutions)
        if not self.magnitude_ranges and len(self.magnitude) != expected:
            raise ValueError(f"{self.name}: magnitude needs {expected} values")
        for what, values in (("magnitude_ranges", self.magnitude_ranges), ("lowpass", self.lowpass)):
            if values and len(values) != len(self.resolutions):
                raise ValueError(f"{self.name}: {what} needs one entry per stage")
        if self.lr_horizon < 1.0:
            raise ValueError(f"{self.name}: lr_horizon must be >= 1 (the LR schedule cannot end before the run)")


@dataclass(frozen=True)
class Stage:
    """One curriculum stage, in fractions of the total compute budget."""

    start: float
    end: float
    resolution: int
    m_start: float
    m_end: float
    epochs: float  # real epochs this stage runs (at its own resolution)
    lowpass: float | None = None  # circular low-pass radius (frequency index units at the final size), Table 2

    def magnitude(self, fraction: float) -> float:
        """RandAug magnitude at compute fraction ``fraction`` (linear inside the stage)."""
        width = self.end - self.start
        t = 0.0 if width <= 0 else min(max((fraction - self.start) / width, 0.0), 1.0)
        return self.m_start + (self.m_end - self.m_start) * t

    def to_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {
            "start": self.start,
            "end": self.end,
            "resolution": self.resolution,
            "m_start": self.m_start,
            "m_end": self.m_end,
            "epochs": self.epochs,
        }
        if self.lowpass is not None:
            out["lowpass"] = self.lowpass
        return out


@dataclass(frozen=True)
class Curriculum:
    """A resolved schedule: stages over compute fractions, for one budget, final size and cost function."""

    name: str
    final_size: int
    axis: Axis
    stages: tuple[Stage, ...]
    equivalent_epochs: float  # total compute / compute of one epoch at the final size
    relative_costs: dict[int, float] = field(compare=False, repr=False)
    lr_horizon: float = 1.0  # the LR schedule spans lr_horizon x this curriculum (CurriculumSpec.lr_horizon)

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

    @property
    def lr_epochs(self) -> float:
        """Length of the LR schedule on the curriculum's axis, in (equivalent or real) epochs."""
        return (self.equivalent_epochs if self.axis == "compute" else self.real_epochs) * self.lr_horizon

    def lr_progress(self, fraction: float) -> float:
        """Position on the LR schedule (0..1): :meth:`axis_progress`, shortened by ``lr_horizon``."""
        return self.axis_progress(fraction) / self.lr_horizon

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


def _linear_b_spec(stages: int = 10, multiple: int = 32) -> CurriculumSpec:
    """Table 19 (c), "Linear Increasing [58]": B rises linearly over the epochs from B0 to 224, "configured to have
    the same training cost as the schedule of EfficientTrain" (Table 5), with ET's m (0 -> 9 linear). B0 is solved
    from that cost: a continuous B(t) = B0 + (224 - B0) t has mean (B / 224)^2 = (x^2 + x + 1) / 3 with
    x = B0 / 224; equal to ET's 0.6531 gives x = 0.5996, B0 = 134.3. The paper does not say how B is discretised:
    here at the midpoints of ``stages`` equal-epoch stages, rounded to multiples of ``multiple`` (the patch grids
    of the models and their 56-pixel proxies take multiples of 32 at 224): 128, 160 x 4, 192 x 3, 224 x 2, a cost
    of 0.657 (0.6 % above ET's)."""
    epochs = (180, 60, 60)  # Table 5
    target = sum(e * (b / REFERENCE_SIZE) ** 2 for e, b in zip(epochs, (160, 192, 224), strict=True)) / 300
    x = (-1 + math.sqrt(1 - 4 * (1 - 3 * target))) / 2
    b0 = x * REFERENCE_SIZE
    sizes = [multiple * round((b0 + (REFERENCE_SIZE - b0) * (i + 0.5) / stages) / multiple) for i in range(stages)]
    return CurriculumSpec(
        name="et-linear", axis="epoch", boundaries=tuple(i / stages for i in range(stages + 1)),
        resolutions=tuple(Resolution.final() if b == REFERENCE_SIZE else Resolution(0.0, b / REFERENCE_SIZE)
                          for b in sizes),
        magnitude=(0.0, 9.0), linear_magnitude=True, budget=300,
        description=f"Linear increasing B at EfficientTrain's cost: B0 = {b0:.1f} -> 224 (solved), stages "
        f"{', '.join(map(str, sizes))}", source="Table 19 (c)")


PRESETS["et-linear"] = _linear_b_spec()


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
    spec: CurriculumSpec | str | Mapping[str, Any],
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
    spec = as_spec(spec)
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
        if spec.magnitude_ranges:
            ms, me = spec.magnitude_ranges[i]
        elif spec.linear_magnitude:
            m0, m1 = spec.magnitude
            a0, a1 = spec.boundaries[i], spec.boundaries[i + 1]
            ms, me = round(m0 + (m1 - m0) * a0, 9), round(m0 + (m1 - m0) * a1, 9)
        else:
            ms = me = spec.magnitude[i]
        radius = spec.lowpass[i] if spec.lowpass else None
        lowpass = None if radius is None else radius * final_size / spec.reference_size
        stages.append(Stage(f0, f1, b, ms, me, epochs_per_stage[i], lowpass))
    last = stages[-1]
    stages[-1] = replace(last, end=1.0)
    return Curriculum(
        name=spec.name,
        final_size=final_size,
        axis=spec.axis,
        stages=tuple(stages),
        equivalent_epochs=total,
        relative_costs=rel,
        lr_horizon=spec.lr_horizon,
    )


# -- curricula as data ------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)


class StageData(_Strict):
    """One stage of a curriculum file: it ends at ``until`` (fraction of the axis; the last is 1)."""

    until: float = Field(gt=0, le=1)
    size: int = Field(gt=0, alias="B")  # B, at the file's reference_size
    m: float | tuple[float, float] | None = None  # RandAug m: constant or (start, end)
    lowpass: float | None = Field(default=None, gt=0)  # circular low-pass radius at reference_size (Table 2)

    @field_validator("m")
    @classmethod
    def _non_negative(cls, m: float | tuple[float, float] | None) -> float | tuple[float, float] | None:
        if m is not None and min(m if isinstance(m, tuple) else (m,)) < 0:
            raise ValueError(f"RandAug magnitudes must be >= 0, got {m}")
        return m


class CurriculumData(_Strict):
    """A curriculum file (YAML or JSON): see the module docstring and ``repro schedule --help``."""

    name: str = Field(min_length=1)
    axis: Axis = "compute"
    budget: float | None = Field(default=None, gt=0)  # equivalent epochs (compute) or real epochs (epoch)
    reference_size: int = Field(default=REFERENCE_SIZE, gt=0)  # the final size at which B and radii are stated
    magnitude: tuple[float, float] | None = None  # m linear along the whole axis, instead of per-stage m
    lr_horizon: float = Field(default=1.0, ge=1.0)
    stages: list[StageData] = Field(min_length=1)
    description: str = ""
    source: str = ""


DEFAULT_BUDGET = {"epoch": 300.0, "compute": 200.0}  # Table 24's pairing: 300 epochs, ET++'s 200 equivalent


def from_data(data: Mapping[str, Any], where: str = "curriculum") -> CurriculumSpec:
    """A :class:`CurriculumSpec` from a curriculum's data (a file's content); one ``UserError`` line if invalid."""
    try:
        d = CurriculumData.model_validate(dict(data))
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "curriculum"
        raise UserError(f"{where}: {loc}: {first['msg'].removeprefix('Value error, ')}") from None
    stages = d.stages
    missing = [i + 1 for i, st in enumerate(stages) if st.m is None]
    if d.magnitude is None and missing:
        raise UserError(f"{where}: stage {missing[0]} has no RandAug m; give every stage an m (a number or "
                        "[start, end]) or the curriculum a 'magnitude: [m0, m1]' along its axis")
    if d.magnitude is not None and len(missing) < len(stages):
        raise UserError(f"{where}: give either 'magnitude' (linear along the axis) or per-stage m, not both")
    too_big = [st.size for st in stages if st.size > d.reference_size]
    if too_big:
        raise UserError(f"{where}: B={too_big[0]} is above the reference size {d.reference_size}; B values are "
                        "stated at the final size 'reference_size'")
    ends = [st.until for st in stages]
    if any(b <= a for a, b in itertools.pairwise(ends)) or not math.isclose(ends[-1], 1.0):
        raise UserError(f"{where}: the stages' 'until' must increase and end at 1 (the whole axis), got {ends}")
    ref = d.reference_size
    try:
        return CurriculumSpec(
            name=d.name, axis=d.axis, boundaries=(0.0, *(st.until for st in stages)),
            resolutions=tuple(Resolution.final() if st.size == ref else Resolution(0.0, st.size / ref)
                              for st in stages),
            magnitude=d.magnitude or (), linear_magnitude=d.magnitude is not None,
            budget=d.budget or DEFAULT_BUDGET[d.axis], description=d.description, source=d.source or "data",
            magnitude_ranges=() if d.magnitude else tuple(
                (float(st.m), float(st.m)) if isinstance(st.m, int | float) else (float(st.m[0]), float(st.m[1]))
                for st in stages if st.m is not None),
            lowpass=tuple(st.lowpass for st in stages) if any(st.lowpass for st in stages) else (),
            reference_size=ref, lr_horizon=d.lr_horizon)
    except ValueError as err:
        raise UserError(f"{where}: {err}") from None


def to_data(spec: CurriculumSpec) -> dict[str, Any]:
    """The data of a curriculum (what :func:`from_data` reads back): B at the reference size."""
    ref = spec.reference_size
    stages: list[dict[str, Any]] = []
    for i, r in enumerate(spec.resolutions):
        stage: dict[str, Any] = {"until": spec.boundaries[i + 1], "B": r.at(ref)}
        if spec.magnitude_ranges:
            m0, m1 = spec.magnitude_ranges[i]
            stage["m"] = m0 if m0 == m1 else [m0, m1]
        elif not spec.linear_magnitude:
            stage["m"] = spec.magnitude[i]
        if spec.lowpass and spec.lowpass[i] is not None:
            stage["lowpass"] = spec.lowpass[i]
        stages.append(stage)
    data: dict[str, Any] = {"name": spec.name, "axis": spec.axis, "budget": spec.budget, "reference_size": ref,
                            "stages": stages}
    if spec.linear_magnitude and not spec.magnitude_ranges:
        data["magnitude"] = list(spec.magnitude)
    if spec.lr_horizon != 1.0:
        data["lr_horizon"] = spec.lr_horizon
    for key in ("description", "source"):
        if getattr(spec, key):
            data[key] = getattr(spec, key)
    return data


def load(path: str | Path) -> dict[str, Any]:
    """A curriculum file's data (YAML or JSON), checked; the content is what a run stores and hashes."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise UserError(f"curriculum file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise UserError(f"curriculum file {path}: not valid YAML/JSON ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"curriculum file {path}: expected a mapping with name, axis and stages")
    from_data(data, where=f"curriculum file {path}")
    return data


def is_file_name(schedule: str) -> bool:
    """Whether a ``schedule`` setting names a curriculum file rather than a preset."""
    return schedule.endswith((".yaml", ".yml", ".json"))


def as_spec(schedule: CurriculumSpec | str | Mapping[str, Any]) -> CurriculumSpec:
    """A preset name, a curriculum file's path or data, or a spec -> the spec."""
    if isinstance(schedule, CurriculumSpec):
        return schedule
    if isinstance(schedule, Mapping):
        return from_data(schedule)
    if is_file_name(schedule):
        return from_data(load(schedule), where=f"curriculum file {schedule}")
    return get_spec(schedule)


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
