"""Kernel MMD two-sample tests for nested data (syllables nested in animals).

The question "do group A and group B vocalise differently?" is answered by comparing
the distributions of syllable latents with the maximum mean discrepancy (MMD,
Gretton et al., JMLR 2012) and a permutation test. Syllables of one animal are not
independent, so by default the *animal* is the unit of exchangeability: whole animals
are permuted between the groups (every split enumerated when there are few), and the
syllable-level test is reported only as a secondary, labelled view.

Layout
------
* pure functions: :func:`mmd2` (the statistic), :func:`permutation_test` (one
  kernel pass, all permutations as one matrix product), :func:`median_bandwidth`;
* the pipeline stage: :class:`MMDParams`, :func:`mmd_test` -> :class:`MMDResult`
  (``.save(out_dir)`` writes report.json, CSVs and figures).

How the permutations are made cheap
-----------------------------------
For a 0/1 label vector ``a`` (group A) over the pooled sample with kernel matrix ``K``
whose diagonal is set to zero (``K~``), the unbiased MMD² only needs
``x = aᵀK~a`` (within-A sum), ``y = aᵀr`` with ``r = K~1`` and ``Tot = 1ᵀK~1``:
AA = x, AB = y - x, BB = Tot - 2y + x. So B permutations cost one matrix product
``W K~`` with W the (B+1, N) matrix of label vectors. K is symmetric, so only the
lower block triangle is computed (half the flops), in row/column blocks so the full
N×N kernel is never held in memory. For the animal unit everything collapses further:
with G the (N, k) animal one-hot matrix, ``S = GᵀK~G`` (k×k) is accumulated in the
same pass and each permutation of animals costs O(k²).
"""
from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .errors import ConfigError, InputFileError, UsvpipeError

log = logging.getLogger(__name__)

__all__ = [
    "MMDParams",
    "MMDResult",
    "PermutationResult",
    "mmd_test",
    "mmd2",
    "permutation_test",
    "median_bandwidth",
    "latent_columns",
]

_LATENT_RE = re.compile(r"^z(\d+)$")


