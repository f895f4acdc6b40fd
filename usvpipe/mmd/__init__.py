"""Kernel MMD two-sample tests for nested data (syllables nested in animals).

The question "do group A and group B vocalise differently?" is answered by comparing
the distributions of syllable latents with the maximum mean discrepancy (MMD,
Gretton et al., JMLR 2012) and a permutation test. Syllables of one animal are not
independent, so by default the *animal* is the unit of exchangeability: whole animals
are permuted between the groups (every split enumerated when there are few), and the
syllable-level test is reported only as a secondary, labelled view. The kernel bandwidth is,
by default, MMDAgg's family (median heuristic × 2**e, e = -2..2) with one level-corrected
p-value; the MMD² reported is the median bandwidth's (see :class:`MMDParams`).

Layout
------
* pure functions on arrays (``two_sample.py``): :func:`mmd2` (the statistic),
  :func:`permutation_test` (one kernel pass, all permutations as one matrix product),
  and :func:`median_bandwidth` (``bandwidth.py``);
* the pipeline stage (``stage.py``): :class:`MMDParams` (``params.py``),
  :func:`mmd_test` -> :class:`MMDResult` (``result.py``; ``.save(out_dir)`` writes
  report.json, CSVs and the figures of ``figures.py``);
* the machinery: ``backends.py`` (numpy / torch), ``kernel_pass.py`` (the blocked pass
  over the kernel matrix), ``statistics.py`` (MMD² from its sums), ``pvalues.py``
  (permutation p-values, MMDAgg's correction, label draws).

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

from .bandwidth import median_bandwidth
from .params import MMDParams
from .result import MMDResult
from ..artifacts import latent_columns
from .stage import mmd_test
from .two_sample import PermutationResult, mmd2, permutation_test

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
