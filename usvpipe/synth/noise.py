"""Noise of real rigs as named, separately switchable classes, and the per-call SNR.

Every recording has a stationary white **background** (always on; Gaussian, RMS
:data:`BACKGROUND_RMS` before gain). On top, each class of :data:`NOISE_CLASSES` can be
switched on or off on its own:

==========  ================================================================================
class       what it is (defaults; every event is a row of the noise truth table)
==========  ================================================================================
clicks      broadband impulses of 0.1–1 ms (exponentially decaying white bursts), peak
            20–35 dB above the background RMS, Poisson at 0.5 per second
scratches   cage scratches: broadband bursts of 10–200 ms made of many micro-impacts
            (white noise, mildly low-pass tilted, rough amplitude envelope), in-band RMS
            5–25 dB above the background, Poisson at 0.2 per second
reverb      a reverberant tail on every call: the call convolved with an exponentially
            decaying noise impulse response, RT60 20–100 ms per recording (one room),
            wet level -20 to -8 dB relative to the dry call; the tail runs past the offset
            (truth: one ``reverb`` row per recording, one ``reverb_tail`` row per call)
hum         low-band hum: 50 Hz mains and its harmonics up to 1 kHz plus 1/f-shaped
            low-frequency noise (40 sinusoids, 50 Hz–5 kHz); RMS 10–25 dB above the
            background, all of it below the 30–110 kHz call band
gain        a gain per recording (rig/animal), uniform in ±6 dB, applied to everything
==========  ================================================================================

Per-call SNR (exact definition)
-------------------------------
``snr_db = 10 log10(P_call / P_noise)`` where ``P_call`` is the mean square of the dry
call (all its components, ramps included, no reverb) over ``[onset_s, offset_s]``, and
``P_noise`` is the power of the *background* inside the call's band ``[min - 5 kHz,
max + 5 kHz]`` (``min``/``max`` over all the call's components, its 2f harmonic included).
The background is white, so ``P_noise = BACKGROUND_RMS**2 * band_width / (sample_rate / 2)``
exactly. Transient classes (clicks, scratches) and hum do not enter it (they are events,
not the floor); gain scales call and background alike, so it leaves the SNR unchanged.
The 5 kHz guard is about the width a frequency-limited detector integrates around a
narrow call, so a flat call does not get an infinite band SNR.

Every noise waveform is a pure function of its row (or of the recording's seed and the
sample index), so any window of a recording renders identically whether rendered alone
or as part of the whole recording.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

#: Named noise classes, in the order they are applied.
NOISE_CLASSES = ("clicks", "scratches", "reverb", "hum", "gain")
#: RMS of the white background before gain (-54 dBFS: 16-bit quantisation stays 40 dB under it).
BACKGROUND_RMS = 0.002
#: Guard added on both sides of a call's frequency range to define its SNR band (Hz).
SNR_GUARD_HZ = 5_000.0
#: Samples per block of background noise (each block has its own seed: windows render identically).
BLOCK = 1 << 14

CLICK_RATE_HZ, CLICK_MS, CLICK_DB = 0.5, (0.1, 1.0), (20.0, 35.0)
SCRATCH_RATE_HZ, SCRATCH_MS, SCRATCH_DB = 0.2, (10.0, 200.0), (5.0, 25.0)
REVERB_RT60_S, REVERB_WET_DB = (0.02, 0.10), (-20.0, -8.0)
HUM_DB, HUM_MAINS_HZ, HUM_LOW_HZ = (10.0, 25.0), 50.0, (50.0, 5_000.0)
GAIN_DB = (-6.0, 6.0)
#: Columns of the noise truth table.
NOISE_COLUMNS = ("recording", "kind", "onset_s", "offset_s", "level_db", "param", "seed")


def snr_band_hz(min_freq_hz: float, max_freq_hz: float, sample_rate_hz: float) -> tuple:
    """The band (Hz) whose background power defines a call's SNR."""
    return max(0.0, min_freq_hz - SNR_GUARD_HZ), min(sample_rate_hz / 2, max_freq_hz + SNR_GUARD_HZ)


def background_band_power(band_hz: tuple, sample_rate_hz: float) -> float:
    """Power of the (white) background inside ``band_hz``, before gain."""
    return BACKGROUND_RMS**2 * (band_hz[1] - band_hz[0]) / (sample_rate_hz / 2)


