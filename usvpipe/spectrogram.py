"""Deprecated: the STFT kernel lives in :mod:`usvpipe.segmentation.spectrogram` (removed in usvpipe 0.3).

``from usvpipe.spectrogram import SpectrogramParams`` still works, with a ``DeprecationWarning``
that names the new import, ``from usvpipe.segmentation.spectrogram import SpectrogramParams``.
"""
from __future__ import annotations

from ._deprecated import moved_names

_MOVED = {name: "usvpipe.segmentation.spectrogram" for name in (
    "_CHUNK_FRAMES", "FrameGeometry", "SpectrogramParams", "band_power", "band_power_db", "fft_workers",
    "frame_view", "normalize_db", "spectrogram")}

__getattr__, __dir__ = moved_names(__name__, _MOVED)