# ----------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class MMDParams:
    """Parameters of the MMD test (defaults are the recommended settings).

    Attributes
    ----------
    unit : {"auto", "animal", "syllable"}
        Unit of exchangeability. ``"auto"``: ``"animal"`` when ``animal_col`` exists.
    animal_col : str
        Column naming the animal (the cluster syllables are nested in); e.g.
        ``"recording"`` makes sessions the unit.
    weighting : {"auto", "animal", "syllable"}
        How syllables are weighted inside each group's mean embedding. ``"animal"``:
        every animal counts equally (each syllable of animal i gets 1/(n_i k_group));
        ``"syllable"``: every syllable counts equally. ``"auto"``: ``"animal"`` for the
        animal unit, ``"syllable"`` for the syllable unit.
    statistic : {"unbiased", "biased"}
        U-statistic (diagonal excluded) or V-statistic MMD².
    kernel : {"gaussian", "laplace"}
        ``exp(-||x-y||²₂ / (2 h²))`` or ``exp(-||x-y||₁ / h)`` (L1 as in MMDAgg).
    bandwidth : str
        ``"median"`` (median pairwise distance of the pooled sample), ``"agg"``
        (MMDAgg: median × 2**e for e in ``agg_exponents``, level-corrected), or a
        positive number given as a string or float (fixed h).
    agg_exponents : tuple of int
        Powers of two multiplying the median for ``bandwidth="agg"``.
    permutations : int
        Monte Carlo permutations (syllable unit, or animal unit with many splits).
    max_exact_splits : int
        Enumerate every split of animals when there are at most this many.
    max_per_animal : int or None
        Randomly keep at most this many syllables per animal (seeded) before testing.
    alpha : float
        Level used for the ``reject`` flag and the too-few-animals check.
    syllable_view : bool
        With the animal unit, also report the syllable-unit test (secondary view).
    median_max_samples : int
        The median heuristic uses at most this many (seeded) points.
    backend : {"auto", "numpy", "torch"}
        ``"auto"``: torch on CUDA when ``device`` allows and a GPU exists, else numpy.
    device : {"auto", "cpu", "cuda"}
        Device for the torch backend.
    dtype : {"float32", "float64"}
        Precision of the kernel blocks and of the permutation matrix product. The sums
        that give the reported statistic are accumulated in float64 either way; with
        float32 the statistic differs from float64 by ~1e-10 absolute (< 1e-5 null
        standard deviations, measured), at about twice the speed.
    block_size : int
        Rows/columns per kernel block (memory ~ 20 * block_size² bytes).
    seed : int or None
        Seed for permutations and subsampling.
    features : str or None
        Comma-separated glob(s) selecting latent columns (default ``z0..z{d-1}``).
    """

    unit: str = "auto"
    animal_col: str = "animal"
    weighting: str = "auto"
    statistic: str = "unbiased"
    kernel: str = "gaussian"
    bandwidth: str = "median"
    agg_exponents: tuple[int, ...] = (-2, -1, 0, 1, 2)
    permutations: int = 1000
    max_exact_splits: int = 200_000
    max_per_animal: Optional[int] = None
    alpha: float = 0.05
    syllable_view: bool = True
    median_max_samples: int = 2000
    backend: str = "auto"
    device: str = "auto"
    dtype: str = "float32"
    block_size: int = 2048
    seed: Optional[int] = 0
    features: Optional[str] = None

    def __post_init__(self):
        def choice(name, allowed):
            v = getattr(self, name)
            if v not in allowed:
                raise ConfigError(f"MMDParams.{name}: {v!r} is not one of {', '.join(allowed)}")

        choice("unit", ("auto", "animal", "syllable"))
        choice("weighting", ("auto", "animal", "syllable"))
        choice("statistic", ("unbiased", "biased"))
        choice("kernel", ("gaussian", "laplace"))
        choice("backend", ("auto", "numpy", "torch"))
        choice("device", ("auto", "cpu", "cuda"))
        choice("dtype", ("float32", "float64"))
        bw = self.bandwidth
        if isinstance(bw, (int, float)) and not isinstance(bw, bool):
            object.__setattr__(self, "bandwidth", repr(float(bw)))
        elif bw not in ("median", "agg"):
            try:
                h = float(bw)
            except (TypeError, ValueError):
                raise ConfigError(f"MMDParams.bandwidth: {bw!r} is not 'median', 'agg' or a positive number") from None
            if not (h > 0 and math.isfinite(h)):
                raise ConfigError(f"MMDParams.bandwidth: {bw!r} must be a positive number")
        object.__setattr__(self, "agg_exponents", tuple(int(e) for e in self.agg_exponents))
        if not self.agg_exponents:
            raise ConfigError("MMDParams.agg_exponents: need at least one exponent")
        if self.permutations < 1:
            raise ConfigError(f"MMDParams.permutations: must be >= 1, got {self.permutations}")
        if self.max_exact_splits < 0:
            raise ConfigError("MMDParams.max_exact_splits: must be >= 0")
        if self.max_per_animal is not None and self.max_per_animal < 2:
            raise ConfigError(f"MMDParams.max_per_animal: must be >= 2 (or unset), got {self.max_per_animal}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"MMDParams.alpha: must be in (0, 1), got {self.alpha}")
        if self.block_size < 1:
            raise ConfigError(f"MMDParams.block_size: must be >= 1, got {self.block_size}")
        if self.median_max_samples < 10:
            raise ConfigError("MMDParams.median_max_samples: must be >= 10")


# ----------------------------------------------------------------------------- backends
class _NumpyOps:
    """Array operations of the blocked kernel pass, numpy flavour (CPU)."""

    name = "numpy"
    device = "cpu"

    def asarray(self, x, dtype):
        return np.ascontiguousarray(x, dtype=dtype)

    def to_numpy(self, x):
        return np.asarray(x)

    def sqdist(self, ai, bj):
        # ai = [x, |x|², 1], bj = [-2y, 1, |y|²]: one GEMM gives |x - y|², no extra passes
        return ai @ bj.T

    def l1dist(self, xi, xj):
        from scipy.spatial.distance import cdist

        return cdist(xi, xj, metric="cityblock")

    def kernel_from(self, dist, scale, out=None):
        # exp(-dist * scale), in place into ``out`` when given
        out = np.multiply(dist, -scale, out=out)
        return np.exp(out, out=out)

    def cast(self, x, dtype):
        return x if x.dtype == dtype else x.astype(dtype)

    def zero_diag(self, k):
        np.fill_diagonal(k, 0.0)

    def quad_rows(self, k, w_i, w_j):
        # for every label row b: w_i[b] · K w_j[b]; W is (B1, N) so no transposed copies are needed
        p = w_j @ k.T
        p *= w_i
        return p.sum(axis=1, dtype=np.float64)

    def block_sums(self, k, seg_i, seg_j, need_rows, diag):
        """Cluster-block sums (float64 accumulation, no float64 copy of the block).

        Rows are sorted by cluster, so a block's clusters are contiguous segments
        (``seg_*`` = (starts, ids)) and ``np.add.reduceat`` sums them.
        """
        t = np.add.reduceat(k, seg_j[0], axis=1, dtype=np.float64)  # (bi, segments_j)
        s = np.add.reduceat(t, seg_i[0], axis=0)
        rows = t.sum(axis=1) if need_rows else None
        cols = k.sum(axis=0, dtype=np.float64) if (need_rows and not diag) else None
        return s, seg_i[1], seg_j[1], rows, cols


class _TorchOps:
    """The same operations on torch tensors (CPU or CUDA)."""

    name = "torch"

    def __init__(self, device):
        import torch

        self.torch = torch
        self.device = str(device)

    def full_precision(self):
        """Disable TF32 matmuls for the pass (another stage may have enabled them globally):
        |x-y|² from the augmented product and the permutation sums need true float32."""
        import contextlib

        torch = self.torch

        @contextlib.contextmanager
        def ctx():
            old = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = False
            try:
                yield
            finally:
                torch.backends.cuda.matmul.allow_tf32 = old

        return ctx()

    def _dt(self, dtype):
        return {np.float64: self.torch.float64, np.float32: self.torch.float32}[np.dtype(dtype).type]

    def asarray(self, x, dtype):
        return self.torch.as_tensor(np.ascontiguousarray(x), dtype=self._dt(dtype), device=self.device)

    def to_numpy(self, x):
        return x.detach().cpu().numpy()

    def sqdist(self, ai, bj):
        return ai @ bj.T

    def l1dist(self, xi, xj):
        return self.torch.cdist(xi, xj, p=1.0)

    def kernel_from(self, dist, scale, out=None):
        if out is None:
            out = self.torch.empty_like(dist)
        self.torch.mul(dist, -scale, out=out)
        return out.exp_()

    def cast(self, x, dtype):
        return x.to(self._dt(dtype))

    def zero_diag(self, k):
        k.fill_diagonal_(0.0)

    def quad_rows(self, k, w_i, w_j):
        p = w_j @ k.T
        p *= w_i
        return p.sum(dim=1, dtype=self.torch.float64)

    def block_sums(self, k, seg_i, seg_j, need_rows, diag):
        # one-hot products in float64 (cheap next to the permutation product; fine on a GPU)
        kd = k.double()
        gi, gj = self._onehot(seg_i), self._onehot(seg_j)
        s = (gi.T @ (kd @ gj)).cpu().numpy()
        rows = kd.sum(dim=1).cpu().numpy() if need_rows else None
        cols = kd.sum(dim=0).cpu().numpy() if (need_rows and not diag) else None
        return s, seg_i[1], seg_j[1], rows, cols

    def _onehot(self, seg):
        starts, ids, length = seg
        sizes = np.diff(np.r_[starts, length])
        g = np.zeros((length, len(ids)))
        g[np.arange(length), np.repeat(np.arange(len(ids)), sizes)] = 1.0
        return self.torch.as_tensor(g, dtype=self.torch.float64, device=self.device)


def _get_ops(backend: str, device: str):
    if backend == "numpy":
        if device == "cuda":
            raise ConfigError("MMDParams: backend 'numpy' runs on the CPU only (fix: use backend 'torch' or 'auto' with device 'cuda')")
        return _NumpyOps()
    if backend in ("torch", "auto"):
        want_cuda = device == "cuda"
        cuda = False
        if device in ("auto", "cuda"):
            try:
                import torch

                cuda = torch.cuda.is_available()
            except ImportError:  # pragma: no cover - torch is a dependency
                cuda = False
        if want_cuda and not cuda:
            raise ConfigError("device 'cuda' requested but no CUDA GPU is available (fix: use --device cpu or auto)")
        if backend == "auto" and not cuda:
            return _NumpyOps()
        return _TorchOps("cuda" if cuda else "cpu")
    raise ConfigError(f"unknown backend {backend!r}")  # pragma: no cover


# ----------------------------------------------------------------------------- kernel pass
@dataclass
class _PassResult:
    S: np.ndarray  # (L, k, k) float64 cluster-block sums of the zero-diagonal kernel
    quad: Optional[np.ndarray]  # (L, B1) float64: w_bᵀ K~ w_b for each label row
    rowsum: Optional[np.ndarray]  # (L, N) float64: K~ 1


_BLAS_CONTROLLER = None


def _small_problem_blas():
    """One BLAS thread for small products.

    Multithreaded OpenBLAS on tiny matrices spends more time waking threads than
    computing, and on a busy machine a single such call can stall for tens of ms;
    calibration studies run thousands of small tests, so pin them to one thread.
    """
    import contextlib

    global _BLAS_CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def _kernel_pass(Z, clusters, n_clusters, scales, kernel, ops, *, W=None, dtype=np.float32, block_size=2048):
    """One blocked pass over the lower block triangle of the pooled kernel matrix.

    Parameters
    ----------
    Z : (N, d) float64 array, centred.
    clusters : (N,) int array in [0, n_clusters) (animals; or the groups).
    scales : sequence of float, the kernel is ``exp(-dist * scale)`` for each.
    kernel : "gaussian" (dist = squared L2) or "laplace" (dist = L1).
    W : optional (B1, N) 0/1 label matrix (one row per label vector); when given,
        ``wᵀK~w`` per row and the kernel row sums are accumulated.
    dtype : precision of the kernel blocks and of the permutation product. Sums that
        enter the reported statistic (cluster-block sums, row sums) are always
        accumulated in float64.
    """
    import contextlib

    clusters = np.asarray(clusters)
    order = np.argsort(clusters, kind="stable")
    if np.any(order != np.arange(order.size)):
        # sort rows by cluster so a block's clusters are contiguous; permuting rows and
        # label columns together changes no statistic
        res = _kernel_pass(Z[order], clusters[order], n_clusters, scales, kernel, ops,
                           W=None if W is None else W[:, order], dtype=dtype, block_size=block_size)
        if res.rowsum is not None:
            rows = np.empty_like(res.rowsum)
            rows[:, order] = res.rowsum
            res.rowsum = rows
        return res
    work = Z.shape[0] ** 2 * (len(scales) * ((W.shape[0] if W is not None else 0) + n_clusters + Z.shape[1]))
    if ops.name == "numpy":
        ctx = _small_problem_blas() if work < 2e8 else contextlib.nullcontext()
    else:
        ctx = ops.full_precision()
    with ctx:
        return _kernel_pass_impl(Z, clusters, n_clusters, scales, kernel, ops, W=W, dtype=dtype, block_size=block_size)


def _segments(clusters, lo, hi):
    c = clusters[lo:hi]
    starts = np.r_[0, np.flatnonzero(np.diff(c)) + 1]
    return starts, c[starts], hi - lo


def _kernel_pass_impl(Z, clusters, n_clusters, scales, kernel, ops, *, W=None, dtype=np.float32, block_size=2048):
    N = Z.shape[0]
    L = len(scales)
    if kernel == "gaussian":
        # [x, |x|², 1] · [-2y, 1, |y|²] = |x - y|²: one GEMM per block, no elementwise passes
        sq = (Z * Z).sum(axis=1)
        one = np.ones(N)
        Aug = ops.asarray(np.column_stack([Z, sq, one]), dtype)
        Bug = ops.asarray(np.column_stack([-2.0 * Z, one, sq]), dtype)
    else:
        Zt = ops.asarray(Z, np.float64)
    Wt = ops.asarray(W, dtype) if W is not None else None
    S = np.zeros((L, n_clusters, n_clusters))
    quad = np.zeros((L, W.shape[0])) if W is not None else None
    rows = np.zeros((L, N)) if W is not None else None
    edges = list(range(0, N, block_size)) + [N]
    segs = [_segments(clusters, edges[b], edges[b + 1]) for b in range(len(edges) - 1)]
    kbuf = None
    for bi in range(len(edges) - 1):
        i0, i1 = edges[bi], edges[bi + 1]
        for bj in range(bi + 1):
            j0, j1 = edges[bj], edges[bj + 1]
            if kernel == "gaussian":
                dist = ops.sqdist(Aug[i0:i1], Bug[j0:j1])
            else:
                dist = ops.cast(ops.l1dist(Zt[i0:i1], Zt[j0:j1]), dtype)
            diag = bi == bj
            for l, scale in enumerate(scales):
                if kbuf is not None and tuple(kbuf.shape) != tuple(dist.shape):
                    kbuf = None
                # with one bandwidth the distance block is overwritten in place
                k = ops.kernel_from(dist, scale, out=dist if L == 1 else kbuf)
                if L > 1:
                    kbuf = k
                if diag:
                    ops.zero_diag(k)
                s, ids_i, ids_j, r, c = ops.block_sums(k, segs[bi], segs[bj], Wt is not None, diag)
                S[l][np.ix_(ids_i, ids_j)] += s
                if not diag:
                    S[l][np.ix_(ids_j, ids_i)] += s.T  # the mirrored block (j, i)
                if Wt is not None:
                    rows[l, i0:i1] += r
                    if not diag:
                        rows[l, j0:j1] += c
                    q = ops.to_numpy(ops.quad_rows(k, Wt[:, i0:i1], Wt[:, j0:j1]))
                    quad[l] += q if diag else 2.0 * q
    # K is symmetric; its float32 blocks are only symmetric to rounding. Symmetrise so that
    # a split of animals and its mirror image give exactly the same statistic.
    S = 0.5 * (S + S.transpose(0, 2, 1))
    return _PassResult(S=S, quad=quad, rowsum=rows)


# ----------------------------------------------------------------------------- statistics from sums
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


# ----------------------------------------------------------------------------- bandwidth
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
        raise UsvpipeError("all latent vectors are identical: the median-heuristic bandwidth is undefined "
                           "(fix: check the latents or pass a fixed bandwidth)")
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


# ----------------------------------------------------------------------------- p-values
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


# ----------------------------------------------------------------------------- pure API
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
    res = _kernel_pass(Z, labels, 2, _scales([float(bandwidth)], kernel), kernel, ops, dtype=np.float64,
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


def permutation_test(X, Y, *, permutations: int = 1000, bandwidth: float | str = "median", kernel: str = "gaussian",
                     statistic: str = "unbiased", seed: Optional[int] = 0, backend: str = "auto", device: str = "auto",
                     dtype: str = "float32", block_size: int = 2048,
                     agg_exponents=(-2, -1, 0, 1, 2)) -> PermutationResult:
    """Permutation two-sample test of X vs Y with the MMD² statistic (samples exchangeable).

    All ``permutations`` label vectors are drawn up front (seeded) and their statistics
    obtained from one blocked pass over the kernel matrix as one matrix product.
    ``bandwidth="agg"`` aggregates over median × 2**e (e in ``agg_exponents``) with the
    MMDAgg level correction (min-p calibration).

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


def _label_matrix(a, permutations, rng):
    """(1 + B, N) float32 matrix: row 0 the observed labels, then B random permutations."""
    N = a.size
    W = np.empty((permutations + 1, N), dtype=np.uint8)
    W[0] = a
    W[1:] = a
    rng.permuted(W[1:], axis=1, out=W[1:])
    return W.astype(np.float32)


def _syllable_test(Z, a, clusters, n_clusters, bandwidths, params, ops, rng, *, pass_result=None, W=None):
    """Syllable-unit test (pure exchangeability of rows). Returns (PermutationResult, raw stats (L, 1+B))."""
    dtype = np.float32 if params.dtype == "float32" else np.float64
    scales = _scales(bandwidths, params.kernel)
    if W is None:
        W = _label_matrix(a, params.permutations, rng)
    res = pass_result or _kernel_pass(Z, clusters, n_clusters, scales, params.kernel, ops, W=W, dtype=dtype,
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


# ----------------------------------------------------------------------------- the pipeline stage
def latent_columns(columns, features: Optional[str] = None) -> list[str]:
    """Latent feature columns: ``z0..z{d-1}`` in numeric order, or those matching ``features``.

    ``features`` is a comma-separated list of glob patterns (e.g. ``"z*"`` or ``"pc_*,umap_*"``).
    """
    columns = [str(c) for c in columns]
    if features:
        pats = [p.strip() for p in features.split(",") if p.strip()]
        return [c for c in columns if any(fnmatch.fnmatchcase(c, p) for p in pats)]
    found = [(int(m.group(1)), c) for c in columns if (m := _LATENT_RE.match(c))]
    return [c for _, c in sorted(found)]


@dataclass
class MMDResult:
    """Result of :func:`mmd_test`; ``save(out_dir)`` writes the report and figures.

    Attributes
    ----------
    statistic : float
        Observed MMD² (float64) at the primary bandwidth (the median one for ``agg``).
    p_value : float
        Permutation p-value for the chosen unit of exchangeability (aggregated over
        bandwidths for ``agg``).
    unit, weighting : str
        Unit of exchangeability and within-group weighting actually used.
    exact : bool
        Whether every split of animals was enumerated (then ``n_permutations`` is the
        number of splits and the p-value has no Monte Carlo error).
    min_attainable_p : float
        Smallest p-value this design can produce.
    null : ndarray
        Null MMD² values at the primary bandwidth (the observed split excluded for
        Monte Carlo draws; all splits for exact enumeration).
    pairwise : pandas.DataFrame
        Unbiased (or biased) MMD² between every pair of animals (square, labelled).
    per_animal : pandas.DataFrame
        Per animal: group, syllables, mean MMD² to the other animals of its own group
        and to the animals of the other group.
    syllable_view : dict or None
        The syllable-unit test (secondary view; anticonservative with animal effects).
    """

    statistic: float
    p_value: float
    reject: bool
    alpha: float
    unit: str
    weighting: str
    statistic_kind: str
    kernel: str
    bandwidths: list
    primary_bandwidth: float
    bandwidth_rule: str
    statistics_per_bandwidth: list
    p_values_per_bandwidth: list
    exact: bool
    n_permutations: int
    n_splits: Optional[int]
    min_attainable_p: float
    p_value_mc_se: float
    p_value_ci95: tuple
    z_score: float
    null: np.ndarray
    groups: tuple
    group_col: str
    n_syllables: dict
    n_animals: dict
    features: list
    pairwise: Any
    per_animal: Any
    syllable_view: Optional[dict]
    params: dict
    source: str
    backend: str
    version: str = ""
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready report (without the large arrays)."""
        keys = ["statistic", "p_value", "reject", "alpha", "unit", "weighting", "statistic_kind", "kernel",
                "bandwidths", "primary_bandwidth", "bandwidth_rule", "statistics_per_bandwidth",
                "p_values_per_bandwidth", "exact", "n_permutations", "n_splits", "min_attainable_p",
                "p_value_mc_se", "p_value_ci95", "z_score", "groups", "group_col", "n_syllables", "n_animals",
                "features", "syllable_view", "params", "source", "backend", "version", "notes"]
        out = {k: getattr(self, k) for k in keys}
        out["groups"] = list(self.groups)
        out["p_value_ci95"] = list(self.p_value_ci95)
        if self.pairwise is not None:
            out["pairwise_mmd2"] = {str(r): {str(c): (None if not np.isfinite(v) else float(v)) for c, v in row.items()}
                                    for r, row in self.pairwise.iterrows()}
        return out

    def save(self, out_dir, *, figures: bool = True) -> dict:
        """Write report.json, null_distribution.csv, pairwise_mmd2.csv, per_animal.csv and figures.

        Returns a dict name -> path of the files written (all written atomically).
        """
        import pandas as pd

        from ._io import ensure_output_dir, write_csv_atomic, write_json_atomic

        out = ensure_output_dir(out_dir)
        paths = {}
        paths["report"] = write_json_atomic(out / "report.json", self.to_dict())
        paths["null"] = write_csv_atomic(out / "null_distribution.csv",
                                         pd.DataFrame({"draw": np.arange(len(self.null)), "mmd2": self.null}))
        if self.pairwise is not None:
            label = self.params.get("animal_col", "animal") if self.per_animal is not None else self.group_col
            paths["pairwise"] = write_csv_atomic(out / "pairwise_mmd2.csv", self.pairwise, index=True,
                                                 index_label=label)
        if self.per_animal is not None:
            paths["per_animal"] = write_csv_atomic(out / "per_animal.csv", self.per_animal)
        if figures:
            paths.update(_save_figures(self, out))
        return {k: Path(v) for k, v in paths.items()}


def _read_latents(latents, text_cols=()):
    import pandas as pd

    if isinstance(latents, pd.DataFrame):
        return latents, "<DataFrame>"
    path = Path(latents)
    if not path.exists():
        raise InputFileError(path, "latents file not found", "pass the latents.csv written by `usvpipe encode`")
    try:
        if path.suffix.lower() in (".h5", ".hdf5"):
            frame = pd.read_hdf(path)
        else:
            # keep_default_na=False: a group or animal called "NA" (or "None") is a name, not a gap
            # and the group/animal columns are text: groups "1"/"" must not become 1.0/NaN
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""],
                                dtype={c: str for c in ("id", "recording", "animal", "group", "shard", *text_cols)})
    except Exception as exc:  # pandas raises many types for unreadable files
        raise InputFileError(path, f"cannot read latents table ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
                             "pass a CSV with metadata columns and z0..z{d-1}") from None
    return frame, str(path)


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


