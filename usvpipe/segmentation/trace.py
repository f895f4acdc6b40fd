"""The per-frame detection trace (tonal or band power) and the per-window noise floor it is measured against.

Work proceeds one fixed noise window at a time (:func:`noise_windows`): the window's band
power is streamed block by block, its per-bin floor is the median of a deterministic frame
subsample (:func:`noise_floor`), and the trace follows without a second FFT pass.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from .params import SegmentParams
from .sources import DEFAULT_BLOCK_FRAMES, iter_frame_blocks
from .spectrogram import FrameGeometry, SpectrogramParams, band_power, frame_view, power_to_db


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
    for k0, audio in iter_frame_blocks(source, geom, a, b, block_frames):
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


@dataclass
class Trace:
    """Per-frame features of a recording and its noise floors.

    ``amplitude``/``peak_freq_hz`` (and the call-vs-noise features) are ``None`` when the
    trace was streamed into a segmenter without being kept (:func:`compute_trace` with
    ``keep=False``): then only the floors (one float32 per band bin per noise window) stay
    in memory, whatever the recording's length.
    """

    amplitude: np.ndarray | None  # float32 (n,) unsmoothed trace
    peak_freq_hz: np.ndarray | None  # float32 (n,) frequency of the loudest band bin
    geom: FrameGeometry
    any_signal: bool = True
    # (first_frame, stop_frame, per-bin noise floor in raw FFT power) per noise window
    floors: list = None
    # call-vs-noise features (float32 (n,), NaN except where the trace exceeds the low
    # threshold); None when computed without ``noise_check``
    elevated_fraction: np.ndarray | None = None
    centroid_hz: np.ndarray | None = None

    def floor_at(self, frame: int) -> np.ndarray:
        """Noise floor (raw power per band bin) of the window holding ``frame``."""
        import bisect

        stops = self.__dict__.get("_stops")
        if stops is None or len(stops) != len(self.floors):
            stops = self.__dict__["_stops"] = [b for _, b, _ in self.floors]
        i = bisect.bisect_right(stops, frame)
        return self.floors[min(i, len(self.floors) - 1)][2]


def wants_features(params: SegmentParams) -> bool:
    """Whether the trace must carry the call-vs-noise features for these parameters."""
    return bool(params.noise_check) and params.threshold_mode == "noise"


def compute_trace(source, geom: FrameGeometry, sparams: SpectrogramParams, params: SegmentParams, *,
                  block_frames: int = DEFAULT_BLOCK_FRAMES, consumer=None, keep: bool = True) -> Trace:
    """Stream ``source`` and compute the per-frame amplitude trace (unsmoothed).

    Work proceeds one noise window at a time: its band power (about 1.3 MB for the
    default 2 s window) is computed block by block, the window's noise floor is taken
    from it, and the trace follows without a second FFT pass. Each window's values are
    passed to ``consumer(first_frame, amplitude, peak_freq_hz, elevated_fraction, centroid_hz)``
    (features ``None`` unless ``noise_check``) when given, and kept in the returned
    :class:`Trace` only if ``keep``.
    """
    n_total = geom.n_frames(source.n_samples)
    feats = wants_features(params)
    full = None
    if keep:
        full = [np.empty(n_total, np.float32), np.empty(n_total, np.float32)]
        full += [np.full(n_total, np.nan, np.float32), np.full(n_total, np.nan, np.float32)] if feats else [None, None]
    any_signal = n_total == 0  # shorter than one window: nothing to analyse, not "silent"
    floors = []
    ctx = source if hasattr(source, "__enter__") else contextlib.nullcontext()
    # buffers shared by all noise windows: allocating ~3 MB per window afresh costs
    # more in page faults than the arithmetic done in them
    workspace = {}
    with ctx:
        for a, b in noise_windows(n_total, geom, params) if n_total else []:
            values, signal = _window_trace(source, geom, sparams, params, (a, b), block_frames, floors, workspace, feats)
            any_signal = signal or any_signal
            if full is not None:
                for dst, v in zip(full, values):
                    if dst is not None:
                        dst[a:b] = v
            if consumer is not None:
                consumer(a, *values)
    if full is None:
        full = [None] * 4
    return Trace(full[0], full[1], geom, any_signal, floors, full[2], full[3])


def _window_trace(source, geom, sparams, params, window, block_frames, floors, workspace=None, feats=False):
    """``((amplitude, peak_freq_hz, elevated_fraction, centroid_hz), any_signal)`` of one noise window."""
    a, b = window
    power, any_signal = _window_power(source, geom, (a, b), block_frames, workspace)
    floor = noise_floor(power, params)
    floors.append((a, b, floor))
    flat = cen = None
    if params.threshold_mode == "noise":
        power *= 1.0 / np.maximum(floor, np.float32(1e-30))
        if params.trace == "tonal":
            from .tonal import tonal_peak

            amp, idx = tonal_peak(power, geom.freqs_hz, workspace)
        else:
            idx = power.argmax(axis=1)
            peak = power[np.arange(b - a), idx]
            amp = power_to_db(peak)
        if feats:
            from .decisions import frame_noise_features

            # only frames that can belong to a detection (raw trace above the low
            # threshold): a few per cent of a recording's frames
            flat = np.full(b - a, np.nan, np.float32)
            cen = np.full(b - a, np.nan, np.float32)
            sel = np.flatnonzero(amp > params.low_threshold)
            if sel.size:
                flat[sel], cen[sel] = frame_noise_features(power[sel], geom.freqs_hz)
    else:
        idx = power.argmax(axis=1)
        power_to_db(power, out=power)
        power += np.float32(geom.db_offset - sparams.spec_min_db)
        power *= np.float32(1.0 / (sparams.spec_max_db - sparams.spec_min_db))
        np.clip(power, 0.0, 1.0, out=power)
        amp = power.mean(axis=1)
    return (amp.astype(np.float32, copy=False), geom.freqs_hz[idx].astype(np.float32, copy=False), flat, cen), any_signal
