"""Checkpoint files: the format of ``model.pt`` and ``checkpoint.pt``, written atomically and read on the CPU.

``save_checkpoint`` writes through a temporary file and a rename, so a job killed mid-write
never leaves half a file; ``load_checkpoint`` loads with ``weights_only=True`` (no code runs on
load). The random-number states of a process are stored as plain lists so that a checkpoint
resumes the uninterrupted run exactly.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from .._io import atomic_path
from ..errors import InputFileError

CHECKPOINT_FORMAT = "usvpipe-vae"
CHECKPOINT_VERSION = 1
MODEL_NAME = "model.pt"
CHECKPOINT_NAME = "checkpoint.pt"


def _cpu_state(state):
    import torch

    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: _cpu_state(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_cpu_state(v) for v in state)
    return state


def save_checkpoint(obj: dict, path) -> Path:
    """``torch.save`` to a temporary file, then rename (a killed job never leaves half a file)."""
    import torch

    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def load_checkpoint(path) -> dict:
    """Load a checkpoint/model file on the CPU (``weights_only``: no code runs on load)."""
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / MODEL_NAME
    if not path.is_file():
        raise InputFileError(path, "model file not found", "pass OUT_DIR/model.pt written by `usvpipe train`")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, not a torch file, ...
        raise InputFileError(path, f"not a readable usvpipe model ({type(exc).__name__})", "re-run `usvpipe train`") from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise InputFileError(path, "not a usvpipe VAE checkpoint", "pass OUT_DIR/model.pt written by `usvpipe train`")
    return obj


def _rng_state(device) -> dict:
    import torch

    st = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        # plain lists/ints so the file loads with weights_only=True
        "numpy": [st[0], st[1].tolist(), int(st[2]), int(st[3]), float(st[4])],
        "python": _py_state_to_list(random.getstate()),
    }


def _py_state_to_list(state):
    return [state[0], list(state[1]), state[2]]


def _set_rng_state(state: dict, device) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    n = state["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