def mmd_test(latents, *, group_col: str = "group", a: Optional[str] = None, b: Optional[str] = None,
             params: MMDParams = MMDParams()) -> MMDResult:
    """Kernel MMD test of group ``a`` vs group ``b`` on a latents table.

    Parameters
    ----------
    latents : pandas.DataFrame or path
        Latents table (``latents.csv``): metadata columns plus ``z0..z{d-1}``.
    group_col : str
        Column with the group labels.
    a, b : str, optional
        The two groups to compare; default: the two groups present (sorted).
    params : MMDParams

    Returns
    -------
    MMDResult

    Raises
    ------
    InputFileError
        Missing columns, fewer than two groups, unknown ``a``/``b``, NaNs, animals in
        both groups, or too few animals to reach ``params.alpha`` with the animal unit.
    """
    import pandas as pd

    from ._version import __version__
    from .config import params_to_dict

    frame, source = _read_latents(latents, (group_col, params.animal_col))
    if group_col not in frame.columns:
        raise InputFileError(source, f"no group column {group_col!r} (columns: {', '.join(map(str, frame.columns[:12]))})",
                             "pass --group-col with the column that holds the groups")
    feats = latent_columns(frame.columns, params.features)
    if not feats:
        raise InputFileError(source, "no latent columns found (expected z0..z{d-1}" +
                             (f" or columns matching {params.features!r})" if params.features else ")"),
                             "pass --features with a glob matching the latent columns")
    groups_all = frame[group_col].fillna("").astype(str)  # a missing group is the group "", not NaN
    present = sorted(groups_all.unique())
    if len(present) < 2:
        names = ", ".join(repr(g) for g in present) or "none"
        raise InputFileError(source, f"column {group_col!r} has fewer than 2 groups ({names})",
                             "the MMD test compares two groups: give each recording its group with the folder "
                             "layout group/animal/*.wav or a metadata CSV path,animal,group, then re-segment")
    if a is None and b is None:
        if len(present) > 2:
            raise InputFileError(source, f"column {group_col!r} has {len(present)} groups ({', '.join(present[:8])})",
                                 "choose two with --a and --b")
        a, b = present
    elif a is None or b is None:
        given = a if a is not None else b
        rest = [g for g in present if g != str(given)]
        if len(rest) != 1:
            raise InputFileError(source, "only one of --a/--b given and the other group is ambiguous", "pass both --a and --b")
        a, b = (str(given), rest[0]) if a is not None else (rest[0], str(given))
    a, b = str(a), str(b)
    for g in (a, b):
        if g not in present:
            raise InputFileError(source, f"group {g!r} not found in column {group_col!r} (groups: {', '.join(present[:12])})",
                                 "pick --a/--b from the listed groups")
    if a == b:
        raise InputFileError(source, f"--a and --b are the same group ({a!r})", "compare two different groups")
    sub = frame.loc[groups_all.isin([a, b])].reset_index(drop=True)
    g = sub[group_col].fillna("").astype(str).to_numpy()
    try:
        Z = sub[feats].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise InputFileError(source, "latent columns are not all numeric", "check the latents table or --features") from None
    bad = ~np.isfinite(Z).all(axis=1)
    if bad.any():
        raise InputFileError(source, f"{int(bad.sum())} row(s) have NaN/inf latents (first row index {int(np.flatnonzero(bad)[0])})",
                             "re-run `usvpipe encode` or drop those rows")

    has_animal = params.animal_col in sub.columns
    unit = params.unit if params.unit != "auto" else ("animal" if has_animal else "syllable")
    if unit == "animal" and not has_animal:
        raise InputFileError(source, f"--unit animal needs an animal column {params.animal_col!r}",
                             "add the column or use --unit syllable")
    weighting = params.weighting if params.weighting != "auto" else ("animal" if unit == "animal" else "syllable")
    notes = []
    if unit == "syllable" and weighting == "animal":
        # weights tied to animals are not exchangeable when single syllables are permuted
        notes.append("weighting 'animal' needs the animal unit; the syllable unit weights every syllable equally")
        weighting = "syllable"
    rng = np.random.default_rng(params.seed)

    if has_animal:
        animals = sub[params.animal_col].fillna("").astype(str).to_numpy()
        both = sorted(set(animals[g == a]) & set(animals[g == b]))
        if both and unit == "animal":
            raise InputFileError(source, f"animal(s) {', '.join(both[:5])} appear in both groups {a!r} and {b!r}",
                                 "animals must be nested in groups for --unit animal; fix the metadata or use --unit syllable")
        if params.max_per_animal is not None:
            keep = []
            for an in pd.unique(animals):
                idx = np.flatnonzero(animals == an)
                if idx.size > params.max_per_animal:
                    idx = np.sort(rng.choice(idx, params.max_per_animal, replace=False))
                keep.append(idx)
            keep = np.sort(np.concatenate(keep))
            if keep.size < len(sub):
                notes.append(f"subsampled to at most {params.max_per_animal} syllables per animal ({keep.size} of {len(sub)} kept)")
            Z, g, animals = Z[keep], g[keep], animals[keep]
        # clusters = (group, animal) pairs so that clusters are always nested in groups
        cluster_names = pd.unique(pd.Series([f"{x}\x00{y}" for x, y in zip(g, animals)]))
        code = {c: i for i, c in enumerate(cluster_names)}
        clusters = np.array([code[f"{x}\x00{y}"] for x, y in zip(g, animals)])
        cl_group = np.array([c.split("\x00")[0] for c in cluster_names])
        cl_label = [c.split("\x00")[1] for c in cluster_names]
    else:
        clusters = (g == b).astype(int)
        cl_group = np.array([a, b])
        cl_label = [a, b]
    k = len(cl_label)
    counts = np.bincount(clusters, minlength=k)
    isA = g == a
    nA, nB = int(isA.sum()), int((~isA).sum())
    if min(nA, nB) < 2:
        raise InputFileError(source, f"group {a if nA < 2 else b!r} has fewer than 2 syllables", "need at least 2 per group")
    kA = int((cl_group == a).sum()) if has_animal else 1
    kB = int((cl_group == b).sum()) if has_animal else 1

    n_splits = None
    if unit == "animal":
        n_splits = math.comb(k, kA)
        symmetric = kA == kB
        min_p_exact = (2 if symmetric else 1) / n_splits
        if n_splits <= params.max_exact_splits and min_p_exact > params.alpha:
            raise InputFileError(
                source,
                f"only {kA} vs {kB} animals: the animal-level permutation test has {n_splits} splits"
                + (" (label swap gives the same statistic)" if symmetric else "")
                + f", so the smallest attainable p-value is {min_p_exact:.3g} > alpha {params.alpha}",
                "add animals, raise --alpha, or use --unit syllable (treats syllables as independent: anticonservative)")

    Zc = Z - Z.mean(axis=0)
    bandwidths, med = _resolve_bandwidths(Zc, params)
    primary = _primary_index(params, len(bandwidths))
    scales = _scales(bandwidths, params.kernel)
    ops = _get_ops(params.backend, params.device)
    dtype = np.float32 if params.dtype == "float32" else np.float64
    need_syll = unit == "syllable" or params.syllable_view
    W = _label_matrix(isA, params.permutations, np.random.default_rng(rng.integers(2**63))) if need_syll else None
    res = _kernel_pass(Zc, clusters, k, scales, params.kernel, ops, W=W, dtype=dtype, block_size=params.block_size)

    # --- syllable unit (primary or secondary view)
    syll = None
    if need_syll:
        srng = None  # labels already drawn
        syll_params = dataclasses.replace(params, weighting="syllable")
        syll, syll_stats = _syllable_test(Zc, isA, clusters, k, bandwidths, syll_params, ops, srng, pass_result=res,
                                          W=W)

    # --- animal unit
    if unit == "animal":
        alpha_obs = (cl_group == a).astype(float)
        split_mat, exact, obs_idx, n_splits = _splits(k, kA, params, alpha_obs, rng)
        stats = np.stack([_stats_from_S(res.S[l], counts, split_mat, weighting, params.statistic)
                          for l in range(len(bandwidths))])  # (L, M)
        rtol = 1e-10
        order = np.r_[obs_idx, np.delete(np.arange(stats.shape[1]), obs_idx)]
        stats = stats[:, order]
        M = stats.shape[1]
        obs_stats = [float(s) for s in stats[:, 0]]
        if len(bandwidths) == 1:
            cnt = _pvalue_counts(stats[0, 1:], stats[0, 0], rtol)
            p = (1 + cnt) / M
            per_bw = [p]
        else:
            minp, per_bw = _minp_aggregate(stats, rtol)
            p = int(np.sum(minp <= minp[0] + 1e-12)) / M
            per_bw = [float(v) for v in per_bw]
        null = stats[primary] if exact else stats[primary, 1:]
        n_perm = M if exact else M - 1
        se, ci = ((0.0, (p, p)) if exact else _mc_error(p, n_perm))
        min_p = ((2 if kA == kB else 1) / n_splits) if exact else 1.0 / (n_perm + 1)
        statistic = obs_stats[primary]
    else:
        exact = False
        p = syll.p_value
        per_bw = syll.p_values_per_bandwidth
        obs_stats = syll.statistics
        null = syll_stats[primary, 1:]
        n_perm = params.permutations
        se, ci = syll.p_value_mc_se, syll.p_value_ci95
        min_p = 1.0 / (n_perm + 1)
        statistic = obs_stats[primary]
        weighting = "syllable"
    sd = float(np.std(null)) if len(null) > 1 else float("nan")
    z = (statistic - float(np.mean(null))) / sd if sd > 0 else float("nan")

    syllable_view = None
    if syll is not None and unit == "animal":
        syllable_view = {
            "label": "secondary view: syllables permuted as if independent (anticonservative when animals differ)",
            "statistic": syll.statistics[primary], "p_value": syll.p_value, "n_permutations": syll.n_permutations,
            "p_value_mc_se": syll.p_value_mc_se, "weighting": "syllable",
        }

    pairwise, per_animal = _pairwise(res.S[primary], counts, cl_label, cl_group, a, b, params.statistic,
                                     has_animal)
    if params.bandwidth == "agg":
        rule = f"agg (median {med:.6g} x 2^{list(params.agg_exponents)}, min-p level correction)"
    elif params.bandwidth == "median":
        rule = "median heuristic"
    else:
        rule = "fixed"
    return MMDResult(
        statistic=float(statistic), p_value=float(p), reject=bool(p <= params.alpha), alpha=params.alpha, unit=unit,
        weighting=weighting, statistic_kind=params.statistic, kernel=params.kernel,
        bandwidths=[float(h) for h in bandwidths], primary_bandwidth=float(bandwidths[primary]), bandwidth_rule=rule,
        statistics_per_bandwidth=[float(s) for s in obs_stats], p_values_per_bandwidth=[float(v) for v in per_bw],
        exact=bool(exact), n_permutations=int(n_perm), n_splits=n_splits, min_attainable_p=float(min_p),
        p_value_mc_se=float(se), p_value_ci95=tuple(float(c) for c in ci), z_score=float(z), null=np.asarray(null),
        groups=(a, b), group_col=group_col, n_syllables={a: nA, b: nB}, n_animals={a: kA, b: kB}, features=feats,
        pairwise=pairwise, per_animal=per_animal, syllable_view=syllable_view, params=params_to_dict(params),
        source=source, backend=f"{ops.name}:{ops.device}:{params.dtype}", version=__version__, notes=notes)


