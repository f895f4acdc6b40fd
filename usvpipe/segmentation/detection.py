"""Amplitude-threshold syllable segmentation (the AVA family), whole arrays or streamed files.

Algorithm
---------
1. Band-limited power spectrogram on a fixed frame grid (:mod:`usvpipe.segmentation.spectrogram`).
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

import numpy as np

from ..artifacts import SCORE_COLUMNS  # noqa: F401  (the segments schema; re-exported here)
from ..errors import ConfigError, InputFileError
from .params import SegmentParams
from .sources import DEFAULT_BLOCK_FRAMES, ArraySource, FileSource
from .spectrogram import SpectrogramParams
from .trace import Trace, compute_trace



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
    segments, _ = segment_with_trace(ArraySource(audio), sample_rate_hz, params, spectrogram_params)
    return segments


def _check_nyquist(sample_rate_hz: float, sp: SpectrogramParams, path=None) -> None:
    if sample_rate_hz / 2.0 < sp.max_freq_hz:
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
    from ..audio import audio_info, check_channel, silent_error

    info = info or audio_info(path, min_sample_rate_hz=2.0 * spectrogram_params.max_freq_hz)
    _check_nyquist(info.sample_rate_hz, spectrogram_params, info.path)
    channel = check_channel(info, channel)
    if block_frames < 1:
        raise ConfigError(f"block_frames must be >= 1, got {block_frames}")
    source = FileSource(info, channel)
    segments, trace = segment_with_trace(source, info.sample_rate_hz, params, spectrogram_params, block_frames=block_frames)
    if not trace.any_signal:
        raise silent_error(info)
    return segments, trace, source
