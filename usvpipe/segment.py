"""Amplitude-threshold syllable segmentation (the AVA family), whole arrays or streamed files.

Algorithm
---------
1. Band-limited power spectrogram on a fixed frame grid (:mod:`usvpipe.spectrogram`).
2. An amplitude trace, one value per frame:

   - ``threshold_mode="noise"`` (default): each frequency bin's power is divided by that
     bin's noise floor (its median over time), and the trace is the largest ratio in the
     band, in dB. Mouse USVs are narrow-band whistles, so the loudest bin relative to its
     own floor is a far more sensitive detector than the band's mean level, and being
     relative to the floor it does not depend on the recording's gain or on coloured
     background noise. Thresholds are in dB above the floor.
   - ``threshold_mode="absolute"`` (AVA): the trace is the mean over the band of the
     normalised log spectrogram (``spec_min_db``/``spec_max_db`` mapped to [0, 1]);
     thresholds are in those [0, 1] units.
3. The trace is smoothed with a Gaussian (``smoothing_s``).
4. Hysteresis: a syllable is a run of frames above ``low_threshold`` that rises above
   ``high_threshold`` somewhere; runs separated by less than ``min_gap_s`` are merged;
   syllables shorter than ``min_dur_s`` or longer than ``max_dur_s`` are dropped.

Onset/offset are where the smoothed trace crosses ``low_threshold``, linearly
interpolated between the frame centres on either side (sub-frame precision; half a hop
beyond the first/last frame at the file's edges).

Exactness under streaming
-------------------------
:func:`segment_file` reads the recording in blocks that overlap by exactly
``nperseg - hop`` samples, so every frame of the global grid is computed from the same
samples as when the file is read whole. Only the per-frame trace (two float32 per
frame, ~19 MB per hour at the default 1.5 ms hop) is kept; smoothing and thresholding run
on the complete trace, so segments that straddle block boundaries are identical to the
whole-file result. The noise floor is estimated per fixed window of the recording
(``noise_window_s``, on the absolute frame grid) from a deterministic subsample of its
frames (every ``m``-th frame, at most ``noise_max_frames``), so it too is independent of
the block size (blocks never cross a noise window's edge); :func:`segment_audio` uses
the same rule on an in-memory array.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .config import check_choice
from .errors import ConfigError
from .spectrogram import FrameGeometry, SpectrogramParams

SCORE_COLUMNS = ("duration_s", "peak_amplitude", "mean_amplitude", "mean_freq_hz", "min_freq_hz", "max_freq_hz")
_THRESHOLD_MODES = ("noise", "absolute")
# STFT frames per streamed block (~1.5 s at the default hop): small enough to stay in cache.
DEFAULT_BLOCK_FRAMES = 1024


@dataclass(frozen=True)
class SegmentParams:
    """Amplitude-threshold segmentation settings.

    Attributes
    ----------
    threshold_mode : {"noise", "absolute"}
        ``"noise"`` (default): trace = loudest band bin in dB above that bin's noise
        floor; robust to gain and coloured noise, sensitive to faint narrow-band calls.
        ``"absolute"``: AVA's mean normalised spectrogram amplitude.
    high_threshold : float
        A syllable's trace must exceed this somewhere (default 16 dB above the floor in
        ``noise`` mode: noise alone reaches ~9 dB median and ~13-15 dB at its 99th
        percentile with the default spectrogram, because the trace is a maximum over
        ~160 bins).
    low_threshold : float
        The syllable extends while the trace stays above this (default 12 dB): the
        hysteresis keeps faint onsets/offsets attached to a call detected by its peak.
    abs_high_threshold, abs_low_threshold : float
        The same for ``absolute`` mode, in normalised [0, 1] units.
    smoothing_s : float
        Gaussian smoothing (standard deviation) of the trace (default 1 ms, under one frame;
        removes single-frame noise peaks without blurring 5 ms syllables).
    min_dur_s, max_dur_s : float
        Syllables outside this duration range are dropped (default 5 ms - 0.5 s: mouse
        USVs are rarely shorter than 5 ms; longer events are usually noise).
    min_gap_s : float
        Syllables separated by less than this are merged (default 15 ms: a call whose
        level dips for a few ms stays one syllable; amvoc's shortest real gap is 18 ms).
    noise_window_s : float
        Length of the fixed windows in which the per-bin noise floor is re-estimated
        (default 2 s: the floor follows changes of the background within seconds,
        e.g. an animal moving or equipment switching; still long enough that calls
        occupy a minority of any bin's frames).
    noise_max_frames : int
        At most this many evenly spaced frames per window are used for the floor.
    """

    threshold_mode: str = "noise"
    high_threshold: float = 16.0
    low_threshold: float = 12.0
    abs_high_threshold: float = 0.3
    abs_low_threshold: float = 0.2
    smoothing_s: float = 0.001
    min_dur_s: float = 0.005
    max_dur_s: float = 0.5
    min_gap_s: float = 0.015
    noise_window_s: float = 2.0
    noise_max_frames: int = 500

    def __post_init__(self):
        check_choice("[segment] threshold_mode", self.threshold_mode, _THRESHOLD_MODES)
        if self.low_threshold > self.high_threshold:
            raise ConfigError(f"[segment] need low_threshold <= high_threshold, got {self.low_threshold} > {self.high_threshold}")
        if self.abs_low_threshold > self.abs_high_threshold:
            raise ConfigError("[segment] need abs_low_threshold <= abs_high_threshold")
        if self.smoothing_s < 0:
            raise ConfigError(f"[segment] smoothing_s must be >= 0, got {self.smoothing_s}")
        if not (0 <= self.min_dur_s < self.max_dur_s):
            raise ConfigError(f"[segment] need 0 <= min_dur_s < max_dur_s, got {self.min_dur_s}, {self.max_dur_s}")
        if self.min_gap_s < 0:
            raise ConfigError(f"[segment] min_gap_s must be >= 0, got {self.min_gap_s}")
        if self.noise_window_s <= 0 or self.noise_max_frames < 16:
            raise ConfigError("[segment] need noise_window_s > 0 and noise_max_frames >= 16")

    @property
    def thresholds(self) -> tuple[float, float]:
        """``(high, low)`` for the active mode."""
        if self.threshold_mode == "absolute":
            return self.abs_high_threshold, self.abs_low_threshold
        return self.high_threshold, self.low_threshold


# --------------------------------------------------------------------------- sources
class _ArraySource:
    """In-memory audio as a block source (same interface as :class:`_FileSource`)."""

    def __init__(self, audio: np.ndarray):
        self.audio = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))
        self.n_samples = self.audio.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)``, zero-padded outside the array."""
        out = np.zeros(stop - start, np.float32)
        a, b = max(start, 0), min(stop, self.n_samples)
        if b > a:
            out[a - start : b - start] = self.audio[a:b]
        return out

    def blocks(self, start: int, stop: int, block: int, overlap: int) -> Iterator[tuple[int, np.ndarray]]:
        step = block - overlap
        pos = start
        while pos < stop:
            end = min(pos + block, stop)
            yield pos, self.audio[pos:end]
            if end >= stop:
                break
            pos += step


class _FileSource:
    def __init__(self, info, channel):
        self.info = info
        self.channel = channel
        self.n_samples = info.n_frames

    _fh = None

    def __enter__(self):
        """Keep the file open for many :meth:`read` calls."""
        import soundfile as sf

        self._fh = sf.SoundFile(self.info.path)
        return self

    def __exit__(self, *exc):
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)``, zero-padded outside the file."""
        import soundfile as sf

        from .audio import _select

        out = np.zeros(stop - start, np.float32)
        a, b = max(start, 0), min(stop, self.n_samples)
        if b > a:
            # 16-bit PCM: read int16 and scale in numpy (x / 32768, exactly libsndfile's
            # conversion, several times faster; see usvpipe.audio.read_block)
            pcm16 = self.info.subtype == "PCM_16"
            dtype = "int16" if pcm16 else "float32"
            if self._fh is not None:
                self._fh.seek(a)
                data = self._fh.read(b - a, dtype=dtype, always_2d=True)
            else:
                with sf.SoundFile(self.info.path) as fh:
                    fh.seek(a)
                    data = fh.read(b - a, dtype=dtype, always_2d=True)
            if pcm16:
                data = np.multiply(data, np.float32(1.0 / 32768.0), dtype=np.float32)
            out[a - start : a - start + data.shape[0]] = _select(data, self.channel)
        return out

    def blocks(self, start: int, stop: int, block: int, overlap: int) -> Iterator[tuple[int, np.ndarray]]:
        from .audio import iter_blocks, read_block

        if self._fh is None:
            for b in iter_blocks(
                self.info.path, channel=self.channel, block_frames=block, overlap_frames=overlap,
                start_frame=start, stop_frame=stop, info=self.info, check_silent=False,
            ):
                yield b.start_frame, b.data
            return
        # file already open (see __enter__): no re-open per noise window
        step = block - overlap
        pos = start
        while pos < stop:
            want = min(block, stop - pos)
            yield pos, read_block(self._fh, self.info, pos, want, self.channel)
            if pos + want >= stop:
                break
            pos += step


def _iter_frame_blocks(source, geom: FrameGeometry, first: int, stop: int, frames_per_block: int):
    """Yield ``(k0, audio)`` where ``audio[0]`` is the first sample of grid frame ``k0``
    and ``audio`` holds whole frames ``k0 .. k0 + n - 1`` (all below ``stop``)."""
    if stop <= first:
        return
    block = (frames_per_block - 1) * geom.hop + geom.nperseg
    overlap = geom.nperseg - geom.hop
    start_sample = first * geom.hop
    stop_sample = min((stop - 1) * geom.hop + geom.nperseg, source.n_samples)
    for pos, data in source.blocks(start_sample, stop_sample, block, overlap):
        yield pos // geom.hop, data


# --------------------------------------------------------------------------- noise floor
def noise_windows(n_frames: int, geom: FrameGeometry, params: SegmentParams) -> list[tuple[int, int]]:
    """Fixed frame ranges in which the noise floor is estimated (depend only on length).

    A tail shorter than half a window is merged into the previous window.
    """
    w = max(int(round(params.noise_window_s / geom.hop_s)), 1)
    edges = list(range(0, n_frames, w)) + [n_frames]
    if len(edges) > 2 and edges[-1] - edges[-2] < w / 2:
        del edges[-2]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:])]


def _window_power(source, geom: FrameGeometry, window: tuple[int, int], block_frames: int, workspace: dict | None = None) -> tuple[np.ndarray, bool]:
    """Raw band power ``(n_frames, n_bins)`` of a noise window's frames, streamed in blocks."""
    from .spectrogram import band_power, frame_view

    a, b = window
    shape = (b - a, geom.hi - geom.lo)
    if workspace is not None:
        # one buffer for every noise window of the recording
        full = workspace.get("window_power")
        if full is None or full.shape[0] < shape[0]:
            full = workspace["window_power"] = np.empty(shape, np.float32)
        out = full[: shape[0]]
    else:
        out = np.empty(shape, np.float32)
    any_signal = False
    for k0, audio in _iter_frame_blocks(source, geom, a, b, block_frames):
        n = min(geom.n_frames(audio.shape[0]), b - k0)
        if n <= 0:
            continue
        if not any_signal:
            any_signal = bool(audio.any())
        band_power(frame_view(audio, geom)[:n], geom, out=out[k0 - a : k0 - a + n], workspace=workspace)
    return out, any_signal


def noise_floor(power: np.ndarray, params: SegmentParams) -> np.ndarray:
    """Per-bin median power over every ``m``-th frame of a window (at most ``noise_max_frames``).

    Mouse USVs are narrow-band, so even in busy recordings each bin is quiet most of
    the time and its median is the background level.
    """
    m = max(1, -(-power.shape[0] // params.noise_max_frames))
    sub = np.ascontiguousarray(power[::m].T)  # bins x frames: contiguous rows
    # lower median: a partial sort (select) puts exactly the value a full sort would
    # put at that position, in linear time
    k = (sub.shape[1] - 1) // 2
    sub.partition(k, axis=1)
    return sub[:, k].copy()


# --------------------------------------------------------------------------- traces
@dataclass
class Trace:
    """Per-frame features of a recording (what segmentation needs; ~8 bytes/frame)."""

    amplitude: np.ndarray  # float32 (n,) unsmoothed trace
    peak_freq_hz: np.ndarray  # float32 (n,) frequency of the loudest band bin
    geom: FrameGeometry
    any_signal: bool = True
    # (first_frame, stop_frame, per-bin noise floor in raw FFT power) per noise window
    floors: list = None

    def floor_at(self, frame: int) -> np.ndarray:
        """Noise floor (raw power per band bin) of the window holding ``frame``."""
        for a, b, floor in self.floors or []:
            if frame < b:
                return floor
        return self.floors[-1][2]


def compute_trace(source, geom: FrameGeometry, sparams: SpectrogramParams, params: SegmentParams, *, block_frames: int = DEFAULT_BLOCK_FRAMES) -> Trace:
    """Stream ``source`` and compute the per-frame amplitude trace (unsmoothed).

    Work proceeds one noise window at a time: its band power (about 1.3 MB for the
    default 2 s window) is computed block by block, the window's noise floor is taken
    from it, and the trace follows without a second FFT pass.
    """
    n_total = geom.n_frames(source.n_samples)
    amp = np.empty(n_total, np.float32)
    freq = np.empty(n_total, np.float32)
    any_signal = n_total == 0  # shorter than one window: nothing to analyse, not "silent"
    floors = []
    ctx = source if hasattr(source, "__enter__") else contextlib.nullcontext()
    # buffers shared by all noise windows: allocating ~3 MB per window afresh costs
    # more in page faults than the arithmetic done in them
    workspace = {}
    with ctx:
        for a, b in noise_windows(n_total, geom, params) if n_total else []:
            any_signal = _window_trace(source, geom, sparams, params, (a, b), block_frames, amp, freq, floors, workspace) or any_signal
    return Trace(amp, freq, geom, any_signal, floors)


def _window_trace(source, geom, sparams, params, window, block_frames, amp, freq, floors, workspace=None) -> bool:
    """Fill ``amp``/``freq`` for one noise window; returns whether it held any non-zero sample."""
    a, b = window
    power, any_signal = _window_power(source, geom, (a, b), block_frames, workspace)
    floor = noise_floor(power, params)
    floors.append((a, b, floor))
    if params.threshold_mode == "noise":
        power *= 1.0 / np.maximum(floor, np.float32(1e-30))
        idx = power.argmax(axis=1)
        peak = power[np.arange(b - a), idx]
        amp[a:b] = 10.0 * np.log10(np.maximum(peak, np.float32(1e-20)))
    else:
        idx = power.argmax(axis=1)
        np.maximum(power, np.float32(1e-20), out=power)
        np.log10(power, out=power)
        power *= np.float32(10.0)
        power += np.float32(geom.db_offset - sparams.spec_min_db)
        power *= np.float32(1.0 / (sparams.spec_max_db - sparams.spec_min_db))
        np.clip(power, 0.0, 1.0, out=power)
        amp[a:b] = power.mean(axis=1)
    freq[a:b] = geom.freqs_hz[idx]
    return any_signal


def segments_from_trace(trace: Trace, params: SegmentParams):
    """Smooth, threshold with hysteresis, merge short gaps, filter durations.

    Returns
    -------
    pandas.DataFrame
        ``onset_s, offset_s`` + :data:`SCORE_COLUMNS`.
    """
    import pandas as pd
    from scipy.ndimage import gaussian_filter1d

    geom = trace.geom
    amp = trace.amplitude
    columns = ["onset_s", "offset_s", *SCORE_COLUMNS]
    if amp.size == 0 or not trace.any_signal:
        return pd.DataFrame({c: np.zeros(0) for c in columns})
    sigma = params.smoothing_s / geom.hop_s
    smooth = gaussian_filter1d(amp.astype(np.float64), sigma, mode="nearest") if sigma > 0 else amp.astype(np.float64)
    high, low = params.thresholds
    above = np.concatenate(([False], smooth > low, [False]))
    d = np.diff(above.astype(np.int8))
    starts = np.flatnonzero(d == 1)
    stops = np.flatnonzero(d == -1)  # exclusive
    if starts.size:
        # keep runs whose maximum exceeds the high threshold
        # max over each run [start, stop) in one call (noise makes many short runs)
        bounds = np.empty(2 * starts.size, np.int64)
        bounds[0::2], bounds[1::2] = starts, stops
        run_max = np.maximum.reduceat(np.append(smooth, -np.inf), bounds)[0::2]
        keep = run_max > high
        starts, stops = starts[keep], stops[keep]
    if starts.size > 1:
        # merge runs separated by a gap shorter than min_gap_s (gap measured between
        # the last frame of one run and the first frame of the next)
        gap_s = (starts[1:] - stops[:-1] + 1) * geom.hop_s
        join = gap_s < params.min_gap_s
        first_of_group = np.concatenate(([True], ~join))
        group = np.cumsum(first_of_group) - 1
        new_starts = starts[first_of_group]
        new_stops = np.zeros_like(new_starts)
        np.maximum.at(new_stops, group, stops)
        starts, stops = new_starts, new_stops
    # sub-frame boundaries: where the smoothed trace crosses the low threshold, by linear
    # interpolation between the frame centres on either side (at the file's edges, half a
    # hop beyond the first/last frame)
    onset = geom.frame_times_s(starts) - 0.5 * geom.hop_s
    offset = geom.frame_times_s(stops - 1) + 0.5 * geom.hop_s
    inner = starts > 0
    s1 = starts[inner]
    frac = (low - smooth[s1 - 1]) / np.maximum(smooth[s1] - smooth[s1 - 1], 1e-12)
    onset[inner] = geom.frame_times_s(s1 - 1) + np.clip(frac, 0.0, 1.0) * geom.hop_s
    inner = stops < smooth.size
    e1 = stops[inner]
    frac = (smooth[e1 - 1] - low) / np.maximum(smooth[e1 - 1] - smooth[e1], 1e-12)
    offset[inner] = geom.frame_times_s(e1 - 1) + np.clip(frac, 0.0, 1.0) * geom.hop_s
    dur = offset - onset
    keep = (dur >= params.min_dur_s) & (dur <= params.max_dur_s)
    starts, stops, onset, offset, dur = starts[keep], stops[keep], onset[keep], offset[keep], dur[keep]
    # per-segment statistics with one reduceat per column instead of a Python loop
    # (noise-mode recordings have hundreds of segments per minute)
    if starts.size:
        bounds = np.empty(2 * starts.size, np.int64)
        bounds[0::2], bounds[1::2] = starts, stops  # segments are disjoint and sorted
        counts = (stops - starts).astype(np.float64)
        peak = np.maximum.reduceat(np.append(smooth, -np.inf), bounds)[0::2]
        mean = np.add.reduceat(np.append(smooth, 0.0), bounds)[0::2] / counts
        # frequency statistics over the frames where the call is clearly present
        # (all of a segment's frames if none is)
        strong = np.append(smooth > low, False)
        n_strong = np.add.reduceat(strong.astype(np.int64), bounds)[0::2]
        for s, e in zip(starts[n_strong == 0], stops[n_strong == 0]):
            strong[s:e] = True
        n_used = np.where(n_strong > 0, n_strong, stops - starts).astype(np.float64)
        f = np.append(trace.peak_freq_hz.astype(np.float64), 0.0)
        # float64 sums of bin frequencies: exact, unlike a float32 mean
        mf = np.add.reduceat(np.where(strong, f, 0.0), bounds)[0::2] / n_used
        fmin = np.minimum.reduceat(np.where(strong, f, np.inf), bounds)[0::2]
        fmax = np.maximum.reduceat(np.where(strong, f, -np.inf), bounds)[0::2]
    else:
        peak = mean = mf = fmin = fmax = np.zeros(0)
    return pd.DataFrame(
        {
            "onset_s": onset,
            "offset_s": offset,
            "duration_s": dur,
            "peak_amplitude": peak,
            "mean_amplitude": mean,
            "mean_freq_hz": mf,
            "min_freq_hz": fmin,
            "max_freq_hz": fmax,
        }
    )


def segment_with_trace(source, sample_rate_hz: float, params: SegmentParams, spectrogram_params: SpectrogramParams, *, block_frames: int = DEFAULT_BLOCK_FRAMES):
    """Segments and the :class:`Trace` they came from (for callers that need the noise floor)."""
    geom = spectrogram_params.geometry(sample_rate_hz)
    trace = compute_trace(source, geom, spectrogram_params, params, block_frames=block_frames)
    return segments_from_trace(trace, params), trace


def segment_audio(
    audio: np.ndarray,
    sample_rate_hz: float,
    params: SegmentParams = SegmentParams(),
    spectrogram_params: SpectrogramParams = SpectrogramParams(),
):
    """Find syllables in an in-memory recording.

    Parameters
    ----------
    audio : numpy.ndarray
        1-D samples (float in [-1, 1]; other dtypes are converted to float32 as is).
    sample_rate_hz : float
    params : SegmentParams
    spectrogram_params : SpectrogramParams

    Returns
    -------
    pandas.DataFrame
        One row per syllable: ``onset_s``, ``offset_s`` and the score columns
        ``duration_s``, ``peak_amplitude``, ``mean_amplitude`` (trace units: dB above
        the noise floor, or normalised amplitude in ``absolute`` mode),
        ``mean_freq_hz``, ``min_freq_hz``, ``max_freq_hz`` (of the loudest band bin).

    Examples
    --------
    >>> from usvpipe.synth import synth_recording
    >>> audio, truth = synth_recording(5.0, seed=0)
    >>> segs = segment_audio(audio, 250_000)
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"audio must be 1-D (one channel), got shape {audio.shape}")
    _check_nyquist(sample_rate_hz, spectrogram_params)
    segments, _ = segment_with_trace(_ArraySource(audio), sample_rate_hz, params, spectrogram_params)
    return segments


def _check_nyquist(sample_rate_hz: float, sp: SpectrogramParams, path=None) -> None:
    if sample_rate_hz / 2.0 < sp.max_freq_hz:
        from .errors import InputFileError

        raise InputFileError(
            path or "<audio>",
            f"sample rate {sample_rate_hz:.0f} Hz has Nyquist {sample_rate_hz / 2:.0f} Hz, below max_freq_hz {sp.max_freq_hz:.0f}",
            "lower --max-freq-hz below the Nyquist frequency or use a recording made at a higher sample rate",
        )


def segment_file(
    path,
    params: SegmentParams = SegmentParams(),
    spectrogram_params: SpectrogramParams = SpectrogramParams(),
    *,
    channel=None,
    block_frames: int = DEFAULT_BLOCK_FRAMES,
    info=None,
):
    """Find syllables in a WAV file, streaming it in blocks (memory stays flat).

    The result is identical to ``segment_audio(read_audio(path)[0], ...)`` for any
    ``block_frames`` (see the module docstring).

    Parameters
    ----------
    path : str or Path
    params, spectrogram_params : SegmentParams, SpectrogramParams
    channel : int, "mix" or None
        Channel of a multichannel file (``None`` only for mono files).
    block_frames : int
        STFT frames per streamed block (default 1024 ≈ 1.5 s at the default hop).
    info : AudioInfo, optional
        Header already read by :func:`usvpipe.audio.audio_info`.

    Returns
    -------
    pandas.DataFrame
        As :func:`segment_audio`.

    Raises
    ------
    InputFileError
        Unreadable/empty/truncated/silent file, NaN samples, sample rate too low.
    """
    segments, _, _ = segment_file_with_trace(path, params, spectrogram_params, channel=channel, block_frames=block_frames, info=info)
    return segments


def segment_file_with_trace(path, params: SegmentParams, spectrogram_params: SpectrogramParams, *, channel=None, block_frames: int = DEFAULT_BLOCK_FRAMES, info=None):
    """:func:`segment_file` that also returns the :class:`Trace` and the file's source object."""
    from .audio import _check_channel, _silent_error, audio_info

    info = info or audio_info(path, min_sample_rate_hz=2.0 * spectrogram_params.max_freq_hz)
    _check_nyquist(info.sample_rate_hz, spectrogram_params, info.path)
    channel = _check_channel(info, channel)
    if block_frames < 1:
        raise ConfigError(f"block_frames must be >= 1, got {block_frames}")
    source = _FileSource(info, channel)
    segments, trace = segment_with_trace(source, info.sample_rate_hz, params, spectrogram_params, block_frames=block_frames)
    if not trace.any_signal:
        raise _silent_error(info)
    return segments, trace, source
