"""Amplitude-threshold syllable segmentation (the AVA family), whole arrays or streamed files.

Algorithm
---------
1. Band-limited power spectrogram on a fixed frame grid (:mod:`usvpipe.segmentation.spectrogram`).
2. A detection trace, one value per frame:

   - ``threshold_mode="noise"`` (default): each frequency bin's power is divided by that
     bin's noise floor (its median over time): the spectrum is whitened. Then
     ``trace="tonal"`` (default, :mod:`usvpipe.segmentation.tonal`): the trace is how far
     the strongest whitened bin stands above the frame's own spectral envelope (a line in
     log power vs. log frequency), in dB: a whistle stands out, a broadband click,
     scratch or burst of any level does not, so a burst neither becomes a detection nor
     bridges two calls. ``trace="band_power"``: the largest whitened ratio in the band,
     in dB (sensitive to narrow-band whistles and independent of gain and background
     colour, but a broadband sound raises it like a call). Thresholds are in dB above
     the background.
   - ``threshold_mode="absolute"`` (AVA): the trace is the mean over the band of the
     normalised log spectrogram (``spec_min_db``/``spec_max_db`` mapped to [0, 1]);
     thresholds are in those [0, 1] units.
3. The trace is smoothed with a Gaussian (``smoothing_s``).
4. Hysteresis: a syllable is a run of frames above ``low_threshold`` that rises above
   ``high_threshold`` somewhere; runs separated by less than ``min_gap_s`` are merged;
   runs closer than ``contour_max_gap_s`` whose peak frequency is continuous across the
   gap are joined (:mod:`usvpipe.segmentation.fragments`); syllables shorter than
   ``min_dur_s`` (counted in their neighbour's ``dropped_fragments``) or longer than
   ``max_dur_s`` are dropped.

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
whole-file result. The tonal trace and the fragment decisions keep this: a frame's tonality
depends only on its own spectrum and its noise window's floor, and the streaming segmenter
cuts the trace only in quiet stretches longer than any gap a decision can bridge. The
noise floor is estimated per fixed window of the recording
(``noise_window_s``, on the absolute frame grid) from a deterministic subsample of its
frames (every ``m``-th frame, at most ``noise_max_frames``), so it too is independent of
the block size (blocks never cross a noise window's edge); :func:`segment_audio` uses
the same rule on an in-memory array.
"""
from __future__ import annotations

import numpy as np

from ..artifacts import COUNT_COLUMNS, SCORE_COLUMNS  # noqa: F401  (the segments schema; re-exported here)
from ..errors import ConfigError, InputFileError
from .fragments import attribute_fragments, count_pieces, join_continuous
from .params import SegmentParams
from .sources import DEFAULT_BLOCK_FRAMES, ArraySource, FileSource
from .spectrogram import SpectrogramParams
from .trace import Trace, compute_trace



