"""Call types of the vocal world: their contour families, parameter ranges and waveforms.

Every call is one row of parameters (a pandas row or mapping) with these columns:

=================  ==========================================================================
``call_type``      one of :data:`CALL_TYPES`
``duration_s``     duration of the call (s)
``mean_freq_hz``   time average of the main component's frequency contour (exact by
                   construction: every contour family has zero time-mean around it)
``fm_hz``          frequency-modulation extent of the main component's smooth part (Hz)
``jump_hz``        size of each frequency jump (Hz; 0 for types without jumps)
``n_jumps``        number of frequency jumps (0, 1 for ``step``, 2–3 for ``multi_step``)
``direction``      +1 or -1: sign of a flat call's drift, of the first jump, of a complex
                   call's first excursion
``apex``           relative time (0–1) of the chevron/U apex or of the (first) jump
``cycles``         number of modulation cycles of a ``complex`` call
``second_hz``      offset of a ``two_component`` call's second, simultaneous tone (Hz)
``second_span``    (start, end) in relative time of that second tone, as two columns
                   ``second_start`` and ``second_end``
``harmonic_ratio`` amplitude of the component at 2f relative to the fundamental (0–1)
=================  ==========================================================================

Contour families (``u`` = time / duration in [0, 1], ``m`` = ``mean_freq_hz``,
``B`` = ``fm_hz``, ``J`` = ``jump_hz``):

- ``flat``: ``m + direction * B * (u - 1/2)`` with ``B`` below the flat threshold;
- ``upsweep`` / ``downsweep``: ``m ± B * (u - 1/2)``;
- ``chevron`` / ``u_shape``: ``m ± B * (sin(pi * w(u)) - 2/pi)`` where ``w`` maps
  ``[0, apex]`` and ``[apex, 1]`` linearly onto the two halves of the hump (so the apex
  sits at ``apex`` and the time-mean of the hump is exactly ``2/pi``);
- ``step`` / ``multi_step``: piecewise-constant levels ``J`` apart (alternating direction
  for multi-step), shifted to zero time-mean, plus a linear drift of ``B``;
- ``two_component``: a near-flat main tone plus a second tone at ``m + second_hz`` during
  ``[second_start, second_end]`` (two frequencies at once, not harmonically related);
- ``harmonic``: a gentle sweep at ``m`` with a second component at ``2 f``;
- ``short``: a near-flat call of a few ms;
- ``complex``: ``m + direction * B/2 * (sin(2 pi cycles u) - its mean)`` with ``cycles``
  ≥ 1.25, so the contour changes direction at least twice.

Parameter ranges (:data:`CALL_TYPE_TABLE`) and their sources
------------------------------------------------------------

The thresholds that *define* the types follow the published classification rules; the
ranges inside each type are set by a stated principle, because per-type summary statistics
(means and SDs of duration, frequency, bandwidth, jump size per type) could not be found
in the sources reachable here (see docs/_incoming/world.md, "What was and was not found"):

=============  ============  ==========  =============  ======================================
type           duration ms   mean kHz    FM/jump kHz    definition (source) / principle
=============  ============  ==========  =============  ======================================
flat           10–80         55–85       B 0–4          < 5 kHz modulation [N20]
upsweep        10–60         55–80       B 8–30         rises by > 5 kHz [N20]
downsweep      10–60         55–80       B 8–30         falls by > 5 kHz [N20]
chevron        20–80         55–80       B 8–30         rises then falls, > 5 kHz each [N20]
u_shape        20–80         55–80       B 8–30         falls then rises, > 5 kHz each [N20]
step           20–90         55–80       J 10–25        2 elements, 1 jump, no gap [N20, G11]
multi_step     30–120        55–80       J 10–25        3–4 elements, 2–3 jumps [N20, G11]
two_component  20–80         50–75       Δ 15–30        two simultaneous components [S08]
harmonic       20–100        35–50       B 0–10         a harmonic element [N20, S08, G11]
short          2–8           55–85       B 0–5          < 10 ms whatever the shape [N20]
complex        30–120        55–80       B 8–25         ≥ 2 direction changes, > 5 kHz [N20]
=============  ============  ==========  =============  ======================================

Principle for the ranges: all calls inside the 30–110 kHz band of male song [HG05]; the
smooth types' FM starts above the 5 kHz definition threshold with a margin (8 kHz) so a
drawn upsweep is an upsweep by the published rule and not a borderline flat; jumps of
10–25 kHz so a jump is a jump at any spectrogram resolution a lab uses; durations of tens
of ms with short calls below 10 ms by definition; harmonic calls with a fundamental low
enough (mean ≤ 50 kHz, top ≤ 55 kHz) for 2f to stay ≤ 110 kHz; a two-component call's
second tone on whichever side keeps it inside 30–110 kHz. Durations log-uniform (call durations are
right-skewed), everything else uniform.

[N20] "Ultrasonic vocalizations in house mice depend upon genetic relatedness of mating
partners and correlate with subsequent reproductive success", Front. Zool. (2020),
doi:10.1186/s12983-020-00353-1, Table 2 (type definitions with numeric thresholds; their
short/flat/up/down/U/complex/harmonic rules cite earlier schemes, the c2–c5 jump classes
count elements separated by frequency jumps without a time gap).
[S08] Scattoni, Gandhy, Ricceri & Crawley (2008) PLoS ONE 3:e3067 (ten call categories,
incl. two-syllable, composite, harmonics, frequency steps).
[G11] Grimsley, Monaghan & Wenstrup (2011) PLoS ONE 6:e17460 (eleven syllable types incl.
one and multiple frequency steps; adult syllables lower and shorter than pups').
[HG05] Holy & Guo (2005) PLoS Biol 3:e386 (male song, 30–110 kHz, several syllable types,
frequency jumps).
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd

from ..errors import ConfigError

#: The call types, in the order used by usage vectors and truth tables.
CALL_TYPES = ("flat", "upsweep", "downsweep", "chevron", "u_shape", "step", "multi_step",
              "two_component", "harmonic", "short", "complex")

#: Per type: (low, high) ranges; ``duration_ms`` log-uniform, the others uniform.
#: ``fm_khz`` is the smooth FM extent, ``jump_khz`` each jump, ``second_khz`` the
#: second tone's offset, ``harmonic_ratio`` the 2f component's relative amplitude.
CALL_TYPE_TABLE: Mapping[str, Mapping[str, tuple]] = {
    "flat": {"duration_ms": (10, 80), "mean_khz": (55, 85), "fm_khz": (0, 4)},
    "upsweep": {"duration_ms": (10, 60), "mean_khz": (55, 80), "fm_khz": (8, 30)},
    "downsweep": {"duration_ms": (10, 60), "mean_khz": (55, 80), "fm_khz": (8, 30)},
    "chevron": {"duration_ms": (20, 80), "mean_khz": (55, 80), "fm_khz": (8, 30)},
    "u_shape": {"duration_ms": (20, 80), "mean_khz": (55, 80), "fm_khz": (8, 30)},
    "step": {"duration_ms": (20, 90), "mean_khz": (55, 80), "fm_khz": (0, 4), "jump_khz": (10, 25)},
    "multi_step": {"duration_ms": (30, 120), "mean_khz": (55, 80), "fm_khz": (0, 4), "jump_khz": (10, 25)},
    "two_component": {"duration_ms": (20, 80), "mean_khz": (50, 75), "fm_khz": (0, 4),
                      "second_khz": (15, 30)},
    "harmonic": {"duration_ms": (20, 100), "mean_khz": (35, 50), "fm_khz": (0, 10),
                 "harmonic_ratio": (0.3, 0.8)},
    "short": {"duration_ms": (2, 8), "mean_khz": (55, 85), "fm_khz": (0, 5)},
    "complex": {"duration_ms": (30, 120), "mean_khz": (55, 80), "fm_khz": (8, 25)},
}

#: Columns of a call's parameter row (see the module docstring).
CALL_COLUMNS = ("call_type", "duration_s", "mean_freq_hz", "fm_hz", "jump_hz", "n_jumps", "direction",
                "apex", "cycles", "second_hz", "second_start", "second_end", "harmonic_ratio")

#: The instantaneous frequency is kept inside this range (Hz) whatever the group shifts do
#: (25 kHz below the call band, 120 kHz under a 250 kHz rate's Nyquist frequency).
SAFE_FREQ_HZ = (25_000.0, 120_000.0)
#: Raised-cosine ramp at each end of a call (s; at most a quarter of the call): no clicks.
RAMP_S = 0.002
#: Time-mean of the hump sin(pi * w) over [0, 1] for any apex (each half averages 2/pi).
_HUMP_MEAN = 2.0 / math.pi


def check_call_types(call_types) -> tuple:
    """The names as a tuple, or a ConfigError naming the unknown one and the valid names."""
    names = tuple(call_types)
    unknown = [t for t in names if t not in CALL_TYPES]
    if unknown or not names:
        raise ConfigError("call_types", f"unknown or empty call type(s) {unknown or names}",
                          f"choose from {', '.join(CALL_TYPES)}")
    return names


def _uniform(rng, lo_hi, n, scale=1.0):
    lo, hi = lo_hi
    return rng.uniform(lo * scale, hi * scale, n)


def draw_call_params(call_type: str, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` parameter rows of one call type, drawn from :data:`CALL_TYPE_TABLE`."""
    spec = CALL_TYPE_TABLE[call_type]
    lo, hi = spec["duration_ms"]
    out = {
        "call_type": np.full(n, call_type, dtype=object),
        "duration_s": np.exp(rng.uniform(math.log(lo), math.log(hi), n)) / 1000.0,
        "mean_freq_hz": _uniform(rng, spec["mean_khz"], n, 1000.0),
        "fm_hz": _uniform(rng, spec.get("fm_khz", (0, 0)), n, 1000.0),
        "jump_hz": _uniform(rng, spec.get("jump_khz", (0, 0)), n, 1000.0),
        "n_jumps": np.zeros(n, dtype=np.int64),
        "direction": rng.choice([-1, 1], n).astype(np.int64),
        "apex": rng.uniform(0.3, 0.7, n),
        "cycles": np.where(call_type == "complex", rng.uniform(1.25, 2.5, n), 0.0),
        "second_hz": _uniform(rng, spec.get("second_khz", (0, 0)), n, 1000.0),
        "second_start": np.zeros(n),
        "second_end": np.zeros(n),
        "harmonic_ratio": _uniform(rng, spec.get("harmonic_ratio", (0, 0)), n),
    }
    if call_type == "step":
        out["n_jumps"][:] = 1
    elif call_type == "multi_step":
        out["n_jumps"] = rng.integers(2, 4, n)
        out["apex"] = rng.uniform(0.2, 0.4, n)  # first jump; the others follow evenly
    if call_type == "two_component":
        # the second tone lasts at least 40 % of the call and overlaps the main one
        start = rng.uniform(0.0, 0.4, n)
        out["second_start"], out["second_end"] = start, np.minimum(1.0, start + rng.uniform(0.4, 0.9, n))
        side = rng.choice([-1.0, 1.0], n)
        # the second tone goes to whichever side keeps it inside the 30-110 kHz call band
        side = np.where(out["mean_freq_hz"] - out["second_hz"] < 32_000, 1.0, side)
        out["second_hz"] *= np.where(out["mean_freq_hz"] + out["second_hz"] > 108_000, -1.0, side)
    if call_type == "harmonic":
        out["direction"][:] = 1  # harmonic calls drawn as gentle upsweeps
    return pd.DataFrame(out, columns=list(CALL_COLUMNS))


