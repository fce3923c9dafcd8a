"""Several processes under torchrun / accelerate launch: plain DDP, nccl on GPUs and gloo on CPUs."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist


@dataclass
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def barrier(self) -> None:
        if self.distributed:
            torch_dist.barrier()

    def sum(self, *values: float) -> list[float]:
        """Element-wise sum of `values` over all processes."""
        if not self.distributed:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=_device(self))
        torch_dist.all_reduce(tensor)
        return tensor.tolist()

    def any(self, flag: bool) -> bool:
        return self.sum(1.0 if flag else 0.0)[0] > 0


def _device(world: World) -> torch.device:
    return torch.device(f"cuda:{world.local_rank}") if torch.cuda.is_available() else torch.device("cpu")


def init() -> World:
    """The process group from torchrun's environment; a single process when there is none."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not torch_dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(world.local_rank)
        torch_dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return world


def shutdown(world: World) -> None:
    if world.distributed and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
