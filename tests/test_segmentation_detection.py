"""Spectrogram and amplitude segmentation (usvpipe.segmentation: spectrogram, trace, detection)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from usvpipe.errors import ConfigError, InputFileError
from usvpipe.evaluate import evaluate_segments, pool_scores
from usvpipe.segmentation import SCORE_COLUMNS, SegmentParams, segment_audio, segment_file
from usvpipe.segmentation.spectrogram import SpectrogramParams
from usvpipe.synth import synth_recording

SR = 250_000


@pytest.fixture(scope="module")
def synth4():
    audio, truth = synth_recording(4.0, SR, snr_db=10.0, call_rate_hz=4.0, seed=3)
    return audio, truth


def test_params_validation():
    with pytest.raises(ConfigError, match="low_threshold"):
        SegmentParams(high_threshold=10, low_threshold=12)
    with pytest.raises(ConfigError, match="threshold_mode"):
        SegmentParams(threshold_mode="magic")
    with pytest.raises(ConfigError, match="min_dur_s"):
        SegmentParams(min_dur_s=0.5, max_dur_s=0.1)
    with pytest.raises(ConfigError, match="hop_s"):
        SpectrogramParams(hop_s=0.01, window_s=0.002)
    with pytest.raises(ConfigError, match="window"):
        SpectrogramParams(window="nonsense")


def test_output_columns_and_ordering(synth4):
    audio, _ = synth4
    segs = segment_audio(audio, SR)
    assert list(segs.columns) == ["onset_s", "offset_s", *SCORE_COLUMNS]
    assert (segs.offset_s > segs.onset_s).all() and segs.onset_s.is_monotonic_increasing
    assert (segs.onset_s.to_numpy()[1:] >= segs.offset_s.to_numpy()[:-1]).all()
    p = SegmentParams()
    assert (segs.duration_s >= p.min_dur_s).all() and (segs.duration_s <= p.max_dur_s).all()
    assert ((segs.mean_freq_hz >= 30_000) & (segs.mean_freq_hz <= 110_000)).all()
    assert (segs.peak_amplitude >= p.high_threshold).all()


@pytest.mark.parametrize("block_frames", [7, 333, 5000])
def test_block_processing_is_exact(tmp_path, synth4, block_frames):
    audio, _ = synth4
    path = tmp_path / "rec.wav"
    sf.write(path, audio, SR, subtype="FLOAT")
    # several noise windows (and a merged short tail) so their edges are exercised too
    params = SegmentParams(noise_window_s=1.5, noise_max_frames=200)
    whole = segment_audio(audio, SR, params)
    streamed = segment_file(path, params, block_frames=block_frames)
    assert len(whole) > 5
    pd.testing.assert_frame_equal(streamed, whole, check_exact=True)


def test_gain_invariance(synth4):
    # the noise-relative trace does not depend on the recording's gain
    audio, _ = synth4
    a = segment_audio(audio, SR)
    b = segment_audio(audio * np.float32(0.01), SR)
    assert np.allclose(a[["onset_s", "offset_s"]], b[["onset_s", "offset_s"]])


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 30.0])
def test_synthetic_recordings_are_found(snr_db):
    audio, truth = synth_recording(8.0, SR, snr_db=snr_db, call_rate_hz=3.0, seed=11)
    segs = segment_audio(audio, SR)
    s = evaluate_segments(segs, truth, tolerance_s=0.010)
    assert s.event_f1 >= 0.9, s
    assert s.boundary_f1 >= 0.8, s


def test_noise_only_gives_few_detections():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, 4 * SR).astype(np.float32)
    assert len(segment_audio(noise, SR)) <= 1


def test_absolute_mode_runs(synth4):
    audio, _ = synth4
    segs = segment_audio(audio, SR, SegmentParams(threshold_mode="absolute"))
    assert list(segs.columns) == ["onset_s", "offset_s", *SCORE_COLUMNS]


def test_low_sample_rate_rejected(tmp_path):
    with pytest.raises(InputFileError, match="Nyquist"):
        segment_audio(np.zeros(1000, np.float32) + 0.1, 96_000)
    p = tmp_path / "low.wav"
    sf.write(p, np.random.default_rng(1).normal(0, 0.1, 96_000), 96_000)
    with pytest.raises(InputFileError, match=r"low\.wav.*Nyquist"):
        segment_file(p)


def test_silent_file_rejected(tmp_path):
    p = tmp_path / "silent.wav"
    sf.write(p, np.zeros(SR // 2), SR, subtype="PCM_16")
    with pytest.raises(InputFileError, match="silent"):
        segment_file(p)


def test_amvoc_accuracy_pooled(shared_data):
    """Default parameters on the four annotated amvoc recordings: pooled event F1 >= 0.90."""
    from usvpipe.annotations import read_segments

    ev, b10 = [], []
    for n in (1, 2, 3, 6):
        folder = shared_data / "amvoc" / str(n)
        segs = segment_file(folder / f"rec_{n}.wav")
        truth = read_segments(folder / f"gt_{n}.csv")
        ev.append(evaluate_segments(segs, truth, tolerance_s=0.010))
    pooled = pool_scores(ev)
    assert pooled.event_f1 >= 0.90, pooled
    assert pooled.boundary_f1 >= 0.80, pooled


@pytest.mark.parametrize("old, name, new", [
    ("usvpipe.segment", "segment_file", "usvpipe.segmentation.detection"),
    ("usvpipe.segment", "SegmentParams", "usvpipe.segmentation.params"),
    ("usvpipe.pipeline_segment", "segment_recordings", "usvpipe.segmentation.batch"),
    ("usvpipe.pipeline_segment", "SyllableParams", "usvpipe.segmentation.params"),
    ("usvpipe.spectrogram", "SpectrogramParams", "usvpipe.segmentation.spectrogram"),
])
def test_an_old_module_path_still_works_but_warns_with_the_new_import_and_the_removal_version(old, name, new):
    import importlib

    old_module, new_module = importlib.import_module(old), importlib.import_module(new)
    with pytest.warns(DeprecationWarning) as caught:
        value = getattr(old_module, name)
    assert value is getattr(new_module, name)
    message = str(caught[0].message)
    assert f"from {new} import {name}" in message and "removed in usvpipe 0.3" in message
    assert caught[0].filename == __file__  # the warning points at the caller's line, not at usvpipe


def test_every_name_an_old_module_path_lists_resolves_in_its_new_module():
    import importlib
    import warnings

    for old in ("usvpipe.segment", "usvpipe.pipeline_segment", "usvpipe.spectrogram"):
        module = importlib.import_module(old)
        for name, new in module._MOVED.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                assert getattr(module, name) is getattr(importlib.import_module(new), name), (old, name)
        with pytest.raises(AttributeError):
            module.no_such_name


# --------------------------------------------------------------------------- streaming + decisions
@pytest.mark.parametrize("kw", [{}, {"smoothing_s": 0.004, "noise_window_s": 0.05}, {"noise_window_s": 0.03, "min_gap_s": 0.03, "valley_db": 12.0}])
def test_segmenting_while_the_trace_streams_is_bit_identical_to_the_whole_trace(kw):
    from usvpipe.segmentation.detection import TraceSegmenter, segments_from_trace
    from usvpipe.segmentation.sources import ArraySource
    from usvpipe.segmentation.trace import compute_trace

    audio, _ = synth_recording(8.0, SR, snr_db=5.0, call_rate_hz=6.0, seed=3)
    p, sp = SegmentParams(**kw), SpectrogramParams()
    geom = sp.geometry(SR)
    seg = TraceSegmenter(geom, p, geom.n_frames(audio.size), min_piece_frames=64)
    trace = compute_trace(ArraySource(audio), geom, sp, p, consumer=seg)
    streamed = seg.finish()
    assert len(seg.parts) > 3  # the trace really was cut into pieces
    assert len(streamed) > 20
    pd.testing.assert_frame_equal(streamed, segments_from_trace(trace, p), check_exact=True)


def test_a_streamed_trace_keeps_only_its_noise_floors(synth4):
    from usvpipe.segmentation.detection import segment_with_trace, segments_from_trace
    from usvpipe.segmentation.sources import ArraySource

    segs, trace = segment_with_trace(ArraySource(synth4[0]), SR, SegmentParams(), SpectrogramParams(), keep_trace=False)
    assert trace.amplitude is None and trace.elevated_fraction is None and trace.floors
    assert len(segs) > 5
    with pytest.raises(ConfigError, match="streamed"):
        segments_from_trace(trace, SegmentParams())


def test_valley_split_needs_a_deep_and_wide_valley():
    from usvpipe.segmentation.decisions import split_at_valleys

    bump = np.concatenate([np.linspace(12, 40, 5), np.full(10, 40.0), np.linspace(40, 12, 5)])


    def runs(valley_level, valley_len):
        x = np.concatenate([bump, np.full(valley_len, valley_level), bump])
        s, e, on, off = split_at_valleys(x, np.array([0]), np.array([x.size]), 12.0, 15.0, min_gap_frames=10)
        return list(zip(s.tolist(), e.tolist())), off
    two, off = runs(20.0, 20)  # 20 dB below both peaks, 20 frames long: split
    assert len(two) == 2 and two[0][0] == 0 and two[1][1] == 60
    assert off[0] == pytest.approx(26.0)  # the split level: halfway between the valley's bottom (12) and the peak (40)
    assert len(runs(30.0, 20)[0]) == 1  # only 10 dB deep
    assert len(runs(5.0, 3)[0]) == 1  # deep but brief: a dip inside one call


def _click_and_burst_recording(seed=0):
    """2 s: one call at 0.3 s, a burst of broadband clicks at 0.9 s and a low-frequency noise burst at 1.4 s."""
    from scipy.signal import butter, sosfilt

    from usvpipe.synth import CallParams, synthesize_call

    rng = np.random.default_rng(seed)
    x = rng.standard_normal(2 * SR) * 0.002
    call = synthesize_call(CallParams(70_000, 65_000, 0.04), SR) * 0.05
    x[int(0.3 * SR) : int(0.3 * SR) + call.size] += call
    for k in range(4):  # a burst of four clicks, 3 ms apart
        click = rng.standard_normal(100) * np.exp(-np.arange(100) / 25.0) * 0.2
        x[int((0.9 + 0.003 * k) * SR) : int((0.9 + 0.003 * k) * SR) + 100] += click
    burst = sosfilt(butter(6, 32_000, fs=SR, output="sos"), rng.standard_normal(int(0.1 * SR))) * 0.3
    x[int(1.4 * SR) : int(1.4 * SR) + burst.size] += burst
    return x.astype(np.float32)


def test_the_noise_check_drops_clicks_and_low_frequency_bursts_but_keeps_the_call():
    x = _click_and_burst_recording()
    without = segment_audio(x, SR, SegmentParams(noise_check=False))
    kept = segment_audio(x, SR, SegmentParams(noise_check=True))
    assert len(without) >= 3  # the threshold alone takes click and burst for calls
    assert len(kept) == 1 and abs(kept.onset_s.iloc[0] - 0.3) < 0.005


def test_long_broadband_pup_cries_are_not_taken_for_clicks(shared_data):
    """The deer-mouse pup clip holds six loud, harmonic-rich (broadband) cries of 46-161 ms."""
    segs = segment_file(shared_data / "unlabelled" / "vocalpy_deermouse-go.wav")
    assert len(segs) == 6
    assert len(segment_file(shared_data / "unlabelled" / "vocalpy_deermouse-go.wav", SegmentParams(noise_click_max_dur_s=1.0))) < 6
