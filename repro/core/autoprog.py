"""AutoProg's schedules and choices as pure functions (Li et al., "Automated Progressive Learning for Efficient
Training of Vision Transformers", CVPR'22; release changlin31/AutoProg, commit e7ecc98): the manual progressive
schedule, MoGrow's layer mapping, the elastic supernet's sub-networks, the candidates of a growth and the
automated choice from the loss-vs-time fit. The network side (growing a timm ViT, one-shot supernet training and
estimation) is :mod:`repro.models.autoprog`, whose docstring says what each piece follows and where it differs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from repro.errors import UserError


def make_divisible(v: float, divisor: int, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """The nearest multiple of ``divisor``, never 10 % below ``v`` (``prog/progressive.py``, timm's helper)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


@dataclass(frozen=True)
class ProgressiveStage:
    start_epoch: int
    size: int
    depth: int
    magnitude: float  # RandAug m
    drop_path: float
    reprob: float


def progressive_schedule(epochs: int, *, final_size: int, depth: int, magnitude: float, drop_path: float,
                         reprob: float, num_stages: int = 4, r_scale: float = 0.5, l_scale: float = 0.5,
                         aa_scale: float = 0.5, dp_scale: float = 0.0, re_scale: float = 0.0,
                         ) -> list[ProgressiveStage]:
    """The manual progressive schedule (``progressive_schedule`` of ``prog/progressive.py``), stage by stage."""
    if num_stages < 1 or epochs < num_stages:
        raise UserError(f"AutoProg needs at least one epoch per stage: {epochs} epochs for {num_stages} stages")
    divisor = max(1, round(32 * final_size / 224))
    starts = [int(e) for e in np.linspace(0, epochs, num_stages + 1) // 1][:-1]
    grow = lambda lo: np.linspace(lo, 1.0, num_stages)  # noqa: E731 - the release's linspace(scale, 1, n)
    return [
        ProgressiveStage(start, make_divisible(r * final_size, divisor), make_divisible(l_ * depth, 1),
                         float(round(max(0.0, m * magnitude))), max(0.0, dp * drop_path), max(0.0, re * reprob))
        for start, r, l_, m, dp, re in zip(starts, grow(r_scale), grow(l_scale), grow(aa_scale), grow(dp_scale),
                                           grow(re_scale), strict=True)
    ]


def _new_idx(idx: int, prev: int, new: int) -> int:
    if idx * prev // (new // prev * prev) < (prev - new % prev):
        return idx * prev // (new // prev * prev)
    return (idx + (prev - new % prev)) * prev // (new // prev * prev + prev)


def layer_map(prev: int, new: int) -> list[int]:
    """For each layer of a network grown from ``prev`` to ``new`` layers, the layer it is copied from."""
    if not 1 <= prev <= new:
        raise UserError(f"growth goes from 1 <= prev <= new layers, got {prev} -> {new}")
    return [_new_idx(i, prev, new) for i in range(new)]


def new_layers(prev: int, new: int) -> list[int]:
    """The layers of the grown network that are copies (the second of each duplicated pair)."""
    src = layer_map(prev, new)
    return [i for i in range(new) if i > 0 and src[i] == src[i - 1]]


def subnet_blocks(depth_min: int, depth_max: int, depth: int) -> list[int]:
    """The supernet blocks a sub-network of ``depth`` runs: all but the first ``depth_max - depth`` grown ones."""
    if not depth_min <= depth <= depth_max:
        raise UserError(f"sub-network depth {depth} outside the supernet's {depth_min}..{depth_max}")
    grown = new_layers(depth_min, depth_max)
    skipped = set(grown[: len(grown) - (depth - depth_min)])
    return [i for i in range(depth_max) if i not in skipped]


def _unique(xs: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(xs))


def search_space(stage: int, sizes: Sequence[int], depths: Sequence[int], size: int, depth: int,
                 ) -> tuple[list[int], list[int]]:
    """Candidate sizes and depths at the start of ``stage`` (``main_prog.py``), from the schedule's values."""
    rs, ls = _unique(sizes), _unique(depths)
    if stage == 0:
        return _unique([rs[0], rs[len(rs) // 2], rs[-1]]), _unique([ls[0], ls[len(ls) // 2], ls[-1]])
    r_s, l_s = rs.index(size), ls.index(depth)
    if l_s < len(ls) - 1:
        l_s += 1
    return rs[r_s : min(r_s + 2, len(rs))], ls[l_s : min(l_s + 3, len(ls))]


def relative_cost(size: int, depth: int) -> float:
    """Training time of a candidate up to a constant: depth x size^2 (the release's ``act = l r^2``)."""
    return float(depth * size * size)


def fit_exponent(costs: Sequence[float], losses: Sequence[float]) -> float:
    """``w = max(-b, 0)`` of the power law ``L = a T^b`` fitted in log-log space over the candidates."""
    if len(costs) != len(losses) or len(costs) < 2:
        raise UserError("the loss-vs-time fit needs at least two candidates")
    t, loss = np.log(np.asarray(costs, dtype=float)), np.log(np.maximum(np.asarray(losses, dtype=float), 1e-12))
    if np.ptp(t) == 0:
        return 0.0
    slope = float(np.polyfit(t, loss, 1)[0])
    return max(-slope, 0.0)


def choose(estimates: dict[tuple[int, int], Sequence[float]]) -> tuple[int, int]:
    """The candidate (size, depth) minimising ``mean loss x T^w`` (``auto_grow`` of ``main_prog.py``)."""
    keys = list(estimates)
    mean = {k: float(np.mean(estimates[k])) for k in keys}
    if len(keys) == 1:
        return keys[0]
    cost = {k: relative_cost(*k) for k in keys}
    w = fit_exponent([cost[k] for k in keys], [mean[k] for k in keys])
    score = {k: mean[k] * cost[k] ** w for k in keys}
    if not all(math.isfinite(s) for s in score.values()):
        raise UserError(f"non-finite candidate losses in the AutoProg search: {mean}")
    return min(keys, key=lambda k: (score[k], cost[k]))
