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
