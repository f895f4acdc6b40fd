"""One planted design per kind of difference: the cell sums of a planted effect size and the weights of an experiment.

A design answers two questions for an effect ``size``:

- :meth:`sums` — the kernel sums between cells (computed once per size);
- :meth:`weights` — for the animals of one experiment (which pilot animal each is, and
  whether it carries the planted effect), the weight of every cell (rows sum to 1).

Pitch and duration: cell ``i`` is pilot animal i as recorded, cell ``k + i`` the same
animal with the effect planted in its images and re-encoded. Usage: cell ``i·C + c`` is
animal i's syllables in latent cluster c; an animal's weights are its cluster shares,
those of a planted animal moved towards one cluster (chosen at random per experiment).
"""
from __future__ import annotations

import numpy as np

from .animal_test import CellSums, cell_sums
from .pilot import Pilot
from .planting import shift_pitch, stretch_duration, usage_shares


class ImageDesign:
    """Pitch (``size`` in image rows, whole) or duration (``size`` in %, the calls drawn longer)."""

    def __init__(self, pilot: Pilot, kind: str):
        if kind == "pitch" and not pilot.rows_per_khz:
            raise ValueError("pitch needs the images' frequency axis (rows_per_khz)")
        self.pilot, self.kind = pilot, kind
        self._cache: dict = {}

    def planted_images(self, size: float) -> np.ndarray:
        if self.kind == "pitch":
            return shift_pitch(self.pilot.images, int(round(size)))
        return stretch_duration(self.pilot.images, 1.0 + size / 100.0, time_stretch=self.pilot.time_stretch)

    def sums(self, size: float) -> CellSums:
        if size not in self._cache:
            p = self.pilot
            planted = p.latents if size == 0 else np.asarray(p.encoder(self.planted_images(size)), dtype=np.float64)
            Z = np.vstack([p.latents, planted])
            cells = np.r_[p.animal, p.animal + p.k]
            # The report's test takes its bandwidth from the data it tests; an experiment's data are half
            # planted, like this stack, so the rule is applied to the stack (the same value at size 0).
            self._cache = {size: cell_sums(Z, cells, 2 * p.k, p.bandwidths(Z), p.mmd)}  # one size held at a time
        return self._cache[size]

    def weights(self, pilot_animals: np.ndarray, planted: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        V = np.zeros((len(pilot_animals), 2 * self.pilot.k))
        V[np.arange(len(pilot_animals)), pilot_animals + self.pilot.k * planted.astype(int)] = 1.0
        return V


class UsageDesign:
    """Usage of one latent-space region: ``size`` percentage points of use moved into one k-means cluster."""

    def __init__(self, pilot: Pilot, bandwidths, n_clusters: int, seed: int):
        from sklearn.cluster import KMeans

        p = pilot
        n_clusters = min(n_clusters, len(p.latents))
        self.pilot, self.C = p, n_clusters
        labels = KMeans(n_clusters, n_init=4, random_state=seed).fit_predict(p.latents)
        cells = p.animal * n_clusters + labels
        self._sums = cell_sums(p.latents, cells, p.k * n_clusters, bandwidths, p.mmd)
        counts = self._sums.counts.reshape(p.k, n_clusters)
        self.shares = counts / counts.sum(axis=1, keepdims=True)
        self.labels = labels
        self.size = 0.0

    def sums(self, size: float) -> CellSums:
        self.size = float(size)  # the cells do not change with the size: only the weights do
        return self._sums

    def weights(self, pilot_animals: np.ndarray, planted: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cluster = int(rng.integers(self.C))
        shares = self.shares[pilot_animals].copy()
        if planted.any():
            shares[planted] = usage_shares(shares[planted], cluster, self.size)
        V = np.zeros((len(pilot_animals), self.pilot.k * self.C))
        for row, (animal, s) in enumerate(zip(pilot_animals, shares)):
            V[row, animal * self.C:(animal + 1) * self.C] = s
        return V


def make_design(pilot: Pilot, kind: str, *, n_clusters: int = 6, seed: int = 0):
    """The planted design of ``kind`` (``pitch``, ``duration`` or ``usage``) on ``pilot``."""
    if kind in ("pitch", "duration"):
        return ImageDesign(pilot, kind)
    if kind == "usage":  # re-weighting moves no point: the pilot's own bandwidth
        return UsageDesign(pilot, pilot.bandwidths(), n_clusters, seed)
    raise ValueError(f"unknown kind {kind!r}")
