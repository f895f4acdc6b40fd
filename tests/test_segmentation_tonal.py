"""The tonal detection trace (usvpipe.segmentation.tonal): calls are found, broadband sounds are not, by construction."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from segmentation_fixtures import (CALL, OTHER, SR, add_broadband, add_call, add_click, add_hum, background)

from usvpipe.errors import ConfigError
from usvpipe.segmentation import SegmentParams, segment_audio, segment_file
from usvpipe.segmentation.tonal import tonal_peak


def _segments(x, trace="tonal", **kw):
    return segment_audio(np.asarray(x, np.float32), SR, SegmentParams(trace=trace, **kw))


def _intervals(segs):
    return [(round(a, 3), round(b, 3)) for a, b in segs[["onset_s", "offset_s"]].itertuples(index=False)]


# --------------------------------------------------------------------------- the measure itself
def test_background_reads_alike_on_both_traces_and_a_tone_reads_its_level():
    rng = np.random.default_rng(0)
    freqs = np.linspace(30_000, 110_000, 164)
    white = rng.exponential(1 / np.log(2), (4000, 164)).astype(np.float32)  # whitened: median 1 per bin
    tonality, _ = tonal_peak(white, freqs)
    band_power = 10 * np.log10(white.max(axis=1))
    # the 0.915 dB correction puts the line at the median level: same statistics as the band-power trace
    assert np.median(tonality) == pytest.approx(np.median(band_power), abs=0.3)
    assert np.percentile(tonality, 99.9) < 14.0  # the default high threshold
    tone = white.copy()
    tone[:, 80] = 1000.0  # 30 dB above the background in one bin
    level, peak_bin = tonal_peak(tone, freqs)
    assert (peak_bin == 80).all()
    assert np.median(level) == pytest.approx(30.0, abs=1.5)


@pytest.mark.parametrize("tilt", [0.0, 1.0, 2.0])
def test_a_broadband_spectrum_of_any_level_or_power_law_tilt_reads_as_background(tilt):
    rng = np.random.default_rng(1)
    freqs = np.linspace(30_000, 110_000, 164)
    for level_db in (20.0, 40.0):
        shape = 10 ** (level_db / 10) * (freqs / freqs[0]) ** -tilt
        burst = (rng.exponential(1 / np.log(2), (2000, 164)) * shape).astype(np.float32)
        tonality, _ = tonal_peak(burst, freqs)
        assert np.median(tonality) < 10.5 and np.percentile(tonality, 99) < 13.5


def test_digital_silence_gives_a_finite_trace():
    w = np.zeros((10, 164), np.float32)
    tonality, _ = tonal_peak(w, np.linspace(30_000, 110_000, 164))
    assert np.isfinite(tonality).all()


def test_trace_is_validated():
    with pytest.raises(ConfigError, match="trace"):
        SegmentParams(trace="flatness")


# --------------------------------------------------------------------------- noise classes, exact truth
def test_a_broadband_burst_between_two_calls_does_not_merge_them():
    x = background(1.0)
    first = add_call(x, 0.200, CALL)
    second = add_call(x, 0.330, OTHER)
    add_broadband(x, 0.262, 0.066, level_db=25.0)  # fills the 70 ms gap, 2 ms clear of both calls
    # the band-power trace stays above the low threshold through the burst: one detection
    assert len(_segments(x, "band_power", noise_check=False)) == 1
    segs = _segments(x, noise_check=False)
    assert len(segs) == 2
    for (on, off), (t_on, t_off) in zip(_intervals(segs), (first, second)):
        assert abs(on - t_on) < 0.005 and abs(off - t_off) < 0.005


def test_clicks_alone_give_no_detection():
    x = background(1.0)
    for i, t in enumerate((0.2, 0.203, 0.206, 0.5, 0.8)):  # a burst of three and two single clicks, 40 dB
        add_click(x, t, 40.0, seed=i)
    assert len(_segments(x, "band_power", noise_check=False)) >= 1  # the level alone takes a click for a call
    assert len(_segments(x, noise_check=False)) == 0  # by construction, not by the noise check


def test_a_tilted_scratch_alone_gives_no_detection():
    x = background(1.0)
    add_broadband(x, 0.3, 0.15, level_db=30.0, tilt=2.0)
    assert len(_segments(x, "band_power", noise_check=False)) == 1
    assert len(_segments(x, noise_check=False)) == 0


def test_hum_and_a_steady_ultrasonic_line_do_not_trigger():
    x = background(2.0)
    add_hum(x, level_db=40.0, line_hz=40_000.0, line_db=10.0)
    assert len(_segments(x, noise_check=False)) == 0
    truth = add_call(x, 0.8, CALL)
    segs = _segments(x)
    assert len(segs) == 1 and abs(segs.onset_s.iloc[0] - truth[0]) < 0.005


def test_a_gain_step_inside_a_noise_window_does_not_trigger():
    x = background(4.0)
    x[int(1.7 * SR):] *= 10.0  # +20 dB at 1.7 s, inside the first 2-s noise window
    assert len(_segments(x, "band_power", noise_check=False)) == 1  # the louder 0.3 s looks like a call
    assert len(_segments(x, noise_check=False)) == 0
    truth = add_call(x, 1.8, CALL, snr_db=30.0)  # a call in the louder stretch (10 dB over it) is still found
    segs = _segments(x)
    assert len(segs) == 1 and abs(segs.onset_s.iloc[0] - truth[0]) < 0.005


# --------------------------------------------------------------------------- streaming exactness
@pytest.mark.parametrize("block_frames", [7, 300, 4096])
def test_the_tonal_trace_is_exact_under_streaming(tmp_path, block_frames):
    x = background(5.0, seed=3)
    for i, t in enumerate(np.arange(0.1, 4.8, 0.23)):
        add_call(x, float(t), CALL if i % 2 else OTHER, snr_db=float(5 + i % 10))
        add_broadband(x, float(t) + 0.1, 0.05, level_db=20.0, tilt=float(i % 3), seed=i)
    x = x.astype(np.float32)
    path = tmp_path / "rec.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    params = SegmentParams(noise_window_s=1.3)
    whole = segment_audio(x, SR, params)
    assert len(whole) > 15
    pd.testing.assert_frame_equal(segment_file(path, params, block_frames=block_frames), whole, check_exact=True)


# --------------------------------------------------------------------------- the vocal world's noise classes
@pytest.mark.parametrize("noise", [None, "clicks", "scratches", "reverb", "hum", "gain"])
def test_every_noise_class_of_the_vocal_world_at_10_db(noise):
    """Every call type but ``short`` (2-8 ms, partly under ``min_dur_s``), 3 calls each, one noise class."""
    from usvpipe.evaluate import evaluate_segments
    from usvpipe.synth import CALL_TYPES, known_calls_world, render_recording

    types = [t for t in CALL_TYPES if t != "short"]
    world = known_calls_world(types, noise=noise, snr_db=10.0, calls_per_type=3, seed=2)
    audio, calls, _ = render_recording(world, world.recordings.recording[0])
    scores = evaluate_segments(segment_audio(audio, SR), calls[["onset_s", "offset_s"]], tolerance_s=0.010)
    assert scores.event_f1 >= 0.95, scores
    assert scores.boundary_f1 >= 0.85, scores
