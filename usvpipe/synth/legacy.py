"""The sweep world (usvpipe's first generator): every call one FM sweep, with exact ground truth.

Used to test every stage against known answers: the segmenter against exact
onsets/offsets, the VAE on idealised syllable images, and the (nested) MMD test on
groups whose call distributions differ by a controlled effect size.

Generative model
----------------
Each call is a frequency-modulated tone: a linear sweep from ``start_freq_hz`` to
``end_freq_hz`` over ``duration_s`` plus a sinusoidal modulation of peak deviation
``fm_depth_hz`` at ``fm_rate_hz``, an optional 2nd harmonic of relative amplitude
``harmonic_ratio`` (dropped when it would exceed the Nyquist frequency), and a smooth
raised-cosine onset/offset ramp (no clicks). The fundamental always stays inside
30–110 kHz.

Call parameters are drawn through a Gaussian "latent" per parameter (a Gaussian copula):
``param = transform(mean + sd * z)`` with ``z ~ N(shift, 1)``. A group shift of
``group_shift`` moves every shape parameter's latent by that many standard deviations
(the effect size), and an animal's individual signature is a fixed latent offset drawn
from ``N(0, animal_sd)`` — so animals within a group differ, which is what a nested
(animal-level) test must account for. ``amplitude`` is a nuisance parameter and is never
shifted.

Signal-to-noise ratio
---------------------
``snr_db`` is a **per-call** ratio: ``10 log10(P_call / P_noise)`` where ``P_call`` is
the mean square of the call's waveform (fundamental + harmonic, including its ramps)
over ``[onset_s, offset_s]`` and ``P_noise`` is the power of the background noise inside
the 30–110 kHz call band. A call of ``amplitude`` ``a`` has SNR ``snr_db + 20 log10(a)``
(recorded per call in the truth table's ``snr_db`` column). Optional low-frequency room
noise (< 20 kHz, 1/f-shaped) is added on top; it lies outside the call band and does
not enter the SNR.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = [
    "CallParams",
    "PARAM_NAMES",
    "SHAPE_PARAMS",
    "sample_calls",
    "render_call_image",
    "render_call_images",
    "synthesize_call",
    "synth_recording",
    "make_dataset",
]

#: Frequency band (Hz) the fundamental of every sampled call stays in; also the SNR band.
CALL_BAND_HZ = (30_000.0, 110_000.0)
#: Upper edge (Hz) of the optional low-frequency room noise.
LOW_NOISE_MAX_HZ = 20_000.0


@dataclass(frozen=True)
class CallParams:
    """Parameters of one synthetic call.

    Parameters
    ----------
    start_freq_hz, end_freq_hz : float
        Frequency of the linear sweep at onset and offset (Hz).
    duration_s : float
        Call duration (s), > 0.
    fm_depth_hz : float
        Peak deviation of the sinusoidal frequency modulation (Hz), >= 0.
    fm_rate_hz : float
        Rate of the sinusoidal frequency modulation (Hz), >= 0.
    harmonic_ratio : float
        Amplitude of the 2nd harmonic relative to the fundamental, in [0, 1].
    amplitude : float
        Linear amplitude factor (1 = nominal level; see the module's SNR definition).
    """

    start_freq_hz: float
    end_freq_hz: float
    duration_s: float
    fm_depth_hz: float = 0.0
    fm_rate_hz: float = 0.0
    harmonic_ratio: float = 0.0
    amplitude: float = 1.0

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float, np.number)) or not math.isfinite(float(v)):
                raise ConfigError(f"CallParams.{f.name} must be a finite number, got {v!r}")
        if self.start_freq_hz <= 0 or self.end_freq_hz <= 0:
            raise ConfigError("CallParams: start_freq_hz and end_freq_hz must be > 0")
        if self.duration_s <= 0:
            raise ConfigError(f"CallParams.duration_s must be > 0, got {self.duration_s}")
        if self.fm_depth_hz < 0 or self.fm_rate_hz < 0:
            raise ConfigError("CallParams: fm_depth_hz and fm_rate_hz must be >= 0")
        if not 0 <= self.harmonic_ratio <= 1:
            raise ConfigError(f"CallParams.harmonic_ratio must be in [0, 1], got {self.harmonic_ratio}")
        if self.amplitude < 0:
            raise ConfigError(f"CallParams.amplitude must be >= 0, got {self.amplitude}")


PARAM_NAMES = tuple(f.name for f in dataclasses.fields(CallParams))
#: Parameters moved by ``group_shift`` and individual (animal) offsets.
SHAPE_PARAMS = PARAM_NAMES[:-1]

# Latent model: param = transform(mean + sd * z). Means/SDs in the transformed (latent)
# scale; chosen to look like adult mouse USVs (median 40 ms, 55-85 kHz, mostly slight FM).
_LATENT = {
    #                 mean,              sd
    "start_freq_hz": (70_000.0, 12_000.0),
    "end_freq_hz": (66_000.0, 12_000.0),
    "duration_s": (math.log(0.040), 0.6),   # log-normal: 95 % in ~12-130 ms
    "fm_depth_hz": (math.log(1_500.0), 0.6),
    "fm_rate_hz": (math.log(40.0), 0.4),
    "harmonic_ratio": (math.log(0.15 / 0.85), 0.8),  # logit scale
    "amplitude": (0.0, 0.2),                           # log scale
}
_START_END_CORR = 0.5
_DURATION_RANGE_S = (0.005, 0.200)
_FM_RATE_RANGE_HZ = (5.0, 150.0)
_SWEEP_MARGIN_HZ = 2_000.0


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _latent_vector(value, name: str) -> np.ndarray:
    """Scalar or per-parameter (sequence/mapping) latent offset -> array over SHAPE_PARAMS."""
    if isinstance(value, Mapping):
        unknown = set(value) - set(SHAPE_PARAMS)
        if unknown:
            raise ConfigError(f"{name}: unknown parameter(s) {sorted(unknown)}; valid: {', '.join(SHAPE_PARAMS)}")
        return np.array([float(value.get(p, 0.0)) for p in SHAPE_PARAMS])
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return np.full(len(SHAPE_PARAMS), float(arr))
    if arr.shape != (len(SHAPE_PARAMS),):
        raise ConfigError(f"{name}: expected a number or {len(SHAPE_PARAMS)} values ({', '.join(SHAPE_PARAMS)})")
    return arr


def sample_calls(n: int, *, group_shift=0.0, seed=None, animal_offset=0.0) -> pd.DataFrame:
    """Draw ``n`` random call parameter sets.

    Parameters
    ----------
    n : int
        Number of calls.
    group_shift : float, sequence or mapping
        Shift of each shape parameter's latent Gaussian, in standard deviations (the
        effect size between groups). A scalar shifts every shape parameter
        (all of :data:`SHAPE_PARAMS`) by the same amount; a sequence/mapping sets them
        individually. ``amplitude`` is never shifted.
    seed : int, numpy.random.Generator or None
        Random seed (deterministic for a given int).
    animal_offset : float, sequence or mapping
        Additional fixed latent offset (in SDs) — an individual animal's signature.

    Returns
    -------
    pandas.DataFrame
        One row per call, columns :data:`PARAM_NAMES` (the :class:`CallParams` fields).
        The fundamental stays within 30–110 kHz; durations within 5–200 ms.
    """
    n = int(n)
    if n < 0:
        raise ConfigError(f"sample_calls: n must be >= 0, got {n}")
    rng = _rng(seed)
    shift = _latent_vector(group_shift, "group_shift") + _latent_vector(animal_offset, "animal_offset")
    z = rng.standard_normal((n, len(PARAM_NAMES)))
    # Start and end frequency are correlated (most calls are near-flat or gentle sweeps).
    z[:, 1] = _START_END_CORR * z[:, 0] + math.sqrt(1 - _START_END_CORR**2) * z[:, 1]
    z[:, : len(SHAPE_PARAMS)] += shift
    lat = {p: _LATENT[p][0] + _LATENT[p][1] * z[:, i] for i, p in enumerate(PARAM_NAMES)}

    lo, hi = CALL_BAND_HZ[0] + _SWEEP_MARGIN_HZ, CALL_BAND_HZ[1] - _SWEEP_MARGIN_HZ
    start = np.clip(lat["start_freq_hz"], lo, hi)
    end = np.clip(lat["end_freq_hz"], lo, hi)
    duration = np.clip(np.exp(lat["duration_s"]), *_DURATION_RANGE_S)
    # The modulation may not push the contour out of the call band.
    room = np.minimum(np.minimum(start, end) - CALL_BAND_HZ[0], CALL_BAND_HZ[1] - np.maximum(start, end))
    fm_depth = np.clip(np.exp(lat["fm_depth_hz"]), 0.0, np.maximum(room, 0.0))
    fm_rate = np.clip(np.exp(lat["fm_rate_hz"]), *_FM_RATE_RANGE_HZ)
    harmonic = 1.0 / (1.0 + np.exp(-lat["harmonic_ratio"]))
    amplitude = np.exp(lat["amplitude"])
    return pd.DataFrame(
        {
            "start_freq_hz": start,
            "end_freq_hz": end,
            "duration_s": duration,
            "fm_depth_hz": fm_depth,
            "fm_rate_hz": fm_rate,
            "harmonic_ratio": harmonic,
            "amplitude": amplitude,
        }
    )


def _as_call(call) -> CallParams:
    if isinstance(call, CallParams):
        return call
    try:
        getter = call.get
    except AttributeError:
        raise ConfigError(f"expected CallParams or a mapping/row with its fields, got {type(call).__name__}") from None
    kwargs = {}
    for f in dataclasses.fields(CallParams):
        v = getter(f.name, None)
        if v is None:
            if f.default is dataclasses.MISSING:
                raise ConfigError(f"call is missing {f.name!r}")
            continue
        kwargs[f.name] = float(v)
    return CallParams(**kwargs)


def _contour(call: CallParams, t_s: np.ndarray) -> np.ndarray:
    """Instantaneous fundamental frequency (Hz) at times ``t_s`` since onset."""
    d = call.duration_s
    f = call.start_freq_hz + (call.end_freq_hz - call.start_freq_hz) * (t_s / d)
    if call.fm_depth_hz > 0 and call.fm_rate_hz > 0:
        f = f + call.fm_depth_hz * np.sin(2 * np.pi * call.fm_rate_hz * t_s)
    return f


def _phase(call: CallParams, t_s: np.ndarray) -> np.ndarray:
    """Analytic integral of 2*pi*contour, so the waveform has no phase errors."""
    d = call.duration_s
    ph = 2 * np.pi * (call.start_freq_hz * t_s + (call.end_freq_hz - call.start_freq_hz) * t_s**2 / (2 * d))
    if call.fm_depth_hz > 0 and call.fm_rate_hz > 0:
        ph = ph + call.fm_depth_hz / call.fm_rate_hz * (1 - np.cos(2 * np.pi * call.fm_rate_hz * t_s))
    return ph


def _envelope(call: CallParams, t_s: np.ndarray) -> np.ndarray:
    """Raised-cosine ramps (3 ms, at most a quarter of the call) -> no onset/offset clicks."""
    d = call.duration_s
    ramp = min(0.003, 0.25 * d)
    x = np.clip(np.minimum(t_s, d - t_s) / ramp, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def _max_freq(call: CallParams) -> float:
    fm = call.fm_depth_hz if call.fm_rate_hz > 0 else 0.0
    return max(call.start_freq_hz, call.end_freq_hz) + fm


def synthesize_call(call, sample_rate_hz: float) -> np.ndarray:
    """Waveform of one call.

    Parameters
    ----------
    call : CallParams or mapping/DataFrame row with its fields
    sample_rate_hz : float

    Returns
    -------
    numpy.ndarray
        float32, ``round(duration_s * sample_rate_hz)`` samples (at least 1); the
        fundamental's envelope peaks at ``amplitude``. The 2nd harmonic is omitted
        when it would reach the Nyquist frequency.

    Raises
    ------
    ConfigError
        If the fundamental exceeds the Nyquist frequency.
    """
    call = _as_call(call)
    nyquist = sample_rate_hz / 2
    fmax = _max_freq(call)
    if fmax >= nyquist:
        raise ConfigError(f"call reaches {fmax:.0f} Hz, above the Nyquist frequency {nyquist:.0f} Hz (fix: raise sample_rate_hz)")
    n = max(1, int(round(call.duration_s * sample_rate_hz)))
    t = np.arange(n) / sample_rate_hz
    ph = _phase(call, t)
    y = np.sin(ph)
    if call.harmonic_ratio > 0 and 2 * fmax < nyquist:
        y += call.harmonic_ratio * np.sin(2 * ph)
    y *= call.amplitude * _envelope(call, t)
    return y.astype(np.float32)


def render_call_image(
    call,
    shape=(128, 128),
    *,
    min_freq_hz: float = 30_000,
    max_freq_hz: float = 110_000,
    window_s: float = 0.2,
    noise: float = 0.0,
    seed=None,
) -> np.ndarray:
    """Idealised spectrogram image of one call (fast; no audio, no STFT).

    The contour (and the 2nd harmonic where it falls in the band) is drawn as a Gaussian
    ridge (sigma = one frequency bin), weighted by the call's envelope, then
    compressed with ``log1p(50 x) / log1p(50)`` (a log-like intensity scale). Each column
    takes the maximum over 4 sub-samples in time so steep sweeps stay connected.

    Parameters
    ----------
    call : CallParams or mapping/DataFrame row with its fields
    shape : (int, int)
        ``(H, W)``: rows are frequencies, linear from ``min_freq_hz`` (row 0) to
        ``max_freq_hz`` (row ``H-1``); columns span ``window_s`` centred on the call
        (AVA-style fixed window; a call longer than the window is cut at both ends).
    min_freq_hz, max_freq_hz : float
    window_s : float
    noise : float
        Mean of exponential (chi-square, like a power spectrum) background noise added
        in the linear domain, relative to the ridge's peak of 1.
    seed : int, Generator or None
        Seed for the noise.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)`` in [0, 1].
    """
    call = _as_call(call)
    h, w = int(shape[0]), int(shape[1])
    if h < 2 or w < 1:
        raise ConfigError(f"render_call_image: shape must be at least (2, 1), got {shape}")
    if not max_freq_hz > min_freq_hz:
        raise ConfigError("render_call_image: max_freq_hz must be > min_freq_hz")
    if window_s <= 0:
        raise ConfigError("render_call_image: window_s must be > 0")
    n_sub = 4
    bin_hz = (max_freq_hz - min_freq_hz) / (h - 1)
    sigma = max(bin_hz, 1.0)
    dt = window_s / w
    # Time since onset of every sub-sample, centred on the call.
    t = (np.arange(w * n_sub) + 0.5) * (dt / n_sub) - window_s / 2 + call.duration_s / 2
    sub = np.flatnonzero((t >= 0) & (t <= call.duration_s))
    # Sub-sample-major layout so the max over sub-samples is a fast contiguous reduction.
    lin = np.zeros((n_sub, h, w), dtype=np.float64)
    if sub.size:
        t_in = t[sub]
        env = _envelope(call, t_in)
        f0 = _contour(call, t_in)
        components = [(f0, env)]
        if call.harmonic_ratio > 0:
            components.append((2 * f0, call.harmonic_ratio * env))
        # Only rows within ~5 sigma of the ridge are computed (the Gaussian is < 4e-6
        # beyond): O(W) work instead of O(H*W).
        reach = int(np.ceil(4 * sigma / bin_hz)) + 1
        offs = np.arange(-reach, reach + 1)[:, None]
        s_idx, c_idx = sub % n_sub, sub // n_sub
        for f, weight in components:
            rows = np.rint((f - min_freq_hz) / bin_hz).astype(np.int64)[None, :] + offs
            ok = (rows >= 0) & (rows < h)
            if not ok.any():
                continue
            vals = weight * np.exp(-0.5 * ((min_freq_hz + rows * bin_hz - f) / sigma) ** 2)
            # Each (sub-sample, row) pair occurs once per component, so += is safe.
            lin[np.broadcast_to(s_idx, rows.shape)[ok], rows[ok], np.broadcast_to(c_idx, rows.shape)[ok]] += vals[ok]
    lin = lin.max(axis=0)
    if noise > 0:
        lin = lin + noise * _rng(seed).exponential(size=lin.shape)
    img = np.log1p(50.0 * lin) / np.log1p(50.0)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def render_call_images(calls, shape=(128, 128), *, noise: float = 0.0, seed=None, **kwargs) -> np.ndarray:
    """:func:`render_call_image` for every row of ``calls`` (DataFrame or sequence of calls).

    Returns a float32 ``(n, H, W)`` array in [0, 1]; ``kwargs`` (``min_freq_hz``,
    ``max_freq_hz``, ``window_s``) are passed through; the noise is drawn from one
    generator seeded by ``seed``, so the stack is deterministic.
    """
    if isinstance(calls, pd.DataFrame):
        missing = [p for p in ("start_freq_hz", "end_freq_hz", "duration_s") if p not in calls.columns]
        if missing:
            raise ConfigError(f"calls table lacks column(s) {', '.join(missing)}")
        cols = [p for p in PARAM_NAMES if p in calls.columns]
        items = [CallParams(**dict(zip(cols, map(float, row)))) for row in calls[cols].itertuples(index=False)]
    else:
        items = [_as_call(c) for c in calls]
    rng = _rng(seed)
    out = np.empty((len(items), int(shape[0]), int(shape[1])), dtype=np.float32)
    for i, call in enumerate(items):
        out[i] = render_call_image(call, shape, noise=noise, seed=rng, **kwargs)
    return out


def _noise(n: int, sample_rate_hz: float, band_power: float, low_freq_noise_db, rng) -> np.ndarray:
    """White noise with ``band_power`` inside the call band (+ optional 1/f noise < 20 kHz)."""
    nyquist = sample_rate_hz / 2
    band = (min(CALL_BAND_HZ[1], nyquist) - CALL_BAND_HZ[0]) / nyquist
    # White noise spreads its variance uniformly over 0..Nyquist.
    noise = rng.standard_normal(n) * math.sqrt(band_power / band)
    if low_freq_noise_db is not None and n > 1:
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / sample_rate_hz)
        shape = np.where((f >= 50.0) & (f < LOW_NOISE_MAX_HZ), 1 / np.sqrt(np.maximum(f, 50.0)), 0.0)
        low = np.fft.irfft(spec * shape, n)
        target = band_power * 10 ** (low_freq_noise_db / 10)
        low *= math.sqrt(target / max(float(np.mean(low**2)), 1e-30))
        noise += low
    return noise


def synth_recording(
    duration_s: float = 10.0,
    sample_rate_hz: float = 250_000,
    *,
    snr_db: float = 20.0,
    call_rate_hz: float = 2.0,
    group_shift=0.0,
    seed=None,
    animal_offset=0.0,
    min_gap_s: float = 0.020,
    low_freq_noise_db: float | None = 10.0,
    margin_s: float = 0.05,
):
    """A synthetic recording: non-overlapping calls in background noise, with exact truth.

    Parameters
    ----------
    duration_s : float
    sample_rate_hz : float
        At least 220 kHz (calls reach 110 kHz).
    snr_db : float
        Per-call SNR of a call with ``amplitude == 1`` (see the module docstring): call
        mean square over its extent vs. noise power in the 30–110 kHz band.
    call_rate_hz : float
        Nominal calls per second (gaps are ``min_gap_s`` + exponential; the realised rate
        is lower when calls plus gaps cannot fit).
    group_shift, animal_offset : float, sequence or mapping
        Passed to :func:`sample_calls`.
    seed : int, Generator or None
    min_gap_s : float
        Minimum silence between consecutive calls (default 20 ms).
    low_freq_noise_db : float or None
        Power of the 1/f room noise below 20 kHz relative to the in-band noise power
        (dB); ``None`` disables it.
    margin_s : float
        No call starts before ``margin_s`` or ends after ``duration_s - margin_s``.

    Returns
    -------
    audio : numpy.ndarray
        float32 mono waveform (not normalised; may exceed ±1 at very low SNR).
    truth : pandas.DataFrame
        ``onset_s, offset_s`` (exact, sample-aligned: ``offset_s - onset_s ==
        duration_s``), the :class:`CallParams` columns and ``snr_db`` (per call).
    """
    if duration_s <= 0:
        raise ConfigError(f"duration_s must be > 0, got {duration_s}")
    if sample_rate_hz < 2 * CALL_BAND_HZ[1]:
        raise ConfigError(f"sample_rate_hz must be >= {2 * CALL_BAND_HZ[1]:.0f} so 110 kHz calls are below Nyquist, got {sample_rate_hz}")
    if call_rate_hz <= 0:
        raise ConfigError(f"call_rate_hz must be > 0, got {call_rate_hz}")
    if min_gap_s < 0:
        raise ConfigError(f"min_gap_s must be >= 0, got {min_gap_s}")
    rng = _rng(seed)
    n = int(round(duration_s * sample_rate_hz))
    # Oversample candidate calls, lay them out back to back, keep those that fit.
    n_max = int(math.ceil(duration_s * call_rate_hz * 2 + 10))
    calls = sample_calls(n_max, group_shift=group_shift, seed=rng, animal_offset=animal_offset)
    n_samp = np.maximum(1, np.round(calls["duration_s"].to_numpy() * sample_rate_hz)).astype(np.int64)
    mean_dur = math.exp(_LATENT["duration_s"][0])
    extra = max(1.0 / call_rate_hz - mean_dur - min_gap_s, 0.001)
    gaps = min_gap_s + rng.exponential(extra, n_max)
    # Integer sample positions so onsets/offsets are exact and gaps stay >= min_gap_s.
    gap_samp = np.ceil(gaps * sample_rate_hz - 1e-9).astype(np.int64)
    first = int(round(margin_s * sample_rate_hz))
    starts = first + np.cumsum(gap_samp) - gap_samp[0] + np.concatenate([[0], np.cumsum(n_samp)[:-1]])
    keep = starts + n_samp <= n - int(round(margin_s * sample_rate_hz))
    calls = calls[keep].reset_index(drop=True)
    starts, n_samp = starts[keep], n_samp[keep]
    calls["duration_s"] = n_samp / sample_rate_hz

    ref_rms = 0.1  # nominal RMS of an amplitude-1 call; the noise level follows from snr_db
    band_power = ref_rms**2 / 10 ** (snr_db / 10)
    audio = _noise(n, sample_rate_hz, band_power, low_freq_noise_db, rng)
    snrs = np.empty(len(calls))
    for i, row in enumerate(calls.itertuples(index=False)):
        call = CallParams(*row)
        y = synthesize_call(dataclasses.replace(call, amplitude=1.0), sample_rate_hz).astype(np.float64)
        y = y[: n_samp[i]]
        rms = math.sqrt(float(np.mean(y**2)))
        y *= call.amplitude * ref_rms / max(rms, 1e-12)
        audio[starts[i] : starts[i] + len(y)] += y
        snrs[i] = snr_db + 20 * math.log10(max(call.amplitude, 1e-12))
    truth = pd.DataFrame({"onset_s": starts / sample_rate_hz, "offset_s": (starts + n_samp) / sample_rate_hz})
    truth = pd.concat([truth, calls], axis=1)
    truth["snr_db"] = snrs
    return audio.astype(np.float32), truth
