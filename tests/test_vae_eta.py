"""The training's time-left line: smoothed so that noisy epochs do not make it swing."""
from __future__ import annotations

import numpy as np
import pytest

from usvpipe.vae.eta import FinishEstimate
from usvpipe.vae.schedule import seconds_left


def _countdown(epoch_s, n_epochs, smooth: bool):
    est, shown, now = FinishEstimate(), [], 0.0
    for k, dt in enumerate(epoch_s, start=1):
        now += dt
        left = seconds_left(epoch_s[:k], n_epochs - k)
        shown.append(est.update(now, left) if smooth else left)
    return np.array(shown[:-1]), now


def test_noisy_epochs_give_a_steadier_countdown_than_each_epochs_own_estimate():
    rng = np.random.default_rng(0)
    # a pace of 10 s per epoch with every third epoch slowed (a checkpoint, figures, a busy machine)
    epoch_s = list(10 + 8 * (np.arange(40) % 3 == 2) * rng.uniform(0.5, 1.5, 40))
    raw, _ = _countdown(epoch_s, 40, smooth=False)
    smooth, _ = _countdown(epoch_s, 40, smooth=True)
    # how much the shown time left jumps against the seconds that passed, epoch to epoch
    jumps = lambda shown: np.abs(np.diff(shown) + np.asarray(epoch_s[1:len(shown)]))  # noqa: E731
    assert jumps(smooth)[2:].mean() < 0.7 * jumps(raw)[2:].mean()
    # and it says what the pace says: smoothing moves the mid-run countdown by under 10 %
    assert smooth[19] == pytest.approx(raw[19], rel=0.1)


def test_no_estimate_until_an_epoch_is_timed_and_never_below_zero():
    est = FinishEstimate()
    assert est.update(5.0, None) is None
    assert est.update(5.0, 10.0) == 10.0
    assert est.update(100.0, 0.0) == 0.0
