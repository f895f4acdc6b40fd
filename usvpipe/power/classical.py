"""Sensitivity of the classical measures' own tests: a shift planted into the per-animal values of one pseudo-group.

The report tests each measure with the animal-level permutation test of |difference of
group means| (:func:`usvpipe.measures.animal_permutation_p`) and Holm's correction over
the measures. A single measure that differs is declared different when its p-value is at
most α / m (Holm's first step, m measures tested), so that is the level used here. The
planted shift moves every syllable of the pseudo-group's animals by the same amount, so
the animal's mean moves by exactly that amount; counts and rates are shifted the same
way (a difference in calls, or calls per minute).
"""
from __future__ import annotations

import time

import numpy as np

from ..measures import LABELS, MEASURES
from .animal_test import SplitSource
from .search import MDE, PowerPoint, bracket_and_bisect, interpolate_mde


def _between_sd(values: np.ndarray, group_a: np.ndarray) -> float:
    """SD of the per-animal values around their real group's mean, pooled over the two groups."""
    resid = np.r_[values[group_a] - values[group_a].mean(), values[~group_a] - values[~group_a].mean()]
    dof = values.size - 2
    return float(np.sqrt(np.sum(resid ** 2) / dof)) if dof > 0 else float("nan")


def _power(values: np.ndarray, shift: float, k_a: int, level: float, draws: int, seed: int, splits: SplitSource) -> float:
    k = values.size
    hits = 0
    for d in range(draws):
        rng = np.random.default_rng([seed, d])
        order = rng.permutation(k)
        v = values[order].copy()
        v[k_a:] += shift  # pseudo-group B carries the shift
        mat, row = splits.for_observed(np.r_[np.ones(k_a), np.zeros(k - k_a)], rng)
        contrast = mat / k_a - (1.0 - mat) / (k - k_a)
        stats = np.abs(contrast @ v)
        tol = 1e-10 * max(float(np.max(stats)), 1e-300)
        if splits.exact:
            p = float(np.sum(stats >= stats[row] - tol)) / stats.size
        else:
            p = (1.0 + float(np.sum(np.delete(stats, row) >= stats[row] - tol))) / stats.size
        hits += p <= level
    return hits / draws


def measures_mde(per_animal, animal_group: np.ndarray, a: str, *, alpha: float, target: float, draws: int, seed: int,
                 bracket_steps: int, bisection_steps: int, max_exact_splits: int, permutations: int) -> list:
    """One :class:`MDE` per classical measure (in the measure's unit; ``points`` in between-animal SDs).

    ``per_animal``: the per-animal measures, one row per pilot animal (NaN measures are skipped).
    """
    group_a = np.asarray(animal_group) == a
    k, k_a = group_a.size, int(group_a.sum())
    usable = [name for name, *_ in MEASURES if name in per_animal.columns
              and np.isfinite(per_animal[name].to_numpy(dtype=float)).all()]
    level = alpha / max(len(usable), 1)
    splits = SplitSource(k, k_a, max_exact_splits=max_exact_splits, permutations=permutations)
    out = []
    for name in usable:
        t0 = time.perf_counter()
        values = per_animal[name].to_numpy(dtype=float)
        sd = _between_sd(values, group_a)
        if not (np.isfinite(sd) and sd > 0):
            continue

        def power_at(size_sd: float) -> PowerPoint:
            return PowerPoint(size_sd, _power(values, size_sd * sd, k_a, level, draws, seed, splits), draws)

        points = bracket_and_bisect(power_at, first=0.25, target=target, bracket_steps=bracket_steps + 2,
                                    bisection_steps=bisection_steps)
        value, se = interpolate_mde(points, target, draws)
        mde = MDE(name, LABELS[name], target, None if value is None else value * sd,
                  None if se is None else se * sd, points, time.perf_counter() - t0, sd)
        out.append(mde)
    return out
