"""Compatibility module: the segmenter now lives in :mod:`usvpipe.segmentation`.

``from usvpipe.segment import SegmentParams, segment_audio, segment_file`` keeps working;
new code imports from :mod:`usvpipe.segmentation` (or the top-level ``usvpipe``).
"""
from __future__ import annotations

from .segmentation.detection import (  # noqa: F401
    SCORE_COLUMNS,
    segment_audio,
    segment_file,
    segment_file_with_trace,
    segment_with_trace,
    segments_from_trace,
)
from .segmentation.params import SegmentParams  # noqa: F401
from .segmentation.sources import DEFAULT_BLOCK_FRAMES  # noqa: F401
from .segmentation.trace import Trace, compute_trace, noise_floor, noise_windows  # noqa: F401
