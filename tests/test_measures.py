"""Classical measures per animal: counts, rates, durations, frequencies; animal-level tests with Holm."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from usvpipe.measures import (
    animal_permutation_p,
    bootstrap_difference_ci,
    compare_measures,
    hedges_g,
    holm,
    measures_stage,
    per_animal_measures,
)


def _syllables(rows):
    """rows: (recording, animal, group, duration_s, mean_freq_hz) -> a syllables.csv-like table."""
    out = []
    for i, (rec, an, g, d, f) in enumerate(rows):
        out.append({"id": f"{rec}#{i}", "recording": rec, "animal": an, "group": g, "onset_s": i, "offset_s": i + d,
                    "duration_s": d, "mean_freq_hz": f, "min_freq_hz": f - 5e3, "max_freq_hz": f + 7e3,
                    "mean_amplitude": 20.0, "peak_amplitude": 30.0})
    return pd.DataFrame(out)


def test_per_animal_measures_count_rates_units_and_a_silent_animal():
    syl = _syllables([("A/a1/r.wav", "a1", "A", 0.010, 60e3), ("A/a1/r.wav", "a1", "A", 0.030, 70e3),
                      ("A/a1/s.wav", "a1", "A", 0.020, 80e3)])
    recordings = {"A/a1/r.wav": {"animal": "a1", "group": "A"}, "A/a1/s.wav": {"animal": "a1", "group": "A"},
                  "B/b1/r.wav": {"animal": "b1", "group": "B"}}
    dur = {"A/a1/r.wav": 60.0, "A/a1/s.wav": 30.0, "B/b1/r.wav": 120.0}
    pa = per_animal_measures(syl, dur, recordings=recordings).set_index("animal")
    a1, b1 = pa.loc["a1"], pa.loc["b1"]
    assert a1["calls"] == 3 and a1["n_recordings"] == 2 and a1["recorded_min"] == pytest.approx(1.5)
    assert a1["calls_per_min"] == pytest.approx(2.0)
    assert a1["duration_ms"] == pytest.approx(20.0) and a1["mean_freq_khz"] == pytest.approx(70.0)
    assert a1["bandwidth_khz"] == pytest.approx(12.0)
    # recorded but silent: 0 calls at 0 per minute, not a missing animal
    assert b1["calls"] == 0 and b1["calls_per_min"] == 0.0 and math.isnan(b1["duration_ms"])


def test_rates_are_not_invented_without_recording_durations():
    pa = per_animal_measures(_syllables([("a/r.wav", "a", "A", 0.01, 60e3)]))
    assert math.isnan(pa.loc[0, "calls_per_min"]) and pa.loc[0, "calls"] == 1


def test_holm_matches_the_step_down_rule():
    p = [0.01, 0.04, 0.03, 0.005, np.nan]
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.06 (monotone)
    assert np.allclose(holm(p)[:4], [0.03, 0.06, 0.06, 0.02]) and np.isnan(holm(p)[4])


def test_separated_groups_reach_the_smallest_p_the_design_allows():
    x, y = np.arange(6.0), np.arange(6.0) + 100
    t = animal_permutation_p(x, y)
    assert t["exact"] and t["n_splits"] == 924 and t["p_value"] == pytest.approx(2 / 924) == t["min_attainable_p"]
    same = animal_permutation_p(np.array([1.0, 3, 5, 7]), np.array([2.0, 4, 6, 8]))
    assert same["p_value"] > 0.5
    lo, hi = bootstrap_difference_ci(x, y)
    assert lo <= 100 <= hi and hedges_g(x, y) > 10


def test_monte_carlo_when_the_splits_are_many():
    rng = np.random.default_rng(0)
    t = animal_permutation_p(rng.normal(size=12), rng.normal(size=12) + 3, max_exact_splits=100, permutations=999)
    assert not t["exact"] and t["n_permutations"] == 999 and t["p_value"] == pytest.approx(1 / 1000)


def test_compare_measures_finds_a_planted_frequency_shift_and_not_the_rest():
    rows = []
    rng = np.random.default_rng(1)
    for g, shift in (("A", 0.0), ("B", 15e3)):
        for k in range(6):
            for _ in range(20):
                rows.append((f"{g}/{g}{k}/r.wav", f"{g}{k}", g, rng.uniform(0.01, 0.05), 65e3 + shift + rng.normal(0, 2e3)))
    pa = per_animal_measures(_syllables(rows))
    tests = compare_measures(pa, "A", "B").set_index("measure")
    assert tests.loc["mean_freq_khz", "reject"] and tests.loc["mean_freq_khz", "difference"] == pytest.approx(15, abs=1.5)
    assert not tests.loc["duration_ms", "reject"]
    assert (tests["p_holm"].dropna() >= tests["p_value"].dropna()).all()


def test_measures_stage_reads_wav_durations_and_writes_its_tables(tmp_path):
    import soundfile as sf

    from conftest import write_call_store

    store = write_call_store(tmp_path / "store", 2, 5, group="g")
    for r in range(2):
        wav = tmp_path / "in" / "g" / f"a{r}" / f"rec{r}.wav"
        wav.parent.mkdir(parents=True)
        sf.write(wav, np.zeros(30_000, np.int16), 10_000)  # 3 s
    from usvpipe.store import open_store

    open_store(store)  # merge the table
    res = measures_stage(store, tmp_path / "m", input_root=tmp_path / "in", figure=False)
    assert res.tests is None and any("1 group" in n for n in res.notes)  # one group: summarised, not tested
    pa = pd.read_csv(tmp_path / "m" / "measures_per_animal.csv")
    assert list(pa["calls"]) == [5, 5] and np.allclose(pa["calls_per_min"], 100.0)
    assert (tmp_path / "m" / "measures.json").exists() and (tmp_path / "m" / "measures_per_group.csv").exists()


def test_cli_measures_tests_two_groups_and_says_when_the_design_is_too_small(tmp_path):
    from click.testing import CliRunner
    from conftest import write_call_store

    from usvpipe.cli import main
    from usvpipe.store import open_store

    store = tmp_path / "store"
    write_call_store(store, 2, 6, group="ko")
    write_call_store(store, 2, 9, group="wt")
    open_store(store)
    res = CliRunner().invoke(main, ["measures", str(store), str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "call count" in res.output and "ko 6  wt 9" in res.output
    assert "no measure can reach" in res.output  # 2 vs 2 animals: smallest p 1/3 before any correction
    assert (tmp_path / "m" / "measures_tests.csv").exists() and (tmp_path / "m" / "measures.png").exists()
