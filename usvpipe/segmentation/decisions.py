"""Two decisions inside the amplitude-threshold core: valley splitting and the call-vs-noise check.

Both act on what the threshold found; neither replaces it.

Valley splitting
----------------
Hysteresis keeps a detection together while the smoothed trace stays above the low
threshold, and runs closer than ``min_gap_s`` are merged. Reverberant tails, background
and a faint neighbour can hold the trace above the low threshold across the silent gap
between two calls, which then become one syllable. A detection is therefore split at its
deepest internal valley when that valley lies at least ``valley_db`` below the *lower* of
the highest points on either side and stays low for at least ``min_gap_s`` (a dip of a
call's own level is shallower or briefer than the silence between two calls), recursively
while such valleys remain. The two parts end and
start where the trace crosses halfway (in dB) between the valley and the lower side peak,
so each keeps its own rising and falling flank and the tail between them belongs to
neither.

Call-vs-noise check
-------------------
Mouse USVs are narrow-band whistles; the false detections seen on real recordings are
broadband clicks and low-frequency noise that leaks into the bottom of the band. For every
frame whose trace exceeds the low threshold, two spectral features of the whitened band
spectrum ``D`` (dB above each bin's noise floor, clipped at 0) are computed with librosa:

- ``spectral_flatness(D)``: the Wiener entropy (geometric / arithmetic mean). A whistle
  leaves most bins at the floor (``D = 0``), so its flatness is ~1e-5 (at most 6e-4 on the
  amvoc calls and the synthetic ones); a click raises every bin, giving 0.3–1.
- ``spectral_centroid(max(D - 10 dB, 0))``: where the energy clearly above the floor lies.
  Low-frequency noise bursts put it within a few kHz of the band's lower edge
  (32–40 kHz for a 30 kHz edge in the stress benchmark); mouse calls were all above 47 kHz.

A detection is rejected as noise when the median over its frames (those above the low
threshold) of the flatness exceeds ``noise_max_flatness`` (default 0.01, between the two
populations above), or the median centroid lies less than ``noise_low_edge_hz`` (default
10 kHz) above the band's lower edge.
"""
from __future__ import annotations

import numpy as np

#: Bins count for the centroid only when this many dB above their noise floor (white noise
#: exceeds 10 dB above its median-based floor in ~5e-5 of the bins).
CENTROID_EXCESS_DB = 10.0


def frame_noise_features(whitened: np.ndarray, freqs_hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``(flatness, centroid_hz)`` of whitened band power ``(n_frames, n_bins)``.

    ``whitened`` is power divided by each bin's noise floor. Frames with no bin
    ``CENTROID_EXCESS_DB`` above the floor get a NaN centroid.
    """
    import librosa

    if whitened.shape[0] == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    d = np.log10(np.maximum(whitened, np.float32(1.0)), dtype=np.float32)
    d *= np.float32(10.0)  # dB above the floor, >= 0
    flat = librosa.feature.spectral_flatness(S=d.T, power=1.0)[0]
    ex = np.maximum(d - np.float32(CENTROID_EXCESS_DB), np.float32(0.0))
    has = ex.max(axis=1) > 0
    cen = np.full(d.shape[0], np.nan, np.float32)
    if has.any():
        cen[has] = librosa.feature.spectral_centroid(S=ex[has].T, freq=np.asarray(freqs_hz, np.float64))[0]
    return flat.astype(np.float32), cen


def noise_like(flatness: np.ndarray, centroid_hz: np.ndarray, raw_amp: np.ndarray, starts: np.ndarray, stops: np.ndarray,
               low: float, band_lo_hz: float, max_flatness: float, low_edge_hz: float) -> np.ndarray:
    """Boolean per segment ``[starts[i], stops[i])``: does it look like noise rather than a call?

    Medians over the segment's frames whose raw trace exceeds ``low`` (and whose feature
    is defined); a segment with no such frame is kept.
    """
    out = np.zeros(starts.size, bool)
    for i, (s, e) in enumerate(zip(starts.tolist(), stops.tolist())):
        sel = raw_amp[s:e] > low
        f = flatness[s:e][sel]
        f = f[np.isfinite(f)]
        if f.size and float(np.median(f)) > max_flatness:
            out[i] = True
            continue
        c = centroid_hz[s:e][sel]
        c = c[np.isfinite(c)]
        if c.size and float(np.median(c)) < band_lo_hz + low_edge_hz:
            out[i] = True
    return out


def split_at_valleys(smooth: np.ndarray, starts: np.ndarray, stops: np.ndarray, low: float, valley_db: float, min_gap_frames: int = 1):
    """Split runs ``[starts[i], stops[i])`` of ``smooth`` at deep, wide internal valleys.

    A valley qualifies when it lies ``valley_db`` below the lower of the highest points on
    either side and the trace stays below the split level (halfway, in dB, between the
    valley and that lower peak) for at least ``min_gap_frames`` frames; the deepest
    qualifying valley is split first, then each part again.

    Returns ``starts, stops, on_level, off_level``: the new runs (sorted) and, per run, the
    level at which its onset/offset is to be interpolated (``low`` for the original
    edges, the split level for edges created by a split).
    """
    out_s, out_e, out_on, out_off = [], [], [], []
    stack = [(int(s), int(e), float(low), float(low)) for s, e in zip(starts.tolist(), stops.tolist())][::-1]
    while stack:
        s, e, lon, loff = stack.pop()
        x = smooth[s:e]
        cut = _widest_cut(x, valley_db, min_gap_frames) if x.size >= 3 else None
        if cut is None:
            out_s.append(s)
            out_e.append(e)
            out_on.append(lon)
            out_off.append(loff)
            continue
        l_stop, r_start, level = cut
        stack.append((s + r_start, e, level, loff))
        stack.append((s, s + l_stop, lon, level))
    return (np.asarray(out_s, np.int64), np.asarray(out_e, np.int64),
            np.asarray(out_on, np.float64), np.asarray(out_off, np.float64))


def _widest_cut(x: np.ndarray, valley_db: float, min_gap_frames: int):
    """``(left_stop, right_start, level)`` of the deepest qualifying valley of ``x``, or None."""
    left = np.maximum.accumulate(x)[:-2]  # highest point up to m - 1, for m = 1..n-2
    right = np.maximum.accumulate(x[::-1])[::-1][2:]  # highest point from m + 1
    depth = np.minimum(left, right) - x[1:-1]
    cand = np.flatnonzero(depth >= valley_db)
    if cand.size == 0:
        return None
    tried = set()
    for m in (cand[np.argsort(-depth[cand], kind="stable")] + 1).tolist():
        level = float(x[m] + depth[m - 1] / 2.0)
        above = x > level
        l_stop = int(np.flatnonzero(above[:m])[-1]) + 1
        r_start = m + 1 + int(np.flatnonzero(above[m + 1 :])[0])
        if (l_stop, r_start) in tried:
            continue
        tried.add((l_stop, r_start))
        if r_start - l_stop >= min_gap_frames:
            return l_stop, r_start, level
        if len(tried) >= 8:
            break
    return None
