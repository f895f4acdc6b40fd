"""Shared data and references for the test_mmd_*.py files (imported as a module, not collected)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

# Small, fast settings for repeated tests (vectorised permutations make these cheap).
FAST = dict(permutations=200, syllable_view=False, seed=0)


def _ref_mmd2(X, Y, h, *, biased=False, kernel="gaussian"):
    """Straightforward double-loop reference."""
    def k(x, y):
        if kernel == "gaussian":
            return math.exp(-float(np.sum((x - y) ** 2)) / (2 * h * h))
        return math.exp(-float(np.sum(np.abs(x - y))) / h)

    n, m = len(X), len(Y)
    xx = sum(k(X[i], X[j]) for i in range(n) for j in range(n) if biased or i != j)
    yy = sum(k(Y[i], Y[j]) for i in range(m) for j in range(m) if biased or i != j)
    xy = sum(k(X[i], Y[j]) for i in range(n) for j in range(m))
    if biased:
        return xx / n**2 + yy / m**2 - 2 * xy / (n * m)
    return xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2 * xy / (n * m)


def _nested(rng, *, animals=(5, 5), per_animal=6, d=3, animal_sd=1.0, shift=0.0, groups=("A", "B")):
    """Latents table with syllables nested in animals; animals differ by a random offset."""
    rows = []
    for gi, (grp, k) in enumerate(zip(groups, animals)):
        for j in range(k):
            mu = rng.normal(scale=animal_sd, size=d) + (shift if gi == 0 else 0.0)
            z = rng.normal(size=(per_animal, d)) + mu
            for zz in z:
                rows.append({"animal": f"{grp}{j}", "group": grp, **{f"z{i}": v for i, v in enumerate(zz)}})
    return pd.DataFrame(rows)


def _rejection_rate(pvals, alpha=0.05):
    return float(np.mean(np.asarray(pvals) <= alpha))
