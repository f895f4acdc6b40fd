"""The report's animal-level MMD test, repeated cheaply on many planted designs.

One kernel pass gives the sums of the (zero-diagonal) kernel between every pair of
*cells*: a cell is a set of syllables of one animal (the animal as recorded, the animal
with a planted pitch shift, or one animal's syllables in one latent-space cluster). A
planted design then says, for each animal of an experiment, how much weight each cell
gets (a row of ``V``, summing to 1), and the MMD² of any split of those animals follows
from ``V`` and the cell sums in O(animals²) — so hundreds of Monte Carlo draws and all
splits of each cost milliseconds, and the kernel is computed once per effect size.

With one cell per animal and ``V`` the identity this is exactly the statistic of
:func:`usvpipe.mmd.mmd_test` with the animal unit and animal weighting (the test suite
checks the p-values agree). Experiments may draw one animal twice (the planning curve
resamples animals with replacement): two copies of an animal are two animals whose
syllables coincide, so their cross sums include each syllable with itself.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..mmd.params import MMDParams
from ..mmd.pvalues import _minp_aggregate, _pvalue_counts, _splits
from ..mmd.statistics import _stat_from_sums


@dataclass
class CellSums:
    """Kernel sums between cells of syllables, for each bandwidth.

    ``S[l, c, d]``: sum of k_l(x, y) over x in cell c, y in cell d, x != y (the diagonal of
    the pooled kernel set to zero); ``counts[c]``: syllables in cell c.
    """

    S: np.ndarray  # (L, m, m)
    counts: np.ndarray  # (m,)


def cell_sums(Z: np.ndarray, cells: np.ndarray, n_cells: int, bandwidths, mmd: MMDParams) -> CellSums:
    """One blocked kernel pass over the rows of ``Z`` grouped by ``cells`` (the MMD stage's own pass)."""
    from ..mmd.backends import _get_ops
    from ..mmd.bandwidth import _scales
    from ..mmd.kernel_pass import _checked_kernel_pass

    Z = np.asarray(Z, dtype=np.float64)
    Zc = Z - Z.mean(axis=0)
    dtype = np.float32 if mmd.dtype == "float32" else np.float64
    res, _ = _checked_kernel_pass(Zc, np.asarray(cells), n_cells, _scales(bandwidths, mmd.kernel), mmd.kernel,
                                  _get_ops("numpy", "cpu"), dtype=dtype, block_size=mmd.block_size)
    return CellSums(res.S, np.bincount(cells, minlength=n_cells).astype(np.float64))


def _gram(sums: CellSums, V: np.ndarray):
    """Per-experiment-animal inner products of mean embeddings: ``(G (L, k, k), s (k,))``.

    ``G[l, a, b]`` = Σ w_x w_y k_l(x, y) with w the per-syllable weights of animals a and b
    (``V / counts``); for a != b the pairs x = y count (copies of one animal), for a == b
    they do not (the unbiased within-animal sum). ``s[a]`` = Σ w_x².
    """
    counts = sums.counts
    W = np.divide(V, counts[None, :], out=np.zeros_like(V, dtype=np.float64), where=counts[None, :] > 0)
    # batched matrix products, not 3-operand einsums: those took 24 of the 33 s of a profiled sensitivity
    # run with five bandwidths (benchmarks/mmd-agg-default.md)
    G = W @ sums.S @ W.T  # (L, k, k)
    cross_self = (W * counts[None, :]) @ W.T  # Σ_x w_a(x) w_b(x): the x = y pairs of shared cells
    np.fill_diagonal(cross_self, 0.0)
    G = G + cross_self[None]
    s = (W * W) @ counts
    return G, s


def split_statistics(sums: CellSums, V: np.ndarray, split_mat: np.ndarray, statistic: str = "unbiased") -> np.ndarray:
    """MMD² (``(L, M)``) of each split (rows of ``split_mat``, 1 = group A) of the animals of ``V``.

    Animal weighting: every animal counts equally in its group's mean embedding.
    """
    G, s = _gram(sums, V)
    alpha = np.asarray(split_mat, dtype=np.float64)
    uA = alpha / alpha.sum(axis=1, keepdims=True)
    beta = 1.0 - alpha
    uB = beta / beta.sum(axis=1, keepdims=True)
    GA, GB = uA @ G, uB @ G  # (L, M, k): Σ_a u[m, a] G[l, a, b]
    AA = (GA * uA).sum(axis=2)
    BB = (GB * uB).sum(axis=2)
    AB = (GA * uB).sum(axis=2)
    sA = (uA * uA) @ s
    sB = (uB * uB) @ s
    return _stat_from_sums(AA, BB, AB, sA[None], sB[None], statistic)


class SplitSource:
    """The splits the report's test permutes over, for ``k`` animals of which ``k_a`` in group A.

    Every split when there are at most ``max_exact_splits`` (drawn once and reused), else
    ``permutations`` random ones per test (as :func:`usvpipe.mmd.mmd_test` does).
    """

    def __init__(self, k: int, k_a: int, *, max_exact_splits: int, permutations: int):
        self.k, self.k_a = k, k_a
        self.params = MMDParams(max_exact_splits=max_exact_splits, permutations=permutations)
        obs = np.r_[np.ones(k_a), np.zeros(k - k_a)]
        mat, self.exact, _, self.n_splits = _splits(k, k_a, self.params, obs, np.random.default_rng(0))
        self._all = mat if self.exact else None

    def for_observed(self, observed: np.ndarray, rng: np.random.Generator):
        """``(matrix, observed row)`` with ``observed`` (0/1 over the k animals) among the rows."""
        if self.exact:
            row = int(np.flatnonzero((self._all == observed[None, :]).all(axis=1))[0])
            return self._all, row
        mat, _, row, _ = _splits(self.k, self.k_a, self.params, observed.astype(float), rng)
        return mat, row


def p_value(stats: np.ndarray, observed_row: int, exact: bool) -> float:
    """The test's p-value from ``stats`` ``(L, M)`` as :mod:`usvpipe.mmd.stage` computes it
    (min-p aggregation over several bandwidths)."""
    order = np.r_[observed_row, np.delete(np.arange(stats.shape[1]), observed_row)]
    stats = stats[:, order]
    M = stats.shape[1]
    if stats.shape[0] == 1:
        count = _pvalue_counts(stats[0, 1:], stats[0, 0], 1e-10)
        return (1 + count) / M
    minp, _ = _minp_aggregate(stats, 1e-10)
    return int(np.sum(minp <= minp[0] + 1e-12)) / M


def rejects(sums: CellSums, V: np.ndarray, group_a: np.ndarray, splits: SplitSource, alpha: float,
            rng: np.random.Generator, statistic: str = "unbiased") -> bool:
    """Whether the report's test, on the animals of ``V`` split as ``group_a``, rejects at ``alpha``."""
    mat, row = splits.for_observed(group_a.astype(float), rng)
    stats = split_statistics(sums, V, mat, statistic)
    if not np.isfinite(stats).all():
        return False  # a degenerate planted design (e.g. empty weights) is never counted as a detection
    return p_value(stats, row, splits.exact) <= alpha
