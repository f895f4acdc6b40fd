"""MMD² from the kernel sums the pass accumulates (U- or V-statistic, animal or syllable weighting)."""
from __future__ import annotations

import numpy as np


def _stat_from_sums(AA, BB, AB, sA, sB, statistic):
    """MMD² from weighted within/between sums of the zero-diagonal kernel.

    AA = Σ_{s≠t∈A} w_s w_t k(s,t), sA = Σ_{s∈A} w_s² (weights sum to one per group);
    the diagonal k(x, x) = 1 for both kernels.
    """
    if statistic == "unbiased":
        return AA / (1.0 - sA) + BB / (1.0 - sB) - 2.0 * AB
    return AA + sA + BB + sB - 2.0 * AB


def _stats_from_S(S, counts, alpha_mat, weighting, statistic):
    """Statistics for many splits of clusters: ``alpha_mat`` (n_splits, k) 0/1, 1 = group A."""
    alpha_mat = np.asarray(alpha_mat, dtype=np.float64)
    beta_mat = 1.0 - alpha_mat
    counts = counts.astype(np.float64)
    if weighting == "animal":
        kA = alpha_mat.sum(axis=1, keepdims=True)
        kB = beta_mat.sum(axis=1, keepdims=True)
        uA = alpha_mat / (counts[None, :] * kA)
        uB = beta_mat / (counts[None, :] * kB)
    else:
        nA = alpha_mat @ counts
        nB = beta_mat @ counts
        uA = alpha_mat / nA[:, None]
        uB = beta_mat / nB[:, None]
    SA = uA @ S
    SB = uB @ S
    AA = np.einsum("bk,bk->b", SA, uA)
    BB = np.einsum("bk,bk->b", SB, uB)
    AB = np.einsum("bk,bk->b", SA, uB)
    sA = (uA * uA) @ counts
    sB = (uB * uB) @ counts
    return _stat_from_sums(AA, BB, AB, sA, sB, statistic)


def _stats_from_quad(quad, y, total, n, m, statistic):
    """Uniform-weight statistics from x = aᵀK~a, y = aᵀK~1, Tot = 1ᵀK~1 (sizes n, m fixed)."""
    AA = quad
    AB = y - quad
    BB = total - 2.0 * y + quad
    return _stat_from_sums(AA / n**2, BB / m**2, AB / (n * m), 1.0 / n, 1.0 / m, statistic)
