"""DistributedDataParallel set-up for runs started by ``torchrun``; a no-op for one process.

``torchrun`` sets RANK, WORLD_SIZE and LOCAL_RANK; with them, the process group uses NCCL on GPUs
and gloo on CPUs, so multi-GPU, multi-node and a 2-process CPU test all run the same code.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def wrap(self, model: nn.Module) -> nn.Module:
        if not self.active:
            return model
        on_gpu = next(model.parameters()).device.type == "cuda"
        return DistributedDataParallel(model, device_ids=[self.local_rank] if on_gpu else None)

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's contiguous slice of a global batch (rows split evenly)."""
        size = batch.shape[0] // self.world_size
        return batch[self.rank * size:(self.rank + 1) * size]

    def no_sync(self, model: nn.Module, sync: bool) -> contextlib.AbstractContextManager[Any]:
        """Skips DDP's gradient all-reduce on micro-batches before the last one."""
        if self.active and not sync and isinstance(model, DistributedDataParallel):
            return model.no_sync()
        return contextlib.nullcontext()

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def setup_distributed() -> DistributedContext:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistributedContext()
    context = DistributedContext(rank=int(os.environ["RANK"]), world_size=world,
                                 local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        use_nccl = torch.cuda.is_available() and dist.is_nccl_available()
        if use_nccl:
            torch.cuda.set_device(context.local_rank)
        dist.init_process_group(backend="nccl" if use_nccl else "gloo")
    return context


def teardown_distributed(context: DistributedContext) -> None:
    if context.active and dist.is_initialized():
        dist.destroy_process_group()
