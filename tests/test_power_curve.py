import pytest

from power_helpers import synthetic_pilot
from usvpipe.power import PowerParams, power_curve


@pytest.fixture(scope="module")
def pilot():
    return synthetic_pilot(animals_per_group=4, calls=20, seed=1)


def test_power_grows_with_animals_and_the_animals_needed_reach_the_target(pilot):
    curve = power_curve(pilot, "pitch", 5.0, PowerParams(draws=60), animals=(3, 6, 12))
    powers = [p.power for p in curve.points]
    assert powers[0] == 0.0  # 3 + 3 animals: 20 splits, the smallest p is 0.1
    assert powers[0] <= powers[1] <= powers[2] and powers[2] >= 0.8
    assert curve.animals_needed in (6, 12)
    assert curve.effect == pytest.approx(2 / pilot.rows_per_khz)  # 5 kHz is rounded to whole rows


def test_a_curve_is_reproducible_with_a_seed(pilot):
    one = power_curve(pilot, "usage", 30.0, PowerParams(draws=30, seed=4), animals=(4, 8))
    two = power_curve(pilot, "usage", 30.0, PowerParams(draws=30, seed=4), animals=(4, 8))
    assert [p.power for p in one.points] == [p.power for p in two.points]


def test_a_planned_experiment_never_puts_one_animal_in_both_groups_and_uses_each_before_repeating():
    import numpy as np

    from usvpipe.power.search import resampled_animals

    rng = np.random.default_rng(0)
    for n in (3, 6, 10):
        animals = resampled_animals(12, n, n, rng)
        a, b = set(animals[:n]), set(animals[n:])
        assert not a & b and len(a) == min(n, 6) and len(b) == min(n, 6)
