"""Synthetic mouse ultrasonic vocalisations with exact ground truth (placeholder; filled below)."""
from __future__ import annotations

from .legacy import (CALL_BAND_HZ, LOW_NOISE_MAX_HZ, PARAM_NAMES, SHAPE_PARAMS, CallParams, _as_call, _contour,
                     _envelope, _noise, _phase, render_call_image, render_call_images, sample_calls,
                     synth_recording, synthesize_call)
from .legacy_dataset import (MAX_BALANCE_TRIES, balanced_assignment, make_dataset, offset_imbalance_se)
