"""The per-frame amplitude trace and the per-window noise floor it is measured against.

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
        amp[a:b] = power_to_db(peak)
    else:
        idx = power.argmax(axis=1)
        power_to_db(power, out=power)
        power += np.float32(geom.db_offset - sparams.spec_min_db)
        power *= np.float32(1.0 / (sparams.spec_max_db - sparams.spec_min_db))
        np.clip(power, 0.0, 1.0, out=power)
        amp[a:b] = power.mean(axis=1)
    freq[a:b] = geom.freqs_hz[idx]
    return any_signal
