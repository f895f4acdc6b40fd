"""Tests of usvpipe/mmd/stage.py (mmd_test on a latents table): the animal unit, weighting, subsampling,
the pairwise matrix, backends, input validation, and calibration of the animal-unit test."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from usvpipe.errors import ConfigError, InputFileError
from usvpipe.mmd import MMDParams, latent_columns, mmd2, mmd_test

from mmd_helpers import FAST, _nested, _rejection_rate


@pytest.mark.parametrize("bandwidth", ["agg", "median"])  # the default, and the single-bandwidth test
def test_calibration_animal_unit_with_animal_effects_and_syllable_unit_anticonservative(bandwidth):
    rng = np.random.default_rng(11)
    p_animal, p_syll = [], []
    params = MMDParams(**{**FAST, "syllable_view": True, "permutations": 200, "bandwidth": bandwidth})
    for _ in range(200):
        df = _nested(rng, animals=(5, 5), per_animal=6, animal_sd=1.0)
        res = mmd_test(df, params=params)
        assert res.unit == "animal" and res.exact and res.n_permutations == 252
        p_animal.append(res.p_value)
        p_syll.append(res.syllable_view["p_value"])
    rate_animal = _rejection_rate(p_animal)
    rate_syll = _rejection_rate(p_syll)
    assert 0.02 <= rate_animal <= 0.09
    # syllables treated as independent: far too many false positives
    assert rate_syll >= 0.3
    assert rate_syll > 3 * rate_animal


def test_the_default_test_is_mmdagg_and_bandwidth_median_is_the_single_bandwidth_test_it_was():
    rng = np.random.default_rng(15)
    df = _nested(rng, animals=(5, 5), per_animal=8, animal_sd=0.5, shift=0.8)
    agg = mmd_test(df, params=MMDParams(**FAST))
    med = mmd_test(df, params=MMDParams(**{**FAST, "bandwidth": "median"}))
    # the default aggregates the five bandwidths median x 2^e, e = -2..2
    assert agg.bandwidth_rule.startswith("agg (MMDAgg") and agg.params["bandwidth"] == "agg"
    np.testing.assert_allclose(np.array(agg.bandwidths) / agg.primary_bandwidth, [0.25, 0.5, 1.0, 2.0, 4.0])
    # --bandwidth median: one bandwidth, the aggregated family's median one, with the same MMD² and null
    assert med.bandwidth_rule == "median heuristic" and med.bandwidths == [agg.primary_bandwidth]
    assert agg.statistic == agg.statistics_per_bandwidth[2] == pytest.approx(med.statistic, rel=1e-12)
    np.testing.assert_allclose(agg.null, med.null, rtol=1e-12)
    # the median test's p is the aggregated test's uncorrected p at the median bandwidth; the
    # aggregated p pays for five looks: at least the smallest per-bandwidth p, at most five times it
    assert med.p_value == pytest.approx(agg.p_values_per_bandwidth[2], rel=1e-12)
    smallest = min(agg.p_values_per_bandwidth)
    assert smallest - 1e-12 <= agg.p_value <= 5 * smallest + 1e-12


def test_power_increases_with_shift():
    rng = np.random.default_rng(12)
    params = MMDParams(**FAST)
    rates = []
    for shift in (0.0, 1.0, 2.5):
        p = [mmd_test(_nested(rng, animals=(5, 5), per_animal=8, animal_sd=0.5, shift=shift), params=params).p_value
             for _ in range(40)]
        rates.append(_rejection_rate(p))
    assert rates[0] < rates[1] < rates[2]
    assert rates[2] >= 0.8


def test_exact_enumeration_4_vs_4_attains_two_over_seventy():
    rng = np.random.default_rng(13)
    df = _nested(rng, animals=(4, 4), per_animal=10, animal_sd=0.1, shift=4.0)
    res = mmd_test(df, params=MMDParams(**FAST))
    assert res.exact and res.n_splits == 70 and res.n_permutations == 70
    # swapping the group labels gives the same statistic: splits come in pairs
    assert res.min_attainable_p == pytest.approx(2 / 70)
    assert res.p_value == pytest.approx(2 / 70)
    assert res.p_value_mc_se == 0.0
    # the null over all splits is symmetric under complementing the split
    assert np.sum(np.isclose(res.null, res.statistic, rtol=1e-9)) == 2


def test_unequal_animals_min_p_and_too_few_animals_error(tmp_path):
    rng = np.random.default_rng(14)
    df = _nested(rng, animals=(3, 5), per_animal=8, animal_sd=0.1, shift=4.0)
    res = mmd_test(df, params=MMDParams(**FAST))
    assert res.n_splits == 56 and res.min_attainable_p == pytest.approx(1 / 56)
    assert res.p_value == pytest.approx(1 / 56)
    small = _nested(rng, animals=(3, 3), per_animal=8)
    path = tmp_path / "latents.csv"
    small.to_csv(path, index=False)
    with pytest.raises(InputFileError, match=r"latents.csv.*3 vs 3 animals.*20 splits.*0\.1"):
        mmd_test(path, params=MMDParams(**FAST))
    # the syllable unit still runs (secondary, anticonservative view)
    assert mmd_test(path, params=MMDParams(**{**FAST, "unit": "syllable"})).unit == "syllable"


def test_monte_carlo_animal_splits_when_many():
    rng = np.random.default_rng(15)
    df = _nested(rng, animals=(6, 6), per_animal=4)
    res = mmd_test(df, params=MMDParams(**{**FAST, "max_exact_splits": 100}))
    assert not res.exact and res.n_permutations == 200 and res.n_splits == 924
    assert res.min_attainable_p == pytest.approx(1 / 201)
    assert res.p_value >= 1 / 201 and res.p_value_mc_se > 0


def test_animal_weighting_matches_explicit_weighted_statistic():
    rng = np.random.default_rng(16)
    df = _nested(rng, animals=(3, 4), per_animal=5)
    # one prolific animal
    extra = df[df.animal == "A0"].copy()
    extra[["z0", "z1", "z2"]] += rng.normal(scale=0.1, size=(len(extra), 3))
    df = pd.concat([df, extra, extra], ignore_index=True)
    res = mmd_test(df, params=MMDParams(**{**FAST, "bandwidth": "1.5", "dtype": "float64"}))
    assert res.weighting == "animal"
    Z = df[["z0", "z1", "z2"]].to_numpy()
    a = (df.group == "A").to_numpy()
    w = np.zeros(len(df))
    for grp in ("A", "B"):
        sel = df.group == grp
        counts = df[sel].animal.value_counts()
        w[sel.to_numpy()] = [1.0 / (counts[an] * len(counts)) for an in df[sel].animal]
    D2 = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1)
    K = np.exp(-D2 / (2 * 1.5**2))
    np.fill_diagonal(K, 0)
    p, q = np.where(a, w, 0), np.where(~a, w, 0)
    ref = p @ K @ p / (1 - p @ p) + q @ K @ q / (1 - q @ q) - 2 * p @ K @ q
    assert res.statistic == pytest.approx(ref, rel=1e-9)
    # syllable weighting gives the plain pooled statistic
    res_s = mmd_test(df, params=MMDParams(**{**FAST, "bandwidth": "1.5", "weighting": "syllable", "dtype": "float64"}))
    assert res_s.statistic == pytest.approx(mmd2(Z[a], Z[~a], bandwidth=1.5), rel=1e-9)
    # default float32 kernel blocks (float64 accumulation): same statistic to 1e-6
    res32 = mmd_test(df, params=MMDParams(**{**FAST, "bandwidth": "1.5"}))
    assert res32.statistic == pytest.approx(ref, rel=1e-6)


def test_max_per_animal_subsamples_and_is_seeded():
    rng = np.random.default_rng(17)
    df = _nested(rng, animals=(5, 5), per_animal=12)
    p = MMDParams(**{**FAST, "max_per_animal": 5})
    r1, r2 = mmd_test(df, params=p), mmd_test(df, params=p)
    assert r1.n_syllables == {"A": 25, "B": 25}
    assert r1.statistic == r2.statistic and r1.notes


def test_pairwise_matrix_and_per_animal_table():
    rng = np.random.default_rng(18)
    df = _nested(rng, animals=(4, 4), per_animal=7)
    res = mmd_test(df, params=MMDParams(**{**FAST, "bandwidth": "1.3", "dtype": "float64"}))
    M = res.pairwise
    assert M.shape == (8, 8) and np.allclose(M.to_numpy(), M.to_numpy().T)
    a0, b1 = df[df.animal == "A0"], df[df.animal == "B1"]
    cols = ["z0", "z1", "z2"]
    assert M.loc["A0", "B1"] == pytest.approx(mmd2(a0[cols], b1[cols], bandwidth=1.3), rel=1e-9)
    per = res.per_animal
    assert set(per.columns) >= {"animal", "group", "n_syllables", "mmd2_own_group", "mmd2_other_group"}
    own = [c for c in M.columns if c.startswith("A") and c != "A0"]
    assert per.set_index("animal").loc["A0", "mmd2_own_group"] == pytest.approx(M.loc["A0", own].mean())


def test_numpy_and_torch_backends_same_result():
    rng = np.random.default_rng(19)
    df = _nested(rng, animals=(4, 5), per_animal=6)
    for dtype, rel in (("float64", 1e-9), ("float32", 1e-6)):
        common = {**FAST, "syllable_view": True, "dtype": dtype}
        rn = mmd_test(df, params=MMDParams(**common, backend="numpy"))
        rt = mmd_test(df, params=MMDParams(**common, backend="torch", device="cpu", block_size=16))
        assert rt.statistic == pytest.approx(rn.statistic, rel=rel)
        assert rt.p_value == rn.p_value and rt.syllable_view["p_value"] == rn.syllable_view["p_value"]
        np.testing.assert_allclose(rt.pairwise.to_numpy(), rn.pairwise.to_numpy(), rtol=rel, atol=1e-9)


def test_latent_column_detection():
    cols = ["id", "z10", "z2", "z0", "z1", "zeta", "group"] + [f"z{i}" for i in range(3, 10)]
    assert latent_columns(cols) == [f"z{i}" for i in range(11)]
    assert latent_columns(["a", "pc_1", "pc_2", "umap_x"], "pc_*,umap_*") == ["pc_1", "pc_2", "umap_x"]


def test_validation_errors_name_the_file(tmp_path):
    rng = np.random.default_rng(20)
    df = _nested(rng, animals=(4, 4), per_animal=4)
    path = tmp_path / "latents.csv"

    def run(frame, **kw):
        frame.to_csv(path, index=False)
        return mmd_test(path, params=MMDParams(**FAST), **kw)

    with pytest.raises(InputFileError, match=r"latents\.csv: no group column 'cohort'"):
        run(df, group_col="cohort")
    with pytest.raises(InputFileError, match="fewer than 2 groups"):
        run(df[df.group == "A"])
    with pytest.raises(InputFileError, match="group 'deaf' not found"):
        run(df, a="deaf", b="B")
    bad = df.copy()
    bad.loc[3, "z1"] = np.nan
    with pytest.raises(InputFileError, match="1 row.*NaN"):
        run(bad)
    mixed = df.copy()
    mixed.loc[0, "group"] = "B"
    with pytest.raises(InputFileError, match="appear in both groups"):
        run(mixed)
    three = df.copy()
    three.loc[three.animal == "A3", "group"] = "C"
    with pytest.raises(InputFileError, match="choose two with --a and --b"):
        run(three)
    with pytest.raises(InputFileError, match="no latent columns"):
        run(df.rename(columns={"z0": "x0", "z1": "x1", "z2": "x2"}))
    with pytest.raises(InputFileError, match="not found"):
        mmd_test(tmp_path / "missing.csv")
    with pytest.raises(ConfigError):
        MMDParams(bandwidth="wide")
    with pytest.raises(ConfigError):
        MMDParams(unit="session")


def test_group_and_animal_names_that_look_like_missing_values_or_numbers(tmp_path):
    # Labels are names: a group "NA" (not applicable), groups "01"/"02", an animal "None",
    # and rows whose group is empty must neither crash nor be renamed.
    rng = np.random.default_rng(21)
    df = _nested(rng, animals=(4, 4), per_animal=4)
    df["group"] = df["group"].map({"A": "NA", "B": "01"})
    df.loc[df.animal == "A0", "animal"] = "None"
    df = pd.concat([df, df.iloc[:3].assign(animal="x", group="")], ignore_index=True)
    path = tmp_path / "latents.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputFileError, match=r"3 groups \(\(no group\), 01, NA\)"):  # the empty group is named
        mmd_test(path, params=MMDParams(**FAST))
    res = mmd_test(path, a="NA", b="01", params=MMDParams(**FAST))
    assert tuple(res.groups) == ("NA", "01") and res.n_animals == {"NA": 4, "01": 4}
