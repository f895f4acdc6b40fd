"""Permutation p-values: exceedance counts, MMDAgg's min-p level correction, Monte Carlo error, label draws."""
from __future__ import annotations

import itertools
import math

import numpy as np


def _exceed_tol(stats, rtol):
    scale = float(np.max(np.abs(stats))) if stats.size else 0.0
    return rtol * scale


def _pvalue_counts(null, observed, rtol):
    """Number of null statistics >= observed (near-ties count as exceedances)."""
    tol = _exceed_tol(np.append(null, observed), rtol)
    return int(np.sum(null >= observed - tol))


def _minp_aggregate(stats, rtol):
    """MMDAgg level correction by min-p calibration.

    ``stats`` (L, M): column 0 is the observed split, columns 1.. the null draws (or,
    with exact enumeration, all splits including the observed). For every column and
    bandwidth, its permutation p-value among the M columns; the aggregated statistic is
    the smallest p-value over bandwidths, calibrated against the same permutations.
    Rejecting when that calibrated p-value is <= α is MMDAgg's test with uniform
    weights (reject iff some T_λ exceeds its (1 - u_α)-quantile with u_α the largest
    level-α correction), and it yields a p-value.
    Returns (minp per column, per-bandwidth p-values of column 0).
    """
    L, M = stats.shape
    pmat = np.empty((L, M))
    for l in range(L):
        s = stats[l]
        tol = _exceed_tol(s, rtol)
        order = np.sort(s)
        # #{j: s_j >= s_i - tol}
        pmat[l] = (M - np.searchsorted(order, s - tol, side="left")) / M
    return pmat.min(axis=0), pmat[:, 0]


def _mc_error(p, n):
    """Monte Carlo standard error and 95 % Wilson interval of a p-value estimated from n draws."""
    se = math.sqrt(max(p * (1 - p), 0.0) / n) if n > 0 else float("nan")
    z = 1.959963984540054
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return se, (max(0.0, centre - half), min(1.0, centre + half))


def _label_matrix(a, permutations, rng):
    """(1 + B, N) float32 matrix: row 0 the observed labels, then B random permutations."""
    N = a.size
    W = np.empty((permutations + 1, N), dtype=np.uint8)
    W[0] = a
    W[1:] = a
    rng.permuted(W[1:], axis=1, out=W[1:])
    return W.astype(np.float32)


def _splits(k, kA, params, alpha_obs, rng):
    """Cluster splits: exact enumeration (all C(k, kA)) or Monte Carlo. Returns (matrix, exact, obs_index)."""
    n_splits = math.comb(k, kA)
    if n_splits <= params.max_exact_splits:
        mat = np.zeros((n_splits, k))
        for s, combo in enumerate(itertools.combinations(range(k), kA)):
            mat[s, list(combo)] = 1.0
        obs = int(np.flatnonzero((mat == alpha_obs[None, :]).all(axis=1))[0])
        return mat, True, obs, n_splits
    draws = rng.permuted(np.broadcast_to(alpha_obs, (params.permutations, k)), axis=1)
    return np.vstack([alpha_obs[None, :], draws]), False, 0, n_splits
