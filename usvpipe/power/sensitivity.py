"""The minimum detectable effect of a design, for each kind of difference (the Python API's core).

For each kind and effect size: split the pilot's animals at random into two pseudo-groups
of the report's sizes, plant the effect into one of them, and run the report's
animal-level test at the report's α; the power is the share of such experiments whose
test rejects. The pseudo-groups are drawn from the pooled animals of both real groups: the
test did not reject, so they are the best estimate of the animals under no difference,
and if a real difference hides in them it only widens the pseudo-groups' spread, so the
MDE errs on the large side.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .animal_test import SplitSource
from .params import PowerParams
from .pilot import Pilot
from .search import MDE, PowerPoint, bracket_and_bisect, interpolate_mde, planted_power

#: kind -> (unit, first effect size tried in the search unit, whole steps only)
SEARCH = {
    "pitch": ("kHz", 1.0, True),  # searched in image rows, reported in kHz
    "duration": ("%", 5.0, False),
    "usage": ("percentage points", 2.5, False),
}


@dataclass
class Sensitivity:
    """What a design could have detected: one :class:`MDE` per latent kind, and per classical measure."""

    groups: tuple
    n_animals: dict
    n_syllables: int
    alpha: float
    target: float
    latent: list = field(default_factory=list)
    measures: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    seconds: float = 0.0
    notes: list = field(default_factory=list)

    def get(self, kind: str) -> Optional[MDE]:
        return next((m for m in self.latent if m.kind == kind), None)


def _splits(pilot: Pilot, params: PowerParams, k_a: int, k_b: int) -> SplitSource:
    return SplitSource(k_a + k_b, k_a, max_exact_splits=params.max_exact_splits, permutations=params.permutations)


def minimum_detectable_effect(pilot: Pilot, kind: str = "pitch", params: PowerParams = PowerParams(), *,
                              design=None) -> MDE:
    """The smallest effect of ``kind`` (``pitch`` in kHz, ``duration`` in %, ``usage`` in percentage
    points) that the pilot's design detects with power ``params.power`` at the report's α."""
    from .designs import make_design

    t0 = time.perf_counter()
    unit, first, integer = SEARCH[kind]
    design = design or make_design(pilot, kind, n_clusters=params.n_clusters, seed=params.seed)
    k_a, k_b = pilot.design
    splits = _splits(pilot, params, k_a, k_b)

    def power_at(size: float) -> PowerPoint:
        return planted_power(design, size, k_a=k_a, k_b=k_b, pilot_k=pilot.k, alpha=pilot.mmd.alpha,
                             draws=params.draws, seed=params.seed, splits=splits, statistic=pilot.mmd.statistic)

    largest = {"pitch": pilot.images.shape[1] // 2, "usage": 100.0}.get(kind, np.inf)
    points = bracket_and_bisect(power_at, first=first, target=params.power, bracket_steps=params.bracket_steps,
                                bisection_steps=params.bisection_steps, integer=integer, largest=largest)
    value, se = interpolate_mde(points, params.power, params.draws)
    sd = None
    if kind == "pitch":  # rows -> kHz
        scale = 1.0 / pilot.rows_per_khz
        points = [dataclasses.replace(p, size=p.size * scale) for p in points]
        value = None if value is None else value * scale
        se = None if se is None else se * scale
        sd = pilot.sd_mean_freq_khz
    return MDE(kind, unit, params.power, value, se, points, time.perf_counter() - t0, sd)


def sensitivity(pilot: Pilot, params: PowerParams = PowerParams()) -> Sensitivity:
    """Every kind of ``params.kinds`` that the pilot allows (pitch needs a frequency axis, measures a table)."""
    from ..config import params_to_dict
    from .classical import measures_mde

    t0 = time.perf_counter()
    k_a, k_b = pilot.design
    out = Sensitivity(pilot.groups, {pilot.groups[0]: k_a, pilot.groups[1]: k_b}, int(len(pilot.latents)),
                      pilot.mmd.alpha, params.power, params=params_to_dict(params))
    for kind in params.kinds:
        if kind == "measures":
            if pilot.measures is not None:
                out.measures = measures_mde(pilot.measures, pilot.animal_group, pilot.groups[0], alpha=pilot.mmd.alpha,
                                            target=params.power, draws=params.draws, seed=params.seed,
                                            bracket_steps=params.bracket_steps, bisection_steps=params.bisection_steps,
                                            max_exact_splits=params.max_exact_splits, permutations=params.permutations)
            else:
                out.notes.append("classical measures: no per-animal table, not estimated")
        elif kind == "pitch" and not pilot.rows_per_khz:
            out.notes.append("pitch: the images' frequency axis is unknown, not estimated")
        else:
            out.latent.append(minimum_detectable_effect(pilot, kind, params))
    out.seconds = time.perf_counter() - t0
    return out
