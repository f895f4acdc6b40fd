"""Array backends of the kernel pass: numpy on the CPU, torch on CPU or CUDA (same interface)."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError


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
            raise ConfigError("[mmd].backend", "'numpy' runs on the CPU only", "use backend 'torch' or 'auto' with device 'cuda'")
        return _NumpyOps()
    if backend in ("torch", "auto"):
        from .._device import cuda_available, resolve_device

        if backend == "auto" and device != "cuda" and (device == "cpu" or not cuda_available()):
            return _NumpyOps()  # "auto" uses torch only on a GPU (and imports no torch for device "cpu")
        # MPS is left out of "auto": the sums that give the statistic are float64
        return _TorchOps(resolve_device(device, auto_order=("cuda",)).type)
    raise ConfigError(f"unknown backend {backend!r}")  # pragma: no cover
