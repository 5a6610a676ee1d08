"""The cost columns (parameters, FLOPs, computation speedup) come from the model zoo's cost model.

Until a model's cost is known this returns None and the aggregator marks the cell 'cost model unavailable'.
"""

from __future__ import annotations

from repro.results.collect import CostLookup


def cost_lookup() -> CostLookup | None:
    try:
        from repro.models.cost import lookup  # type: ignore[attr-defined]
    except ImportError:
        return None
    return lookup  # type: ignore[no-any-return]
