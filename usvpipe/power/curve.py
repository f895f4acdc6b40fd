"""The planning curve: power against the number of animals per group, for one effect of a chosen kind and size.

Each experiment of n + n animals draws its animals from the pilot's (pooled over both
groups, split at random into one half per group so no animal is on both sides; without
replacement while a half lasts, then with replacement: :func:`usvpipe.power.search.resampled_animals`),
plants the effect into the second n, and runs the report's test. Resampling animals treats
the pilot's animals as the population, so the curve is as good as the pilot is typical;
beyond the pilot's size each animal is repeated, and repeated animals vary less than new
ones would: the curve is then optimistic.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

from .animal_test import SplitSource
from .params import PowerParams
from .pilot import Pilot
from .search import PowerPoint, planted_power


@dataclass
class PowerCurve:
    """Power at each number of animals per group (``points[i].size`` is n), and the n reaching the target."""

    kind: str
    effect: float
    unit: str
    target: float
    alpha: float
    points: list = field(default_factory=list)
    seconds: float = 0.0
    pilot_animals: int = 0

    @property
    def animals_needed(self) -> Optional[int]:
        """The smallest n of the curve whose power reaches the target (None: none of them)."""
        return next((int(p.size) for p in self.points if p.power >= self.target), None)


def search_size(kind: str, effect: float, pilot: Pilot) -> float:
    """The effect in the search unit of the design: pitch kHz -> whole image rows."""
    if kind == "pitch":
        if not pilot.rows_per_khz:
            raise ValueError("pitch needs the images' frequency axis")
        return float(round(effect * pilot.rows_per_khz))
    return float(effect)


def power_curve(pilot: Pilot, kind: str = "pitch", effect: float = 3.0, params: PowerParams = PowerParams(), *,
                animals=None, design=None) -> PowerCurve:
    """Power of the report's test against animals per group for an effect of ``kind`` and size ``effect``
    (pitch in kHz, rounded to whole image rows; duration in %; usage in percentage points)."""
    from .designs import make_design
    from .sensitivity import SEARCH

    t0 = time.perf_counter()
    counts = tuple(animals) if animals is not None else params.animal_counts()
    design = design or make_design(pilot, kind, n_clusters=params.n_clusters, seed=params.seed)
    size = search_size(kind, effect, pilot)
    curve = PowerCurve(kind, size / pilot.rows_per_khz if kind == "pitch" else size, SEARCH[kind][0], params.power,
                       pilot.mmd.alpha, pilot_animals=pilot.k)
    for n in counts:
        splits = SplitSource(2 * n, n, max_exact_splits=params.max_exact_splits, permutations=params.permutations)
        p = planted_power(design, size, k_a=n, k_b=n, pilot_k=pilot.k, alpha=pilot.mmd.alpha, draws=params.draws,
                          seed=params.seed, splits=splits, statistic=pilot.mmd.statistic, resample=True)
        curve.points.append(PowerPoint(float(n), p.power, p.draws))
    curve.seconds = time.perf_counter() - t0
    return curve
