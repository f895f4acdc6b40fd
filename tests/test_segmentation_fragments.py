"""Fragments (usvpipe.segmentation.fragments): the contour rule joins a call's pieces; short pieces are dropped and counted."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from segmentation_fixtures import CALL, OTHER, SR, add_call, background, dip

from usvpipe.segmentation import SegmentParams, segment_audio
from usvpipe.segmentation.fragments import attribute_fragments, count_pieces, join_continuous
from usvpipe.synth import CallParams


def _segments(x, **kw):
    return segment_audio(np.asarray(x, np.float32), SR, SegmentParams(**kw))


# --------------------------------------------------------------------------- the rules on arrays
def test_join_continuous_needs_both_a_short_gap_and_a_continuous_contour():
    trace = np.full(100, 20.0)
    freq = np.where(np.arange(100) < 35, 70_000.0, 90_000.0)
    starts, stops = np.array([0, 20, 40, 80]), np.array([10, 30, 50, 90])
    # gaps (last frame to first frame): 11, 11, 31 frames; edge frequencies 70->70, 70->90, 90->90 kHz
    s, e = join_continuous(starts, stops, trace, freq, max_gap_frames=25, max_jump_hz=10_000)
    assert list(zip(s.tolist(), e.tolist())) == [(0, 30), (40, 50), (80, 90)]
    s, e = join_continuous(starts, stops, trace, freq, max_gap_frames=25, max_jump_hz=25_000)
    assert list(zip(s.tolist(), e.tolist())) == [(0, 50), (80, 90)]
    s, e = join_continuous(starts, stops, trace, freq, max_gap_frames=0, max_jump_hz=25_000)
    assert list(zip(s.tolist(), e.tolist())) == list(zip(starts.tolist(), stops.tolist()))


def test_the_edge_frequency_is_that_of_the_louder_of_the_two_edge_frames():
    trace = np.array([13.0, 30.0, 30.0, 0.0, 0.0, 30.0, 13.0])
    freq = np.array([40_000.0, 70_000.0, 70_000.0, 0.0, 0.0, 71_000.0, 100_000.0])
    # the faint edge frames (13 dB) hold background peaks far from the contour; the louder neighbours decide
    s, _ = join_continuous(np.array([0, 5]), np.array([3, 7]), trace, freq, max_gap_frames=10, max_jump_hz=5_000)
    assert s.tolist() == [0]


def test_pieces_are_counted_and_dropped_fragments_go_to_the_nearer_kept_detection():
    pieces = np.array([0, 12, 40, 70])
    assert count_pieces(pieces, np.array([0, 40]), np.array([30, 80])).tolist() == [2, 2]
    starts, stops = np.array([0, 34, 40, 70, 200]), np.array([30, 36, 60, 72, 202])
    keep = np.array([True, False, True, False, False])
    short = np.array([False, True, False, True, True])
    # fragment 1 is 5 frames after detection 0 and 5 before detection 2: the earlier wins a tie;
    # fragment 3 is 11 frames after detection 2; fragment 4 is too far from anything
    assert attribute_fragments(starts, stops, keep, short, max_gap_frames=13).tolist() == [1, 1]
    assert attribute_fragments(starts, stops, keep, short, max_gap_frames=6).tolist() == [1, 0]


# --------------------------------------------------------------------------- exact-truth recordings
def test_a_call_with_a_dip_is_not_split():
    x = background(1.0)
    truth = add_call(x, 0.3, CALL, envelope=dip(0.030, 0.014))  # 14 ms near-silent stretch mid-call
    split = _segments(x, contour_max_gap_s=0.0)  # the plain 10 ms merge gap alone
    assert len(split) == 2
    segs = _segments(x)
    assert len(segs) == 1 and segs.joined_pieces.iloc[0] == 2 and segs.dropped_fragments.iloc[0] == 0
    assert abs(segs.onset_s.iloc[0] - truth[0]) < 0.005 and abs(segs.offset_s.iloc[0] - truth[1]) < 0.005


def test_two_calls_close_in_time_but_not_in_frequency_stay_two():
    x = background(1.0)
    first = add_call(x, 0.300, CALL)  # ends at 62 kHz
    second = add_call(x, 0.375, OTHER)  # starts at 85 kHz, 15 ms later
    segs = _segments(x)
    assert len(segs) == 2 and (segs.joined_pieces == 1).all()
    assert abs(segs.onset_s.iloc[1] - second[0]) < 0.005 and abs(segs.offset_s.iloc[0] - first[1]) < 0.005


def test_a_short_fragment_is_dropped_and_counted_on_its_call():
    x = background(1.0)
    truth = add_call(x, 0.3, CALL)
    add_call(x, 0.372, CallParams(95_000, 95_000, 0.002), snr_db=20.0)  # a 2-ms piece 12 ms after, 33 kHz away
    segs = _segments(x)
    assert len(segs) == 1 and segs.dropped_fragments.iloc[0] == 1
    assert abs(segs.offset_s.iloc[0] - truth[1]) < 0.005


@pytest.mark.parametrize("kw", [{}, {"trace": "band_power"}, {"contour_max_gap_s": 0.03, "smoothing_s": 0.002}])
def test_segmenting_pieces_of_the_trace_is_bit_identical_with_the_contour_rule(kw):
    """The streaming segmenter cuts only where no join or fragment attribution can reach across."""
    from usvpipe.segmentation.detection import TraceSegmenter, segments_from_trace
    from usvpipe.segmentation.sources import ArraySource
    from usvpipe.segmentation.spectrogram import SpectrogramParams
    from usvpipe.segmentation.trace import compute_trace

    x = background(6.0, seed=5)
    for i, t in enumerate(np.arange(0.1, 5.8, 0.11)):
        add_call(x, float(t), CALL, snr_db=float(3 + i % 8), envelope=dip(0.03, 0.008 + 0.002 * (i % 6)))
        if i % 3 == 0:
            add_call(x, float(t) + 0.072, CallParams(95_000, 95_000, 0.002), snr_db=20.0)
    x = x.astype(np.float32)
    p, sp = SegmentParams(**kw), SpectrogramParams()
    geom = sp.geometry(SR)
    seg = TraceSegmenter(geom, p, geom.n_frames(x.size), min_piece_frames=64)
    trace = compute_trace(ArraySource(x), geom, sp, p, consumer=seg)
    streamed = seg.finish()
    assert len(seg.parts) > 3
    assert (streamed.joined_pieces > 1).sum() > 5
    if not p.smoothing_s:  # smoothing spreads the 2-ms pieces below the high threshold
        assert streamed.dropped_fragments.sum() > 3
    pd.testing.assert_frame_equal(streamed, segments_from_trace(trace, p), check_exact=True)
