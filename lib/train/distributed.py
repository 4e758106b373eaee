"""Process-group helpers: one code path for a single process and for ``torchrun`` (gloo on CPU, nccl on GPU)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.distributed as dist

#: Environment variables ``torchrun`` sets in every worker process.
TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` processes, its ``device``."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def started_by_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_VARS)


def resolve_device(requested: Optional[str], local_rank: int = 0) -> torch.device:
    """``cuda:<local_rank>`` when CUDA is available (or requested), else the CPU."""
    if requested in (None, "auto"):
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda was requested but CUDA is not available on this machine")
        device = torch.device("cuda", local_rank if device.index is None else device.index)
        torch.cuda.set_device(device)
    return device


def init_distributed(requested_device: Optional[str] = None) -> DistContext:
    """Join the process group when started by torchrun, else a single-process context."""
    if not started_by_torchrun():
        return DistContext(device=resolve_device(requested_device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    device = resolve_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def shutdown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_true(flag: bool, ctx: DistContext) -> bool:
    """True when ``flag`` holds on every rank (one tiny all-reduce)."""
    if not ctx.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item() > 0.5)


def reduce_over_ranks(values: dict[str, float], ctx: DistContext, average: bool = True) -> dict[str, float]:
    """Sum (or average) a dict of floats with the same keys on every rank over the ranks."""
    if not ctx.distributed or not values:
        return dict(values)
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor)
    scale = 1.0 / ctx.world_size if average else 1.0
    return {k: v * scale for k, v in zip(keys, tensor.tolist())}


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj``, in rank order (a one-element list in a single process)."""
    if not ctx.distributed:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()
