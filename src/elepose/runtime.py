"""Devices, precision, distributed setup and seeding: the plumbing shared by every loop."""

from __future__ import annotations

import contextlib
import gc
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["Distributed", "pick_device", "autocast", "seed_everything", "setup_distributed", "PRECISIONS"]

PRECISIONS = ("fp32", "bf16")


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present else CPU; ``cpu``; ``cuda`` (error when absent)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available on this machine (use --device cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r}: expected auto, cpu or cuda")
    return torch.device(name)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for ``precision == "bf16"``, a no-op for fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision!r}: expected one of {PRECISIONS}")
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch's global generators (loops use their own generators too)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a ``torchrun`` job (rank 0 of 1 when run plainly)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def all_reduce_mean(self, value: torch.Tensor) -> torch.Tensor:
        """Mean of ``value`` over ranks (identity when not distributed)."""
        if not self.enabled:
            return value
        value = value.clone()
        dist.all_reduce(value)
        return value / self.world_size


@contextlib.contextmanager
def setup_distributed(device: torch.device) -> Iterator[Distributed]:
    """Join the process group when launched by ``torchrun`` (env ``WORLD_SIZE`` > 1).

    Uses NCCL on CUDA and gloo on CPU; on CUDA each rank takes GPU ``LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        yield Distributed()
        return
    rank = int(os.environ["RANK"])
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        yield Distributed(rank=rank, world_size=world_size)
        # Every rank reaches the end before any tears the group down: a gloo peer that closes its
        # sockets while another still talks aborts that one ("terminate called without an active
        # exception", seen once in CI).
        dist.barrier()
    finally:
        gc.collect()  # the caller's DDP wrapper holds the group; free it while the group is alive
        dist.destroy_process_group()
