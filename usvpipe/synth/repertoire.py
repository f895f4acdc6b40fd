"""Repertoires: how often each group and each animal uses each call type.

A group has a usage vector over the call types (:data:`DEFAULT_USAGE`, renormalised to
the chosen types); an animal's usage is drawn around its group's from a Dirichlet
distribution with concentration ``c`` (mean = the group's usage, variance of a type with
usage ``p`` = ``p (1 - p) / (c + 1)``), so animals of one group differ as real animals do.
Each animal also has its own pitch offset (kHz, Gaussian) and duration factor
(log-normal), applied to all its calls.

Default usage
-------------
Usage differs widely between strains, ages and contexts: C57BL/6 males use more upward
calls with jumps and BALB/c males more chevrons and harmonics (Kikusui et al. 2011, PLoS
ONE 6:e17721); BTBR pups emit many harmonics, two-syllable and composite calls and few
chevrons, upward, downward and short calls compared with B6 (Scattoni et al. 2008, PLoS
ONE 3:e3067); the proportions change with age (Grimsley et al. 2011). No single published
vector is "the" mouse repertoire, and no per-type proportions table could be read here, so
the default is a principle, not a fit: every type present at >= 5 %, simple calls (flat,
sweeps, short) about half, calls with jumps about a fifth. Group differences of the
``usage`` kind move probability between two types exactly as the studies above report
them (one type more, another less).
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .calls import CALL_TYPES

#: Default group usage over :data:`~usvpipe.synth.calls.CALL_TYPES` (sums to 1).
DEFAULT_USAGE = {
    "flat": 0.14, "upsweep": 0.14, "downsweep": 0.10, "chevron": 0.08, "u_shape": 0.05,
    "step": 0.13, "multi_step": 0.06, "two_component": 0.05, "harmonic": 0.05,
    "short": 0.12, "complex": 0.08,
}


def group_usage(call_types, usage=None) -> np.ndarray:
    """Usage vector over ``call_types`` (renormalised to sum to 1)."""
    usage = DEFAULT_USAGE if usage is None else usage
    p = np.array([float(usage[t]) for t in call_types])
    if (p < 0).any() or p.sum() <= 0:
        raise ConfigError("usage", f"{dict(zip(call_types, p))} has a negative entry or sums to 0",
                          "give non-negative usage for at least one type")
    return p / p.sum()


def shift_usage(p: np.ndarray, call_types, source: str, target: str, amount: float) -> np.ndarray:
    """``p`` with ``amount`` of probability moved from ``source`` to ``target`` (exactly).

    A negative amount moves usage the other way. Raises when the move would make a usage
    negative, naming the largest move possible.
    """
    types = list(call_types)
    i, j = types.index(source), types.index(target)
    q = p.copy()
    q[i] -= amount
    q[j] += amount
    if q[i] < 0 or q[j] < 0:
        limit = p[i] if amount > 0 else p[j]
        raise ConfigError("difference_size", f"moving {amount:g} from {source} to {target} leaves a negative usage",
                          f"use at most {limit:.3f} per group step (the usage of {source if amount > 0 else target})")
    return q


def draw_animal_usage(p: np.ndarray, concentration: float, rng: np.random.Generator) -> np.ndarray:
    """One animal's usage: Dirichlet(``concentration * p``); types with p = 0 stay at 0."""
    out = np.zeros_like(p)
    on = p > 0
    out[on] = rng.dirichlet(concentration * p[on])
    return out


def draw_call_types(usage: np.ndarray, call_types, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` call-type names drawn with probabilities ``usage``."""
    return np.asarray(call_types, dtype=object)[rng.choice(len(call_types), size=n, p=usage)]


__all__ = ["CALL_TYPES", "DEFAULT_USAGE", "group_usage", "shift_usage", "draw_animal_usage", "draw_call_types"]