def call_scale(dry_call: np.ndarray, band_hz: tuple, snr_db: float, sample_rate_hz: float) -> float:
    """Factor that gives ``dry_call`` exactly ``snr_db`` against the background in ``band_hz``."""
    power = float(np.mean(dry_call**2))
    return math.sqrt(10 ** (snr_db / 10) * background_band_power(band_hz, sample_rate_hz) / max(power, 1e-30))


def background(seed: int, start: int, n: int) -> np.ndarray:
    """White background samples ``[start, start + n)`` of a recording (block-seeded)."""
    out = np.empty(n)
    first, last = start // BLOCK, (start + n - 1) // BLOCK if n else start // BLOCK - 1
    for block in range(first, last + 1):
        rng = np.random.default_rng([int(seed), block])
        values = rng.standard_normal(BLOCK) * BACKGROUND_RMS
        lo, hi = max(start, block * BLOCK), min(start + n, (block + 1) * BLOCK)
        out[lo - start:hi - start] = values[lo - block * BLOCK:hi - block * BLOCK]
    return out


def _sum_of_sines(cycles_per_sample, amps, phases, start: int, n: int, tables) -> np.ndarray:
    """``sum_k a_k sin(2 pi c_k i + phi_k)`` for samples ``i`` in ``[start, start + n)``.

    sin(x + y) = sin x cos y + cos x sin y with x on a grid of block starts and y within
    a block turns the sum into two small matrix products (fast, and exact to rounding);
    ``tables`` holds cos y and sin y for one block.
    """
    if n <= 0:
        return np.zeros(0)
    cos_y, sin_y = tables
    block = cos_y.shape[1]
    first, last = start // block, (start + n - 1) // block
    block_start = np.arange(first, last + 1, dtype=np.float64)[:, None] * block
    x = 2 * np.pi * np.mod(block_start * cycles_per_sample[None, :], 1.0) + phases[None, :]
    grid = (np.sin(x) * amps) @ cos_y + (np.cos(x) * amps) @ sin_y
    offset = start - first * block
    return grid.ravel()[offset:offset + n]


@lru_cache(maxsize=16)
def _hum_components(seed: int, sample_rate_hz: float, block: int = 4096):
    """Frequencies (cycles per sample), amplitudes, phases and one block's cos/sin tables of a hum."""
    rng = np.random.default_rng(seed)
    mains = HUM_MAINS_HZ * np.arange(1, int(1_000 / HUM_MAINS_HZ) + 1)
    low = np.exp(rng.uniform(*np.log(HUM_LOW_HZ), 40))
    freqs = np.concatenate([mains, low])
    amps = np.concatenate([rng.uniform(0.3, 1.0, len(mains)) / np.arange(1, len(mains) + 1),
                           0.5 / np.sqrt(low / HUM_LOW_HZ[0])])
    phases = rng.uniform(0, 2 * np.pi, len(freqs))
    cycles = freqs / sample_rate_hz
    y = 2 * np.pi * np.arange(block)[None, :] * cycles[:, None]
    return cycles, amps, phases, (np.cos(y), np.sin(y))


def hum(row, start: int, n: int, sample_rate_hz: float) -> np.ndarray:
    """Low-band hum for samples ``[start, start + n)``: mains harmonics + 1/f sinusoids."""
    cycles, amps, phases, tables = _hum_components(int(row["seed"]), float(sample_rate_hz))
    y = _sum_of_sines(cycles, amps, phases, start, n, tables)
    rms = math.sqrt(0.5 * float(np.sum(amps**2)))
    return y * (BACKGROUND_RMS * 10 ** (float(row["level_db"]) / 20) / rms)


def click(row, sample_rate_hz: float) -> np.ndarray:
    """One broadband click: a decaying white burst whose peak envelope is ``level_db`` over the background."""
    rng = np.random.default_rng(int(row["seed"]))
    n = max(2, int(round((float(row["offset_s"]) - float(row["onset_s"])) * sample_rate_hz)))
    env = np.exp(-np.arange(n) / (n / 4.0))
    burst = rng.standard_normal(n) * env
    peak = BACKGROUND_RMS * 10 ** (float(row["level_db"]) / 20)
    return burst * (peak / max(float(np.max(np.abs(burst))), 1e-12))


