"""Writing a vocal world: ``group/animal/*.wav`` + ``metadata.csv`` + ``truth_calls.csv`` + ``truth_noise.csv``.

Every file goes through :mod:`usvpipe._io` (temporary file + rename). WAVs are 16-bit
PCM; a recording whose peak would exceed :data:`MAX_PEAK` is scaled down to it and the
factor is kept in ``metadata.csv`` (``scale``), so absolute levels can be recovered;
the per-call SNR is unaffected by a common scale.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .render import render_recording

#: Peak a written recording may reach before it is scaled down (16-bit full scale is 1).
MAX_PEAK = 0.99


def _write_wav(path: Path, audio: np.ndarray, sample_rate_hz: int) -> float:
    import soundfile as sf

    from .._io import atomic_path

    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    scale = MAX_PEAK / peak if peak > MAX_PEAK else 1.0
    with atomic_path(path) as tmp:
        sf.write(tmp, audio * scale, int(sample_rate_hz), subtype="PCM_16", format="WAV")
    return scale


def write_world(world, out_dir):
    """Render and write every recording of ``world`` and its truth tables; returns metadata.

    Layout::

        out_dir/metadata.csv       path,animal,group,duration_s,scale (path relative to out_dir)
        out_dir/truth_calls.csv    one row per call (World.calls; ``recording`` = path)
        out_dir/truth_noise.csv    one row per noise event (World.noise_events)
        out_dir/animals.csv        each animal's usage and offsets
        out_dir/world.json         the parameters and the usvpipe version
        out_dir/<group>/<animal>/<animal>_rec<k>.wav
    """
    import pandas as pd

    from .._io import ensure_output_dir, write_csv_atomic, write_json_atomic
    from .._version import __version__
    from .noise import BACKGROUND_RMS, SNR_GUARD_HZ

    out = ensure_output_dir(out_dir)
    rows = []
    for rec in world.recordings.itertuples(index=False):
        audio, _, _ = render_recording(world, rec.recording)
        scale = _write_wav(out / rec.recording, audio, world.sample_rate_hz)
        rows.append({"path": rec.recording, "animal": rec.animal, "group": rec.group,
                     "duration_s": rec.duration_s, "scale": scale})
    meta = pd.DataFrame(rows, columns=["path", "animal", "group", "duration_s", "scale"])
    write_csv_atomic(out / "truth_calls.csv", world.calls.rename_axis("syllable").reset_index())
    write_csv_atomic(out / "truth_noise.csv", world.noise_events)
    write_csv_atomic(out / "animals.csv", world.animals)
    write_json_atomic(out / "world.json", {
        "usvpipe_version": __version__, "generator": "usvpipe.synth.simulate_world",
        "params": dataclasses.asdict(world.params),
        "snr_definition": f"per call: dry-call mean square over [onset, offset] / white background power in "
                          f"[min_freq - {SNR_GUARD_HZ:g}, max_freq (2f if harmonic) + {SNR_GUARD_HZ:g}] Hz; "
                          f"background RMS {BACKGROUND_RMS:g} before gain",
    })
    write_csv_atomic(out / "metadata.csv", meta)
    return meta
