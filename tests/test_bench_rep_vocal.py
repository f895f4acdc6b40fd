"""scripts/bench/_rep_vocal.py: animals resampled from the widened pool are the product's animals.

The reference is ``usvpipe.synth.simulate_world`` itself: for each kind of difference, many
animals per group are simulated directly and as many are resampled from one big pool; per-call
statistics (type usage, mean frequency, log duration, FM and jump extent, their CDF at the direct
quartiles, the side of a two-component call's second tone) are compared group by group with an
animal-clustered z (animals are the independent units). A/A experiments: the two groups agree.
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

import _rep_vocal as rv  # noqa: E402
from usvpipe.synth import WorldParams, simulate_world  # noqa: E402

ANIMALS, CALLS = 300, 40
#: |z| beyond which two estimates of one statistic disagree (about 100 comparisons per kind)
Z_MAX = 4.5
SWEEPS = {"upsweep", "downsweep", "chevron", "u_shape", "complex"}
JUMPS = {"step", "multi_step"}


@pytest.fixture(scope="module")
def pool():
    return rv.pool_world(150_000, seed=3)


def _per_call_statistics(calls: pd.DataFrame, cuts: dict) -> pd.DataFrame:
    """One column per statistic, one row per call (the animal-level mean of each is compared)."""
    kind = calls["call_type"].astype(str)
    log_d = np.log(calls["duration_s"].to_numpy(float))
    out = {f"usage_{t}": (kind == t).to_numpy(float) for t in rv.TYPES}
    out["mean_khz"] = calls["mean_freq_hz"].to_numpy(float) / 1000
    out["log_duration"] = log_d
    out["sweep_fm_khz"] = np.where(kind.isin(SWEEPS), calls["fm_hz"], 0.0) / 1000
    out["jump_khz"] = calls["jump_hz"].to_numpy(float) / 1000
    out["two_component_up"] = ((kind == "two_component") & (calls["second_hz"] > 0)).to_numpy(float)
    for name, values in (("mean", calls["mean_freq_hz"].to_numpy(float)), ("logd", log_d)):
        for q, cut in enumerate(cuts[name]):
            out[f"{name}_below_q{q + 1}"] = (values < cut).astype(float)
    return pd.DataFrame(out)


def _animal_means(calls: pd.DataFrame, animals: np.ndarray, cuts: dict) -> pd.DataFrame:
    return _per_call_statistics(calls.reset_index(drop=True), cuts).groupby(animals).mean()


def _z(a: pd.DataFrame, b: pd.DataFrame) -> pd.Series:
    """Animal-clustered z of the difference of the two groups' means, per statistic."""
    se = np.sqrt(a.var() / len(a) + b.var() / len(b))
    return (a.mean() - b.mean()) / se.where(se > 0, np.inf)


def _direct(kind: str, size: float) -> pd.DataFrame:
    world = simulate_world(WorldParams(animals_per_group=ANIMALS, syllables_per_animal=CALLS, noise=(),
                                       difference=kind, difference_size=size, seed=11))
    return world.calls


def _resampled(pool, kind: str, size: float) -> pd.DataFrame:
    exp = rv.draw_experiment(pool, kind, size, ANIMALS, CALLS, np.random.default_rng(5))
    return pool.iloc[exp["row"].to_numpy()].assign(group=exp["group"].to_numpy(), animal=exp["animal"].to_numpy())


@pytest.mark.parametrize("kind,size", [("none", 0.0)] + [(k, max(s)) for k, s in rv.SIZES.items()])
def test_resampled_animals_match_directly_simulated_product_animals(pool, kind, size):
    direct, resampled = _direct(kind, size), _resampled(pool, kind, size)
    ref = direct[direct["group"] == "A"]
    cuts = {"mean": np.quantile(ref["mean_freq_hz"], [0.1, 0.25, 0.5, 0.75, 0.9]),
            "logd": np.quantile(np.log(ref["duration_s"]), [0.1, 0.25, 0.5, 0.75, 0.9])}
    for group in ("A", "B"):
        d = direct[direct["group"] == group]
        r = resampled[resampled["group"] == group]
        z = _z(_animal_means(d, d["animal"].to_numpy(), cuts), _animal_means(r, r["animal"].to_numpy(), cuts))
        assert (z.abs() < Z_MAX).all(), f"{kind} group {group}: {z[z.abs() >= Z_MAX].round(1).to_dict()}"


