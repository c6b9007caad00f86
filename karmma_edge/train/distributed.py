"""Multi-process training through torchrun: process group, device, batch sharding (DESIGN section 1).

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; without them every helper here degrades to a single
process, so the same loop runs under `python` and under `torchrun --nproc-per-node N`.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def setup() -> torch.device:
    """Join the torchrun process group when launched by torchrun; the device this process trains on."""
    cuda = torch.cuda.is_available()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def default_threads() -> int:
    """CPU threads per process: the cores shared evenly among the processes.

    Oversubscribed intra-op threads spin against each other; on a machine busy with other jobs, set
    `threads:` in the config lower (on a busy 2-core machine one thread trained faster than two).
    """
    return max(1, (os.cpu_count() or 1) // world_size())


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP around the model when several processes train; the model itself otherwise."""
    if not dist.is_initialized():
        return model
    from torch.nn.parallel import DistributedDataParallel

    # Dropped modalities are selected with torch.where, so every parameter is in every graph.
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def main_first(fn):
    """fn() on the main process first, then on the others: it fills the disk caches they then read."""
    if is_main():
        result = fn()
        barrier()
        return result
    barrier()
    return fn()


def shard(x):
    """This process's share of a global batch (index array or per-sample tensor)."""
    return x[rank()::world_size()]
