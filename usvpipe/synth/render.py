"""Audio of a vocal world, rendered from its tables: a whole recording, any window, one call's clip.

Every sample is a pure function of the world's rows (background blocks seeded by the
recording's seed and block index; each call, click, scratch and reverb tail by its own
seed), so a window renders sample-for-sample the same alone as inside the whole recording.
That is what makes :func:`render_call_clip` cheap: a call ± margin, with every noise event
and neighbouring call that reaches into the window, without rendering the recording.
"""
from __future__ import annotations

import numpy as np
from ..errors import ConfigError
from . import noise as nz
from .calls import render_call


def _lookup(world, recording: str):
    """(recording row, calls, noise events) of ``recording``, or a ConfigError naming it."""
    try:
        return world.by_recording[recording]
    except KeyError:
        raise ConfigError("recording", f"{recording!r} is not in this world",
                          "use a name from world.recordings") from None


def scaled_call(row, sample_rate_hz: float) -> np.ndarray:
    """The dry call of ``row`` at its per-call SNR against the background (before gain)."""
    dry = render_call(row, sample_rate_hz)
    band = nz.snr_band_hz(float(row["min_freq_hz"]), _highest(row), sample_rate_hz)
    return dry * nz.call_scale(dry, band, float(row["snr_db"]), sample_rate_hz)


def _highest(row) -> float:
    """Highest frequency of the call, its 2f harmonic included (the top of its SNR band)."""
    top = float(row["max_freq_hz"])
    return 2.0 * top if float(row["harmonic_ratio"]) > 0 else top


def _add(out: np.ndarray, start: int, piece: np.ndarray, at: int) -> None:
    """Add ``piece`` (starting at recording sample ``at``) into ``out`` (starting at ``start``)."""
    lo, hi = max(start, at), min(start + len(out), at + len(piece))
    if hi > lo:
        out[lo - start:hi - start] += piece[lo - at:hi - at]


def render_window(world, recording: str, start: int, n: int) -> np.ndarray:
    """Samples ``[start, start + n)`` of ``recording`` (float64, gain applied)."""
    sr = world.sample_rate_hz
    rec, calls, events = _lookup(world, recording)
    out = nz.background(int(rec.seed), start, n)
    room = {ev["kind"]: ev for ev in events.to_dict("records") if ev["kind"] in ("reverb", "gain", "hum")}
    tail_s = float(room["reverb"]["param"]) if "reverb" in room else 0.0
    near = calls[(calls["onset_s"].to_numpy() * sr < start + n) & ((calls["offset_s"].to_numpy() + tail_s) * sr > start)]
    for row in near.to_dict("records"):
        y = scaled_call(row, sr)
        if "reverb" in room:
            wet = nz.reverb_tail(y, tail_s, float(room["reverb"]["level_db"]), int(row["seed"]), sr)
            y = wet + np.pad(y, (0, len(wet) - len(y)))
        _add(out, start, y, int(round(float(row["onset_s"]) * sr)))
    transient = events[events["kind"].isin(("clicks", "scratches")).to_numpy()
                       & (events["onset_s"].to_numpy() * sr < start + n) & (events["offset_s"].to_numpy() * sr > start)]
    for ev in transient.to_dict("records"):
        piece = nz.click(ev, sr) if ev["kind"] == "clicks" else nz.scratch(ev, sr)
        _add(out, start, piece, int(round(ev["onset_s"] * sr)))
    if "hum" in room:
        out += nz.hum(room["hum"], start, n, sr)
    if "gain" in room:
        out *= 10 ** (float(room["gain"]["level_db"]) / 20)
    return out


def render_recording(world, recording: str):
    """``(waveform float32, calls truth, noise truth)`` of one recording of ``world``."""
    rec, calls, events = _lookup(world, recording)
    audio = render_window(world, recording, 0, int(rec.n_samples))
    return audio.astype(np.float32), calls, events


def render_call_clip(world, syllable: int, margin_s: float = 0.05) -> np.ndarray:
    """One call ± ``margin_s`` (float32), with the noise and neighbours of its recording.

    ``syllable`` is the call's index label in ``world.calls``. The clip starts at
    ``onset_s - margin_s`` (or 0) and ends at ``offset_s + margin_s`` (or the recording's end).
    """
    row = world.calls.loc[syllable]
    sr = world.sample_rate_hz
    rec_n = int(_lookup(world, row["recording"])[0].n_samples)
    start = max(0, int(round((float(row["onset_s"]) - margin_s) * sr)))
    stop = min(rec_n, int(round((float(row["offset_s"]) + margin_s) * sr)))
    return render_window(world, row["recording"], start, stop - start).astype(np.float32)


def render_call_clips(world, syllables=None, margin_s: float = 0.05) -> list:
    """:func:`render_call_clip` for each syllable (default: every call of the world)."""
    syllables = world.calls.index if syllables is None else syllables
    return [render_call_clip(world, s, margin_s) for s in syllables]


def known_calls_recording(call_types=None, *, noise: str | None = None, snr_db: float = 10.0, calls_per_type: int = 5,
                          seed: int = 0, sample_rate_hz: int = 250_000, mean_gap_s: float = 0.12):
    """``(waveform float32, calls truth, noise truth)`` of :func:`~usvpipe.synth.world.known_calls_world`.

    One recording with ``calls_per_type`` calls of each chosen type at known times, under
    ONE noise class (or none) at exactly ``snr_db`` per call: the segmentation benchmark's input.
    """
    from .world import known_calls_world

    world = known_calls_world(call_types, noise=noise, snr_db=snr_db, calls_per_type=calls_per_type, seed=seed,
                              sample_rate_hz=sample_rate_hz, mean_gap_s=mean_gap_s)
    return render_recording(world, world.recordings.recording.iloc[0])
