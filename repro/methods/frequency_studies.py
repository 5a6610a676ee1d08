"""The curricula of Sec. 4's studies (TPAMI paper, Sec. 4.1-4.2), on the epoch axis of a 300-epoch run:

- ``lowpass-curriculum`` (Table 2): the training images low-pass filtered by the circular filter of radius r of
  Fig. 2 (``repro.core.frequency.circular_filter``, at the final size) in epochs 1..E1, original afterwards;
- ``lfc-curriculum`` (Tables 3, 4): low-frequency cropping (eq. (1), the crop op) to a window B in epochs 1..E1,
  the original final size afterwards;
- ``randaug-curriculum`` (Table 4): RandAug at a weaker magnitude m in epochs 1..E1, m = 9 afterwards (also
  combinable with ``lfc-curriculum``'s window, Table 4's second row).

Each is a curriculum as data (``repro.core.curriculum.from_data``): a manifest states a run by its settings
(:data:`SETTINGS`: ``lfc_window: 96, lfc_epochs: [1, 150]``...; B and r at 224, scaled with the final size like
every B), which :func:`curriculum` turns into the run's ``schedule`` when the manifest is resolved, so the stages
are part of the run's identity; ``repro train --method lfc-curriculum --schedule FILE`` takes the same data. The
learning rate, warm-up and everything else are the baseline's (Table 24): only the inputs change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repro.core.curriculum import REFERENCE_SIZE
from repro.errors import UserError
from repro.methods import Method, register
from repro.train.config import ConfigError, TrainConfig

FINAL_M = 9.0  # Table 24's RandAug(9, 0.5): m after the weaker phase (Table 4)

# setting -> (what it sets, the epoch-range setting it pairs with)
SETTINGS: dict[str, tuple[str, str]] = {
    "lowpass_radius": ("Table 2: the circular low-pass filter's radius r (at 224)", "lowpass_epochs"),
    "lfc_window": ("Tables 3, 4: the low-frequency cropping window B (at 224)", "lfc_epochs"),
    "randaug_magnitude_early": ("Table 4: the weaker RandAug m early in training", "early_epochs"),
}
RANGES = {pair: f"{what.split(':')[0]}: first and last epoch of {name}" for name, (what, pair) in SETTINGS.items()}
ALL_SETTINGS: dict[str, str] = {**{k: v[0] for k, v in SETTINGS.items()}, **RANGES}


def curriculum(settings: Mapping[str, Any], epochs: float, method: str) -> dict[str, Any]:
    """The epoch-axis curriculum data of a Sec. 4 study run of ``epochs`` (the paper's) epochs: one stage per
    change of the inputs, each early phase ``[1, E1]`` (1-based, inclusive, as the tables print it) covering the
    first ``E1 / epochs`` of training."""
    ends: dict[str, float] = {}
    for name, (_, pair) in SETTINGS.items():
        if (name in settings) != (pair in settings):
            raise UserError(f"{method}: {name} and {pair} go together (e.g. {name}: ..., {pair}: [1, 150])")
        if name not in settings:
            continue
        first, last = settings[pair]
        if first != 1 or not 1 <= last <= epochs:
            raise UserError(f"{method}: {pair} {[first, last]} must run from epoch 1 to at most {epochs:g}")
        ends[name] = last / epochs
    if not ends:
        raise UserError(f"{method}: needs its settings ({', '.join(SETTINGS)} with their epoch ranges)")
    cuts = sorted({*ends.values(), 1.0})
    stages = []
    for until in cuts:
        def early(name: str, cut: float = until) -> bool:
            return name in ends and cut <= ends[name]

        stage: dict[str, Any] = {"until": until,
                                 "B": int(settings["lfc_window"]) if early("lfc_window") else REFERENCE_SIZE,
                                 "m": float(settings["randaug_magnitude_early"]) if early("randaug_magnitude_early")
                                 else FINAL_M}
        if early("lowpass_radius"):
            stage["lowpass"] = float(settings["lowpass_radius"])
        stages.append(stage)
    parts = [f"{k}={settings[k]} {list(settings[SETTINGS[k][1]])}" for k in SETTINGS if k in ends]
    return {"name": method, "axis": "epoch", "budget": float(epochs), "reference_size": REFERENCE_SIZE,
            "stages": stages, "description": ", ".join(parts), "source": "Sec. 4, Tables 2-4"}


class _Study(Method):
    """A Sec. 4 study: trains the curriculum given as data (the run's ``schedule``)."""

    def settings(self, cfg: TrainConfig) -> dict[str, Any]:
        if not isinstance(cfg.schedule, dict):
            raise ConfigError("schedule", f"{self.name} trains a curriculum given as data: a manifest's "
                              f"{', '.join(SETTINGS)} with their epoch ranges, or {{schedule}} FILE")
        return {}


@register
class LowpassCurriculum(_Study):
    name = "lowpass-curriculum"
    paper = "Table 2: circular low-pass filtered training images early, original afterwards (Sec. 4.1)"


@register
class LfcCurriculum(_Study):
    name = "lfc-curriculum"
    paper = "Tables 3, 4: low-frequency cropping to B early, the final size afterwards (Sec. 4.1, eq. (1))"
    frequency_op = "crop"


@register
class RandaugCurriculum(_Study):
    name = "randaug-curriculum"
    paper = "Table 4: weaker RandAug m early, m = 9 afterwards (Sec. 4.2)"
