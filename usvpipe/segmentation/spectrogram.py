"""Fast band-limited short-time Fourier transform.

Frames lie on a fixed grid: frame ``k`` covers samples ``[k * hop, k * hop + nperseg)``
of the recording (no padding), so a frame's values depend only on its own samples and
are identical whether a file is processed whole or in blocks. Only the rows of the
analysis band (``min_freq_hz`` to ``max_freq_hz``) are kept.

Magnitudes are in dB relative to a full-scale sine: the window-weighted frame's FFT is
scaled by ``2 / sum(window)``, so a sine of amplitude ``A`` peaks near ``20 log10(A)`` dB.
The AVA-style normalised spectrogram maps ``[spec_min_db, spec_max_db]`` linearly onto
[0, 1] (clipped).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from ..audio import PCM16_SCALE
from ..constraints import Interval, check_params, config_error

# Frames per FFT call: the windowed frames, the FFT output and the squared band
# (~0.5 MB each at 512 samples) stay in a core's L2 cache between the steps.
_CHUNK_FRAMES = 256


def fft_workers() -> int:
    """Threads for scipy.fft (``USVPIPE_FFT_WORKERS``, default 1: we parallelise over files)."""
    try:
        return max(1, int(os.environ.get("USVPIPE_FFT_WORKERS", "1")))
    except ValueError:
        return 1


@dataclass(frozen=True)
class SpectrogramParams:
    """Short-time Fourier transform settings.

    Attributes
    ----------
    window_s : float
        Analysis window length (default 2.048 ms = 512 samples at 250 kHz: 488 Hz
        resolution, short enough to follow fast frequency sweeps).
    hop_s : float
        Frame step (default 1.536 ms = 384 samples at 250 kHz, a quarter overlap):
        1.5 ms time resolution for onsets/offsets; on the amvoc recordings as accurate
        as a half-window hop at two thirds of the FFT work.
    window : str
        Window name (default ``"hann"``; ``"hamming"``, ``"blackman"``, ``"boxcar"`` or
        any name :func:`scipy.signal.get_window` understands).
    min_freq_hz, max_freq_hz : float
        Analysis band (default 30-110 kHz: the mouse USV band, as in AVA).
    spec_min_db, spec_max_db : float
        dB values mapped to 0 and 1 in the normalised spectrogram (AVA's
        ``spec_min_val``/``spec_max_val`` in dB re full-scale sine).
    """

    window_s: float = 0.002048
    hop_s: float = 0.001536
    window: str = "hann"
    min_freq_hz: float = 30_000.0
    max_freq_hz: float = 110_000.0
    spec_min_db: float = -75.0
    spec_max_db: float = -35.0

    _constraints = {
        "window_s": [Interval(float, 0, None, closed="neither")],
        "hop_s": [Interval(float, 0, None, closed="neither")],
        "min_freq_hz": [Interval(float, 0, None)],
        "max_freq_hz": [Interval(float, 0, None, closed="neither")],
        "spec_min_db": [Interval(float)],
        "spec_max_db": [Interval(float)],
    }

    def __post_init__(self):
        check_params(self, "spectrogram")
        if self.hop_s > self.window_s:
            raise config_error("spectrogram", "hop_s", f"{self.hop_s!r} is longer than window_s {self.window_s!r}",
                               "set hop_s <= window_s, so that every sample lies in some frame")
        if not self.min_freq_hz < self.max_freq_hz:
            raise config_error("spectrogram", "min_freq_hz", f"{self.min_freq_hz!r} is not below max_freq_hz {self.max_freq_hz!r}",
                               "set min_freq_hz < max_freq_hz")
        if not self.spec_min_db < self.spec_max_db:
            raise config_error("spectrogram", "spec_min_db", f"{self.spec_min_db!r} is not below spec_max_db {self.spec_max_db!r}",
                               "set spec_min_db < spec_max_db")
        try:
            _window(self.window, 8)
        except (TypeError, ValueError):
            raise config_error("spectrogram", "window", f"unknown window {self.window!r}",
                               "use hann, hamming, blackman, boxcar or another scipy.signal.get_window name") from None

    def geometry(self, sample_rate_hz: float) -> "FrameGeometry":
        """Frame geometry at a sample rate (cached)."""
        return _geometry(self, int(sample_rate_hz))


# Periodic (DFT-even) cosine windows computed with numpy: importing scipy.signal takes
# most of a second, too slow for `import usvpipe.segmentation.spectrogram` (every default
# SpectrogramParams() validates its window).
_COSINE_WINDOWS = {
    "hann": (0.5, 0.5, 0.0),
    "hanning": (0.5, 0.5, 0.0),
    "hamming": (0.54, 0.46, 0.0),
    "blackman": (0.42, 0.5, 0.08),
}


@functools.lru_cache(maxsize=32)
def _window(name: str, n: int) -> np.ndarray:
    if name in _COSINE_WINDOWS:
        a0, a1, a2 = _COSINE_WINDOWS[name]
        x = 2.0 * np.pi * np.arange(n) / n
        return (a0 - a1 * np.cos(x) + a2 * np.cos(2.0 * x)).astype(np.float32)
    if name in ("boxcar", "rect", "rectangular", "ones"):
        return np.ones(n, np.float32)
    from scipy.signal import get_window

    return get_window(name, n, fftbins=True).astype(np.float32)


@dataclass(frozen=True)
class FrameGeometry:
    """Frame grid of :class:`SpectrogramParams` at one sample rate."""

    sample_rate_hz: int
    nperseg: int
    hop: int
    n_fft: int
    lo: int  # first band bin
    hi: int  # one past the last band bin
    freqs_hz: np.ndarray
    window: np.ndarray
    db_offset: float  # adds the 2/sum(window) scaling in dB

    @property
    def hop_s(self) -> float:
        return self.hop / self.sample_rate_hz

    def n_frames(self, n_samples: int) -> int:
        """Number of full frames in ``n_samples`` samples."""
        return 0 if n_samples < self.nperseg else 1 + (n_samples - self.nperseg) // self.hop

    def frame_times_s(self, frames) -> np.ndarray:
        """Centre time of frame indices (seconds)."""
        return (np.asarray(frames, dtype=np.float64) * self.hop + self.nperseg / 2.0) / self.sample_rate_hz

    def frame_start_s(self, frames) -> np.ndarray:
        return np.asarray(frames, dtype=np.float64) * self.hop / self.sample_rate_hz

    def frame_stop_s(self, frames) -> np.ndarray:
        return (np.asarray(frames, dtype=np.float64) * self.hop + self.nperseg) / self.sample_rate_hz


@functools.lru_cache(maxsize=32)
def _geometry(params: SpectrogramParams, sample_rate_hz: int) -> FrameGeometry:
    from scipy.fft import next_fast_len

    nperseg = max(int(round(params.window_s * sample_rate_hz)), 8)
    hop = max(int(round(params.hop_s * sample_rate_hz)), 1)
    n_fft = next_fast_len(nperseg, real=True)
    freqs = np.arange(n_fft // 2 + 1) * (sample_rate_hz / n_fft)
    lo = int(np.searchsorted(freqs, params.min_freq_hz, side="left"))
    hi = int(np.searchsorted(freqs, params.max_freq_hz, side="right"))
    if hi - lo < 1:
        raise config_error(
            "spectrogram", "min_freq_hz",
            f"the band {params.min_freq_hz:.0f}-{params.max_freq_hz:.0f} Hz holds no FFT bin at {sample_rate_hz} Hz "
            f"(Nyquist {sample_rate_hz / 2:.0f} Hz)", "widen the band below Nyquist or lengthen window_s")
    win = _window(params.window, nperseg)
    db_offset = float(20.0 * np.log10(2.0 / float(win.sum())))
    return FrameGeometry(sample_rate_hz, nperseg, hop, n_fft, lo, hi, freqs[lo:hi].copy(), win, db_offset)


def frame_view(audio: np.ndarray, geom: FrameGeometry) -> np.ndarray:
    """Read-only strided ``(n_frames, nperseg)`` view of ``audio`` (no copy).

    float32 samples, or a 16-bit PCM file's int16 values as they are (see :func:`band_power`).
    """
    audio = np.ascontiguousarray(audio, dtype=np.int16 if audio.dtype == np.int16 else np.float32)
    n = geom.n_frames(audio.shape[0])
    if n == 0:
        return np.zeros((0, geom.nperseg), audio.dtype)
    return np.lib.stride_tricks.as_strided(
        audio, shape=(n, geom.nperseg), strides=(geom.hop * audio.strides[0], audio.strides[0]), writeable=False
    )


def band_power(frames: np.ndarray, geom: FrameGeometry, out: np.ndarray | None = None, *, workspace: dict | None = None) -> np.ndarray:
    """Raw band power ``|FFT(window * frame)|**2`` of every row of ``frames``.

    Parameters
    ----------
    frames : numpy.ndarray
        float32 ``(n, nperseg)`` (e.g. a :func:`frame_view`; not modified), or int16 values
        of 16-bit PCM, which are scaled by ``2**-15`` inside the window (the same float32
        values as converting first: a power-of-two scale is exact).
    geom : FrameGeometry
    out : numpy.ndarray, optional
        float32 ``(n, n_band_bins)`` to fill.
    workspace : dict, optional
        Scratch buffers kept between calls (pass the same empty dict to every call of a
        loop): reusing them avoids fresh memory pages, which cost as much as the FFT.

    Returns
    -------
    numpy.ndarray
        float32 ``(n, n_band_bins)``.
    """
    from scipy import fft as sfft

    n = frames.shape[0]
    nb = geom.hi - geom.lo
    if out is None:
        out = np.empty((n, nb), np.float32)
    if n == 0:
        return out
    c = min(n, _CHUNK_FRAMES)
    # buffers reused across chunks (and across calls with a workspace): no per-chunk temporaries
    key = (_CHUNK_FRAMES, geom.nperseg)
    if workspace is not None and key in workspace:
        buf = workspace[key]
    else:
        buf = np.empty((_CHUNK_FRAMES if workspace is not None else c, geom.nperseg), np.float32)
        if workspace is not None:
            workspace[key] = buf
    workers = fft_workers()
    pcm16 = frames.dtype == np.int16
    # int16 frames: cast into the cache-resident chunk buffer, then window in place; one
    # pass over the frames instead of a conversion of the whole block and a windowing pass
    window = geom.window * np.float32(PCM16_SCALE) if pcm16 else geom.window
    for a in range(0, n, c):
        b = min(a + c, n)
        m = b - a
        if pcm16:
            windowed = buf[:m]
            windowed[...] = frames[a:b]
            windowed *= window
        else:
            windowed = np.multiply(frames[a:b], window, out=buf[:m])
        spec = sfft.rfft(windowed, n=geom.n_fft, axis=-1, workers=workers, overwrite_x=True)
        # |X|^2 as the square of numpy's vectorised complex abs, straight into the output:
        # 1.7x faster than re*re + im*im over the strided (re, im) pairs, and equal to it
        # within a few ulp (at most 5 measured; abs is a hypot): on the real recordings every
        # onset, offset and frequency is unchanged, amplitudes move by < 1e-5 dB
        dst = out[a:b]
        np.abs(spec[:, geom.lo : geom.hi], out=dst)
        np.multiply(dst, dst, out=dst)
    return out


# Power floor of the dB conversion: log of exact zeros (digital silence) stays finite
# (-200 dB re the unscaled FFT power, far below any recording's noise).
POWER_FLOOR = 1e-20


def power_to_db(power: np.ndarray, *, amin: float = POWER_FLOOR, scale: float = 10.0, out: np.ndarray | None = None) -> np.ndarray:
    """``scale * log10(max(power, amin))`` in float32 (librosa's ``power_to_db`` without ``ref``/``top_db``).

    Parameters
    ----------
    power : numpy.ndarray
        Power values (float32).
    amin : float
        Floor applied before the logarithm (default :data:`POWER_FLOOR`).
    scale : float
        Multiplier of the decadic log: 10 gives dB; ``10 / range_db`` gives dB as a
        fraction of a dynamic range in one pass.
    out : numpy.ndarray, optional
        Where to write (may be ``power`` itself, for an in-place conversion).

    The operations are done in this order, in float32, so the result is bit-for-bit the
    same as the expressions it replaced.
    """
    out = np.maximum(power, np.float32(amin), out=out)
    np.log10(out, out=out)
    out *= np.float32(scale)
    return out


def band_power_db(audio: np.ndarray, geom: FrameGeometry, *, frames: np.ndarray | None = None) -> np.ndarray:
    """Band power in dB for every full frame of ``audio`` (or only frame indices ``frames``).

    ``audio[0]`` must be the first sample of frame 0 of the grid you want.

    Returns
    -------
    numpy.ndarray
        float32 ``(n_frames, n_band_bins)`` (time-major: each row is one frame).
    """
    view = frame_view(audio, geom)
    if frames is not None:
        view = view[np.asarray(frames, dtype=np.int64)]
    power = power_to_db(band_power(view, geom), out=None)
    power += np.float32(geom.db_offset)
    return power


def normalize_db(db: np.ndarray, params: SpectrogramParams) -> np.ndarray:
    """AVA-style min-max scaling of dB values to [0, 1] (clipped)."""
    scale = np.float32(1.0 / (params.spec_max_db - params.spec_min_db))
    out = (db - np.float32(params.spec_min_db)) * scale
    return np.clip(out, 0.0, 1.0, out=out)


def spectrogram(audio: np.ndarray, sample_rate_hz: float, params: SpectrogramParams = SpectrogramParams()):
    """Normalised band-limited log-magnitude spectrogram.

    Parameters
    ----------
    audio : numpy.ndarray
        1-D samples (float in [-1, 1]).
    sample_rate_hz : float
    params : SpectrogramParams

    Returns
    -------
    spec : numpy.ndarray
        float32 ``(n_freq, n_time)`` in [0, 1]; frequency increases with the row index.
    freqs_hz : numpy.ndarray
        ``(n_freq,)`` bin frequencies.
    times_s : numpy.ndarray
        ``(n_time,)`` frame centre times.
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    geom = params.geometry(sample_rate_hz)
    db = band_power_db(audio, geom)
    spec = normalize_db(db, params).T.copy()
    return spec, geom.freqs_hz.copy(), geom.frame_times_s(np.arange(db.shape[0]))
