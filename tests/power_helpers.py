"""A small synthetic pilot for the power tests: rendered call images and a fixed, cheap representation."""
from __future__ import annotations

import numpy as np

from usvpipe.mmd.params import MMDParams
from usvpipe.power.pilot import build_pilot
from usvpipe.power.planting import rows_per_khz
from usvpipe.synth import render_call_images, sample_calls

SHAPE = (32, 32)
BAND_HZ = (30_000.0, 110_000.0)


def features(images: np.ndarray) -> np.ndarray:
    """A representation that sees pitch (row centroid), spread and width, plus 6 fixed random projections."""
    n, h, w = images.shape
    mass = images.sum(axis=(1, 2)) + 1e-6
    rows = (images.sum(axis=2) * np.arange(h)).sum(axis=1) / mass / h
    cols = images.sum(axis=1)
    width = (cols > 0.05 * cols.max(axis=1, keepdims=True)).mean(axis=1)
    proj = np.random.default_rng(123).normal(size=(h * w, 6)) / np.sqrt(h * w)
    return np.column_stack([4 * rows, 4 * width, images.reshape(n, -1) @ proj])


def synthetic_syllables(animals_per_group: int = 6, calls: int = 30, seed: int = 0, animal_sd: float = 0.3):
    """(images, animals, groups, mean frequency kHz) of two groups with no difference between them."""
    rng = np.random.default_rng(seed)
    images, animals, groups, freq = [], [], [], []
    for g in ("A", "B"):
        for i in range(animals_per_group):
            offset = rng.normal(0, animal_sd, 6)
            table = sample_calls(calls, seed=rng, animal_offset=offset)
            images.append(render_call_images(table, shape=SHAPE, seed=rng))
            animals += [f"{g}{i}"] * calls
            groups += [g] * calls
            freq.append((table["start_freq_hz"] + table["end_freq_hz"]).to_numpy() / 2e3)
    return np.concatenate(images), np.array(animals), np.array(groups), np.concatenate(freq)


def synthetic_pilot(animals_per_group: int = 6, calls: int = 30, seed: int = 0, **kw):
    images, animals, groups, freq = synthetic_syllables(animals_per_group, calls, seed)
    return build_pilot(images, animals, groups, features, a="A", b="B", mmd=MMDParams(),
                       rows_per_khz=rows_per_khz(*BAND_HZ, SHAPE[0]), time_stretch=False, mean_freq_khz=freq, **kw)
