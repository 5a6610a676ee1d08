"""EfficientTrain++ (TPAMI'24, Sec. 5): the Table 6 curriculum on the compute axis, B reached by low-pass
filtering + Lanczos down-sampling (Sec. 5.2); its implementation techniques (early large batch, replay buffer,
Sec. 5.3) are engine options any method may switch on."""

from __future__ import annotations

from repro.methods import Method, register


@register
class EfficientTrainPP(Method):
    name = "efficienttrain++"
    paper = "Table 6 schedule + Lanczos down-sampling (Sec. 5)"
    schedule = "etpp"
    frequency_op = "downsample"
