"""One process or many: the run's place among torchrun's processes.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the process
group is started with NCCL on CUDA and gloo otherwise, each process takes the
GPU of its ``LOCAL_RANK``, and the model is wrapped in
DistributedDataParallel by the trainer. Alone, every helper here is a no-op,
so the trainer has a single code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as td

from ..engines.device import select_device

__all__ = ["Dist", "setup", "teardown"]


@dataclass
class Dist:
    """This process's rank, the number of processes, and its device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Only the main process writes checkpoints and logs and validates."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            td.barrier()

    def any(self, flags: list[bool]) -> list[bool]:
        """Each flag, true when it is true on any process (all stop at the same step)."""
        if not self.active:
            return flags
        t = torch.tensor([float(f) for f in flags], device=self._collective_device)
        td.all_reduce(t, op=td.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean of a tensor over the processes."""
        if not self.active:
            return values
        t = values.detach().to(self._collective_device, torch.float64).clone()
        td.all_reduce(t)
        return t / self.world

    def gather(self, value: torch.Tensor) -> torch.Tensor:
        """Every process's ``value`` concatenated (all the same shape)."""
        if not self.active:
            return value
        t = value.detach().to(self._collective_device)
        out = [torch.empty_like(t) for _ in range(self.world)]
        td.all_gather(out, t)
        return torch.cat(out)

    def gather_objects(self, value: Any) -> list[Any]:
        if not self.active:
            return [value]
        out: list[Any] = [None] * self.world
        td.all_gather_object(out, value)
        return out

    @property
    def _collective_device(self) -> torch.device:
        # NCCL only moves CUDA tensors; gloo only CPU ones.
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def setup(device: str | None = None) -> Dist:
    """Join torchrun's process group when there is one, and pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=select_device(device))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    wanted = select_device(device)
    if wanted.type == "cuda":
        wanted = torch.device("cuda", local_rank)
        torch.cuda.set_device(wanted)
    elif wanted.type == "cpu":
        # The processes share the cores: don't let each start a thread per core.
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, local_world)))
    if not td.is_initialized():
        td.init_process_group("nccl" if wanted.type == "cuda" else "gloo")
    return Dist(rank=rank, world=world, local_rank=local_rank, device=wanted)


def teardown(dist: Dist) -> None:
    if dist.active and td.is_initialized():
        td.destroy_process_group()
