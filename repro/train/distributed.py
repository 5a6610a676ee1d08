"""DDP set-up from the usual environment: torchrun (RANK, WORLD_SIZE, LOCAL_RANK) or SLURM / submitit
(SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID). One process per GPU; gloo on CPU, NCCL on GPU."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from repro.train.world import local_rank, process_rank, world_size

__all__ = ["Dist", "init_distributed", "process_rank", "world_size"]


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


def init_distributed() -> Dist:
    world = world_size()
    if world <= 1:
        return Dist()
    rank, local = process_rank(), local_rank()
    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ:  # under SLURM without torchrun: submitit knows the master
            import submitit

            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return Dist(rank, world, local)
