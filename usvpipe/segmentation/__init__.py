"""Stage 1-2: WAV recordings -> syllable segments and fixed-size syllable images.

One file per concern::

    params.py       SegmentParams, SyllableParams (the [segment] and [syllables] settings)
    spectrogram.py  SpectrogramParams, the frame grid and the band-limited STFT kernel
    sources.py      audio as block sources (in-memory array, streamed WAV file)
    trace.py        the per-frame amplitude trace and the per-window noise floor
    detection.py    hysteresis thresholding -> segments (streamed: TraceSegmenter); segment_audio, segment_file
    decisions.py    valley splitting and the call-vs-noise check inside a detection
    images.py       syllable_images / iter_syllable_images: fixed-size spectrograms for the store
    inputs.py       WAV discovery and recording metadata (CSV or group/animal folders)
    worker.py       one recording start to finish in a worker process
    batch.py        segment_recordings: the resumable, shardable batch (pool + merge)

Names are imported lazily, so ``import usvpipe.segmentation`` is cheap.
"""
from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "SegmentParams": "usvpipe.segmentation.params",
    "SyllableParams": "usvpipe.segmentation.params",
    "SpectrogramParams": "usvpipe.segmentation.spectrogram",
    "spectrogram": "usvpipe.segmentation.spectrogram",
    "SCORE_COLUMNS": "usvpipe.segmentation.detection",
    "segment_audio": "usvpipe.segmentation.detection",
    "segment_file": "usvpipe.segmentation.detection",
    "segment_file_with_trace": "usvpipe.segmentation.detection",
    "segments_from_trace": "usvpipe.segmentation.detection",
    "Trace": "usvpipe.segmentation.trace",
    "compute_trace": "usvpipe.segmentation.trace",
    "syllable_images": "usvpipe.segmentation.images",
    "iter_syllable_images": "usvpipe.segmentation.images",
    "TraceSegmenter": "usvpipe.segmentation.detection",
    "Recording": "usvpipe.segmentation.inputs",
    "discover_inputs": "usvpipe.segmentation.inputs",
    "read_metadata": "usvpipe.segmentation.inputs",
    "layout_metadata": "usvpipe.segmentation.inputs",
    "plan_recordings": "usvpipe.segmentation.inputs",
    "SegmentRun": "usvpipe.segmentation.batch",
    "segment_recordings": "usvpipe.segmentation.batch",
}

__all__ = [*_LAZY]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
