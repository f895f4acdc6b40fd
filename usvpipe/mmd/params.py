"""Parameters of the MMD test (``[mmd]`` in usvpipe.toml, ``usvpipe mmd`` options)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from ..constraints import Interval, OneOf, check_params, config_error


@dataclass(frozen=True)
class MMDParams:
    """Parameters of the MMD test (defaults are the recommended settings).

    Attributes
    ----------
    unit : {"auto", "animal", "syllable"}
        Unit of exchangeability. ``"auto"``: ``"animal"``; a table without ``animal_col``
        is an error unless ``"syllable"`` is asked for explicitly (a typo in the column
        name must not switch silently to the anticonservative syllable unit).
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
        ``"agg"`` (default; MMDAgg, Schrab et al. JMLR 2023: the test at every
        bandwidth median × 2**e for e in ``agg_exponents``, its p-value the smallest
        per-bandwidth p-value calibrated against the same permutations), ``"median"``
        (one bandwidth, the median pairwise distance of the pooled sample), or a
        positive number given as a string or float (fixed h). Why ``agg``: the scale of
        an unknown group difference is unknown, and one bandwidth is blind to differences
        much finer or coarser than itself; on 10⁴ synthetic syllables (12 + 12 animals)
        the aggregated test found a repertoire-usage difference as often as the median
        heuristic on the default VAE's latents (0.79 against 0.74) and far more often
        where the median scale misses the call types (PCA-32: 0.40 against 0.15), both
        at the nominal level (benchmarks/mmd-agg-default.md). ``"median"`` is
        the sharper test for a difference known to be a shift of the whole
        distribution along one direction (e.g. pitch). The reported MMD² is the median
        bandwidth's either way.
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
    bandwidth: str = "agg"
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

    _constraints = {
        "unit": [OneOf("auto", "animal", "syllable")],
        "weighting": [OneOf("auto", "animal", "syllable")],
        "statistic": [OneOf("unbiased", "biased")],
        "kernel": [OneOf("gaussian", "laplace")],
        "backend": [OneOf("auto", "numpy", "torch")],
        "device": [OneOf("auto", "cpu", "cuda")],
        "dtype": [OneOf("float32", "float64")],
        "permutations": [Interval(int, 1, None)],
        "max_exact_splits": [Interval(int, 0, None)],
        "max_per_animal": [None, Interval(int, 2, None)],
        "alpha": [Interval(float, 0, 1, closed="neither")],
        "block_size": [Interval(int, 1, None)],
        "median_max_samples": [Interval(int, 10, None)],
    }

    def __post_init__(self):
        check_params(self, "mmd")
        bw = self.bandwidth
        if isinstance(bw, (int, float)) and not isinstance(bw, bool):
            object.__setattr__(self, "bandwidth", repr(float(bw)))
        elif bw not in ("median", "agg"):
            try:
                h = float(bw)
            except (TypeError, ValueError):
                raise config_error("mmd", "bandwidth", f"{bw!r} is not 'median', 'agg' or a positive number",
                                   "use median, agg or a bandwidth such as 0.5") from None
            if not (h > 0 and math.isfinite(h)):
                raise config_error("mmd", "bandwidth", f"{bw!r} is not a positive number", "use median, agg or a bandwidth > 0")
        object.__setattr__(self, "agg_exponents", tuple(int(e) for e in self.agg_exponents))
        if not self.agg_exponents:
            raise config_error("mmd", "agg_exponents", "is empty", "give at least one power of two, e.g. [-1, 0, 1]")
