"""Data-parallel training with torchrun: PyTorch's own DistributedDataParallel.

    torchrun --nproc_per_node 2 -m hr_lstm.train --model lstm --device cpu ...
    torchrun --nnodes 2 --node_rank 0 --master_addr HOST --nproc_per_node 8 -m hr_lstm.train --device cuda ...

torchrun sets WORLD_SIZE / RANK / LOCAL_RANK; without them everything here is
a no-op and training runs as one process. NCCL on GPUs, gloo on CPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def detect() -> DistEnv:
    return DistEnv(
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        rank=int(os.environ.get("RANK", 0)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def setup(env: DistEnv, device: torch.device) -> torch.device:
    """Join the process group; on GPUs each process takes the card of its local rank."""
    if not env.enabled:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def barrier(env: DistEnv) -> None:
    if env.enabled and dist.is_initialized():
        dist.barrier()


def all_sum(env: DistEnv, *tensors: torch.Tensor) -> list[torch.Tensor]:
    """Sum each tensor over all processes (epoch metrics), in one collective."""
    if not env.enabled:
        return list(tensors)
    packed = torch.stack([t.float() for t in tensors])
    dist.all_reduce(packed, op=dist.ReduceOp.SUM)
    return list(packed.unbind())


def teardown(env: DistEnv) -> None:
    if env.enabled and dist.is_initialized():
        dist.destroy_process_group()
