"""One blocked pass over the pooled kernel matrix: cluster-block sums, row sums, permutation quadratic forms.

See "How the permutations are made cheap" in :mod:`usvpipe.mmd`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


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