def _smooth(amp: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    x = amp.astype(np.float64)
    return gaussian_filter1d(x, sigma, mode="nearest") if sigma > 0 else x


def _radius(sigma: float) -> int:
    """Frames on each side that a smoothed value depends on (scipy's truncate=4)."""
    return int(4.0 * sigma + 0.5) if sigma > 0 else 0


def _empty() -> dict:
    return {c: np.zeros(0, np.int64 if c in COUNT_COLUMNS else np.float64) for c in ("onset_s", "offset_s", *SCORE_COLUMNS)}


def _piece_segments(smooth, amp, freq, flat, cen, k0: int, n_total: int, geom, params: SegmentParams) -> dict:
    """Segments of frames ``[k0, k0 + len(smooth))`` of a recording of ``n_total`` frames.

    The piece must not cut through a run or a merge (see :class:`TraceSegmenter`); the
    arrays are the piece's smoothed and raw trace, peak frequency and features.
    """
    high, low = params.thresholds
    pieces, piece_stops = _hysteresis_runs(smooth, high, low)
    starts, stops = _merge_close_runs(pieces, piece_stops, geom.hop_s, params.min_gap_s)
    contour_frames = params.contour_max_gap_s / geom.hop_s
    if params.contour_max_gap_s > 0 and starts.size > 1:
        starts, stops = join_continuous(starts, stops, smooth, freq, contour_frames, params.contour_max_jump_hz)
    on_level = off_level = np.full(starts.shape, low, np.float64)
    if params.valley_db > 0 and params.threshold_mode == "noise" and starts.size:
        from .decisions import split_at_valleys

        min_gap_frames = max(1, int(np.ceil(params.min_gap_s / geom.hop_s)))
        starts, stops, on_level, off_level = split_at_valleys(smooth, starts, stops, low, params.valley_db, min_gap_frames)
    onset, offset = _boundaries_s(smooth, starts, stops, on_level, off_level, k0, n_total, geom)
    dur = offset - onset
    short = dur < params.min_dur_s
    keep = ~short & (dur <= params.max_dur_s)
    if params.noise_check and params.threshold_mode == "noise" and keep.any():
        _drop_noise_like(keep, flat, cen, amp, starts, stops, dur, low, geom, params)
    dropped = attribute_fragments(starts, stops, keep, short, max(contour_frames, params.min_gap_s / geom.hop_s))
    starts, stops, onset, offset, dur = starts[keep], stops[keep], onset[keep], offset[keep], dur[keep]
    peak, mean, mf, fmin, fmax = _segment_statistics(smooth, freq, starts, stops, low)
    return {"onset_s": onset, "offset_s": offset, "duration_s": dur, "peak_amplitude": peak, "mean_amplitude": mean,
            "mean_freq_hz": mf, "min_freq_hz": fmin, "max_freq_hz": fmax,
            "joined_pieces": count_pieces(pieces, starts, stops), "dropped_fragments": dropped}


def _run_bounds(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """``[start0, stop0, start1, stop1, ...]``: the indices for one ``reduceat`` over disjoint, sorted runs."""
    bounds = np.empty(2 * starts.size, np.int64)
    bounds[0::2], bounds[1::2] = starts, stops
    return bounds


def _hysteresis_runs(smooth: np.ndarray, high: float, low: float) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, stops)`` (stop exclusive) of the runs above ``low`` whose maximum exceeds ``high``."""
    above = np.concatenate(([False], smooth > low, [False]))
    d = np.diff(above.astype(np.int8))
    starts = np.flatnonzero(d == 1)
    stops = np.flatnonzero(d == -1)  # exclusive
    if starts.size:
        # max over each run [start, stop) in one call (noise makes many short runs)
        run_max = np.maximum.reduceat(np.append(smooth, -np.inf), _run_bounds(starts, stops))[0::2]
        keep = run_max > high
        starts, stops = starts[keep], stops[keep]
    return starts, stops


def _merge_close_runs(starts: np.ndarray, stops: np.ndarray, hop_s: float, min_gap_s: float):
    """Merge runs separated by a gap shorter than ``min_gap_s``.

    The gap is measured between the last frame of one run and the first frame of the next.
    """
    if starts.size <= 1:
        return starts, stops
    gap_s = (starts[1:] - stops[:-1] + 1) * hop_s
    join = gap_s < min_gap_s
    first_of_group = np.concatenate(([True], ~join))
    group = np.cumsum(first_of_group) - 1
    new_starts = starts[first_of_group]
    new_stops = np.zeros_like(new_starts)
    np.maximum.at(new_stops, group, stops)
    return new_starts, new_stops


def _boundaries_s(smooth, starts, stops, on_level, off_level, k0: int, n_total: int, geom):
    """Sub-frame ``(onset_s, offset_s)`` of each run.

    Where the smoothed trace crosses the low threshold (or, at an edge made by a valley
    split, the split level), by linear interpolation between the frame centres on either
    side; at the file's edges, half a hop beyond the first/last frame.
    """
    onset = geom.frame_times_s(k0 + starts) - 0.5 * geom.hop_s
    offset = geom.frame_times_s(k0 + stops - 1) + 0.5 * geom.hop_s
    inner = k0 + starts > 0
    s1 = starts[inner]
    frac = (on_level[inner] - smooth[s1 - 1]) / np.maximum(smooth[s1] - smooth[s1 - 1], 1e-12)
    onset[inner] = geom.frame_times_s(k0 + s1 - 1) + np.clip(frac, 0.0, 1.0) * geom.hop_s
    inner = k0 + stops < n_total
    e1 = stops[inner]
    frac = (smooth[e1 - 1] - off_level[inner]) / np.maximum(smooth[e1 - 1] - smooth[e1], 1e-12)
    offset[inner] = geom.frame_times_s(k0 + e1 - 1) + np.clip(frac, 0.0, 1.0) * geom.hop_s
    return onset, offset


def _drop_noise_like(keep, flat, cen, amp, starts, stops, dur, low: float, geom, params: SegmentParams) -> None:
    """Clear ``keep`` (in place) for the kept detections whose spectrum looks like a click or low-frequency noise."""
    if flat is None:
        raise ConfigError("noise_check needs a trace computed with noise_check=True (it carries the spectral features)")
    from .decisions import noise_like

    k = np.flatnonzero(keep)
    noisy = noise_like(flat, cen, amp, starts[k], stops[k], low, float(geom.freqs_hz[0]),
                       params.noise_max_fraction, params.noise_low_edge_hz, dur[k], params.noise_click_max_dur_s)
    keep[k[noisy]] = False


def _segment_statistics(smooth, freq, starts, stops, low: float):
    """``(peak, mean, mean_freq_hz, min_freq_hz, max_freq_hz)`` of each segment ``[start, stop)``.

    One ``reduceat`` per column instead of a Python loop (noise-mode recordings have
    hundreds of segments per minute). The frequency statistics use the frames where the
    call is clearly present (smoothed trace above ``low``), or all of a segment's frames if
    none is.
    """
    if not starts.size:
        return tuple(np.zeros(0) for _ in range(5))
    bounds = _run_bounds(starts, stops)  # segments are disjoint and sorted
    counts = (stops - starts).astype(np.float64)
    peak = np.maximum.reduceat(np.append(smooth, -np.inf), bounds)[0::2]
    mean = np.add.reduceat(np.append(smooth, 0.0), bounds)[0::2] / counts
    strong = np.append(smooth > low, False)
    n_strong = np.add.reduceat(strong.astype(np.int64), bounds)[0::2]
    for s, e in zip(starts[n_strong == 0], stops[n_strong == 0]):
        strong[s:e] = True
    n_used = np.where(n_strong > 0, n_strong, stops - starts).astype(np.float64)
    f = np.append(freq.astype(np.float64), 0.0)
    # float64 sums of bin frequencies: exact, unlike a float32 mean
    mf = np.add.reduceat(np.where(strong, f, 0.0), bounds)[0::2] / n_used
    fmin = np.minimum.reduceat(np.where(strong, f, np.inf), bounds)[0::2]
    fmax = np.maximum.reduceat(np.where(strong, f, -np.inf), bounds)[0::2]
    return peak, mean, mf, fmin, fmax


def _frame(parts: list) -> "pd.DataFrame":
    import pandas as pd

    parts = parts or [_empty()]
    return pd.DataFrame({c: np.concatenate([p[c] for p in parts]) for c in ("onset_s", "offset_s", *SCORE_COLUMNS)})


def segments_from_trace(trace: Trace, params: SegmentParams):
    """Smooth, threshold with hysteresis, merge short gaps, split at valleys, filter.

    ``trace`` must have been kept (:func:`compute_trace` with ``keep=True``) and, for
    ``noise_check``, computed with it. The result equals what :class:`TraceSegmenter`
    finds while the trace streams past.

    Returns
    -------
    pandas.DataFrame
        ``onset_s, offset_s`` + :data:`SCORE_COLUMNS`.
    """
    if trace.amplitude is None:
        raise ConfigError("this trace was streamed without being kept (compute_trace(keep=False)); use its segments")
    amp = trace.amplitude
    if amp.size == 0 or not trace.any_signal:
        return _frame([])
    smooth = _smooth(amp, params.smoothing_s / trace.geom.hop_s)
    return _frame([_piece_segments(smooth, amp, trace.peak_freq_hz, trace.elevated_fraction, trace.centroid_hz, 0, amp.size, trace.geom, params)])


class TraceSegmenter:
    """Segments a trace while it streams past, holding only a few seconds of it.

    Frames are pushed one noise window at a time (the ``consumer`` of
    :func:`compute_trace`). Whenever the smoothed trace has stayed at or below the low
    threshold for longer than ``min_gap_s`` plus two frames, nothing before that quiet
    stretch can join anything after it (no run crosses it, no merge bridges it, and
    valley splits, the noise check and the statistics are per segment), so the frames
    before it are segmented and dropped. Smoothed values are computed with ``r`` frames of
    context on each side (the Gaussian's support), so every value, and hence every
    segment, is bit-identical to :func:`segments_from_trace` on the whole trace.
    Memory is the pending stretch (``min_piece_frames`` plus up to the next quiet stretch,
    normally ~0.5 MB) plus the segments.
    """

    #: Frames gathered before a cut is looked for (~50 s at the default hop, ~0.5 MB): each
    #: piece costs ~0.3 ms of fixed numpy overhead, so cutting after every 2-s window
    #: would add ~15 % to the segmentation's CPU time.
    MIN_PIECE_FRAMES = 1 << 15

    def __init__(self, geom, params: SegmentParams, n_total: int, *, min_piece_frames: int = MIN_PIECE_FRAMES):
        self.geom, self.params, self.n_total = geom, params, n_total
        self.min_piece = int(min_piece_frames)
        self.sigma = params.smoothing_s / geom.hop_s
        self.r = _radius(self.sigma)
        # the farthest any decision looks beyond a detection's edge: the plain merge gap or
        # the contour rule's gap (joins and fragment attribution)
        self.quiet = int(np.ceil(max(params.min_gap_s, params.contour_max_gap_s) / geom.hop_s)) + 2
        self.k0 = 0  # global index of the buffer's first frame
        self.p = 0  # first frame not yet segmented (>= k0)
        self.buf = None  # [amp, freq, flat, cen] for frames k0 ..
        self.pending = []  # windows pushed since the last join
        self.end = 0  # global index after the last frame pushed
        self.parts = []

    def __call__(self, first: int, amp, freq, flat=None, cen=None) -> None:
        if first != self.end:
            raise ValueError("trace windows must be pushed in order, without gaps")
        # windows wait in a list and are joined only when a cut is looked for
        self.pending.append([amp, freq, flat, cen])
        self.end += len(amp)
        if self.end - self.p >= self.min_piece:
            self._flush(final=False)

    def _join(self) -> None:
        chunks = ([self.buf] if self.buf is not None else []) + self.pending
        self.pending = []
        if chunks:
            self.buf = [None if chunks[0][i] is None else np.concatenate([c[i] for c in chunks]) for i in range(4)]

    def _flush(self, final: bool) -> None:
        self._join()
        if self.buf is None:
            return
        amp = self.buf[0]
        smooth = _smooth(amp, self.sigma)
        if final:
            cut = self.k0 + amp.size
        else:
            lo = self.p - self.k0  # buffer index of the first pending frame; its smoothed value is exact
            hi = amp.size - self.r  # smoothed values beyond need frames not yet seen
            if hi - lo < self.quiet:
                return
            quiet = np.concatenate(([False], smooth[lo:hi] <= self.params.thresholds[1], [False]))
            dq = np.diff(quiet.astype(np.int8))
            q_start, q_stop = np.flatnonzero(dq == 1), np.flatnonzero(dq == -1)
            long_enough = np.flatnonzero(q_stop - q_start >= self.quiet)
            if long_enough.size == 0:
                return
            cut = self.k0 + lo + int(q_stop[long_enough[-1]]) - 1  # last quiet frame: the next piece starts there
        a, b = self.p - self.k0, cut - self.k0
        if b > a:
            self.parts.append(_piece_segments(smooth[a:b], amp[a:b], self.buf[1][a:b],
                                              None if self.buf[2] is None else self.buf[2][a:b],
                                              None if self.buf[3] is None else self.buf[3][a:b],
                                              self.p, self.n_total, self.geom, self.params))
        self.p = cut
        drop = max(0, cut - self.r - self.k0)
        if drop:
            self.buf = [None if x is None else x[drop:].copy() for x in self.buf]
            self.k0 += drop

    def finish(self) -> "pd.DataFrame":
        """All segments (call once, after the last window)."""
        self._flush(final=True)
        self.buf = None
        return _frame(self.parts)


def segment_with_trace(source, sample_rate_hz: float, params: SegmentParams, spectrogram_params: SpectrogramParams, *,
                       block_frames: int = DEFAULT_BLOCK_FRAMES, keep_trace: bool = True):
    """Segments and the :class:`Trace` they came from (for callers that need the noise floor).

    Segmentation runs while the trace streams past (:class:`TraceSegmenter`); with
    ``keep_trace=False`` the returned trace holds only the geometry and noise floors, so
    memory does not grow with the recording.
    """
    geom = spectrogram_params.geometry(sample_rate_hz)
    segmenter = TraceSegmenter(geom, params, geom.n_frames(source.n_samples))
    trace = compute_trace(source, geom, spectrogram_params, params, block_frames=block_frames, consumer=segmenter, keep=keep_trace)
    segments = segmenter.finish()
    if not trace.any_signal:
        segments = _frame([])
    return segments, trace


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
    segments, _ = segment_with_trace(ArraySource(audio), sample_rate_hz, params, spectrogram_params, keep_trace=False)
    return segments


def _check_nyquist(sample_rate_hz: float, sp: SpectrogramParams, path=None) -> None:
    if sample_rate_hz / 2.0 < sp.max_freq_hz:
        from ..audio import band_above_nyquist

        raise InputFileError(path or "<audio>", *band_above_nyquist(sample_rate_hz, sp.min_freq_hz, sp.max_freq_hz))


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
    segments, _, _ = segment_file_with_trace(path, params, spectrogram_params, channel=channel, block_frames=block_frames, info=info,
                                             keep_trace=False)
    return segments


def segment_file_with_trace(path, params: SegmentParams, spectrogram_params: SpectrogramParams, *, channel=None,
                            block_frames: int = DEFAULT_BLOCK_FRAMES, info=None, keep_trace: bool = True):
    """:func:`segment_file` that also returns the :class:`Trace` and the file's source object.

    ``keep_trace=False``: the trace keeps only its geometry and noise floors (what syllable
    images need), so memory stays flat for any length.
    """
    from ..audio import audio_info, check_channel, silent_error

    info = info or audio_info(path, min_sample_rate_hz=2.0 * spectrogram_params.max_freq_hz,
                              min_freq_hz=spectrogram_params.min_freq_hz)
    _check_nyquist(info.sample_rate_hz, spectrogram_params, info.path)
    channel = check_channel(info, channel)
    if block_frames < 1:
        raise ConfigError(f"block_frames must be >= 1, got {block_frames}")
    source = FileSource(info, channel)
    segments, trace = segment_with_trace(source, info.sample_rate_hz, params, spectrogram_params, block_frames=block_frames,
                                         keep_trace=keep_trace)
    if not trace.any_signal:
        raise silent_error(info)
    return segments, trace, source
