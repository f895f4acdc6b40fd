"""Kernel bandwidths: the median heuristic, MMDAgg's median x 2**e family, or a fixed value."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import UsvpipeError
from .params import MMDParams


def _pairwise_dist(X, kernel):
    from scipy.spatial.distance import pdist

    return pdist(X, metric="cityblock" if kernel == "laplace" else "euclidean")


def median_bandwidth(Z, *, kernel: str = "gaussian", max_samples: int = 2000, seed: Optional[int] = 0) -> float:
    """Median heuristic: the median pairwise distance of the pooled sample.

    Euclidean distance for the Gaussian kernel, L1 for the Laplace kernel. At most
    ``max_samples`` points (a seeded random subset) are used, which keeps this
    O(max_samples²) for any sample size; the median of ~2·10⁶ pairs is stable to well
    under 1 %.
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.shape[0] > max_samples:
        idx = np.random.default_rng(seed).choice(Z.shape[0], max_samples, replace=False)
        Z = Z[np.sort(idx)]
    d = _pairwise_dist(Z, kernel)
    d = d[d > 0]
    if d.size == 0:
        raise UsvpipeError("[mmd].bandwidth", "all latent vectors are identical: the median-heuristic bandwidth is undefined",
                           "check the latents or pass a fixed bandwidth")
    return float(np.median(d))


def _scales(bandwidths, kernel):
    if kernel == "gaussian":
        return [1.0 / (2.0 * h * h) for h in bandwidths]
    return [1.0 / h for h in bandwidths]


def _resolve_bandwidths(Z, params: MMDParams):
    if params.bandwidth in ("median", "agg"):
        med = median_bandwidth(Z, kernel=params.kernel, max_samples=params.median_max_samples, seed=params.seed)
        if params.bandwidth == "median":
            return [med], med
        return [med * 2.0**e for e in params.agg_exponents], med
    h = float(params.bandwidth)
    return [h], h
