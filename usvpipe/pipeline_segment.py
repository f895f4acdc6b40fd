"""Deprecated: batch segmentation lives in :mod:`usvpipe.segmentation` (removed in usvpipe 0.3).

``from usvpipe.pipeline_segment import segment_recordings`` still works, with a
``DeprecationWarning`` that names the new import, e.g.
``from usvpipe.segmentation.batch import segment_recordings``.
"""
from __future__ import annotations

from ._deprecated import moved_names

_MOVED = {
    "ERRORS_NAME": "usvpipe.segmentation.batch",
    "SEGMENTS_NAME": "usvpipe.segmentation.batch",
    "SegmentRun": "usvpipe.segmentation.batch",
    "run_params": "usvpipe.segmentation.batch",
    "segment_recordings": "usvpipe.segmentation.batch",
    "syllable_images": "usvpipe.segmentation.images",
    "WAV_SUFFIXES": "usvpipe.segmentation.inputs",
    "Recording": "usvpipe.segmentation.inputs",
    "discover_inputs": "usvpipe.segmentation.inputs",
    "layout_metadata": "usvpipe.segmentation.inputs",
    "plan_recordings": "usvpipe.segmentation.inputs",
    "read_metadata": "usvpipe.segmentation.inputs",
    "SyllableParams": "usvpipe.segmentation.params",
}

__getattr__, __dir__ = moved_names(__name__, _MOVED)
