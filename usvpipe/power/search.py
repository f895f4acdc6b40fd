"""Power at an effect size by Monte Carlo, and the minimum detectable effect by bracketing and bisection.

Every effect size of one search sees the same pseudo-group splits (draw d of every size
uses the seed ``[seed, d]``: common random numbers), so the power rises with the size
without Monte Carlo wiggles between sizes, and a seed gives the same numbers on any machine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .animal_test import SplitSource, rejects


@dataclass
class PowerPoint:
    """Power at one effect size: the share of ``draws`` planted experiments whose test rejected."""

    size: float
    power: float
    draws: int

    @property
    def se(self) -> float:
        """Monte Carlo standard error, sqrt(p (1 - p) / draws)."""
        return math.sqrt(max(self.power * (1 - self.power), 0.0) / self.draws)


@dataclass
class MDE:
    """The smallest planted effect detected with the target power, in the kind's own unit.

    ``value`` is None when even the largest size tried was detected less often than
    ``target`` (``points`` then shows how often); ``se`` is its Monte Carlo standard error
    (the power's error divided by the power curve's slope inside the final bracket).
    """

    kind: str
    unit: str
    target: float
    value: Optional[float]
    se: Optional[float]
    points: list = field(default_factory=list)
    seconds: float = 0.0
    sd: Optional[float] = None  # the kind's SD unit (between animals), when it has one

    @property
    def largest_tried(self) -> PowerPoint:
        return max(self.points, key=lambda p: p.size)


def planted_power(design, size: float, *, k_a: int, k_b: int, pilot_k: int, alpha: float, draws: int, seed: int,
                  splits: SplitSource, statistic: str = "unbiased", resample: bool = False) -> PowerPoint:
    """Share of ``draws`` experiments, each with the effect planted in group B, whose test rejects at ``alpha``.

    Without ``resample`` an experiment splits the pilot's animals at random into k_a + k_b
    pseudo-groups (k_a + k_b = the pilot's animals); with it (the planning curve) see
    :func:`resampled_animals`.
    """
    sums = design.sums(size)
    hits = 0
    for d in range(draws):
        rng = np.random.default_rng([seed, d])
        animals = resampled_animals(pilot_k, k_a, k_b, rng) if resample else rng.permutation(pilot_k)[:k_a + k_b]
        group_a = np.r_[np.ones(k_a, bool), np.zeros(k_b, bool)]
        V = design.weights(animals, ~group_a, rng)
        hits += rejects(sums, V, group_a, splits, alpha, rng, statistic)
    return PowerPoint(float(size), hits / draws, draws)


def resampled_animals(pilot_k: int, k_a: int, k_b: int, rng: np.random.Generator) -> np.ndarray:
    """Pilot animals of a planned experiment of k_a + k_b animals (group A first).

    The pilot's animals are split at random into two halves, one feeding each group, so no
    animal is in both groups (a copy of one animal on each side, one with the planted
    effect, would be a paired comparison and make the curve optimistic). A group takes
    animals of its half without replacement while they last, then each again with
    replacement: with k_a + k_b = the pilot's animals this is exactly the sensitivity's design.
    """
    perm = rng.permutation(pilot_k)
    halves = perm[:pilot_k // 2], perm[pilot_k // 2:]

    def take(pool, n):
        if n <= pool.size:
            return rng.choice(pool, n, replace=False)
        return np.r_[pool, rng.choice(pool, n - pool.size, replace=True)]

    return np.r_[take(halves[0], k_a), take(halves[1], k_b)]


def bracket_and_bisect(power_at: Callable[[float], PowerPoint], *, first: float, target: float, bracket_steps: int,
                       bisection_steps: int, integer: bool = False, largest: float = math.inf) -> list:
    """Evaluate ``power_at`` at 0, then ``first`` doubled (never beyond ``largest``) until the power
    reaches ``target`` (at most ``bracket_steps`` sizes), then halve the bracket holding ``target``
    ``bisection_steps`` times. Returns every :class:`PowerPoint` evaluated, sorted by size."""
    points = {0.0: power_at(0.0)}
    size = min(first, largest)
    for _ in range(bracket_steps):
        if size in points:
            break
        points[size] = power_at(size)
        if points[size].power >= target:
            break
        size = min(size * 2, largest)
    for _ in range(bisection_steps):
        lo, hi = _bracket(points, target)
        if hi is None:
            break
        mid = (lo + hi) / 2
        if integer:
            mid = float(math.floor(mid))
            if mid <= lo:
                break
        points[mid] = power_at(mid)
    return [points[s] for s in sorted(points)]


def _bracket(points: dict, target: float):
    """(largest size below target before the first reaching it, first size reaching it) or (.., None)."""
    sizes = sorted(points)
    above = [s for s in sizes if points[s].power >= target]
    if not above:
        return sizes[-1], None
    hi = above[0]
    below = [s for s in sizes if s < hi]
    return (below[-1] if below else 0.0), hi


def interpolate_mde(points: list, target: float, draws: int):
    """``(value, se)``: where the piecewise-linear power curve first reaches ``target`` (None when it never does)."""
    by_size = {p.size: p for p in points}
    lo, hi = _bracket(by_size, target)
    if hi is None:
        return None, None
    p_lo, p_hi = by_size[lo].power, by_size[hi].power
    if p_hi <= p_lo or hi == lo:
        return float(hi), None
    value = lo + (target - p_lo) * (hi - lo) / (p_hi - p_lo)
    slope = (p_hi - p_lo) / (hi - lo)
    se = math.sqrt(target * (1 - target) / draws) / slope
    return float(value), float(se)
