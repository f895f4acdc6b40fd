"""Tests of usvpipe/mmd/pvalues.py: the permutation null and label draws, the p-value's floor, MMDAgg's level correction."""
from __future__ import annotations

import numpy as np
import pytest

from usvpipe.mmd import mmd2, permutation_test


def test_permutation_null_equals_direct_recomputation():
    from usvpipe.mmd.pvalues import _label_matrix

    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(12, 3)), rng.normal(size=(9, 3)) + 0.5
    res = permutation_test(X, Y, permutations=30, bandwidth=1.2, seed=7, dtype="float64", block_size=8)
    Z = np.vstack([X, Y])
    a = np.r_[np.ones(12, bool), np.zeros(9, bool)]
    W = _label_matrix(a, 30, np.random.default_rng(7)).astype(bool)
    assert W.shape == (31, 21) and np.array_equal(W[0], a) and (W.sum(axis=1) == 12).all()
    direct = np.array([mmd2(Z[W[b]], Z[~W[b]], bandwidth=1.2) for b in range(1, 31)])
    np.testing.assert_allclose(res.null, direct, rtol=1e-9, atol=1e-12)
    assert res.statistic == pytest.approx(mmd2(X, Y, bandwidth=1.2), rel=1e-12)
    # p-value counts the observed statistic: (1 + #{T_b >= T_obs}) / (1 + B)
    assert res.p_value == pytest.approx((1 + np.sum(direct >= res.statistic - 1e-12)) / 31)


def test_pvalue_never_zero_and_float32_agrees_with_float64():
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(40, 3)), rng.normal(size=(40, 3)) + 3.0
    r32 = permutation_test(X, Y, permutations=99, bandwidth="median", seed=1)  # the null in MMD² units
    r64 = permutation_test(X, Y, permutations=99, bandwidth="median", seed=1, dtype="float64")
    assert r32.p_value == pytest.approx(1 / 100) and r64.p_value == pytest.approx(1 / 100)
    np.testing.assert_allclose(r32.null, r64.null, rtol=0, atol=1e-5 * np.abs(r64.null).max() + 1e-6)
    assert 0 < r32.p_value_mc_se < 0.02


def test_agg_level_correction():
    rng = np.random.default_rng(7)
    X, Y = rng.normal(size=(30, 3)), rng.normal(size=(30, 3)) * 1.6
    r = permutation_test(X, Y, permutations=300, bandwidth="agg", seed=0)
    assert r.aggregated and len(r.bandwidths) == 5 and len(r.p_values_per_bandwidth) == 5
    ratios = np.array(r.bandwidths[1:]) / np.array(r.bandwidths[:-1])
    np.testing.assert_allclose(ratios, 2.0)
    # the corrected p-value pays for looking at several bandwidths, at most a Bonferroni price
    assert r.p_value >= min(r.p_values_per_bandwidth) - 1e-12
    assert r.p_value <= len(r.bandwidths) * min(r.p_values_per_bandwidth) + 2 / 301
