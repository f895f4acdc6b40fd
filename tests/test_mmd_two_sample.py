"""Tests of usvpipe/mmd/two_sample.py (with bandwidth.py, statistics.py, kernel_pass.py, backends.py):
the MMD² estimator against a double loop, the median heuristic, permutation_test's seeding, backends and calibration."""
from __future__ import annotations

import numpy as np
import pytest

from usvpipe.mmd import mmd2, permutation_test

from mmd_helpers import _ref_mmd2, _rejection_rate


@pytest.mark.parametrize("biased", [False, True])
@pytest.mark.parametrize("kernel", ["gaussian", "laplace"])
def test_mmd2_matches_double_loop(biased, kernel):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(23, 4))
    Y = rng.normal(size=(17, 4)) + 0.4
    h = 1.7
    ref = _ref_mmd2(X, Y, h, biased=biased, kernel=kernel)
    stat = "biased" if biased else "unbiased"
    got = mmd2(X, Y, bandwidth=h, kernel=kernel, statistic=stat)
    assert got == pytest.approx(ref, rel=1e-6)
    # blocked (memory-bounded) computation and the torch backend give the same number
    assert mmd2(X, Y, bandwidth=h, kernel=kernel, statistic=stat, block_size=16) == pytest.approx(ref, rel=1e-9)
    assert mmd2(X, Y, bandwidth=h, kernel=kernel, statistic=stat, backend="torch") == pytest.approx(ref, rel=1e-9)


def test_median_bandwidth_is_median_distance():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(15, 3))
    Z = np.vstack([X, Y])
    d = [np.linalg.norm(Z[i] - Z[j]) for i in range(len(Z)) for j in range(i + 1, len(Z))]
    h = float(np.median(d))
    assert mmd2(X, Y) == pytest.approx(_ref_mmd2(X, Y, h), rel=1e-6)


def test_unbiased_mmd_is_centred_under_null_and_biased_is_not():
    rng = np.random.default_rng(3)
    u = [mmd2(rng.normal(size=(20, 2)), rng.normal(size=(20, 2)), bandwidth=1.0) for _ in range(200)]
    v = [mmd2(rng.normal(size=(20, 2)), rng.normal(size=(20, 2)), bandwidth=1.0, statistic="biased") for _ in range(200)]
    se = np.std(u) / np.sqrt(len(u))
    assert abs(np.mean(u)) < 4 * se
    assert np.mean(v) > 10 * se


def test_permutation_test_seeded_and_backends_agree():
    rng = np.random.default_rng(6)
    X, Y = rng.normal(size=(30, 3)), rng.normal(size=(25, 3)) + 0.3
    r1 = permutation_test(X, Y, permutations=200, seed=3)
    r2 = permutation_test(X, Y, permutations=200, seed=3)
    rt = permutation_test(X, Y, permutations=200, seed=3, backend="torch", device="cpu", block_size=20)
    r4 = permutation_test(X, Y, permutations=200, seed=4)
    assert r1.p_value == r2.p_value and np.array_equal(r1.null, r2.null)
    assert rt.p_value == r1.p_value
    np.testing.assert_allclose(rt.null, r1.null, atol=1e-5)
    assert not np.array_equal(r1.null, r4.null)


def test_calibration_syllable_unit_iid_null():
    rng = np.random.default_rng(10)
    p_med, p_agg = [], []
    for _ in range(200):
        X, Y = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))
        p_med.append(permutation_test(X, Y, permutations=200, bandwidth="median",
                                      seed=int(rng.integers(2**31))).p_value)
        if len(p_agg) < 100:
            p_agg.append(permutation_test(X, Y, permutations=200, bandwidth="agg", agg_exponents=(-1, 0, 1),
                                          seed=int(rng.integers(2**31))).p_value)
    assert 0.02 <= _rejection_rate(p_med) <= 0.09
    assert _rejection_rate(p_agg) <= 0.10  # 100 repetitions: MC band for 0.05
    # p-values roughly uniform
    assert 0.4 <= np.mean(p_med) <= 0.6


def test_permutation_test_aggregates_by_default_as_mmd_test_does_and_median_gives_one_bandwidth():
    rng = np.random.default_rng(8)
    X, Y = rng.normal(size=(30, 3)), rng.normal(size=(25, 3)) + 0.4
    agg = permutation_test(X, Y, permutations=99, seed=2)
    med = permutation_test(X, Y, permutations=99, seed=2, bandwidth="median")
    assert agg.aggregated and len(agg.bandwidths) == 5 and not med.aggregated and len(med.bandwidths) == 1
    assert med.bandwidths[0] == pytest.approx(agg.bandwidths[2]) and med.statistic == pytest.approx(agg.statistic)
    assert med.p_value == pytest.approx(agg.p_values_per_bandwidth[2])
