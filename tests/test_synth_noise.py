"""Vocal-world noise: every class present exactly when switched on, and the per-call SNR as defined."""
from __future__ import annotations

import numpy as np
import pytest

from usvpipe.synth import NOISE_CLASSES, known_calls_world, render_window
from usvpipe.synth import noise as nz

SR = 250_000
TYPES = ("flat", "upsweep", "step", "harmonic", "short", "two_component")


def _world(noise=None, snr_db=15.0, seed=5):
    return known_calls_world(TYPES, noise=noise, snr_db=snr_db, calls_per_type=2, seed=seed, mean_gap_s=0.6)


def _audio(world):
    rec = world.recordings.iloc[0]
    return render_window(world, rec.recording, 0, int(rec.n_samples))


@pytest.fixture(scope="module")
def quiet():
    world = _world()
    return world, _audio(world)


def _band(x, lo, hi):
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / SR)
    spec[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spec, len(x))


@pytest.mark.parametrize("kind", NOISE_CLASSES)
def test_each_noise_class_is_there_only_when_switched_on(quiet, kind):
    world0, audio0 = quiet
    world = _world(kind)
    assert set(world.noise_events.kind) <= {kind, kind + "_tail"} and set(world0.noise_events.kind) == set()
    assert world.calls.equals(world0.calls)  # the calls are untouched by the switch
    diff = _audio(world) - audio0
    events = world.noise_events
    if kind in ("clicks", "scratches"):
        if events.empty:
            pytest.skip("no event drawn in this short recording")
        inside = np.zeros(len(diff), bool)
        for ev in events.itertuples():
            inside[int(round(ev.onset_s * SR)):int(round(ev.offset_s * SR)) + 1] = True
        assert np.abs(diff[~inside]).max() == 0 and np.abs(diff[inside]).max() > 10 * nz.BACKGROUND_RMS
    elif kind == "hum":
        assert np.sqrt(np.mean(diff**2)) > 3 * nz.BACKGROUND_RMS  # 10-25 dB over the background
        assert np.sqrt(np.mean(_band(diff, 10_000, SR / 2) ** 2)) < 1e-3 * np.sqrt(np.mean(diff**2))
    elif kind == "reverb":
        rt60 = float(events.param.iloc[0])
        tails = events[events.kind == "reverb_tail"]
        assert len(tails) == len(world.calls)
        np.testing.assert_allclose(tails.onset_s.to_numpy(), world.calls.offset_s.to_numpy())
        np.testing.assert_allclose((tails.offset_s - tails.onset_s).to_numpy(), rt60)
        inside = np.zeros(len(diff), bool)
        for c in world.calls.itertuples():
            inside[int(round(c.onset_s * SR)):int(round((c.offset_s + rt60) * SR)) + 1] = True
        tail = np.zeros(len(diff), bool)
        for c in world.calls.itertuples():
            tail[int(round((c.offset_s + 0.001) * SR)):int(round((c.offset_s + 0.3 * rt60) * SR))] = True
        assert np.abs(diff[~inside]).max() == 0 and np.abs(diff[tail]).max() > 0
    else:  # gain: the same recording, scaled
        gain = 10 ** (float(events.level_db.iloc[0]) / 20)
        np.testing.assert_allclose(audio0 * gain, audio0 + diff, rtol=1e-9, atol=1e-12)


def test_per_call_snr_is_what_the_truth_says(quiet):
    world, audio = quiet
    rec = world.recordings.iloc[0]
    floor = nz.background(int(rec.seed), 0, int(rec.n_samples))
    call_only = audio - floor
    errors = []
    for c in world.calls.itertuples():
        a, b = int(round(c.onset_s * SR)), int(round(c.offset_s * SR))
        top = 2 * c.max_freq_hz if c.harmonic_ratio > 0 else c.max_freq_hz
        lo, hi = nz.snr_band_hz(c.min_freq_hz, top, SR)
        p_call = np.mean(call_only[a:b] ** 2)
        # noise power in the call's band, measured on a long stretch of the same background
        p_noise = np.mean(_band(floor[: SR // 2], lo, hi) ** 2)
        errors.append(10 * np.log10(p_call / p_noise) - c.snr_db)
    assert np.all(np.abs(errors) < 0.5), errors
    assert abs(np.mean(errors)) < 0.2


def test_a_fixed_snr_is_exact_and_a_range_is_spread():
    from usvpipe.synth import WorldParams, simulate_world

    fixed = _world(snr_db=10.0)
    assert (fixed.calls.snr_db == 10.0).all()
    spread = simulate_world(WorldParams(animals_per_group=2, syllables_per_animal=200, snr_db=(5, 30), noise=()))
    assert spread.calls.snr_db.between(5, 30).all() and spread.calls.snr_db.std() > 5


def test_switching_one_class_leaves_the_others_events_alone():
    from usvpipe.synth import WorldParams, simulate_world

    both = simulate_world(WorldParams(animals_per_group=1, syllables_per_animal=100, noise=("clicks", "scratches")))
    one = simulate_world(WorldParams(animals_per_group=1, syllables_per_animal=100, noise=("scratches",)))
    assert both.noise_events[both.noise_events.kind == "scratches"].reset_index(drop=True).equals(
        one.noise_events.reset_index(drop=True))
    assert len(both.noise_events[both.noise_events.kind == "clicks"]) > 0


def test_scratches_last_10_to_200_ms_and_clicks_under_a_millisecond():
    from usvpipe.synth import WorldParams, simulate_world

    world = simulate_world(WorldParams(animals_per_group=2, syllables_per_animal=300, noise=("clicks", "scratches")))
    length = world.noise_events.offset_s - world.noise_events.onset_s
    kinds = world.noise_events.kind
    assert length[kinds == "scratches"].between(0.010, 0.200).all() and (kinds == "scratches").sum() > 5
    assert length[kinds == "clicks"].between(0.0001, 0.001).all() and (kinds == "clicks").sum() > 10
