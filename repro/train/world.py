"""The process's place in a distributed run, read from the environment before any process group (or torch)
exists: torchrun (RANK, WORLD_SIZE, LOCAL_RANK) or SLURM / submitit (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID).
The engine (:mod:`repro.train.distributed`) and ``repro train`` (the global batch of ``-b``) read it here."""

from __future__ import annotations

import os


def env_int(*names: str, default: int) -> int:
    """The first of ``names`` set (non-empty) in the environment, as an int; ``default`` if none is."""
    for name in names:
        if os.environ.get(name):
            return int(os.environ[name])
    return default


def world_size() -> int:
    """How many processes train this run (1 when it runs alone)."""
    return env_int("WORLD_SIZE", "SLURM_NTASKS", default=1)


def process_rank() -> int:
    """This process's rank from the environment (0 when it runs alone), known before any process group exists."""
    if world_size() <= 1:
        return 0
    return env_int("RANK", "SLURM_PROCID", default=0)


def local_rank() -> int:
    return env_int("LOCAL_RANK", "SLURM_LOCALID", default=0)
