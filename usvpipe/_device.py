"""One device resolver for every torch stage (VAE, MMD, POISE).

Importable without torch: torch is imported when a device is resolved, and a missing
torch counts as "no GPU" for the availability checks.
"""
from __future__ import annotations

from typing import Sequence

from .errors import ConfigError

DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU (False without torch)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def mps_available() -> bool:
    """Whether torch sees Apple's MPS device (False without torch)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and bool(mps.is_available())


def resolve_device(name="auto", local_rank: int = 0, *, auto_order: Sequence[str] = ("cuda", "mps")):
    """The ``torch.device`` for a device name.

    Parameters
    ----------
    name : str or torch.device
        ``"auto"`` (the first available of ``auto_order``, else the CPU), ``"cpu"``,
        ``"cuda"`` (GPU ``local_rank`` modulo the GPUs visible, as under torchrun),
        ``"cuda:N"`` or ``"mps"``. A ``torch.device`` is returned unchanged.
    local_rank : int
        Process rank on this node (torchrun's ``LOCAL_RANK``); picks the GPU for ``"cuda"``.
    auto_order : sequence of {"cuda", "mps"}
        Accelerators ``"auto"`` may choose, in order of preference. Stages that need
        float64 on the device (the MMD) leave MPS out.

    Raises
    ------
    ConfigError
        An unknown name, or an accelerator that is not available (message: what, fix).
    """
    import torch

    if isinstance(name, torch.device):
        return name
    name = str(name or "auto").lower()
    if name == "auto":
        available = {"cuda": cuda_available, "mps": mps_available}
        name = next((d for d in auto_order if available[d]()), "cpu")
    if name.startswith("cuda"):
        if not cuda_available():
            raise ConfigError("--device cuda", "no CUDA GPU is visible to torch", "use --device cpu or auto")
        if name == "cuda":
            return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        try:
            return torch.device(name)
        except RuntimeError:
            raise ConfigError(f"--device {name!r}", "not a device name", "use cuda or cuda:N with N a GPU index") from None
    if name == "mps":
        if not mps_available():
            raise ConfigError("--device mps", "Apple MPS is not available", "use --device cpu or auto")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"--device {name!r}", "unknown device", f"use one of {', '.join(DEVICE_NAMES)}")