def _p(row, name: str) -> np.ndarray:
    """A parameter as a float array: a scalar for one row, ``(N, 1)`` for a batch of one type."""
    return np.asarray(row[name], dtype=float)


def _hump(u: np.ndarray, apex) -> np.ndarray:
    """sin(pi * w(u)), 0 at both ends and 1 at ``apex``; time-mean exactly 2/pi."""
    w = np.where(u <= apex, 0.5 * u / apex, 0.5 + 0.5 * (u - apex) / (1.0 - apex))
    return np.sin(np.pi * w)


def _step_levels(u: np.ndarray, row) -> np.ndarray:
    """Piecewise-constant levels ``jump_hz`` apart (multi-step alternating), with zero time-mean.

    Vectorised over a batch: up to three jumps, the unused ones pushed past u = 1.
    """
    n_jumps, first = _p(row, "n_jumps")[..., None], _p(row, "apex")[..., None]
    k = np.arange(3)
    edges = np.where(n_jumps == 1, np.where(k == 0, first, np.inf), first + (1.0 - first) * k / np.maximum(n_jumps, 1))
    edges = np.where(k < n_jumps, edges, np.inf)
    steps = np.where(k < n_jumps, _p(row, "direction")[..., None] * (-1.0) ** k * _p(row, "jump_hz")[..., None], 0.0)
    levels = np.concatenate([np.zeros_like(steps[..., :1]), np.cumsum(steps, axis=-1)], axis=-1)
    bounds = np.concatenate([np.zeros_like(edges[..., :1]), np.minimum(edges, 1.0), np.ones_like(edges[..., :1])],
                            axis=-1)
    levels = levels - np.sum(levels * np.diff(bounds, axis=-1), axis=-1, keepdims=True)
    index = np.sum(u[..., None] >= edges[..., None, :] if edges.ndim > 1 else u[..., None] >= edges, axis=-1)
    if levels.ndim == 1:
        return levels[index]
    return np.take_along_axis(levels.reshape(levels.shape[0], -1), index.reshape(levels.shape[0], -1), axis=1)


