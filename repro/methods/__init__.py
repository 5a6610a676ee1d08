"""Methods as thin compositions of the core and the one engine (``repro.train.engine``).

A method chooses a curriculum (``repro.core.curriculum``) and the frequency operation that realises its input
sizes (``repro.core.frequency``); EfficientTrain++'s implementation techniques (early large batch, replay
buffer, Sec. 5.3) are options of the engine that any method may switch on.
"""

from __future__ import annotations

from dataclasses import dataclass

from repro.data.transforms import FrequencyOp
from repro.errors import UserError


@dataclass(frozen=True)
class Method:
    name: str
    schedule: str  # default curriculum preset
    frequency_op: FrequencyOp
    source: str


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("baseline", "baseline", "none", "Table 24: final size throughout, RandAug(9, 0.5)"),
        Method("efficienttrain", "et", "crop", "Table 5 schedule + low-frequency cropping (Sec. 4)"),
        Method("efficienttrain++", "etpp", "downsample", "Table 6 schedule + Lanczos down-sampling (Sec. 5)"),
    )
}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UserError(f"unknown method {name!r}; implemented: {', '.join(METHODS)}") from None
