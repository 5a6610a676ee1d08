"""Methods as thin compositions of the core and the one engine (``repro.train.engine``).

A method chooses a curriculum (``repro.core.curriculum``) and the frequency operation that realises its input
sizes (``repro.core.frequency``); EfficientTrain++'s implementation techniques (early large batch, replay
buffer, Sec. 5.3) are options of the engine that any method may switch on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from repro.errors import UserError

if TYPE_CHECKING:  # torch is imported by the transforms: name look-ups (manifest checks) stay light
    from repro.data.transforms import FrequencyOp


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

# The other methods the paper's tables report, not implemented yet: a manifest may name them (``repro run`` reports
# their runs as having no runner), a name in neither list is a mistake. Name -> where the paper reports it.
NOT_IMPLEMENTED: dict[str, str] = {
    "lowpass-curriculum": "Table 2: low-pass filtering curricula",
    "lfc-curriculum": "Tables 3, 4: low-frequency cropping curricula",
    "randaug-curriculum": "Table 4: weaker RandAug early in training",
    "smoothing-curriculum": "Table 11: Curriculum by Smoothing (NeurIPS'20)",
    "self-paced-learning": "Table 11: Self-paced Learning (NeurIPS'10)",
    "minimax-curriculum": "Table 11: Minimax Curriculum (ICLR'18)",
    "dih-curriculum": "Table 11: DIH Curriculum (NeurIPS'20)",
    "curriculumnet": "Table 11: CurriculumNet (ECCV'18)",
    "label-similarity-curriculum": "Table 11: Label-similarity Curriculum (ECCV'20)",
    "progressive-learning": "Table 11: Progressive Learning (ICML'21)",
    "autoprog": "Table 11: AutoProgressive Learning (CVPR'22)",
    "budgeted-vit": "Table 11: Budgeted ViT (ICLR'23)",
    "budgeted-training": "Table 11: Budgeted Training (ICLR'20)",
    "deit-iii": "Table 11: DeiT III (ECCV'22)",
    "fixres": "Table 11: FixRes (NeurIPS'19)",
    "efficienttrain+fixres": "Table 11: EfficientTrain with FixRes",
    "efficienttrain+++fixres": "Table 11: EfficientTrain++ with FixRes",
    "infobatch": "Tables 11, 23: InfoBatch (ICLR'24)",
    "efficienttrain++-infobatch": "Table 23: EfficientTrain++ with InfoBatch",
}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UserError(f"unknown method {name!r}; implemented: {', '.join(METHODS)}") from None
