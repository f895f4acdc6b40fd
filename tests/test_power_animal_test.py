import numpy as np
import pandas as pd
import pytest

from usvpipe.mmd import MMDParams, mmd_test
from usvpipe.mmd.bandwidth import _resolve_bandwidths
from usvpipe.power.animal_test import SplitSource, _gram, cell_sums, p_value, split_statistics


def _nested(k=10, n=15, d=3, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(k):
        centre = rng.normal(0, 0.5, d) + (shift if i >= k // 2 else 0.0)
        for z in rng.normal(centre, 1.0, (n + i, d)):
            rows.append({"animal": f"m{i}", "group": "A" if i < k // 2 else "B", **{f"z{j}": z[j] for j in range(d)}})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("bandwidth", ["median", "agg"])
@pytest.mark.parametrize("shift", [0.0, 0.8])
def test_the_planted_test_gives_the_p_value_of_mmd_test_on_the_same_animals(bandwidth, shift):
    frame = _nested(shift=shift)
    params = MMDParams(bandwidth=bandwidth, syllable_view=False)
    expected = mmd_test(frame, params=params, health=None)
    Z = frame[["z0", "z1", "z2"]].to_numpy()
    animals = pd.factorize(frame["animal"])[0]
    bws = _resolve_bandwidths(Z - Z.mean(axis=0), params)[0]
    sums = cell_sums(Z, animals, 10, bws, params)
    group_a = np.r_[np.ones(5), np.zeros(5)]
    splits = SplitSource(10, 5, max_exact_splits=10_000, permutations=99)
    mat, row = splits.for_observed(group_a, np.random.default_rng(0))
    stats = split_statistics(sums, np.eye(10), mat)
    assert p_value(stats, row, splits.exact) == pytest.approx(expected.p_value, abs=1e-12)
    assert stats[len(bws) // 2 if bandwidth == "agg" else 0, row] == pytest.approx(expected.statistic, rel=1e-6)


def test_two_copies_of_one_animal_share_their_syllables_with_themselves():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(12, 2))
    cells = np.r_[np.zeros(5, int), np.ones(7, int)]
    sums = cell_sums(Z, cells, 2, [1.0], MMDParams(dtype="float64"))
    V = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # animal 0 drawn twice, then animal 1
    G, s = _gram(sums, V)
    K = np.exp(-((Z[:, None] - Z[None]) ** 2).sum(-1) / 2.0)
    w0 = np.r_[np.full(5, 1 / 5), np.zeros(7)]
    assert G[0, 0, 1] == pytest.approx(w0 @ K @ w0)  # between the copies: x = y pairs included
    assert G[0, 0, 0] == pytest.approx(w0 @ (K - np.eye(12)) @ w0)  # within one animal: not
    assert s[0] == pytest.approx(1 / 5)


def test_random_splits_are_used_when_there_are_too_many_to_enumerate():
    splits = SplitSource(12, 6, max_exact_splits=100, permutations=49)
    mat, row = splits.for_observed(np.r_[np.ones(6), np.zeros(6)], np.random.default_rng(0))
    assert not splits.exact and mat.shape == (50, 12) and row == 0
    assert (mat.sum(axis=1) == 6).all()
