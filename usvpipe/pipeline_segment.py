"""Compatibility module: batch segmentation now lives in :mod:`usvpipe.segmentation`.

``from usvpipe.pipeline_segment import SyllableParams, segment_recordings`` keeps working;
new code imports from :mod:`usvpipe.segmentation` (or the top-level ``usvpipe``).
"""
from __future__ import annotations

from .segmentation.batch import ERRORS_NAME, SEGMENTS_NAME, SegmentRun, run_params, segment_recordings  # noqa: F401
from .segmentation.images import syllable_images  # noqa: F401
from .segmentation.inputs import (  # noqa: F401
    WAV_SUFFIXES,
    Recording,
    discover_inputs,
    layout_metadata,
    plan_recordings,
    read_metadata,
)
from .segmentation.params import SyllableParams  # noqa: F401
