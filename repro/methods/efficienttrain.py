"""EfficientTrain (ICCV'23; Sec. 4 of the TPAMI paper): the Table 5 curriculum on the epoch axis, B reached by
low-frequency cropping in the Fourier domain (Sec. 4.1, eq. (1)), RandAug m rising with the curriculum."""

from __future__ import annotations

from repro.methods import Method, register


@register
class EfficientTrain(Method):
    name = "efficienttrain"
    paper = "Table 5 schedule + low-frequency cropping (Sec. 4)"
    schedule = "et"
    frequency_op = "crop"
