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
frame whose trace exceeds the low threshold, two numbers are taken from the whitened band
spectrum (power / each bin's noise floor), counting the bins more than
``ELEVATED_DB`` (10 dB) above their floor — white noise puts ~5e-5 of its bins there:

- the **elevated fraction** of the band: a whistle (with its harmonic and a 2-ms frame's
  worth of sweep) raises a few of the ~160 bins (< 5 %), a click raises most of them
  (~70 % at 15 dB above the background, ~97 % at 25 dB);
- the **centroid** (mean frequency) of the elevated bins: low-frequency noise bursts put
  it near the band's lower edge (up to ~44 kHz for a 30 kHz edge in the stress benchmark,
  bursts low-passed at 25–40 kHz); every amvoc and synthetic mouse call lay above 47 kHz.

A detection is rejected as noise when it is shorter than ``noise_click_max_dur_s``
(default 30 ms) and the median over its frames (those above the low threshold) of the
elevated fraction exceeds ``noise_max_fraction`` (default 0.25) — a click is brief; long
broadband sounds are harmonic stacks such as deer-mouse pup cries (the six in
``vocalpy_deermouse-go.wav`` last 46–161 ms, and without the duration limit five of them
were rejected) — or when the median centroid lies less than ``noise_low_edge_hz`` (default
15 kHz) above the band's lower edge.

These are a spectral flatness and a spectral centroid in their simplest form. librosa's
``spectral_flatness``/``spectral_centroid`` were tried first (on the dB-above-floor
spectrum: as discriminative on the same data) and dropped for cost: ~1.6 ms per call and
~17 µs per frame made segmentation of the dense amvoc recordings ~50 % slower (and the first
call in a process takes ~3.5 s and ~200 MB for numba), which the ≥ 10x speed margin over
vocalpy cannot absorb; a comparison and a matrix-vector product per frame cost ~1 %.
"""
from __future__ import annotations

import numpy as np

#: A bin counts as elevated when this many dB above its noise floor (white noise exceeds
#: it in ~5e-5 of the bins, since its floor is the median of an exponential variable).
ELEVATED_DB = 10.0


def frame_noise_features(whitened: np.ndarray, freqs_hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``(elevated_fraction, centroid_hz)`` of whitened band power ``(n_frames, n_bins)``.

    ``whitened`` is power divided by each bin's noise floor. Frames with no elevated bin
    get a NaN centroid.
    """
    if whitened.shape[0] == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    elevated = (whitened > np.float32(10 ** (ELEVATED_DB / 10))).astype(np.float32)
    count = elevated.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = (elevated @ np.asarray(freqs_hz, np.float32)) / count
    return count / np.float32(whitened.shape[1]), np.where(count > 0, centroid, np.nan).astype(np.float32)


def _group_medians(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of ``values`` per ``group`` id (NaN for groups without values), vectorised."""
    out = np.full(n_groups, np.nan)
    if values.size == 0:
        return out
    # one sort on a combined key (group major, value minor): values are shifted to [0, 1)
    span = float(values.max() - values.min()) or 1.0
    key = group + (values - values.min()) / (span * (1.0 + 1e-9))
    order = np.argsort(key, kind="stable")
    v, g = values[order], group[order]
    counts = np.bincount(g, minlength=n_groups)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has = counts > 0
    lo = first[has] + (counts[has] - 1) // 2
    hi = first[has] + counts[has] // 2
    out[has] = 0.5 * (v[lo] + v[hi])
    return out


def noise_like(fraction: np.ndarray, centroid_hz: np.ndarray, raw_amp: np.ndarray, starts: np.ndarray, stops: np.ndarray,
               low: float, band_lo_hz: float, max_fraction: float, low_edge_hz: float,
               duration_s: np.ndarray | None = None, click_max_dur_s: float = np.inf) -> np.ndarray:
    """Boolean per segment ``[starts[i], stops[i])``: does it look like noise rather than a call?

    Medians over the segment's frames whose raw trace exceeds ``low`` (and whose feature
    is defined); a segment with no such frame is kept. The broadband (click) rule applies
    only to segments shorter than ``click_max_dur_s`` (``duration_s`` given).
    """
    n = starts.size
    lengths = stops - starts
    seg = np.repeat(np.arange(n), lengths)
    frames = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths) + np.repeat(starts, lengths)
    use = raw_amp[frames] > low
    seg, frames = seg[use], frames[use]
    f, c = fraction[frames].astype(np.float64), centroid_hz[frames].astype(np.float64)
    ok_f, ok_c = np.isfinite(f), np.isfinite(c)
    med_f = _group_medians(f[ok_f], seg[ok_f], n)
    med_c = _group_medians(c[ok_c], seg[ok_c], n)
    with np.errstate(invalid="ignore"):
        click = med_f > max_fraction
        if duration_s is not None:
            click &= np.asarray(duration_s) < click_max_dur_s
        return click | (med_c < band_lo_hz + low_edge_hz)


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
