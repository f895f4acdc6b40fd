"""The syllables a training run looks at besides its batches, and what it derives from them.

A sample of training syllables sets ``obs_precision="auto"`` and fits the health check's PCA;
a sample of held-out syllables is checked at the end of the run (health, latent axes).
Images are pooled here exactly as :meth:`VAE.prepare` pools them on the device.
"""
from __future__ import annotations

import numpy as np


#: Training syllables sampled to set ``obs_precision="auto"`` and to fit the health check's PCA.
MAX_PCA_SYLLABLES = 4096


def auto_obs_precision(images: np.ndarray, noise_fraction: float) -> float:
    """``1 / (noise_fraction × V)``, ``V`` the images' mean per-pixel variance around their mean image.

    ``images``: ``(n, H, W)`` in [0, 1] at the size the model sees. A store of identical
    images (``V = 0``) gets AVA's 10 rather than an infinite precision.
    """
    var = float(images.reshape(len(images), -1).astype(np.float64).var(axis=0).mean()) if len(images) > 1 else 0.0
    return float(1.0 / (noise_fraction * var)) if var > 0 else 10.0


def _pooled(images: np.ndarray, pool: int) -> np.ndarray:
    """Average-pool ``(n, H, W)`` images by ``pool`` (what :meth:`VAE.prepare` does on the device)."""
    if pool <= 1:
        return images
    n, h, w = images.shape
    return images.reshape(n, h // pool, pool, w // pool, pool).mean(axis=(2, 4), dtype=np.float32)


def end_of_run_check_rows(train_rows: np.ndarray, val_rows: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Up to ``limit`` held-out rows (training rows when nothing is held out) for the end-of-run checks
    (health, latent axes) of a run with training ``seed``; ``scripts/vae_axis_diagnostics.py`` re-draws them."""
    return _sample_rows(val_rows if len(val_rows) else train_rows, limit, seed + 2)


def _sample_rows(rows: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if len(rows) <= limit:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))
