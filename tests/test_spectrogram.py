"""The band-limited STFT and the dB conversion (usvpipe.segmentation.spectrogram)."""
from __future__ import annotations

import numpy as np
import pytest

from usvpipe.segmentation.spectrogram import SpectrogramParams, band_power_db, spectrogram

SR = 250_000


def test_spectrogram_peak_and_level():
    amp, f0 = 0.5, 60_000.0
    t = np.arange(SR // 4) / SR
    x = (amp * np.sin(2 * np.pi * f0 * t)).astype(np.float32)
    p = SpectrogramParams()
    spec, freqs, times = spectrogram(x, SR, p)
    assert spec.shape == (freqs.size, times.size) and spec.dtype == np.float32
    assert freqs[0] >= p.min_freq_hz and freqs[-1] <= p.max_freq_hz
    assert 0.0 <= spec.min() and spec.max() <= 1.0
    db = band_power_db(x, p.geometry(SR))
    peak = freqs[db.mean(axis=0).argmax()]
    assert abs(peak - f0) <= (freqs[1] - freqs[0])
    # dB re a full-scale sine: a 0.5 sine is about -6 dB (Hann scalloping < 1.5 dB)
    assert -7.6 < db.max(axis=1).mean() < -5.9
    # frame centres on the fixed grid
    g = p.geometry(SR)
    assert np.allclose(np.diff(times), g.hop / SR) and times[0] == pytest.approx(g.nperseg / 2 / SR)


def test_power_to_db_is_bit_identical_to_the_inline_expressions_it_replaced():
    from usvpipe.segmentation.spectrogram import power_to_db

    rng = np.random.default_rng(0)
    p = (rng.random(1000, dtype=np.float32) ** 8).astype(np.float32)
    p[:10] = 0.0  # digital silence hits the floor, not -inf
    expected = np.float32(10.0) * np.log10(np.maximum(p, np.float32(1e-20)))
    assert np.array_equal(power_to_db(p), expected) and np.isfinite(power_to_db(p)).all()
    scaled = np.log10(np.maximum(p, np.float32(1e-20))) * np.float32(10.0 / 40.0)
    buf = p.copy()
    out = power_to_db(buf, scale=10.0 / 40.0, out=buf)
    assert out is buf and np.array_equal(out, scaled)
    assert power_to_db(np.zeros(1, np.float32), amin=1e-10)[0] == pytest.approx(-100.0, abs=1e-4)


def test_band_power_of_pcm16_values_equals_that_of_the_converted_samples_bit_for_bit():
    """16-bit PCM frames are scaled inside the FFT window: a power-of-two scale is exact."""
    from usvpipe.audio import pcm16_to_float32
    from usvpipe.segmentation.spectrogram import band_power, frame_view

    rng = np.random.default_rng(0)
    pcm = rng.integers(-32768, 32768, 250_000 // 4, dtype=np.int16)
    geom = SpectrogramParams().geometry(250_000)
    from_int16 = band_power(frame_view(pcm, geom), geom)
    from_float = band_power(frame_view(pcm16_to_float32(pcm), geom), geom)
    assert from_int16.dtype == np.float32 and from_int16.shape == from_float.shape
    assert np.array_equal(from_int16, from_float)


def test_a_pcm16_file_segments_exactly_as_its_samples_in_memory(tmp_path):
    import soundfile as sf

    from usvpipe.audio import pcm16_to_float32
    from usvpipe.segmentation import segment_audio, segment_file
    from usvpipe.segmentation.params import SegmentParams
    from usvpipe.synth import synth_recording

    sr = 250_000
    audio, _ = synth_recording(4.0, sr, seed=3)
    pcm = np.round(np.clip(audio, -1, 1 - 2 ** -15) * 32768).astype(np.int16)
    sf.write(tmp_path / "r.wav", pcm, sr, subtype="PCM_16")
    from_file = segment_file(tmp_path / "r.wav", SegmentParams(), SpectrogramParams())
    in_memory = segment_audio(pcm16_to_float32(pcm), sr, SegmentParams(), SpectrogramParams())
    assert len(from_file) > 0 and from_file.reset_index(drop=True).equals(in_memory.reset_index(drop=True))
