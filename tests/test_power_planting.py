import numpy as np
import pytest

from usvpipe.power.planting import image_widening, rows_per_khz, shift_pitch, stretch_duration, usage_shares


def test_a_pitch_shift_moves_every_call_by_whole_rows_and_zeros_move_in():
    images = np.random.default_rng(0).random((3, 8, 5)).astype(np.float32)
    up = shift_pitch(images, 2)
    np.testing.assert_array_equal(up[:, 2:], images[:, :-2])
    assert not up[:, :2].any()
    np.testing.assert_array_equal(shift_pitch(images, 0), images)
    np.testing.assert_array_equal(shift_pitch(images, -1)[:, :-1], images[:, 1:])


def test_rows_per_khz_follows_the_linear_frequency_axis():
    assert rows_per_khz(30_000, 110_000, 33) == pytest.approx(32 / 80)
    with pytest.raises(ValueError):
        rows_per_khz(110_000, 30_000, 32)


def test_a_longer_duration_draws_the_call_wider_and_a_factor_of_one_changes_nothing():
    images = np.zeros((1, 8, 32), np.float32)
    images[0, 3:5, 12:20] = 1.0
    np.testing.assert_array_equal(stretch_duration(images, 1.0), images)
    wider = stretch_duration(images, 2.0, time_stretch=False)
    width = lambda x: int((x[0].max(axis=0) > 0.5).sum())  # noqa: E731
    assert width(wider) == pytest.approx(2 * width(images), abs=1)
    assert image_widening(4.0, True) == 2.0 and image_widening(4.0, False) == 4.0


def test_usage_moves_points_into_one_cluster_and_keeps_the_others_in_proportion():
    shares = np.array([[0.2, 0.3, 0.5], [0.0, 0.5, 0.5], [0.9, 0.05, 0.05]])
    out = usage_shares(shares, 0, 20)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    assert out[0, 0] == pytest.approx(0.4)
    assert out[0, 1] / out[0, 2] == pytest.approx(0.3 / 0.5)
    np.testing.assert_array_equal(out[1], shares[1])  # never used the cluster: re-weighting cannot create it
    assert out[2, 0] == 1.0  # capped
