"""The vocal world: groups of animals, their repertoires, calls laid out in recordings, noise events.

:func:`simulate_world` draws everything as tables (cheap: no audio); the audio of any
recording, window or single call is rendered from those tables on demand
(:mod:`usvpipe.synth.render`). The same ``WorldParams`` (seed included) give the same
world, row for row.

Group differences (group ``k`` carries ``k * difference_size``):

- ``usage``: ``difference_size`` of probability moved from ``usage_from`` to ``usage_to``
  in the group's usage vector (animals then scatter around it by their Dirichlet draw);
- ``pitch``: ``difference_size`` kHz added to every call's frequency contour;
- ``duration``: every call ``difference_size`` percent longer;
- ``shape``: FM extent (``fm_hz``) and jump size (``jump_hz``) multiplied by
  ``1 + difference_size``; the mean frequency and the duration of every call are drawn
  exactly as in the reference group (each contour family has zero time-mean around
  ``mean_freq_hz``), so pitch and duration stay matched;
- ``none``: an A/A world.

Random streams: one per animal (spawned from the seed in group-major order), so the k-th
animal of a group is the same animal whatever the difference kind; the calls of a
recording come from that recording's own stream.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from .calls import CALL_COLUMNS, contour_summary, draw_call_params
from .noise import draw_events
from .params import WorldParams
from .repertoire import draw_animal_usage, draw_call_types, group_usage, shift_usage

#: Columns of ``World.calls`` (and of truth_calls.csv after its ``syllable`` id), in order.
TRUTH_COLUMNS = ("recording", "group", "animal", "call_index", "onset_s", "offset_s") + CALL_COLUMNS + (
    "min_freq_hz", "max_freq_hz", "bandwidth_hz", "snr_db", "seed")
#: Silence before the first call and after the last call's offset (s).
EDGE_S = 0.1
#: Room left after the last call for its reverberant tail (s): the longest RT60.
TAIL_S = 0.1


@dataclass(frozen=True)
class World:
    """A simulated vocal world (tables only; render audio with :mod:`usvpipe.synth.render`).

    Attributes
    ----------
    params : WorldParams
    calls : pandas.DataFrame
        One row per call (index = syllable id, 0..n-1): ``recording, group, animal,
        call_index, onset_s, offset_s`` + the call parameters
        (:data:`~usvpipe.synth.calls.CALL_COLUMNS`) + ``min_freq_hz, max_freq_hz,
        bandwidth_hz`` (from the contour, second tone included, harmonic excluded) +
        ``snr_db`` (per call, see :mod:`usvpipe.synth.noise`) + ``seed``.
    noise_events : pandas.DataFrame
        :data:`~usvpipe.synth.noise.NOISE_COLUMNS`, one row per event.
    recordings : pandas.DataFrame
        ``recording`` (relative WAV path ``group/animal/animal_recK.wav``), ``group,
        animal, duration_s, n_samples, seed``.
    animals : pandas.DataFrame
        ``animal, group, pitch_offset_hz, duration_factor`` and ``usage_<type>`` per type.
    """

    params: WorldParams
    calls: pd.DataFrame
    noise_events: pd.DataFrame
    recordings: pd.DataFrame
    animals: pd.DataFrame

    @property
    def sample_rate_hz(self) -> int:
        return self.params.sample_rate_hz

    @cached_property
    def by_recording(self) -> dict:
        """``{recording: (recording row, its calls, its noise events)}``, built once (clips are many)."""
        calls = dict(tuple(self.calls.groupby("recording", sort=False)))
        events = dict(tuple(self.noise_events.groupby("recording", sort=False)))
        empty_calls, empty_events = self.calls.iloc[:0], self.noise_events.iloc[:0]
        return {rec.recording: (rec, calls.get(rec.recording, empty_calls), events.get(rec.recording, empty_events))
                for rec in self.recordings.itertuples(index=False)}


def group_usages(params: WorldParams) -> list:
    """Each group's usage vector over ``params.call_types`` (the usage difference planted)."""
    base = group_usage(params.call_types)
    out = []
    for k in range(len(params.groups)):
        if params.difference == "usage":
            out.append(shift_usage(base, params.call_types, params.usage_from, params.usage_to,
                                   k * params.difference_size))
        else:
            out.append(base)
    return out


def _apply_group_difference(calls: pd.DataFrame, params: WorldParams, k: int) -> None:
    """Plant the pitch/duration/shape difference of group ``k`` (in place)."""
    size = k * params.difference_size
    if params.difference == "pitch":
        calls["mean_freq_hz"] += size * 1000.0
    elif params.difference == "duration":
        calls["duration_s"] *= 1.0 + size / 100.0
    elif params.difference == "shape":
        factor = max(0.0, 1.0 + size)
        calls["fm_hz"] *= factor
        calls["jump_hz"] *= factor


