"""Vocal-world call types: each renders with the contour its type names, read back FROM THE SPECTROGRAM."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from usvpipe.synth import CALL_TYPES, known_calls_world, render_window
from usvpipe.synth.calls import CALL_TYPE_TABLE, contour_summary, draw_call_params, main_contour

SR = 250_000
NFFT, HOP = 256, 64  # 1 ms window (bin ~1 kHz), 0.26 ms hop


def _spectrogram(x):
    frames = np.lib.stride_tricks.sliding_window_view(x, NFFT)[::HOP] * np.hanning(NFFT)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    centres = (np.arange(power.shape[0]) * HOP + NFFT / 2) / SR
    return power, centres, np.fft.rfftfreq(NFFT, 1 / SR)


@pytest.fixture(scope="module")
def rendered():
    """Three calls of every type, clean background at 30 dB per call, no other noise."""
    world = known_calls_world(CALL_TYPES, noise=None, snr_db=30.0, calls_per_type=3, seed=11)
    rec = world.recordings.iloc[0]
    audio = render_window(world, rec.recording, 0, int(rec.n_samples))
    power, centres, freqs = _spectrogram(audio)
    return world, power, centres, freqs


def _calls(rendered, kind):
    world, power, centres, freqs = rendered
    band = (freqs >= 25_000) & (freqs <= 124_000)
    for _, row in world.calls[world.calls.call_type == kind].iterrows():
        inside = (centres >= row.onset_s + 0.001) & (centres <= row.offset_s - 0.001)
        p = power[inside][:, band]
        yield row, p, freqs[band][np.argmax(p, axis=1)], centres[inside]


def _direction_changes(track, hysteresis_hz=3_000.0):
    """Number of reversals of a frequency track, each moving more than ``hysteresis_hz`` from the extreme."""
    lo = hi = track[0]
    direction, changes = 0, 0
    for f in track[1:]:
        lo, hi = min(lo, f), max(hi, f)
        if direction <= 0 and f - lo > hysteresis_hz:
            changes += direction < 0
            direction, hi = 1, f
        elif direction >= 0 and hi - f > hysteresis_hz:
            changes += direction > 0
            direction, lo = -1, f
    return changes


def _largest_jump(track, frames=3):
    return float(np.max(np.abs(track[frames:] - track[:-frames]))) if len(track) > frames else 0.0


def test_flat_calls_keep_their_frequency(rendered):
    for row, _, track, _ in _calls(rendered, "flat"):
        assert np.ptp(track) < 6_000, row.to_dict()


@pytest.mark.parametrize("kind, sign", [("upsweep", 1), ("downsweep", -1)])
def test_sweeps_rise_or_fall(rendered, kind, sign):
    for row, _, track, _ in _calls(rendered, kind):
        assert sign * (track[-1] - track[0]) > 4_000, (kind, track)
        rho = pd.Series(track).corr(pd.Series(np.arange(len(track))), method="spearman")
        assert sign * rho > 0.8, (kind, rho)
        assert _largest_jump(track) < 8_000  # a sweep glides: no jump


@pytest.mark.parametrize("kind, sign", [("chevron", 1), ("u_shape", -1)])
def test_chevron_rises_then_falls_and_u_falls_then_rises(rendered, kind, sign):
    for row, _, track, _ in _calls(rendered, kind):
        apex = int(np.argmax(sign * track))
        assert 0 < apex < len(track) - 1, (kind, track)
        assert sign * (track[apex] - track[0]) > 4_000 and sign * (track[apex] - track[-1]) > 4_000, (kind, track)


def test_step_jumps_more_than_8_khz_within_a_millisecond(rendered):
    for row, _, track, _ in _calls(rendered, "step"):
        assert _largest_jump(track) > 8_000, track


def test_multi_step_jumps_at_least_twice(rendered):
    for row, _, track, centres in _calls(rendered, "multi_step"):
        big = np.flatnonzero(np.abs(track[3:] - track[:-3]) > 8_000)
        events = 1 + int(np.sum(np.diff(big) > 4)) if big.size else 0
        assert events >= 2, (row.n_jumps, track)


def test_harmonic_calls_have_energy_at_twice_the_fundamental(rendered):
    _, _, _, freqs = rendered
    for row, p, track, _ in _calls(rendered, "harmonic"):
        full = rendered[1][(rendered[2] >= row.onset_s + 0.001) & (rendered[2] <= row.offset_s - 0.001)]
        for frame, f0 in zip(full, track):
            at_2f = frame[np.abs(freqs - 2 * f0) <= 2_000].max()
            between = np.median(frame[(freqs > f0 + 5_000) & (freqs < 2 * f0 - 5_000)])
            assert at_2f > 100 * between  # > 20 dB above the floor between the two


def test_two_component_calls_have_two_simultaneous_peaks(rendered):
    _, _, centres, freqs = rendered
    band_freqs = freqs[(freqs >= 25_000) & (freqs <= 124_000)]
    for row, p, track, c in _calls(rendered, "two_component"):
        span = (c >= row.onset_s + row.second_start * row.duration_s + 0.002) & \
               (c <= row.onset_s + row.second_end * row.duration_s - 0.002)
        assert span.sum() >= 3
        for frame, f1 in zip(p[span], track[span]):
            away = np.abs(band_freqs - f1) > 8_000
            second = band_freqs[away][np.argmax(frame[away])]
            assert frame[away].max() > 0.1 * frame.max() and abs(second - f1) > 10_000


def test_short_calls_last_under_ten_milliseconds_on_the_spectrogram(rendered):
    world, power, centres, freqs = rendered
    band = (freqs >= 25_000) & (freqs <= 124_000)
    floor = np.median(power[:, band].max(axis=1))
    for _, row in world.calls[world.calls.call_type == "short"].iterrows():
        near = (centres > row.onset_s - 0.01) & (centres < row.offset_s + 0.01)
        loud = centres[near][power[near][:, band].max(axis=1) > 30 * floor]
        assert 0 < loud.max() - loud.min() < 0.010


def test_complex_calls_change_direction_at_least_twice(rendered):
    for row, _, track, _ in _calls(rendered, "complex"):
        assert _direction_changes(track) >= 2, track
    for row, _, track, _ in _calls(rendered, "chevron"):  # the counter is not fooled by one reversal
        assert _direction_changes(track) == 1, track


def test_every_contour_has_its_mean_frequency_as_time_average():
    rng = np.random.default_rng(3)
    u = (np.arange(2000) + 0.5) / 2000
    for kind in CALL_TYPES:
        rows = draw_call_params(kind, 20, rng)
        for _, row in rows.iterrows():
            assert abs(main_contour(row, u).mean() - row.mean_freq_hz) < 30, kind


def test_drawn_parameters_stay_in_each_types_table_ranges():
    rng = np.random.default_rng(4)
    for kind in CALL_TYPES:
        spec = CALL_TYPE_TABLE[kind]
        rows = draw_call_params(kind, 500, rng)
        lo, hi = spec["duration_ms"]
        assert rows.duration_s.between(lo / 1000, hi / 1000).all()
        assert rows.mean_freq_hz.between(spec["mean_khz"][0] * 1000, spec["mean_khz"][1] * 1000).all()
        summary = contour_summary(rows)
        assert summary.min_freq_hz.min() >= 25_000 and summary.max_freq_hz.max() <= 120_000
