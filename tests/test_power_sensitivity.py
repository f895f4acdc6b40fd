import math

import numpy as np
import pytest

from power_helpers import synthetic_pilot
from usvpipe.power import PowerParams, minimum_detectable_effect, sensitivity
from usvpipe.power.animal_test import SplitSource
from usvpipe.power.designs import make_design
from usvpipe.power.search import planted_power


@pytest.fixture(scope="module")
def pilot():
    return synthetic_pilot(animals_per_group=6, calls=25, seed=0)


def _power(pilot, kind, size, draws=100, seed=0):
    design = make_design(pilot, kind, n_clusters=4, seed=0)
    splits = SplitSource(12, 6, max_exact_splits=20_000, permutations=99)
    return planted_power(design, size, k_a=6, k_b=6, pilot_k=12, alpha=0.05, draws=draws, seed=seed, splits=splits)


def test_a_large_planted_pitch_shift_is_detected_almost_always(pilot):
    assert _power(pilot, "pitch", 8).power >= 0.95  # 8 rows = 20 kHz


def test_a_zero_effect_is_detected_at_the_level_of_the_test(pilot):
    draws = 400
    point = _power(pilot, "pitch", 0, draws=draws)
    se = math.sqrt(0.05 * 0.95 / draws)
    assert abs(point.power - 0.05) <= 3 * se, point
    assert _power(pilot, "usage", 0.0, draws=draws).power <= 0.05 + 3 * se


def test_a_large_usage_change_is_detected_and_power_grows_with_it(pilot):
    small, large = _power(pilot, "usage", 5.0), _power(pilot, "usage", 60.0)
    assert large.power >= 0.9 and small.power < large.power


def test_the_mde_is_reproducible_with_a_seed_and_reports_its_monte_carlo_error(pilot):
    params = PowerParams(draws=60, bisection_steps=2)
    one = minimum_detectable_effect(pilot, "pitch", params)
    two = minimum_detectable_effect(pilot, "pitch", params)
    assert one.value is not None and one.value == two.value and one.se == two.se
    assert [p.power for p in one.points] == [p.power for p in two.points]
    assert one.unit == "kHz" and one.se > 0
    # the MDE lies where the measured power curve crosses 80 %
    below = max(p.size for p in one.points if p.size < one.value)
    above = min(p.size for p in one.points if p.size >= one.value)
    power = {p.size: p.power for p in one.points}
    assert power[below] < 0.8 <= power[above]


def test_sensitivity_covers_every_kind_the_pilot_allows(pilot):
    sens = sensitivity(pilot, PowerParams(draws=30, bisection_steps=1, kinds=("pitch", "duration", "measures")))
    assert [m.kind for m in sens.latent] == ["pitch", "duration"]
    assert sens.notes == ["classical measures: no per-animal table, not estimated"]
    assert sens.n_animals == {"A": 6, "B": 6}