@pytest.mark.parametrize("kind,statistic,shift", [("pitch", "mean_khz", 2.0), ("duration", "log_duration", np.log(1.1)),
                                                  ("usage", "usage_step", 0.1), ("usage", "usage_upsweep", -0.1)])
def test_the_planted_difference_is_the_products(pool, kind, statistic, shift):
    resampled = _resampled(pool, kind, max(rv.SIZES[kind]))
    cuts = {"mean": [], "logd": []}
    means = {g: _animal_means(r, r["animal"].to_numpy(), cuts)[statistic] for g, r in resampled.groupby("group")}
    difference = means["B"].mean() - means["A"].mean()
    se = np.sqrt(means["A"].var() / ANIMALS + means["B"].var() / ANIMALS)
    assert abs(difference - shift) < Z_MAX * se


@pytest.mark.parametrize("kind", ["none", *rv.SIZES])
def test_the_weighted_pool_has_each_animals_exact_usage_and_parameter_means(pool, kind):
    """Analytic check: per type, weight mass = the animal's usage; weighted means = the shifted/scaled midpoints."""
    rng = np.random.default_rng(4)
    t = pool["type_id"].to_numpy()
    for _ in range(10):
        animal = rv.draw_animal(kind, max(rv.SIZES.get(kind, (0.0,))), rng)
        p = rv.animal_weights(pool, animal)
        support = rv.animal_support(animal)
        for i, name in enumerate(rv.TYPES):
            on = t == i
            ess = rv.effective_sample_size(p[on])
            mass = p[on].sum()
            assert abs(mass / animal["usage"][i] - 1) < Z_MAX / np.sqrt(ess), (name, mass, animal["usage"][i])
            q = p[on] / mass
            for param, column in rv.COLUMN.items():
                lo, hi = support[param][i]
                mean = float(q @ pool.loc[on, column].to_numpy())
                assert abs(mean - (lo + hi) / 2) <= Z_MAX * (hi - lo) / np.sqrt(12 * ess) + 1e-9, (name, param)


def test_a_two_component_calls_second_tone_side_follows_the_products_rule_under_a_pitch_shift(pool):
    """The product picks the side from the UNSHIFTED mean: a one-type world, direct vs resampled."""
    direct = simulate_world(WorldParams(animals_per_group=ANIMALS, syllables_per_animal=CALLS, noise=(),
                                        call_types=("two_component",), difference="pitch", difference_size=2.0,
                                        seed=12)).calls
    rng = np.random.default_rng(6)
    parts = []
    for group, (kind, size) in (("A", ("none", 0.0)), ("B", ("pitch", 2.0))):
        for a in range(ANIMALS):
            animal = rv.draw_animal(kind, size, rng)
            animal["usage"] = (np.array(rv.TYPES) == "two_component").astype(float)
            rows = rng.choice(len(pool), CALLS, replace=False, p=rv.animal_weights(pool, animal))
            parts.append(pool.iloc[rows].assign(group=group, animal=f"{group}{a}"))
    resampled = pd.concat(parts)
    for group in ("A", "B"):
        stats = []
        for calls in (direct[direct["group"] == group], resampled[resampled["group"] == group]):
            up = calls["second_hz"].to_numpy() > 0
            m = calls["mean_freq_hz"].to_numpy() / 1000
            stats.append(pd.DataFrame({"up": up, "up_low": up & (m < 62 + (2 if group == "B" else 0)),
                                       "second_khz": calls["second_hz"].to_numpy() / 1000, "mean_khz": m}
                                      ).astype(float).groupby(calls["animal"].to_numpy()).mean())
        z = _z(*stats)
        assert (z.abs() < Z_MAX).all(), (group, z.round(1).to_dict())