def main_contour(row, u: np.ndarray) -> np.ndarray:
    """Frequency (Hz) of a call's main component at relative times ``u`` in [0, 1].

    ``row`` is one call (scalars) or a batch of one type (each parameter ``(N, 1)``).
    """
    kind = row["call_type"] if isinstance(row["call_type"], str) else str(np.ravel(row["call_type"])[0])
    m, bw, sign = _p(row, "mean_freq_hz"), _p(row, "fm_hz"), _p(row, "direction")
    if kind in ("flat", "short", "two_component", "harmonic"):
        f = m + sign * bw * (u - 0.5)
    elif kind == "upsweep":
        f = m + bw * (u - 0.5)
    elif kind == "downsweep":
        f = m - bw * (u - 0.5)
    elif kind in ("chevron", "u_shape"):
        h = _hump(u, _p(row, "apex")) - _HUMP_MEAN
        f = m + (bw if kind == "chevron" else -bw) * h
    elif kind in ("step", "multi_step"):
        f = m + _step_levels(u, row) + sign * bw * (u - 0.5)
    elif kind == "complex":
        c = _p(row, "cycles")
        mean_sin = (1.0 - np.cos(2 * np.pi * c)) / (2 * np.pi * c)
        f = m + sign * 0.5 * bw * (np.sin(2 * np.pi * c * u) - mean_sin)
    else:
        raise ConfigError("call_type", f"unknown call type {kind!r}", f"choose from {', '.join(CALL_TYPES)}")
    return np.clip(f, *SAFE_FREQ_HZ)


