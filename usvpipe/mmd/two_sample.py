"""The pure two-sample API on arrays: :func:`mmd2`, :func:`permutation_test` (samples exchangeable)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .backends import _get_ops
from .bandwidth import _resolve_bandwidths, _scales, median_bandwidth
from .kernel_pass import _checked_kernel_pass
from .params import MMDParams
from .pvalues import _label_matrix, _mc_error, _minp_aggregate, _pvalue_counts
from .statistics import _stats_from_quad, _stats_from_S


def _as_2d(X, name):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def mmd2(X, Y, *, bandwidth: float | str = "median", kernel: str = "gaussian", statistic: str = "unbiased",
         backend: str = "numpy", device: str = "cpu", block_size: int = 2048) -> float:
    """Squared maximum mean discrepancy between samples ``X`` (n, d) and ``Y`` (m, d).

    Parameters
    ----------
    X, Y : array_like
        Samples (rows) with the same number of features.
    bandwidth : float or "median"
        Kernel bandwidth h; ``"median"`` uses the median pairwise distance of X ∪ Y.
    kernel : {"gaussian", "laplace"}
        ``exp(-||x-y||² / (2h²))`` or ``exp(-||x-y||₁ / h)``.
    statistic : {"unbiased", "biased"}
        Unbiased U-statistic (can be slightly negative) or biased V-statistic.

    Returns
    -------
    float
        MMD², computed in float64 in memory-bounded blocks.
    """
    X = _as_2d(X, "X")
    Y = _as_2d(Y, "Y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y have different numbers of features ({X.shape[1]} vs {Y.shape[1]})")
    if statistic == "unbiased" and (len(X) < 2 or len(Y) < 2):
        raise ValueError("the unbiased MMD² needs at least 2 samples per group")
    Z = np.vstack([X, Y])
    Z = Z - Z.mean(axis=0)
    if isinstance(bandwidth, str):
        if bandwidth != "median":
            bandwidth = float(bandwidth)
        else:
            bandwidth = median_bandwidth(Z, kernel=kernel)
    labels = np.r_[np.zeros(len(X), int), np.ones(len(Y), int)]
    ops = _get_ops(backend, device)
    res, _ = _checked_kernel_pass(Z, labels, 2, _scales([float(bandwidth)], kernel), kernel, ops, dtype=np.float64,
                                  block_size=block_size)
    stat = _stats_from_S(res.S[0], np.array([len(X), len(Y)]), np.array([[1.0, 0.0]]), "syllable", statistic)
    return float(stat[0])


@dataclass
class PermutationResult:
    """Outcome of :func:`permutation_test`.

    ``statistic`` is the MMD² of the observed split (at the median bandwidth for an
    aggregated test; every bandwidth's value in ``statistics``); ``null`` the
    permutation statistics (for an aggregated test: the smallest per-bandwidth
    p-value of each draw); ``p_value`` counts the observed statistic,
    (1 + #{T_b >= T_obs}) / (1 + B), so it is never 0; ``p_value_mc_se`` is its Monte
    Carlo standard error sqrt(p (1 - p) / B).
    """

    statistic: float
    p_value: float
    n_permutations: int
    bandwidths: list
    null: np.ndarray
    statistics: list
    p_values_per_bandwidth: list
    p_value_mc_se: float
    p_value_ci95: tuple
    aggregated: bool


def permutation_test(X, Y, *, permutations: int = 1000, bandwidth: float | str = "agg", kernel: str = "gaussian",
                     statistic: str = "unbiased", seed: Optional[int] = 0, backend: str = "auto", device: str = "auto",
                     dtype: str = "float32", block_size: int = 2048,
                     agg_exponents=(-2, -1, 0, 1, 2)) -> PermutationResult:
    """Permutation two-sample test of X vs Y with the MMD² statistic (samples exchangeable).

    All ``permutations`` label vectors are drawn up front (seeded) and their statistics
    obtained from one blocked pass over the kernel matrix as one matrix product.
    ``bandwidth="agg"`` (default, as in :class:`~usvpipe.mmd.MMDParams`) aggregates over
    median × 2**e (e in ``agg_exponents``) with the MMDAgg level correction (min-p
    calibration); ``"median"`` is the median heuristic alone, a number a fixed h.

    Returns
    -------
    PermutationResult
    """
    X = _as_2d(X, "X")
    Y = _as_2d(Y, "Y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y have different numbers of features ({X.shape[1]} vs {Y.shape[1]})")
    Z = np.vstack([X, Y])
    Z = Z - Z.mean(axis=0)
    labels = np.r_[np.zeros(len(X), int), np.ones(len(Y), int)]
    params = MMDParams(unit="syllable", weighting="syllable", statistic=statistic, kernel=kernel,
                       bandwidth=bandwidth if isinstance(bandwidth, str) else repr(float(bandwidth)),
                       agg_exponents=tuple(agg_exponents), permutations=permutations, seed=seed, backend=backend,
                       device=device, dtype=dtype, block_size=block_size)
    bandwidths, _ = _resolve_bandwidths(Z, params)
    ops = _get_ops(params.backend, params.device)
    rng = np.random.default_rng(seed)
    result, _ = _syllable_test(Z, labels == 0, labels, 2, bandwidths, params, ops, rng)
    return result


def _primary_index(params: MMDParams, n_bandwidths: int) -> int:
    """Index of the bandwidth whose statistic is reported (the median one for ``agg``)."""
    if params.bandwidth != "agg":
        return 0
    return params.agg_exponents.index(0) if 0 in params.agg_exponents else n_bandwidths // 2


def _syllable_test(Z, a, clusters, n_clusters, bandwidths, params, ops, rng, *, pass_result=None, W=None):
    """Syllable-unit test (pure exchangeability of rows). Returns (PermutationResult, raw stats (L, 1+B))."""
    dtype = np.float32 if params.dtype == "float32" else np.float64
    scales = _scales(bandwidths, params.kernel)
    if W is None:
        W = _label_matrix(a, params.permutations, rng)
    res = pass_result
    if res is None:
        res, dtype = _checked_kernel_pass(Z, clusters, n_clusters, scales, params.kernel, ops, W=W, dtype=dtype,
                                          block_size=params.block_size)
    n = int(a.sum())
    m = a.size - n
    total = res.rowsum.sum(axis=1)  # (L,)
    y = res.rowsum @ W.T.astype(np.float64)  # (L, B1)
    stats = _stats_from_quad(res.quad, y, total[:, None], n, m, params.statistic)
    # The reported observed statistic from the float64-accumulated cluster sums.
    counts = np.bincount(clusters, minlength=n_clusters)
    alpha_obs = np.zeros((1, n_clusters))
    alpha_obs[0, np.unique(clusters[a])] = 1.0
    exact_obs = [float(_stats_from_S(res.S[l], counts, alpha_obs, "syllable", params.statistic)[0])
                 for l in range(len(bandwidths))] if _clusters_nested(clusters, a) else [float(s) for s in stats[:, 0]]
    rtol = 1e-6 if dtype == np.float32 else 1e-10
    B = params.permutations
    if len(bandwidths) == 1:
        null = stats[0, 1:]
        count = _pvalue_counts(null, stats[0, 0], rtol)
        p = (1 + count) / (1 + B)
        per_bw = [p]
        agg = False
    else:
        minp, per_bw = _minp_aggregate(stats, rtol)
        null = minp[1:]
        tol = 1e-12
        p = (1 + int(np.sum(null <= minp[0] + tol))) / (1 + B)
        per_bw = [float(v) for v in per_bw]
        agg = True
    se, ci = _mc_error(p, B)
    return PermutationResult(statistic=exact_obs[_primary_index(params, len(bandwidths))], p_value=float(p),
                             n_permutations=B, bandwidths=[float(h) for h in bandwidths], null=np.asarray(null),
                             statistics=exact_obs, p_values_per_bandwidth=per_bw, p_value_mc_se=se,
                             p_value_ci95=ci, aggregated=agg), stats


def _clusters_nested(clusters, a):
    """True when every cluster lies entirely within one group."""
    ca = np.unique(clusters[a])
    cb = np.unique(clusters[~a])
    return np.intersect1d(ca, cb).size == 0