def draw_recording_calls(types: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Parameter rows for a sequence of call types (each type's rows drawn together, then put in order)."""
    out = pd.DataFrame(index=range(len(types)), columns=list(CALL_COLUMNS))
    parts = []
    for kind in dict.fromkeys(types):  # first-seen order: deterministic
        where = np.flatnonzero(types == kind)
        rows = draw_call_params(kind, len(where), rng)
        rows.index = where
        parts.append(rows)
    out = pd.concat(parts).sort_index() if parts else out
    return out.reset_index(drop=True)


def _lay_out(calls: pd.DataFrame, params: WorldParams, rng: np.random.Generator) -> int:
    """Sample-aligned onsets/offsets (in place); returns the recording's length in samples."""
    sr = params.sample_rate_hz
    n_call = np.maximum(1, np.round(calls["duration_s"].to_numpy(float) * sr)).astype(np.int64)
    gaps = params.min_gap_s + rng.exponential(params.mean_gap_s, len(calls))
    gap_samples = np.ceil(gaps * sr - 1e-9).astype(np.int64)
    gap_samples[0] = int(round(EDGE_S * sr))
    starts = np.cumsum(gap_samples) + np.concatenate([[0], np.cumsum(n_call)[:-1]])
    calls["onset_s"] = starts / sr
    calls["offset_s"] = (starts + n_call) / sr
    calls["duration_s"] = n_call / sr
    end = int(starts[-1] + n_call[-1]) if len(calls) else 0
    return end + int(round((EDGE_S + TAIL_S) * sr))


def _animal_recordings(params, group, k, animal, usage_g, seq):
    """Calls, noise events and recording rows of one animal, and its own row."""
    rng = np.random.default_rng(seq)
    usage = draw_animal_usage(usage_g, params.usage_concentration, rng)
    pitch_offset = rng.normal(0.0, params.animal_pitch_sd_khz) * 1000.0
    duration_factor = math.exp(rng.normal(0.0, params.animal_duration_sd))
    animal_row = {"animal": animal, "group": group, "pitch_offset_hz": pitch_offset,
                  "duration_factor": duration_factor,
                  **{f"usage_{t}": float(u) for t, u in zip(params.call_types, usage)}}
    counts = [len(a) for a in np.array_split(np.arange(params.syllables_per_animal), params.recordings_per_animal)]
    calls_out, events_out, recs_out = [], [], []
    for r, (n_calls, rec_seq) in enumerate(zip(counts, seq.spawn(params.recordings_per_animal))):
        rec_rng = np.random.default_rng(rec_seq)
        name = f"{group}/{animal}/{animal}_rec{r + 1}.wav"
        calls = draw_recording_calls(draw_call_types(usage, params.call_types, n_calls, rec_rng), rec_rng)
        calls["mean_freq_hz"] += pitch_offset
        calls["duration_s"] *= duration_factor
        _apply_group_difference(calls, params, k)
        lo, hi = params.snr_db
        calls["snr_db"] = rec_rng.uniform(lo, hi, n_calls) if hi > lo else np.full(n_calls, lo)
        calls["seed"] = rec_rng.integers(0, 2**31 - 1, n_calls)
        n_samples = _lay_out(calls, params, rec_rng)
        calls.insert(0, "call_index", np.arange(n_calls))
        for col, value in (("animal", animal), ("group", group), ("recording", name)):
            calls.insert(0, col, value)
        duration_s = n_samples / params.sample_rate_hz
        # the background's seed before the events: switching a noise class changes nothing else
        recs_out.append({"recording": name, "group": group, "animal": animal, "duration_s": duration_s,
                         "n_samples": n_samples, "seed": int(rec_rng.integers(0, 2**31 - 1))})
        events_out.append(draw_events(name, duration_s, params.noise, rec_rng))
        calls_out.append(calls)
    return animal_row, calls_out, events_out, recs_out


def with_reverb_tails(events: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    """``events`` plus one ``reverb_tail`` row per call in a reverberant recording.

    The tail row spans ``[offset_s, offset_s + RT60]`` (where the call's reverberation is
    heard after the call itself ends), so a segmenter's offsets can be scored against it.
    Rendering uses only the recording's ``reverb`` row; the tails are truth, not input.
    """
    rooms = events[events["kind"] == "reverb"].set_index("recording")
    if rooms.empty:
        return events
    rev = calls[calls["recording"].isin(rooms.index)]
    rt60 = rooms.loc[rev["recording"], "param"].to_numpy()
    tails = pd.DataFrame({"recording": rev["recording"].to_numpy(), "kind": "reverb_tail",
                          "onset_s": rev["offset_s"].to_numpy(), "offset_s": rev["offset_s"].to_numpy() + rt60,
                          "level_db": rooms.loc[rev["recording"], "level_db"].to_numpy(), "param": rt60,
                          "seed": rev["seed"].to_numpy()})
    return pd.concat([events, tails], ignore_index=True)


def _finish_calls(calls: pd.DataFrame) -> pd.DataFrame:
    """Add the contour's min/max frequency and bandwidth; fix the column dtypes."""
    summary = contour_summary(calls)
    calls["min_freq_hz"], calls["max_freq_hz"] = summary["min_freq_hz"], summary["max_freq_hz"]
    calls["bandwidth_hz"] = calls["max_freq_hz"] - calls["min_freq_hz"]
    for col in CALL_COLUMNS[1:]:
        calls[col] = calls[col].astype(np.int64 if col in ("n_jumps", "direction") else float)
    return calls[list(TRUTH_COLUMNS)]


def simulate_world(params: WorldParams | None = None, **overrides) -> World:
    """Draw a vocal world (tables only). ``overrides`` replace fields of ``params``."""
    import dataclasses

    params = WorldParams() if params is None else params
    if overrides:
        params = dataclasses.replace(params, **overrides)
    usages = group_usages(params)
    seqs = np.random.SeedSequence(params.seed).spawn(len(params.groups) * params.animals_per_group)
    animals, calls, events, recs = [], [], [], []
    for k, group in enumerate(params.groups):
        for a in range(params.animals_per_group):
            animal = f"{group}{a + 1:02d}"
            row, c, e, r = _animal_recordings(params, group, k, animal, usages[k],
                                              seqs[k * params.animals_per_group + a])
            animals.append(row)
            calls += c
            events += e
            recs += r
    calls = _finish_calls(pd.concat(calls, ignore_index=True))
    events = with_reverb_tails(pd.concat(events, ignore_index=True), calls)
    return World(params=params, calls=calls, noise_events=events,
                 recordings=pd.DataFrame(recs), animals=pd.DataFrame(animals))


def known_calls_world(call_types=None, *, noise: str | None = None, snr_db: float = 10.0, calls_per_type: int = 5,
                      seed: int = 0, sample_rate_hz: int = 250_000, mean_gap_s: float = 0.12) -> World:
    """One recording holding ``calls_per_type`` calls of each chosen type, in turn, under ONE noise class.

    For segmentation benchmarks: every call has exactly ``snr_db`` (see
    :mod:`usvpipe.synth.noise`), the only noise besides the white background is ``noise``
    (one of :data:`~usvpipe.synth.noise.NOISE_CLASSES`, or ``None``), the animal has no
    offsets, and onsets/offsets are in ``World.calls``. Render it with
    :func:`usvpipe.synth.render.render_recording`.
    """
    from .calls import CALL_TYPES

    types = tuple(CALL_TYPES if call_types is None else call_types)
    params = WorldParams(groups=("A",), animals_per_group=1, syllables_per_animal=len(types) * calls_per_type,
                         call_types=types, noise=() if noise is None else (noise,), snr_db=(snr_db, snr_db),
                         animal_pitch_sd_khz=0.0, animal_duration_sd=0.0, mean_gap_s=mean_gap_s,
                         sample_rate_hz=sample_rate_hz, seed=seed)
    rng = np.random.default_rng(params.seed)
    order = np.array([t for _ in range(calls_per_type) for t in types], dtype=object)
    calls = draw_recording_calls(order, rng)
    calls["snr_db"] = float(snr_db)
    calls["seed"] = rng.integers(0, 2**31 - 1, len(calls))
    n_samples = _lay_out(calls, params, rng)
    name = "A/A01/A01_rec1.wav"
    calls.insert(0, "call_index", np.arange(len(calls)))
    for col, value in (("animal", "A01"), ("group", "A"), ("recording", name)):
        calls.insert(0, col, value)
    duration_s = n_samples / sample_rate_hz
    recs = pd.DataFrame([{"recording": name, "group": "A", "animal": "A01", "duration_s": duration_s,
                          "n_samples": n_samples, "seed": int(rng.integers(0, 2**31 - 1))}])
    events = draw_events(name, duration_s, params.noise, rng)
    animals = pd.DataFrame([{"animal": "A01", "group": "A", "pitch_offset_hz": 0.0, "duration_factor": 1.0}])
    calls = _finish_calls(calls)
    return World(params, calls, with_reverb_tails(events, calls), recs, animals)
