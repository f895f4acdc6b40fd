"""Compatibility module: the STFT kernel now lives in :mod:`usvpipe.segmentation.spectrogram`."""
from __future__ import annotations

from .segmentation.spectrogram import (  # noqa: F401
    _CHUNK_FRAMES,
    FrameGeometry,
    SpectrogramParams,
    band_power,
    band_power_db,
    fft_workers,
    frame_view,
    normalize_db,
    spectrogram,
)
