"""Fragments: rejoining the pieces of one call, and what becomes of pieces too short to be a call.

A call whose level dips below the low threshold for a moment comes out of the hysteresis
as several pieces. Pieces closer than ``min_gap_s`` are merged whatever their spectrum (a
silence that short is no inter-syllable pause). Beyond that, a plain wider merge gap would
also fuse distinct syllables of a fast train, so a wider gap is bridged only where the
*contour* says the two pieces are one sound:

Contour rule
    Consecutive pieces are joined when the silence between them is shorter than
    ``contour_max_gap_s`` **and** the peak frequency where the first piece ends lies within
    ``contour_max_jump_hz`` of the peak frequency where the next one starts. A call's
    frequency is continuous through a dip of its own amplitude; the next syllable starts
    wherever its own contour starts.

Short pieces
    A piece (or group of joined pieces) shorter than ``min_dur_s`` that no rule joined to a
    call is dropped (the physiological minimum: mouse syllables are rarely shorter than
    5 ms). It is not lost silently: the nearest kept detection within ``contour_max_gap_s``
    counts it in its ``dropped_fragments`` column.

Both decisions are recorded per detection in ``segments.csv``: ``joined_pieces`` (how many
hysteresis runs make up the detection; 1 = it was found whole) and ``dropped_fragments``.

Streaming
    Every decision looks at most ``max(min_gap_s, contour_max_gap_s)`` beyond a piece's
    edges, and the streaming segmenter only cuts the trace in quiet stretches longer than
    that (see :class:`usvpipe.segmentation.detection.TraceSegmenter`), so the result does
    not depend on where a recording is cut into blocks.
"""
from __future__ import annotations

import numpy as np

#: Frames at each end of a piece whose peak frequency is taken as the piece's edge
#: frequency (the louder of the two: the very edge frame can sit at the threshold,
#: where the strongest bin may be background).
EDGE_FRAMES = 2


def _edge_frequency(trace: np.ndarray, freq: np.ndarray, starts: np.ndarray, stops: np.ndarray, at_end: bool) -> np.ndarray:
    """Peak frequency at the start (or end) of each run: of the louder of its first (last) two frames."""
    if at_end:
        a = stops - 1
        b = np.maximum(stops - EDGE_FRAMES, starts)
    else:
        a = starts
        b = np.minimum(starts + EDGE_FRAMES - 1, stops - 1)
    pick = np.where(trace[b] > trace[a], b, a)
    return freq[pick].astype(np.float64)


def join_continuous(starts: np.ndarray, stops: np.ndarray, trace: np.ndarray, freq: np.ndarray,
                    max_gap_frames: float, max_jump_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Join consecutive runs ``[starts[i], stops[i])`` that are close in time and continuous in frequency.

    The gap is counted as in the plain merge: from the last frame of one run to the first
    frame of the next (``starts[i+1] - stops[i] + 1``); a pair is joined when that is below
    ``max_gap_frames`` and the edge frequencies differ by at most ``max_jump_hz``.
    """
    if starts.size <= 1 or max_gap_frames <= 0:
        return starts, stops
    gap = starts[1:] - stops[:-1] + 1
    f_end = _edge_frequency(trace, freq, starts[:-1], stops[:-1], at_end=True)
    f_start = _edge_frequency(trace, freq, starts[1:], stops[1:], at_end=False)
    join = (gap < max_gap_frames) & (np.abs(f_start - f_end) <= max_jump_hz)
    first = np.concatenate(([True], ~join))
    return starts[first], stops[np.concatenate((~join, [True]))]


def count_pieces(piece_starts: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """How many of the (sorted) pieces begin inside each detection ``[starts[i], stops[i])``."""
    return (np.searchsorted(piece_starts, stops, "left") - np.searchsorted(piece_starts, starts, "left")).astype(np.int64)


def attribute_fragments(starts: np.ndarray, stops: np.ndarray, keep: np.ndarray, fragment: np.ndarray,
                        max_gap_frames: float) -> np.ndarray:
    """Per kept detection, the number of dropped short pieces (``fragment & ~keep``) within ``max_gap_frames`` of it.

    Each fragment is counted once, on the nearer kept neighbour (the earlier one on a tie).
    Returns an int array over the kept detections.
    """
    kept = np.flatnonzero(keep)
    out = np.zeros(kept.size, np.int64)
    frag = np.flatnonzero(fragment & ~keep)
    if kept.size == 0 or frag.size == 0:
        return out
    # position of each fragment among the kept detections (all runs are disjoint and sorted)
    nxt = np.searchsorted(kept, frag)
    prv = nxt - 1
    big = np.iinfo(np.int64).max
    gap_prev = np.where(prv >= 0, starts[frag] - stops[kept[np.maximum(prv, 0)]] + 1, big)
    gap_next = np.where(nxt < kept.size, starts[kept[np.minimum(nxt, kept.size - 1)]] - stops[frag] + 1, big)
    to_prev = gap_prev <= gap_next
    target = np.where(to_prev, prv, nxt)
    gap = np.where(to_prev, gap_prev, gap_next)
    ok = gap < max_gap_frames
    np.add.at(out, target[ok], 1)
    return out
