"""Exact-truth synthetic recordings for the segmentation tests: calls, clicks, scratches, hum, gain steps.

Every builder adds to a white background whose in-band (30-110 kHz) power is 1e-5 (RMS
~3.2e-3), so a call of RMS 0.01 is at 10 dB per-call SNR. Truth is the call's own first and
last sample.
"""
from __future__ import annotations

import numpy as np

from usvpipe.synth import CallParams, synthesize_call

SR = 250_000
BAND_RMS = 10 ** (-5 / 2)  # background RMS inside the band


def background(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(int(seconds * SR)) * BAND_RMS / np.sqrt(80 / 125)


def add_call(x: np.ndarray, t_s: float, call: CallParams, snr_db: float = 10.0, envelope=None) -> tuple[float, float]:
    """Add ``call`` at ``t_s`` with the given per-call SNR (optionally times ``envelope(t)``); return its truth."""
    y = synthesize_call(call, SR).astype(np.float64)
    y *= BAND_RMS * 10 ** (snr_db / 20) / np.sqrt(np.mean(y**2))
    if envelope is not None:
        y *= envelope(np.arange(y.size) / SR)
    s = int(round(t_s * SR))
    x[s : s + y.size] += y
    return s / SR, (s + y.size) / SR


def dip(at_s: float, width_s: float, depth_db: float = 30.0):
    """An envelope with a near-silent stretch of ``width_s`` centred at ``at_s`` (1 ms ramps)."""
    def env(t):
        u = np.clip((np.abs(t - at_s) - width_s / 2) / 0.001 + 1.0, 0.0, 1.0)
        floor = 10 ** (-depth_db / 20)
        return floor + (1 - floor) * (0.5 - 0.5 * np.cos(np.pi * u))
    return env


def add_broadband(x: np.ndarray, t_s: float, dur_s: float, level_db: float, tilt: float = 0.0, seed: int = 1) -> None:
    """A noise burst ``level_db`` above the background in the band, power ~ f**-tilt (0: white, a click or burst; 1-2: a scratch)."""
    rng = np.random.default_rng(seed)
    n = max(8, int(dur_s * SR))
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spec *= np.maximum(f, 1000.0) ** (-tilt / 2)
    y = np.fft.irfft(spec, n) * np.hanning(n) ** 0.25
    band = (f >= 30_000) & (f <= 110_000)
    band_rms = np.sqrt(np.sum(np.abs(spec[band]) ** 2) * 2) / n
    y *= BAND_RMS * 10 ** (level_db / 20) / band_rms
    s = int(t_s * SR)
    x[s : s + n] += y[: x.size - s]


def add_click(x: np.ndarray, t_s: float, level_db: float = 40.0, seed: int = 2) -> None:
    """A decaying broadband impulse of ~0.5 ms."""
    rng = np.random.default_rng(seed)
    n = int(0.0005 * SR)
    y = rng.standard_normal(n) * np.exp(-np.arange(n) / (n / 4))
    y *= BAND_RMS * 10 ** (level_db / 20) / np.sqrt(np.mean(y**2) * 0.64)
    s = int(t_s * SR)
    x[s : s + n] += y


def add_hum(x: np.ndarray, level_db: float = 40.0, line_hz: float = 40_000.0, line_db: float = 10.0) -> None:
    """Mains hum (50 Hz and harmonics to 5 kHz) ``level_db`` above the in-band background, plus a
    steady ultrasonic line (e.g. a switching power supply) ``line_db`` above it."""
    t = np.arange(x.size) / SR
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in range(1, 101))
    x += hum * BAND_RMS * 10 ** (level_db / 20) / np.sqrt(np.mean(hum**2))
    x += np.sin(2 * np.pi * line_hz * t) * np.sqrt(2) * BAND_RMS * 10 ** (line_db / 20)


CALL = CallParams(70_000, 62_000, 0.060, fm_depth_hz=1_000, fm_rate_hz=30)
OTHER = CallParams(85_000, 90_000, 0.040)
