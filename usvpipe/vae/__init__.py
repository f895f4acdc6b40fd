"""Syllable VAE: training (single GPU/CPU or DDP under torchrun), encoding, decoding.

Public API::

    from usvpipe.vae import TrainParams, train, encode, load_model, decode

    result = train("store/", "vae/", TrainParams(epochs=50))
    latents = encode(result.model_path, "store/", "latents.csv")
    images = decode(load_model(result.model_path), latents.filter(like="z").to_numpy()[:8])

torch is imported on first use of a function, not by ``import usvpipe.vae``.
"""
from __future__ import annotations

from .._lazy import lazy_exports

from .params import TrainParams

_LAZY = {
    "train": "usvpipe.vae.training",
    "TrainResult": "usvpipe.vae.training",
    "encode": "usvpipe.vae.encoding",
    "load_model": "usvpipe.vae.encoding",
    "decode": "usvpipe.vae.encoding",
    "read_latents": "usvpipe.vae.encoding",
    "VAE": "usvpipe.vae.model",
}

__all__ = ["TrainParams", *_LAZY]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