def scratch(row, sample_rate_hz: float) -> np.ndarray:
    """One cage scratch: many micro-impacts under a rough envelope, RMS ``level_db`` over the background."""
    rng = np.random.default_rng(int(row["seed"]))
    n = max(2, int(round((float(row["offset_s"]) - float(row["onset_s"])) * sample_rate_hz)))
    white = rng.standard_normal(n)
    tilted = white.copy()
    tilted[1:] += 0.5 * white[:-1]  # mild low-pass tilt: a scratch is louder low, still broadband
    impacts = np.zeros(n)
    k = max(1, int(n / sample_rate_hz * 400))  # ~400 micro-impacts per second
    impacts[rng.integers(0, n, k)] = rng.exponential(1.0, k)
    kernel = np.exp(-np.arange(int(0.002 * sample_rate_hz)) / (0.0005 * sample_rate_hz))
    env = np.convolve(impacts, kernel)[:n]
    env *= np.sin(np.pi * (np.arange(n) + 0.5) / n)  # fade in and out over the scratch
    y = tilted * env
    rms = math.sqrt(float(np.mean(y**2))) or 1.0
    return y * (BACKGROUND_RMS * 10 ** (float(row["level_db"]) / 20) / rms)


def reverb_tail(dry: np.ndarray, rt60_s: float, wet_db: float, seed: int, sample_rate_hz: float) -> np.ndarray:
    """The reverberant part added to ``dry``: dry * h, h = decaying noise of unit energy times the wet gain.

    Returned array is ``len(dry) + len(h) - 1`` long (the tail runs past the call).
    """
    rng = np.random.default_rng(int(seed))
    n_ir = max(2, int(round(rt60_s * sample_rate_hz)))
    tau = rt60_s / math.log(1000.0)  # 60 dB decay over rt60
    h = rng.standard_normal(n_ir) * np.exp(-np.arange(n_ir) / (tau * sample_rate_hz))
    h *= 10 ** (wet_db / 20) / math.sqrt(float(np.sum(h**2)))
    size = 1 << int(math.ceil(math.log2(len(dry) + n_ir - 1)))
    wet = np.fft.irfft(np.fft.rfft(dry, size) * np.fft.rfft(h, size), size)[: len(dry) + n_ir - 1]
    return wet


def draw_events(recording: str, duration_s: float, noise: tuple, rng: np.random.Generator) -> pd.DataFrame:
    """Noise events of one recording for the switched-on classes.

    Each class draws from its own stream (one draw from ``rng`` whatever is switched on),
    so switching one class on or off leaves the others' events as they were. Reverb is a
    property of the room (one RT60 in ``param`` and one wet level per recording, in the
    ``reverb`` row); its per-call tails are added when calls are rendered.
    """
    base = int(rng.integers(0, 2**31 - 1))
    rows = []
    for index, kind in enumerate(NOISE_CLASSES):
        if kind in noise:
            rows += _class_events(recording, kind, duration_s, np.random.default_rng([base, index]))
    return pd.DataFrame(rows, columns=list(NOISE_COLUMNS))


def _class_events(recording: str, kind: str, duration_s: float, rng: np.random.Generator) -> list:
    def seed():
        return int(rng.integers(0, 2**31 - 1))

    if kind in ("clicks", "scratches"):
        rate, ms, db = (CLICK_RATE_HZ, CLICK_MS, CLICK_DB) if kind == "clicks" else \
            (SCRATCH_RATE_HZ, SCRATCH_MS, SCRATCH_DB)
        rows = []
        for _ in range(rng.poisson(rate * duration_s)):
            length = math.exp(rng.uniform(math.log(ms[0]), math.log(ms[1]))) / 1000.0
            onset = rng.uniform(0.0, max(duration_s - length, 0.0))
            rows.append((recording, kind, onset, onset + length, rng.uniform(*db), 0.0, seed()))
        return rows
    if kind == "reverb":
        return [(recording, "reverb", 0.0, duration_s, rng.uniform(*REVERB_WET_DB), rng.uniform(*REVERB_RT60_S),
                 seed())]
    if kind == "hum":
        return [(recording, "hum", 0.0, duration_s, rng.uniform(*HUM_DB), HUM_MAINS_HZ, seed())]
    return [(recording, "gain", 0.0, duration_s, rng.uniform(*GAIN_DB), 0.0, 0)]