def test_a_over_a_experiments_have_identically_distributed_groups(pool):
    resampled = _resampled(pool, "none", 0.0)
    cuts = {"mean": np.quantile(resampled["mean_freq_hz"], [0.25, 0.5, 0.75]),
            "logd": np.quantile(resampled["log_duration"], [0.25, 0.5, 0.75])}
    a, b = (resampled[resampled["group"] == g] for g in ("A", "B"))
    z = _z(_animal_means(a, a["animal"].to_numpy(), cuts), _animal_means(b, b["animal"].to_numpy(), cuts))
    assert (z.abs() < Z_MAX).all(), z[z.abs() >= Z_MAX].to_dict()
    # and group B is drawn by the same mechanism: its animals' weights have the same support sizes
    rng = np.random.default_rng(9)
    sizes = [[(rv.animal_weights(pool, rv.draw_animal("none", 0.0, rng)) > 0).sum() for _ in range(30)]
             for _group in "AB"]
    assert abs(np.mean(sizes[0]) - np.mean(sizes[1])) < Z_MAX * np.sqrt(np.var(sizes[0]) / 30 + np.var(sizes[1]) / 30)


def test_the_pool_covers_the_most_extreme_animal_of_every_kind():
    for kind, sizes in rv.SIZES.items():
        for sign in (-1.0, 1.0):
            extreme = rv.draw_animal(kind, max(sizes), np.random.default_rng(0))
            extreme["pitch_hz"] = sign * rv.COVER_SD * 1000 * rv.PRODUCT.animal_pitch_sd_khz + \
                (1000 * max(sizes) if kind == "pitch" else 0.0)
            extreme["log_duration"] = sign * rv.COVER_SD * rv.PRODUCT.animal_duration_sd + \
                (np.log1p(max(sizes) / 100) if kind == "duration" else 0.0)
            support = rv.animal_support(extreme)
            for param, (lo_hi) in support.items():
                pool_lo, pool_hi = rv.POOL_SUPPORT[param][:, 0], rv.POOL_SUPPORT[param][:, 1]
                assert (lo_hi[:, 0] >= pool_lo - 1e-9).all() and (lo_hi[:, 1] <= pool_hi + 1e-9).all(), (kind, param)


def test_an_animal_outside_the_usage_support_is_never_drawn(pool):
    animal = rv.draw_animal("none", 0.0, np.random.default_rng(2))
    animal["usage"] = np.where(np.array(rv.TYPES) == "harmonic", 1.0, 0.0)
    p = rv.animal_weights(pool, animal)
    assert set(pool.loc[p > 0, "call_type"]) == {"harmonic"}
    chosen = pool.loc[p > 0, "mean_freq_hz"] - animal["pitch_hz"]
    assert chosen.between(35_000, 50_000).all()


def test_pool_recordings_are_rendered_with_truth_rows_inside_them():
    calls = rv.pool_world(40, seed=1)
    rendered = list(rv.render_recordings(calls, seed=1, calls_per_recording=20))
    assert [name for name, _, _ in rendered] == ["pool_0000", "pool_0001"]
    truth = pd.concat([t for _, _, t in rendered])
    assert sorted(truth["pool_index"]) == list(range(40))
    for _, audio, rows in rendered:
        assert audio.dtype == np.float32 and np.abs(audio).max() <= 1.0
        assert (rows["offset_s"] > rows["onset_s"]).all() and (np.diff(rows["onset_s"]) > 0).all()
        assert rows["offset_s"].max() * rv.SAMPLE_RATE_HZ < len(audio)
        # inside the call band, the first call is louder than as long a stretch of the silence before it
        first = rows.iloc[0]
        i0, i1 = int(first.onset_s * rv.SAMPLE_RATE_HZ), int(first.offset_s * rv.SAMPLE_RATE_HZ)
        assert _band_power(audio[i0:i1]) > _band_power(audio[: i1 - i0])


def _band_power(x: np.ndarray, band_hz=(30_000, 110_000)) -> float:
    """Mean power of ``x`` inside ``band_hz`` (the hum and its low band left out)."""
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rv.SAMPLE_RATE_HZ)
    return float(spectrum[(freqs >= band_hz[0]) & (freqs <= band_hz[1])].sum() / len(x))
