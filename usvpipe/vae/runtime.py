"""Where a training process runs: torchrun's environment, the device and process group, mixed precision,
and the torch backend switches.

Every process of a distributed run (launched by ``torchrun``: ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``
in the environment) enters :func:`_process_context`; NCCL on CUDA, gloo on CPU.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from .._device import resolve_device
from ..errors import ConfigError
from .params import TrainParams


def distributed_env(environ=None) -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` if absent)."""
    env = os.environ if environ is None else environ
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ConfigError("RANK/WORLD_SIZE/LOCAL_RANK are not integers (fix: launch with torchrun or unset them)") from None
    return rank, world, local


def resolve_amp(amp: str, device):
    """The autocast dtype for ``amp`` on ``device`` (``None`` = full precision)."""
    import torch

    if amp == "off":
        return None
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "fp16":
        if device.type != "cuda":
            raise ConfigError("amp=fp16 needs a CUDA device (fix: use amp=bf16 or amp=off on CPU/MPS)")
        return torch.float16
    return torch.bfloat16


def _amp_name(dtype) -> str:
    import torch

    return {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def _has_fused_adam(device) -> bool:
    """Whether torch's fused Adam runs on ``device``: CUDA, and CPUs from torch 2.4 on.

    One fused kernel per step instead of a Python loop over the parameters; on a CPU that is
    about 5x less time in Adam (0.89 vs 4.78 ms per step for the demo's model,
    scripts/bench/cpu_overheads.py; the loop was ~9 % of a demo run in py-spy). The project
    allows torch >= 2.1, whose CPU Adam refuses ``fused=True``.
    """
    import torch

    if device.type == "cuda":
        return True
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    return device.type == "cpu" and (major, minor) >= (2, 4)


@dataclass
class _Context:
    """Where this process trains: rank/world from torchrun, the device, the process group."""

    rank: int
    world: int
    device: "object"
    dist: "object" = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_sum(self, t):
        if self.dist is not None:
            self.dist.all_reduce(t)
        return t

    def barrier(self):
        if self.dist is not None:
            self.dist.barrier()


@contextlib.contextmanager
def _process_context(device: str):
    """Resolve the device and, under torchrun, join (and finally leave) the process group."""
    import torch

    rank, world, local_rank = distributed_env()
    dev = resolve_device(device, local_rank)
    dist = None
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            if dev.type == "cuda":
                torch.cuda.set_device(dev)
            dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    try:
        yield _Context(rank, world, dev, dist)
    finally:
        if dist is not None and dist.is_initialized():
            dist.destroy_process_group()


def _configure_backends(params: TrainParams, dev) -> None:
    import torch

    if params.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
