"""Synthetic mouse ultrasonic vocalisations with exact ground truth: two worlds.

**The sweep world** (the first generator, ``usvpipe synth`` default; unchanged outputs):
every call one FM sweep drawn through a Gaussian copula, groups shifted by a number of
SDs. :func:`sample_calls`, :func:`synthesize_call`, :func:`render_call_image(s)`,
:func:`synth_recording`, :func:`make_dataset` (modules :mod:`.legacy`, :mod:`.legacy_dataset`).

**The vocal world** (``usvpipe synth --world vocal``): call types after the published
classification schemes (:mod:`.calls`), repertoires per group and animal
(:mod:`.repertoire`), named noise classes of real rigs and an exact per-call SNR
(:mod:`.noise`), four kinds of group difference (:mod:`.world`).

Python API of the vocal world
-----------------------------
>>> from usvpipe.synth import WorldParams, simulate_world, render_recording, render_call_clip, write_world
>>> world = simulate_world(WorldParams(difference="usage", difference_size=0.1, seed=1))
>>> world.calls.columns            # per call: recording, group, animal, onset_s, offset_s, call_type, ...
>>> audio, calls, noise = render_recording(world, world.recordings.recording[0])
>>> clip = render_call_clip(world, 17, margin_s=0.05)  # one syllable ± 50 ms, with its noise
>>> write_world(world, "out/")     # group/animal/*.wav, metadata.csv, truth_calls.csv, truth_noise.csv

- :class:`WorldParams` (frozen, validated): groups, animals, syllables, call types, noise
  classes, SNR (a fixed value or a uniform range in dB), the difference and its size, seed.
- :func:`simulate_world` ``(params) -> World``: tables only (no audio), deterministic per
  seed; ``World.calls``, ``World.noise_events``, ``World.recordings``, ``World.animals``.
- :func:`render_recording` ``(world, recording) -> (waveform, calls, noise)``;
  :func:`render_window` for any sample range; :func:`render_call_clip(s)` for one
  call ± margin, identical sample for sample to the same span of the whole recording.
- :func:`known_calls_world` ``(call_types, noise="clicks", snr_db=10)``: one recording
  with calls of the chosen types at known times under ONE noise class at a fixed SNR;
  :func:`known_calls_recording` (same arguments) renders it: ``(waveform, calls, noise)``.
- :func:`write_world` ``(world, out_dir)``: every file atomically.
"""
from __future__ import annotations

from .calls import CALL_COLUMNS, CALL_TYPE_TABLE, CALL_TYPES, render_call
from .io import write_world
from .legacy import (CALL_BAND_HZ, LOW_NOISE_MAX_HZ, PARAM_NAMES, SHAPE_PARAMS, CallParams, _as_call, _contour,
                     _envelope, _noise, _phase, render_call_image, render_call_images, sample_calls,
                     synth_recording, synthesize_call)
from .legacy_dataset import MAX_BALANCE_TRIES, balanced_assignment, make_dataset, offset_imbalance_se
from .noise import NOISE_CLASSES, NOISE_COLUMNS
from .params import DIFFERENCE_KINDS, WorldParams, parse_difference, parse_names, parse_snr
from .render import known_calls_recording, render_call_clip, render_call_clips, render_recording, render_window
from .repertoire import DEFAULT_USAGE
from .world import World, group_usages, known_calls_world, simulate_world

__all__ = [
    # the sweep world
    "CallParams", "PARAM_NAMES", "SHAPE_PARAMS", "CALL_BAND_HZ", "LOW_NOISE_MAX_HZ", "sample_calls",
    "render_call_image", "render_call_images", "synthesize_call", "synth_recording", "make_dataset",
    "balanced_assignment", "offset_imbalance_se", "MAX_BALANCE_TRIES",
    # the vocal world
    "CALL_TYPES", "CALL_TYPE_TABLE", "CALL_COLUMNS", "NOISE_CLASSES", "NOISE_COLUMNS", "DIFFERENCE_KINDS",
    "DEFAULT_USAGE", "WorldParams", "World", "simulate_world", "group_usages", "render_call", "render_recording",
    "render_window", "render_call_clip", "render_call_clips", "known_calls_world", "known_calls_recording",
    "write_world",
    "parse_difference", "parse_snr", "parse_names",
]
_PRIVATE_FOR_TESTS = (_as_call, _contour, _envelope, _noise, _phase)  # kept importable as before the split