def components(row, u: np.ndarray) -> list:
    """``[(frequency_hz, relative_amplitude, (start_u, end_u))]`` of every component of a call.

    The main component comes first (amplitude 1 over the whole call); the 2f harmonic and
    the second tone of a two-component call (only over its span) follow where present.
    """
    f0 = main_contour(row, u)
    parts = [(f0, 1.0, (0.0, 1.0))]
    ratio = float(row["harmonic_ratio"])
    if ratio > 0:
        parts.append((np.clip(2.0 * f0, *SAFE_FREQ_HZ), ratio, (0.0, 1.0)))
    if row["call_type"] == "two_component":
        span = (float(row["second_start"]), float(row["second_end"]))
        parts.append((np.clip(f0 + float(row["second_hz"]), *SAFE_FREQ_HZ), 1.0, span))
    return parts


def _ramp(t_s: np.ndarray, duration_s: float, start_s: float = 0.0) -> np.ndarray:
    """Raised-cosine on/off ramps of a component lasting ``[start_s, start_s + duration_s]`` (0 outside)."""
    r = max(min(RAMP_S, 0.25 * duration_s), 1e-9)
    x = np.clip(np.minimum(t_s - start_s, start_s + duration_s - t_s) / r, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def render_call(row, sample_rate_hz: float) -> np.ndarray:
    """Waveform (float64) of one call at unit main-component amplitude, without noise.

    The phase is the running sum of the instantaneous frequency, so frequency jumps are
    phase-continuous (as in a real jump: no gap, no click). Each component has its own
    raised-cosine ramps (the second tone of a two-component call ramps in and out).
    """
    n = max(1, int(round(float(row["duration_s"]) * sample_rate_hz)))
    t = (np.arange(n) + 0.5) / sample_rate_hz
    u = (np.arange(n) + 0.5) / n
    dur = n / sample_rate_hz
    y = np.zeros(n)
    for f, amp, (u0, u1) in components(row, u):
        phase = 2 * np.pi * np.cumsum(f) / sample_rate_hz
        y += amp * _ramp(t, (u1 - u0) * dur, u0 * dur) * np.sin(phase)
    return y


def contour_summary(rows: pd.DataFrame, n_points: int = 400) -> pd.DataFrame:
    """min/max frequency (Hz) over all components except the 2f harmonic, per call row.

    Computed from the contours themselves (vectorised per type), so the truth's min/max/
    bandwidth describe the call as drawn, jumps and second tones included.
    """
    u = (np.arange(n_points) + 0.5) / n_points
    lo = np.empty(len(rows))
    hi = np.empty(len(rows))
    kinds = rows["call_type"].to_numpy()
    for kind in dict.fromkeys(kinds):
        where = np.flatnonzero(kinds == kind)
        batch = {c: rows[c].to_numpy()[where][:, None] for c in CALL_COLUMNS if c != "call_type"}
        batch["call_type"] = kind
        f0 = main_contour(batch, u[None, :])
        lo[where], hi[where] = f0.min(axis=1), f0.max(axis=1)
        if kind == "two_component":
            f2 = np.clip(f0 + batch["second_hz"], *SAFE_FREQ_HZ)
            on = (u[None, :] >= batch["second_start"]) & (u[None, :] <= batch["second_end"])
            lo[where] = np.minimum(lo[where], np.where(on, f2, np.inf).min(axis=1))
            hi[where] = np.maximum(hi[where], np.where(on, f2, -np.inf).max(axis=1))
    return pd.DataFrame({"min_freq_hz": lo, "max_freq_hz": hi}, index=rows.index)
