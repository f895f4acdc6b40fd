import numpy as np
import pandas as pd

from usvpipe.power.classical import measures_mde


def _table(seed=0, k=12):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"animal": [f"m{i}" for i in range(k)], "mean_freq_khz": rng.normal(70, 2.0, k),
                         "duration_ms": rng.normal(40, 5.0, k), "calls": np.full(k, np.nan)})


def test_each_measure_gets_an_mde_in_its_unit_and_in_between_animal_sds():
    groups = np.array(["A"] * 6 + ["B"] * 6)
    out = measures_mde(_table(), groups, "A", alpha=0.05, target=0.8, draws=100, seed=0, bracket_steps=6,
                       bisection_steps=3, max_exact_splits=20_000, permutations=199)
    names = [m.kind for m in out]
    assert names == ["duration_ms", "mean_freq_khz"]  # a measure with NaN per-animal values is skipped
    for m in out:
        assert m.value is not None and m.sd > 0
        assert 1.0 < m.value / m.sd < 5.0  # 6 + 6 animals at α / 2 need a shift of a few SDs
        assert m.points[0].size == 0.0 and m.points[0].power <= 0.06


def test_too_few_animals_never_reach_the_target():
    groups = np.array(["A"] * 3 + ["B"] * 3)  # 20 splits: smallest p 0.1 > α
    out = measures_mde(_table(k=6), groups, "A", alpha=0.05, target=0.8, draws=50, seed=0, bracket_steps=4,
                       bisection_steps=1, max_exact_splits=20_000, permutations=199)
    assert all(m.value is None and max(p.power for p in m.points) == 0.0 for m in out)
