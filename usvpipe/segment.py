"""Deprecated: the segmenter lives in :mod:`usvpipe.segmentation` (removed in usvpipe 0.3).

``from usvpipe.segment import segment_file`` still works, with a ``DeprecationWarning`` that
names the new import, e.g. ``from usvpipe.segmentation.detection import segment_file``.
"""
from __future__ import annotations

from ._deprecated import moved_names

_MOVED = {
    "SCORE_COLUMNS": "usvpipe.segmentation.detection",
    "segment_audio": "usvpipe.segmentation.detection",
    "segment_file": "usvpipe.segmentation.detection",
    "segment_file_with_trace": "usvpipe.segmentation.detection",
    "segment_with_trace": "usvpipe.segmentation.detection",
    "segments_from_trace": "usvpipe.segmentation.detection",
    "SegmentParams": "usvpipe.segmentation.params",
    "DEFAULT_BLOCK_FRAMES": "usvpipe.segmentation.sources",
    "Trace": "usvpipe.segmentation.trace",
    "compute_trace": "usvpipe.segmentation.trace",
    "noise_floor": "usvpipe.segmentation.trace",
    "noise_windows": "usvpipe.segmentation.trace",
}

__getattr__, __dir__ = moved_names(__name__, _MOVED)
