"""The baseline (Table 24): the final input size throughout, RandAug(9, 0.5), warm-up + cosine LR -- every hook
at its default."""

from __future__ import annotations

from repro.methods import Method, register


@register
class Baseline(Method):
    name = "baseline"
    paper = "Table 24: final size throughout, RandAug(9, 0.5)"
