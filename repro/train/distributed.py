"""DDP set-up from the usual environment: torchrun (RANK, WORLD_SIZE, LOCAL_RANK) or SLURM / submitit
(SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID). One process per GPU; gloo on CPU, NCCL on GPU."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: torch.nn.Module, device: torch.device, *, find_unused_parameters: bool = False,
             ) -> torch.nn.Module:
        """DDP around ``model``; ``find_unused_parameters`` for a network that skips some of its parameters in a
        step (AutoProg's sub-networks of an elastic supernet)."""
        if self.world == 1:
            return model
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                                         find_unused_parameters=find_unused_parameters)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            t = t.clone()
            dist.all_reduce(t)
        return t

    def all_reduce_mean(self, t: torch.Tensor) -> torch.Tensor:
        return self.all_reduce_sum(t) / self.world if self.world > 1 else t

    def cleanup(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _env_int(*names: str, default: int) -> int:
    for name in names:
        if os.environ.get(name):
            return int(os.environ[name])
    return default


def process_rank() -> int:
    """This process's rank from the environment (0 when it runs alone), known before any process group exists."""
    if _env_int("WORLD_SIZE", "SLURM_NTASKS", default=1) <= 1:
        return 0
    return _env_int("RANK", "SLURM_PROCID", default=0)


def init_distributed() -> Dist:
    world = _env_int("WORLD_SIZE", "SLURM_NTASKS", default=1)
    if world <= 1:
        return Dist()
    rank = process_rank()
    local = _env_int("LOCAL_RANK", "SLURM_LOCALID", default=0)
    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ:  # under SLURM without torchrun: submitit knows the master
            import submitit

            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return Dist(rank, world, local)
