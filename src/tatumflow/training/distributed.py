"""Joining the process group ``torchrun`` describes, for ``tatumflow train``."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from .config import ConfigError

#: What ``torchrun`` sets in each process's environment.
TORCHRUN_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@contextmanager
def process_group_from_env(device: str = "auto") -> Iterator[None]:
    """Inside ``torchrun`` (``WORLD_SIZE`` > 1) join its process group for the
    duration (NCCL with each process on the GPU of its ``LOCAL_RANK``, gloo on the
    CPU) and leave it after. A single process, or one whose caller already joined
    a group, runs as it is."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE") or 1)
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        yield
        return
    if not dist.is_available():
        raise ConfigError(f"WORLD_SIZE={world} but this PyTorch has no torch.distributed")
    missing = [k for k in TORCHRUN_ENV if not os.environ.get(k)]
    if missing:
        raise ConfigError(f"WORLD_SIZE={world} but {', '.join(missing)} not set: launch multi-process "
                          "training with torchrun")
    cuda = not device.startswith(("cpu", "mps")) and torch.cuda.is_available()
    if cuda and ":" in device:
        raise ConfigError(f"train.device={device} under torchrun: give cuda or auto, each process takes "
                          "the GPU of its LOCAL_RANK")
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()