def _nanmean(values) -> float:
    """Mean of the finite values; NaN (silently) when there are none (animals with < 2 syllables)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def _pairwise(S, counts, labels, cl_group, a, b, statistic, has_animal):
    """MMD² between every pair of clusters (animals) from the block sums, plus a per-animal summary."""
    import pandas as pd

    k = len(labels)
    n = counts.astype(float)
    diag = np.diag(S)
    if statistic == "unbiased":
        with np.errstate(divide="ignore", invalid="ignore"):
            within = np.where(n >= 2, diag / (n * (n - 1)), np.nan)
    else:
        within = (diag + n) / (n * n)
    M = within[:, None] + within[None, :] - 2.0 * S / np.outer(n, n)
    np.fill_diagonal(M, 0.0)
    pairwise = pd.DataFrame(M, index=labels, columns=labels)
    if not has_animal:
        return pairwise, None
    rows = []
    for i in range(k):
        own = [j for j in range(k) if j != i and cl_group[j] == cl_group[i]]
        other = [j for j in range(k) if cl_group[j] != cl_group[i]]
        rows.append({"animal": str(labels[i]), "group": str(cl_group[i]), "n_syllables": int(counts[i]),
                     "mmd2_own_group": _nanmean(M[i, own]), "mmd2_other_group": _nanmean(M[i, other])})
    per = pd.DataFrame(rows)
    per["difference"] = per["mmd2_other_group"] - per["mmd2_own_group"]
    return pairwise, per


# ----------------------------------------------------------------------------- figures
def _save_figures(result: MMDResult, out: Path) -> dict:
    """Null distribution, pairwise heatmap with dendrogram ordering, per-animal effect size."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ._io import save_figure_atomic

    paths = {}
    a, b = result.groups

    # Null distribution with the observed value.
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.hist(result.null, bins=min(60, max(10, len(result.null) // 10)), color="0.65", edgecolor="white")
    ax.axvline(result.statistic, color="crimson", lw=2, label=f"observed {result.statistic:.3g}")
    kind = "all splits" if result.exact else f"{result.n_permutations} permutations"
    ax.set_xlabel(f"MMD² ({result.statistic_kind}, h = {result.primary_bandwidth:.3g})")
    ax.set_ylabel("count")
    ax.set_title(f"{a} vs {b}: unit = {result.unit}, {kind}, p = {result.p_value:.3g}", fontsize=9)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    paths["null_figure"] = save_figure_atomic(fig, out / "null_distribution.png", dpi=150)

    if result.pairwise is not None and len(result.pairwise) >= 2:
        from scipy.cluster import hierarchy
        from scipy.spatial.distance import squareform

        M = result.pairwise.to_numpy(dtype=float)
        D = np.sqrt(np.clip(np.nan_to_num(M, nan=np.nanmax(M) if np.isfinite(M).any() else 0.0), 0.0, None))
        D = (D + D.T) / 2
        np.fill_diagonal(D, 0.0)
        labels = list(result.pairwise.index)
        fig = plt.figure(figsize=(6.5, 6.8))
        ax_d = fig.add_axes([0.18, 0.78, 0.62, 0.17])
        ax_h = fig.add_axes([0.18, 0.12, 0.62, 0.64])
        ax_c = fig.add_axes([0.83, 0.12, 0.03, 0.64])
        if len(labels) >= 3:
            Lk = hierarchy.linkage(squareform(D, checks=False), method="average")
            dn = hierarchy.dendrogram(Lk, ax=ax_d, no_labels=True, color_threshold=0, above_threshold_color="0.3")
            order = dn["leaves"]
        else:
            order = list(range(len(labels)))
        ax_d.axis("off")
        Mo = M[np.ix_(order, order)]
        im = ax_h.imshow(Mo, cmap="viridis", aspect="auto", interpolation="nearest")
        group_of = {}
        if result.per_animal is not None:
            group_of = dict(zip(result.per_animal["animal"], result.per_animal["group"]))
        ticks = [f"{labels[i]} ({group_of[labels[i]]})" if labels[i] in group_of else str(labels[i]) for i in order]
        fs = 8 if len(labels) <= 30 else 5
        ax_h.set_xticks(range(len(order)))
        ax_h.set_yticks(range(len(order)))
        ax_h.set_xticklabels(ticks, rotation=90, fontsize=fs)
        ax_h.set_yticklabels(ticks, fontsize=fs)
        fig.colorbar(im, cax=ax_c, label="MMD²")
        fig.suptitle("pairwise MMD² between animals (dendrogram order)", fontsize=9)
        paths["heatmap_figure"] = save_figure_atomic(fig, out / "pairwise_heatmap.png", dpi=150, bbox_inches="tight")

    if result.per_animal is not None and len(result.per_animal):
        per = result.per_animal
        fig, ax = plt.subplots(figsize=(5.0, 3.8))
        for x0, grp, colour in ((0, a, "tab:blue"), (1, b, "tab:orange")):
            rows = per[per["group"] == grp]
            for _, r in rows.iterrows():
                ax.plot([x0 - 0.15, x0 + 0.15], [r["mmd2_own_group"], r["mmd2_other_group"]], "-o", color=colour,
                        alpha=0.7, ms=4)
        ax.set_xticks([0, 1])
        ax.set_xticklabels([f"{a} animals", f"{b} animals"])
        ax.set_ylabel("mean MMD² to animals of: own group (left) | other group (right)", fontsize=8)
        ax.set_title(f"per-animal effect size (unit {result.unit}, p = {result.p_value:.3g})", fontsize=9)
        fig.tight_layout()
        paths["effect_figure"] = save_figure_atomic(fig, out / "effect_size.png", dpi=150)
    return paths
