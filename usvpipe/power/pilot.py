"""The pilot: the user's own syllables, animals and representation, validated once, that effects are planted into."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..errors import UsvpipeError
from ..mmd.params import MMDParams

#: images (n, H, W) float32 in [0, 1] -> latents (n, d)
Encoder = Callable[[np.ndarray], np.ndarray]


@dataclass
class Pilot:
    """Everything the planted experiments are made of.

    Attributes
    ----------
    images : (N, H, W) float32 in [0, 1], frequency increasing with the row.
    animal : (N,) int, the animal (0..k-1) of each syllable.
    animal_names : list of str, and ``animal_group`` (k,) the real group of each animal.
    groups : (a, b), the two groups the report compared.
    latents : (N, d), the images encoded by ``encoder`` (the representation the test sees).
    encoder : callable encoding planted images the same way.
    rows_per_khz : image rows per kHz (None: pitch cannot be planted).
    time_stretch : whether the store draws a call's width as sqrt(duration) (AVA's mouse setting).
    sd_mean_freq_khz : between-animal SD of the animals' mean frequency, pooled within groups (kHz).
    measures : per-animal classical measures (one row per animal, in ``animal_names`` order), or None.
    mmd : the report's test parameters (kernel, bandwidth rule, statistic, α).
    source : where the pilot came from (for messages).
    """

    images: np.ndarray
    animal: np.ndarray
    animal_names: list
    animal_group: np.ndarray
    groups: tuple
    latents: np.ndarray
    encoder: Encoder
    rows_per_khz: Optional[float] = None
    time_stretch: bool = True
    sd_mean_freq_khz: Optional[float] = None
    measures: object = None
    mmd: MMDParams = field(default_factory=MMDParams)
    source: str = "<pilot>"

    @property
    def k(self) -> int:
        return len(self.animal_names)

    @property
    def design(self) -> tuple[int, int]:
        """Animals in the report's two groups ``(k_a, k_b)``."""
        a, b = self.groups
        return int(np.sum(self.animal_group == a)), int(np.sum(self.animal_group == b))

    def bandwidths(self, latents: Optional[np.ndarray] = None) -> list:
        """The report's bandwidth rule applied to ``latents`` (default: the pilot's own)."""
        from ..mmd.bandwidth import _resolve_bandwidths

        Z = self.latents if latents is None else latents
        return list(_resolve_bandwidths(Z - Z.mean(axis=0), self.mmd)[0])


def subsample_per_animal(animal: np.ndarray, at_most: int, seed: int) -> np.ndarray:
    """Sorted row indices keeping at most ``at_most`` rows of each animal (seeded)."""
    rng = np.random.default_rng(seed)
    keep = []
    for a in np.unique(animal):
        idx = np.flatnonzero(animal == a)
        keep.append(np.sort(rng.choice(idx, at_most, replace=False)) if idx.size > at_most else idx)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, int)


def build_pilot(images, animals, groups_of_syllables, encoder: Encoder, *, a: str, b: str, mmd: MMDParams = MMDParams(),
                rows_per_khz: Optional[float] = None, time_stretch: bool = True, mean_freq_khz=None, measures=None,
                max_per_animal: int = 300, seed: int = 0, source: str = "<pilot>") -> Pilot:
    """Validate the syllables of groups ``a`` and ``b`` into a :class:`Pilot` (every input error raised here).

    ``images`` (N, H, W) in [0, 1]; ``animals`` and ``groups_of_syllables`` (N,) labels;
    ``mean_freq_khz`` (N,) optional per-syllable mean frequency, for the SD unit of pitch;
    ``measures``: per-animal measures table with an ``animal`` column (optional).
    """
    images = np.asarray(images)
    animals = np.asarray(animals).astype(str)
    g = np.asarray(groups_of_syllables).astype(str)
    if images.ndim != 3 or len(images) != len(animals) or len(animals) != len(g):
        raise UsvpipeError(source, f"images {images.shape} and labels ({len(animals)}, {len(g)}) do not match",
                           "pass one image, animal and group per syllable")
    sel = np.flatnonzero((g == a) | (g == b))
    mixed = sorted(set(animals[g == a]) & set(animals[g == b]))
    if mixed:
        raise UsvpipeError(source, f"animal(s) {', '.join(mixed[:5])} appear in both groups {a!r} and {b!r}",
                           "animals must be nested in groups; fix the metadata")
    names = sorted(set(animals[sel]))
    code = {n: i for i, n in enumerate(names)}
    animal_group = np.array([g[sel][animals[sel] == n][0] for n in names])
    k_a, k_b = int(np.sum(animal_group == a)), int(np.sum(animal_group == b))
    if min(k_a, k_b) < 2:
        raise UsvpipeError(source, f"{k_a} vs {k_b} animals in groups {a!r} and {b!r}",
                           "the sensitivity of an animal-level test needs at least 2 animals per group")
    codes = np.array([code[x] for x in animals[sel]])
    keep = sel[subsample_per_animal(codes, max_per_animal, seed)]
    codes = np.array([code[x] for x in animals[keep]])
    imgs = np.asarray(images[keep], dtype=np.float32)
    if imgs.max(initial=0) > 1.0 + 1e-6:
        imgs = imgs / 255.0
    Z = np.asarray(encoder(imgs), dtype=np.float64)
    if Z.ndim != 2 or len(Z) != len(imgs) or not np.isfinite(Z).all():
        raise UsvpipeError(source, "the representation gave no finite latent vector per image",
                           "check the model (re-train it if its health check failed)")
    sd = _between_animal_sd(np.asarray(mean_freq_khz, float)[sel], codes_all=np.array([code[x] for x in animals[sel]]),
                            animal_group=animal_group) if mean_freq_khz is not None else None
    table = None
    if measures is not None:
        table = measures.assign(animal=measures["animal"].astype(str)).set_index("animal").reindex(names)
    return Pilot(imgs, codes, names, animal_group, (a, b), Z, encoder, rows_per_khz, time_stretch, sd, table, mmd,
                 source)


def _between_animal_sd(values, codes_all, animal_group) -> Optional[float]:
    """SD of the animals' mean values around their group's mean (pooled over the two groups)."""
    means = np.array([np.nanmean(values[codes_all == i]) if np.any(codes_all == i) else np.nan
                      for i in range(len(animal_group))])
    resid, dof = [], 0
    for grp in np.unique(animal_group):
        m = means[(animal_group == grp) & np.isfinite(means)]
        if m.size > 1:
            resid.append(m - m.mean())
            dof += m.size - 1
    if dof < 1:
        return None
    sd = float(np.sqrt(np.sum(np.concatenate(resid) ** 2) / dof))
    return sd if sd > 0 else None
