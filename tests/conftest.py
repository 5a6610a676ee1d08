"""Shared test settings: deterministic, no hypothesis deadlines (2 shared CPU cores make timings noisy)."""

from __future__ import annotations

import os

from hypothesis import settings

os.environ.setdefault("WANDB_MODE", "offline")
settings.register_profile("repro", deadline=None, print_blob=True)
settings.load_profile("repro")
