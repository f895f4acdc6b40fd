"""usvpipe: ultrasonic vocalisation analysis, from WAV folders to answers.

The public API is imported lazily so that ``import usvpipe`` is cheap and works
without a GPU or optional extras; e.g. ``usvpipe.segment_recordings`` imports the
segmentation stage on first use.
"""
from __future__ import annotations

from ._lazy import lazy_exports

from ._version import __version__
from .errors import ConfigError, InputFileError, UsvpipeError

# public name -> module that defines it
_LAZY = {
    # audio / spectrogram / segmentation (stage 1-2)
    "read_audio": "usvpipe.audio",
    "AudioInfo": "usvpipe.audio",
    "SpectrogramParams": "usvpipe.segmentation.spectrogram",
    "SegmentParams": "usvpipe.segmentation.params",
    "segment_audio": "usvpipe.segmentation.detection",
    "segment_file": "usvpipe.segmentation.detection",
    "segment_recordings": "usvpipe.segmentation.batch",
    "evaluate_segments": "usvpipe.evaluate",
    "read_segments": "usvpipe.annotations",
    "write_segments": "usvpipe.annotations",
    # store
    "open_store": "usvpipe.store",
    "merge_store": "usvpipe.store",
    # VAE (stage 3)
    "TrainParams": "usvpipe.vae",
    "train": "usvpipe.vae",
    "encode": "usvpipe.vae",
    "load_model": "usvpipe.vae",
    "decode": "usvpipe.vae",
    "read_latents": "usvpipe.vae",
    # UMAP / MMD (stage 4)
    "UmapParams": "usvpipe.viz",
    "embed_latents": "usvpipe.viz",
    "run_umap": "usvpipe.viz",
    "MMDParams": "usvpipe.mmd",
    "mmd_test": "usvpipe.mmd",
    # POISE-VAE (stage 5); the full API is in usvpipe.poise
    "PoiseParams": "usvpipe.poise",
    "train_poise": "usvpipe.poise",
    "load_poise": "usvpipe.poise",
    # whole pipeline
    "run_pipeline": "usvpipe.pipeline",
    "read_pipeline_config": "usvpipe.pipeline",
}

__all__ = ["__version__", "UsvpipeError", "ConfigError", "InputFileError", *_LAZY]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
