"""POISE-VAE: multimodal VAE with private latent spaces and a coupled, identifiable prior.

Two paired modalities ``x`` (e.g. video frames) and ``x'`` (e.g. USV syllable spectrograms)
get private latents ``z`` and ``z'``; the prior couples them through ``z.z'`` and ``z^2.z'^2``
terms, the posterior is a product of experts in natural-parameter space, and expectations
come from vectorised block-Gibbs sampling. Baselines (MVAE, MMVAE, independent VAEs) share
the same networks. See ``docs/poise.md``.

Public API (torch is imported on first use)::

    from usvpipe.poise import PoiseParams, train_poise, load_poise, cross_generate
"""
from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "PoiseParams": "usvpipe.poise.params",
    "PoiseVAE": "usvpipe.poise.model",
    "GaussianMultiVAE": "usvpipe.poise.model",
    "train_poise": "usvpipe.poise.api",
    "load_poise": "usvpipe.poise.api",
    "save_poise": "usvpipe.poise.api",
    "PoiseRun": "usvpipe.poise.api",
    "encode": "usvpipe.poise.api",
    "reconstruct": "usvpipe.poise.api",
    "cross_generate": "usvpipe.poise.api",
    "joint_generate": "usvpipe.poise.api",
    "traverse": "usvpipe.poise.api",
    "image_grid": "usvpipe.poise.api",
    "PairedData": "usvpipe.poise.data",
    "load_pairs": "usvpipe.poise.data",
    "save_pairs": "usvpipe.poise.data",
    "make_identifiability_data": "usvpipe.poise.data",
    "make_video_audio": "usvpipe.poise.data",
    "make_digits_gaussians": "usvpipe.poise.data",
    "mean_corr_coef": "usvpipe.poise.data",
}
__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
