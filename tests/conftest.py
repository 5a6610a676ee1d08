"""Shared test settings: deterministic, no hypothesis deadlines (2 shared CPU cores make timings noisy)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

os.environ.setdefault("WANDB_MODE", "offline")
settings.register_profile("repro", deadline=None, print_blob=True)
settings.load_profile("repro")


@pytest.fixture
def one_torch_thread():  # type: ignore[no-untyped-def]
    """Two OpenMP threads on a shared 2-core machine spin against the other load (a step gets ~5x slower); the
    results do not depend on it (bit-exact comparisons run both sides under the same setting)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def local_slurm():  # type: ignore[no-untyped-def]
    """The single-node SLURM of slurm/local/up.sh (``make test`` starts it as root); skips the test without it."""
    from repro.launch.slurm_state import controller_answers, use_local_cluster_conf

    use_local_cluster_conf()
    problem = controller_answers()
    if problem:
        pytest.skip(f"local SLURM not up ({problem}); run slurm/local/up.sh or make test-slurm")
