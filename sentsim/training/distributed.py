"""DDP helpers: rank and world size, sharding, and an all-gather that keeps local gradients."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import Tensor


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialized process group, else ``(0, 1)``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_environment() -> bool:
    """Join the process group that ``torchrun`` describes in the environment (NCCL on CUDA, else gloo).

    Returns True when running distributed. Does nothing outside torchrun or when already initialized.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return dist.is_available() and dist.is_initialized()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return True


def gather_batch(*tensors: Tensor | None) -> tuple[Tensor | None, ...]:
    """Every rank's rows of ``tensors`` (the global batch; a None stays None), all-gathered in rank
    order and differentiably: in backward each rank's slice receives the gradients of every rank's
    loss. So a loss that compares examples across the batch (in-batch negatives, ranking, mining)
    sees the global batch, and with DDP's gradient averaging the update equals that of one process
    with the global batch. Every rank must give the same batch size."""
    _, world = rank_and_world()
    if world == 1:
        return tensors
    first = next(tensor for tensor in tensors if tensor is not None)
    sizes = [torch.zeros(1, dtype=torch.long, device=first.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([len(first)], device=first.device))
    if len({int(size) for size in sizes}) > 1:  # all_gather needs equal shapes (gloo aborts, NCCL may hang)
        raise ValueError(f"every DDP rank must give the same batch size; got {[int(s) for s in sizes]}")
    return tuple(None if tensor is None else _gather(tensor, world) for tensor in tensors)


def _gather(tensor: Tensor, world: int) -> Tensor:
    if not tensor.is_floating_point():
        pieces = [torch.empty_like(tensor) for _ in range(world)]
        dist.all_gather(pieces, tensor.contiguous())
        return torch.cat(pieces)
    return _AllGather.apply(tensor)


class _AllGather(torch.autograd.Function):
    """All-gather with gradients (``torch.distributed.nn``'s is deprecated): backward sums every
    rank's gradient of the gathered rows and gives each rank those of its own rows."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:
        ctx.rank, ctx.rows = dist.get_rank(), len(tensor)
        pieces = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(pieces, tensor.contiguous())
        return torch.cat(pieces)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)  # each rank's loss reaches every rank's rows
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]
