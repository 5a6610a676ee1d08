"""repro: reproduction suite for EfficientTrain++ (TPAMI 2024) and EfficientTrain (ICCV 2023).

``repro.etpp`` is the library API (ET++ in your own training loop); it is imported on first use, so that
``import repro`` (and the command line) does not load torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "etpp":
        import importlib

        return importlib.import_module("repro.etpp")
    raise AttributeError(f"module 'repro' has no attribute {name!r}")
