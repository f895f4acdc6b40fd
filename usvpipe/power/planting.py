"""Planting an effect of known size into syllables: pure functions, images in, images (or weights) out.

Pitch and duration are planted where they live, in the syllable images, with the moves the
training jitter already makes (:mod:`usvpipe.vae.augment`): a pitch shift moves every call
up by whole image rows (an exact index gather: nothing but the call's position changes); a
duration change draws the call wider around its centre. The planted images are then
encoded with the trained model, so the planted difference reaches the test the way a real
one would: through the representation. Usage is planted by re-weighting each animal's
syllables (the share of one latent-space cluster raised, the others lowered in
proportion); no latent vector is ever moved.
"""
from __future__ import annotations

import math

import numpy as np


def rows_per_khz(min_freq_hz: float, max_freq_hz: float, n_rows: int) -> float:
    """Image rows per kHz for rows linear in frequency from ``min_freq_hz`` (row 0) to ``max_freq_hz``."""
    if not (max_freq_hz > min_freq_hz and n_rows > 1):
        raise ValueError(f"no frequency axis: rows {n_rows}, band {min_freq_hz}-{max_freq_hz} Hz")
    return (n_rows - 1) / ((max_freq_hz - min_freq_hz) / 1e3)


def shift_pitch(images: np.ndarray, rows: int) -> np.ndarray:
    """``images`` ``(n, H, W)`` with every call moved ``rows`` whole rows up in frequency (zeros move in).

    A call within ``rows`` of the top edge loses its top rows, as a real higher call would
    leave the image's band.
    """
    rows = int(rows)
    out = np.zeros_like(images)
    if rows == 0:
        out[...] = images
    elif rows > 0:
        out[:, rows:, :] = images[:, :-rows, :]
    else:
        out[:, :rows, :] = images[:, -rows:, :]
    return out


def image_widening(duration_factor: float, time_stretch: bool) -> float:
    """How much wider a call is drawn when its duration is multiplied by ``duration_factor``.

    With the store's default time stretch a syllable of duration d fills
    ``sqrt(d / max_dur_s)`` of the image width (it is shown over ``sqrt(d * max_dur_s)``
    seconds), so the width grows with the square root of the duration; with a fixed window
    it grows in proportion.
    """
    if duration_factor <= 0:
        raise ValueError(f"duration factor must be > 0, got {duration_factor}")
    return math.sqrt(duration_factor) if time_stretch else float(duration_factor)


def stretch_duration(images: np.ndarray, duration_factor: float, *, time_stretch: bool = True) -> np.ndarray:
    """``images`` ``(n, H, W)`` with every call drawn as if ``duration_factor`` times as long.

    Uses :func:`usvpipe.vae.augment.move_calls` (bilinear resampling around the centre,
    zeros moved in); a factor of 1 returns the images unchanged.
    """
    widen = image_widening(duration_factor, time_stretch)
    if widen == 1.0:
        return images.copy()
    import torch

    from ..vae.augment import move_calls

    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))[:, None]
    n = x.shape[0]
    out = move_calls(x, torch.zeros(n), torch.full((n,), float(widen)))
    return out[:, 0].numpy().astype(images.dtype, copy=False)


def usage_shares(shares: np.ndarray, cluster: int, points: float) -> np.ndarray:
    """Per-animal cluster shares ``(k, C)`` (rows sum to 1) after moving ``points`` percentage points
    of use into ``cluster``.

    The cluster's share becomes ``min(1, share + points / 100)`` and the other clusters
    keep their proportions among themselves. An animal that never used the cluster
    keeps its shares: re-weighting cannot create syllables it does not have (which makes
    the planted effect, and so the power, a little smaller: conservative).
    """
    shares = np.asarray(shares, dtype=np.float64)
    out = shares.copy()
    has = shares[:, cluster] > 0
    new = np.minimum(1.0, shares[:, cluster] + points / 100.0)
    rest = 1.0 - shares[:, cluster]
    scale = np.divide(1.0 - new, rest, out=np.zeros_like(rest), where=rest > 0)
    out[has] = shares[has] * scale[has, None]
    out[has, cluster] = new[has]
    return out
