"""The product's vocal world as the data source of ``representations.py`` (``--world vocal``, the default).

Same interface as ``_rep_world.py`` (the benchmark's own 8-type world, ``--world typed``):
``TYPES``, ``BASE_USAGE``, ``SIZES``, ``SAMPLE_RATE_HZ``, ``pool_world``, ``render_recordings``,
``draw_experiment``, plus ``diagnostics`` (detection share and resampling ESS). Everything
about a call is ``usvpipe.synth``'s (``usvpipe synth --world vocal``): its 11 call types and
their parameter draws (:func:`usvpipe.synth.calls.draw_call_params`), its renderer and its
noise classes (:func:`usvpipe.synth.render.render_recording`: white background, clicks,
scratches, reverb tails, hum, gain; per-call SNR uniform in 5–30 dB), its repertoires
(:func:`~usvpipe.synth.repertoire.group_usage`, ``shift_usage``, ``draw_animal_usage``) and its
animal model and group differences (:class:`usvpipe.synth.WorldParams` defaults,
``world._apply_group_difference``). This module adds only the pool and the resampling.

The pool
--------
ONE group-blind pool of ``n`` calls. Its type counts are the product's base usage
(``group_usage``) times ``n``, rounded (largest remainder; the realised share ``q_t`` of each
type is kept in the column ``pool_type_share``). Each call's parameters come from
``draw_call_params`` (direction, apex, cycles, jump count, second-tone span, harmonic ratio
exactly as the product draws them), then four of them are redrawn on WIDENED supports, so that
every animal's support lies inside the pool's:

* mean frequency ``m``: uniform on ``[lo - M, hi + M]`` (the type's ``mean_khz``), with
  ``M`` = the largest pitch size + ``COVER_SD`` animal pitch SDs = 2 + 4 × 2 = 10 kHz;
* duration: log-uniform, ``log d`` on ``[log lo - L, log hi + L]``, ``L`` = log(1 + largest
  duration size) + ``COVER_SD`` animal log-duration SDs = log 1.1 + 4 × 0.1 = 0.495;
* FM extent and jump size: uniform on ``[lo, hi × F]``, ``F`` = 1 + the largest shape size
  (shape differences here only enlarge);
* a two-component call's second-tone side: ±1 with probability 1/2 each (the product forces
  it from the UNSHIFTED mean, see below).

SNR is uniform in 5–30 dB per call as in the product. The calls are shuffled and laid out
100 per recording by the product's layout (gaps 20 ms + exponential of mean 120 ms,
sample-aligned durations), and each recording is rendered by the product's renderer with
every noise class on. That pool goes through the real pipeline (``_rep_store``).

An animal and its density (the product's model)
-----------------------------------------------
An animal of group ``g`` has usage ``u ~ Dirichlet(50 × usage_g)`` (``usage_g`` = base usage,
or for the ``usage`` kind the base with ``size`` moved upsweep → step), its own pitch offset
``o ~ N(0, 2²)`` kHz and log-duration offset ``e ~ N(0, 0.1²)``, and the group's planted
difference: ``s = o + pitch size`` (kHz added to ``m``), ``δ = e + log(1 + duration size/100)``
(added to ``log d``), ``f = 1 + shape size`` (FM and jump multiplied). Its call of type ``t``
has ``m = m0 + s``, ``log d = log d0 + δ``, ``fm = f fm0``, ``jump = f jump0`` where
``m0, d0, fm0, jump0`` are the product's draws: so ``m`` is uniform on ``[lo + s, hi + s]``
(density ``1/(hi - lo)``), ``log d`` uniform on ``[log lo + δ, log hi + δ]`` (density
``1/(log hi - log lo)``), ``fm`` uniform on ``[f lo, f hi]`` (density ``1/(f (hi - lo))``), and
likewise ``jump``. Every other parameter has the same distribution in the animal and the pool.
The product chooses a two-component call's side from the unshifted mean ``m0 = m - s`` and
``|second|``: -1 if ``m0 + |second| > 108 kHz``, else +1 if ``m0 - |second| < 32 kHz``, else
±1 at random; so the animal's probability ``P(side | m - s, |second|)`` is 0, 1/2 or 1.

The pool's density of the same call is ``q_t`` times ``1/(pool width)`` for each of the four
parameters, times 1/2 for the side. The density ratio of a pool call ``i`` of type ``t`` is
therefore exactly::

    w_i = (u_t / q_t)  ×  Π_k 1{x_ik inside the animal's support_k} × W_tk / w_tk(animal)
                       ×  [two-component only] P_animal(side_i | m_i - s, |second_i|) / (1/2)

with ``W_tk`` the pool's width and ``w_tk`` the animal's (``hi - lo``, ``log hi - log lo``,
``f (hi - lo)``): an indicator of the animal's shifted/scaled support times a constant per type
(the side factor makes it 0, 1 or 2). Resampling the pool with probabilities ``∝ w_i`` gives
the animal's distribution of calls exactly, up to the finite pool (and up to drawing an animal's
syllables without replacement, a correction of order syllables / ESS).

Why widen by 4 SD: an animal's support leaves the pool's only when its own offset exceeds
``COVER_SD`` SDs. Such offsets are redrawn (the animals' offsets are N(0, sd²) truncated at
±4 sd: 6·10⁻⁵ of each offset's probability moved), so every animal is covered exactly.

Detection. The experiments resample the pool calls that the segmenter found and matched to
their truth. With weights taken from the pool's DESIGN density, the resampled distribution is
the animal's call distribution conditioned on detection (``∝ f(x) P(detect | x)``), which is
what a lab's pipeline gives it.

What differs from a ``usvpipe synth`` world: a real animal's calls share one recording (one
room, one gain, one hum level); an animal drawn from the pool takes its calls from many pool
recordings, so these rig factors add within-animal spread but no animal-to-animal spread.

Difference sizes (two per kind, by one principle; not tuned on outcomes)
-------------------------------------------------------------------------
Half and one animal-to-animal SD of the quantity the difference moves, in the product's units
(``WorldParams`` defaults): pitch 1 and 2 kHz (animal SD 2 kHz); duration 5 and 10 % (animal
log-duration SD 0.1 ≈ 10 %); usage one and two SDs (see SIZES), 0.05 and 0.1 of probability moved
upsweep → step (the Dirichlet SD of upsweep's usage, sqrt(0.14 × 0.86 / 51) = 0.049); shape 0.05 and 0.1 (the
product has no per-animal FM offset, so the unit is the one pitch gets when scaled to the
FM's spread: 1 and 2 kHz are 0.14 and 0.28 of the within-type mean-frequency SD, 7.2 kHz for
the 25 kHz range of most types, and 0.14 and 0.28 of the FM's coefficient of variation, 0.33
for the sweeps' 8–30 kHz, are 0.046 and 0.092).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from usvpipe.synth.calls import CALL_TYPE_TABLE, CALL_TYPES, contour_summary, draw_call_params
from usvpipe.synth.noise import draw_events
from usvpipe.synth.params import WorldParams
from usvpipe.synth.render import render_recording
from usvpipe.synth.repertoire import draw_animal_usage, group_usage, shift_usage
from usvpipe.synth.world import World, _lay_out, with_reverb_tails

#: the product's vocal world (every default: animal model, noise classes, SNR 5-30 dB, usage move)
PRODUCT = WorldParams()
SAMPLE_RATE_HZ = PRODUCT.sample_rate_hz
TYPES = CALL_TYPES
#: the pool's (and every group A's) usage: the product's base usage
BASE_USAGE = group_usage(CALL_TYPES)
#: the two sizes of each kind, in the product's units (usage: probability moved upsweep → step;
#: pitch: kHz; duration: percent; shape: relative FM/jump change): half and one animal SD (docstring),
#: except usage: one and two SDs (0.05, 0.1), because at half and one SD even the oracle test on the
#: true call types found the move in only 0.25 of 12 + 12 experiments at the larger size (0.93 at 0.1;
#: benchmarks/representations-central-claim.md): a size nobody can detect cannot rank representations.
#: The others cannot grow without a wider pool (PITCH_MARGIN_HZ etc. follow the largest size).
SIZES = {"usage": (0.05, 0.1), "pitch": (1.0, 2.0), "duration": (5.0, 10.0), "shape": (0.05, 0.1)}
#: animal offsets beyond this many SDs are redrawn, and the pool is widened to cover them
COVER_SD = 4.0
PITCH_MARGIN_HZ = 1000.0 * (max(SIZES["pitch"]) + COVER_SD * PRODUCT.animal_pitch_sd_khz)
LOG_DURATION_MARGIN = math.log1p(max(SIZES["duration"]) / 100.0) + COVER_SD * PRODUCT.animal_duration_sd
SHAPE_MAX_FACTOR = 1.0 + max(SIZES["shape"])
#: the product's side rule of a two-component call's second tone (usvpipe.synth.calls.draw_call_params;
#: tests/test_bench_rep_vocal.py checks the resampled sides against the product's own draws)
SECOND_LOW_HZ, SECOND_HIGH_HZ = 32_000.0, 108_000.0
TWO_COMPONENT = TYPES.index("two_component")


def _product_support(kind: str) -> np.ndarray:
    """Per type (rows, in TYPES order): the product's (lo, hi) of ``kind`` in Hz / log s."""
    rows = []
    for t in TYPES:
        spec = CALL_TYPE_TABLE[t]
        if kind == "log_duration":
            lo, hi = spec["duration_ms"]
            rows.append((math.log(lo / 1000.0), math.log(hi / 1000.0)))
        else:
            lo, hi = spec.get({"mean": "mean_khz", "fm": "fm_khz", "jump": "jump_khz"}[kind], (0, 0))
            rows.append((lo * 1000.0, hi * 1000.0))
    return np.array(rows, dtype=float)


#: the product's supports and the pool's widened ones, (len(TYPES), 2) each
SUPPORT = {k: _product_support(k) for k in ("mean", "log_duration", "fm", "jump")}
POOL_SUPPORT = {
    "mean": SUPPORT["mean"] + np.array([-PITCH_MARGIN_HZ, PITCH_MARGIN_HZ]),
    "log_duration": SUPPORT["log_duration"] + np.array([-LOG_DURATION_MARGIN, LOG_DURATION_MARGIN]),
    "fm": SUPPORT["fm"] * np.array([1.0, SHAPE_MAX_FACTOR]),
    "jump": SUPPORT["jump"] * np.array([1.0, SHAPE_MAX_FACTOR]),
}
#: pool column of each resampled parameter
COLUMN = {"mean": "mean_freq_hz", "log_duration": "log_duration", "fm": "fm_hz", "jump": "jump_hz"}


def _type_counts(n: int) -> np.ndarray:
    """``n × BASE_USAGE`` rounded by largest remainder (the counts sum to ``n``)."""
    raw = n * BASE_USAGE
    counts = np.floor(raw).astype(int)
    counts[np.argsort(counts - raw)[: n - counts.sum()]] += 1
    return counts


def pool_world(n: int, seed: int) -> pd.DataFrame:
    """The pool's call table (no layout yet): product parameters, four of them on widened supports."""
    rng = np.random.default_rng([seed, 35])
    counts = _type_counts(n)
    parts = []
    for t, (name, k) in enumerate(zip(TYPES, counts)):
        if k == 0:
            continue
        calls = draw_call_params(name, int(k), rng)
        for param, (lo, hi) in ((p, POOL_SUPPORT[p][t]) for p in COLUMN):
            calls[COLUMN[param]] = rng.uniform(lo, hi, int(k)) if hi > lo else lo
        calls["duration_s"] = np.exp(calls["log_duration"])
        if name == "two_component":
            calls["second_hz"] = np.abs(calls["second_hz"]) * rng.choice([-1.0, 1.0], int(k))
        calls["type_id"] = t
        calls["pool_type_share"] = k / n
        parts.append(calls)
    pool = pd.concat(parts, ignore_index=True)
    pool = pool.iloc[rng.permutation(len(pool))].reset_index(drop=True)
    lo, hi = PRODUCT.snr_db
    pool["snr_db"] = rng.uniform(lo, hi, len(pool))
    pool["seed"] = rng.integers(0, 2**31 - 1, len(pool))
    pool["pool_index"] = np.arange(len(pool))
    return pool


def oracle_values(pool: pd.DataFrame, kind: str) -> np.ndarray:
    """Per call, the true quantity a ``kind`` difference moves, centred within its call type (so an
    animal's mean is not moved by its usage): mean frequency (Hz), log duration, log FM-plus-jump
    extent. The harness's oracle compares the animals' means of it (an upper reference, not a
    representation: it knows the kind of difference and the truth)."""
    if kind == "pitch":
        value = pool["mean_freq_hz"].to_numpy(float)
    elif kind == "duration":
        value = np.log(pool["duration_s"].to_numpy(float))
    else:  # shape: FM and jumps scale together; 100 Hz keeps a flat call's log finite
        value = np.log(pool["fm_hz"].to_numpy(float) + pool["jump_hz"].to_numpy(float) + 100.0)
    types = pool["type_id"].to_numpy()
    return value - pd.Series(value).groupby(types).transform("mean").to_numpy()


def render_recordings(calls: pd.DataFrame, seed: int, calls_per_recording: int = 100):
    """Yield ``(name, audio float32, truth rows)``: the pool's calls laid out and rendered by ``usvpipe.synth``.

    Every noise class of the product is on (clicks, scratches, reverb, hum, gain) around the
    white background; the truth rows carry ``onset_s, offset_s, type_id, pool_index`` and every
    call parameter (``duration_s`` becomes the rendered, sample-aligned duration).
    """
    rng = np.random.default_rng([seed, 36])
    for r0 in range(0, len(calls), calls_per_recording):
        name = f"pool_{r0 // calls_per_recording:04d}"
        part = calls.iloc[r0 : r0 + calls_per_recording].reset_index(drop=True)
        n_samples = _lay_out(part, PRODUCT, rng)
        part[["min_freq_hz", "max_freq_hz"]] = contour_summary(part)[["min_freq_hz", "max_freq_hz"]]
        part["bandwidth_hz"] = part["max_freq_hz"] - part["min_freq_hz"]
        part["recording"], part["group"], part["animal"] = f"{name}.wav", "pool", "pool"
        duration_s = n_samples / SAMPLE_RATE_HZ
        recs = pd.DataFrame([{"recording": f"{name}.wav", "group": "pool", "animal": "pool", "duration_s": duration_s,
                              "n_samples": n_samples, "seed": int(rng.integers(0, 2**31 - 1))}])
        events = with_reverb_tails(draw_events(f"{name}.wav", duration_s, PRODUCT.noise, rng), part)
        world = World(PRODUCT, part, events, recs, pd.DataFrame())
        audio, _, _ = render_recording(world, f"{name}.wav")
        yield name, np.clip(audio, -1.0, 1.0), part


def _truncated_normal(rng, sd: float) -> float:
    """N(0, sd²) truncated at ±COVER_SD sd (redrawn beyond): the pool covers every such animal."""
    while True:
        x = rng.normal(0.0, sd)
        if abs(x) <= COVER_SD * sd:
            return x


def draw_animal(kind: str, size: float, rng) -> dict:
    """One animal of the group carrying difference ``kind``/``size`` (``none``: a reference animal).

    ``usage`` over TYPES, ``pitch_hz`` (added to every call's mean frequency), ``log_duration``
    (added to every call's log duration), ``shape`` (FM and jump factor).
    """
    usage_g = shift_usage(BASE_USAGE, TYPES, PRODUCT.usage_from, PRODUCT.usage_to, size) if kind == "usage" \
        else BASE_USAGE
    usage = draw_animal_usage(usage_g, PRODUCT.usage_concentration, rng)
    pitch_hz = 1000.0 * _truncated_normal(rng, PRODUCT.animal_pitch_sd_khz)
    log_duration = _truncated_normal(rng, PRODUCT.animal_duration_sd)
    if kind == "pitch":
        pitch_hz += 1000.0 * size
    if kind == "duration":
        log_duration += math.log1p(size / 100.0)
    return {"usage": usage, "pitch_hz": pitch_hz, "log_duration": log_duration,
            "shape": 1.0 + size if kind == "shape" else 1.0}


def animal_support(animal: dict) -> dict:
    """The animal's (lo, hi) of each resampled parameter, per type: the product's support shifted/scaled."""
    return {"mean": SUPPORT["mean"] + animal["pitch_hz"],
            "log_duration": SUPPORT["log_duration"] + animal["log_duration"],
            "fm": SUPPORT["fm"] * animal["shape"], "jump": SUPPORT["jump"] * animal["shape"]}


def _side_probability(pool: pd.DataFrame, pitch_hz: float) -> np.ndarray:
    """The animal's probability of each pool call's second-tone side (product rule on the unshifted mean)."""
    m0 = pool["mean_freq_hz"].to_numpy() - pitch_hz
    second = pool["second_hz"].to_numpy()
    p_up = np.where(m0 + np.abs(second) > SECOND_HIGH_HZ, 0.0, np.where(m0 - np.abs(second) < SECOND_LOW_HZ, 1.0, 0.5))
    return np.where(second > 0, p_up, 1.0 - p_up)


def animal_weights(pool: pd.DataFrame, animal: dict) -> np.ndarray:
    """Resampling probabilities over ``pool`` rows: the animal's call density over the pool's (docstring)."""
    t = pool["type_id"].to_numpy()
    w = animal["usage"][t] / pool["pool_type_share"].to_numpy()
    support = animal_support(animal)
    for param, column in COLUMN.items():
        lo, hi = support[param][t, 0], support[param][t, 1]
        pool_width = POOL_SUPPORT[param][t, 1] - POOL_SUPPORT[param][t, 0]
        x = pool[column].to_numpy()
        spread = hi - lo > 0  # types without this parameter (jump of a sweep) have it 0 in both
        inside = (x >= lo) & (x <= hi)
        w = w * np.where(spread, inside * pool_width / np.where(spread, hi - lo, 1.0), 1.0)
    two = t == TWO_COMPONENT
    w = np.where(two, w * _side_probability(pool, animal["pitch_hz"]) / 0.5, w)
    total = w.sum()
    return w / total if total > 0 else w


def effective_sample_size(p: np.ndarray) -> float:
    """Kish's effective sample size of resampling probabilities ``p`` (0 when all are 0)."""
    s2 = float(np.sum(p**2))
    return float(np.sum(p)) ** 2 / s2 if s2 > 0 else 0.0


def draw_experiment(pool: pd.DataFrame, kind: str, size: float, n_per_group: int, per_animal: int,
                    rng) -> pd.DataFrame:
    """Pool rows of one simulated experiment: ``row``, ``animal``, ``group`` (A = reference, B = difference)."""
    parts = []
    low = []
    for g, (k, s) in (("A", ("none", 0.0)), ("B", (kind, size))):
        for a in range(n_per_group):
            p = animal_weights(pool, draw_animal(k, s, rng))
            if effective_sample_size(p) < 3 * per_animal:
                low.append(effective_sample_size(p))
            replace = int((p > 0).sum()) < per_animal
            rows = rng.choice(len(pool), per_animal, replace=replace, p=p)
            parts.append(pd.DataFrame({"row": rows, "animal": f"{g}{a:02d}", "group": g}))
    if low:
        warnings.warn(f"{len(low)} animal(s) of a {kind} experiment resample from an effective {min(low):.0f} "
                      f"pool syllables (< 3 × {per_animal}): enlarge the pool (--syllables)", stacklevel=2)
    return pd.concat(parts, ignore_index=True)


def diagnostics(pool: pd.DataFrame, truth: pd.DataFrame, per_animal: int, kinds, seed: int,
                animals: int = 12) -> list[str]:
    """Lines for the log: share of each type's calls detected and matched, and the resampling's Kish ESS.

    ESS over ``animals`` animals of each group of each (kind, size) in ``kinds`` (own generator:
    the experiments' draws are untouched); per type, the ESS of the animal's weights on that
    type's rows (the number of the type's pool syllables inside the animal's support).
    """
    matched = pool["type_id"].value_counts().reindex(range(len(TYPES)), fill_value=0)
    rendered = truth["type_id"].value_counts().reindex(range(len(TYPES)), fill_value=0)
    lines = ["matched share per type: " + ", ".join(
        f"{t} {m / max(r, 1):.0%}" for t, m, r in zip(TYPES, matched, rendered))]
    rng = np.random.default_rng([seed, 37])
    t = pool["type_id"].to_numpy()
    overall, per_type = [], []
    for kind, size in kinds:
        for k, s in (("none", 0.0), (kind, size)):
            for _ in range(animals):
                p = animal_weights(pool, draw_animal(k, s, rng))
                overall.append(effective_sample_size(p))
                per_type.append([effective_sample_size(p[t == i]) for i in range(len(TYPES))])
    overall, per_type = np.array(overall), np.array(per_type)
    lines.append(f"resampling ESS per animal ({len(overall)} animals): min {overall.min():.0f}, "
                 f"median {np.median(overall):.0f}, pool {len(pool)}, {per_animal} syllables per animal")
    lines.append("per-type ESS (median over animals; min): " + ", ".join(
        f"{name} {np.median(per_type[:, i]):.0f};{per_type[:, i].min():.0f}" for i, name in enumerate(TYPES)))
    n_low = int((overall < 3 * per_animal).sum())
    if n_low:
        lines.append(f"WARNING: {n_low} of {len(overall)} animals have an ESS below 3 × {per_animal} syllables "
                     f"(min {overall.min():.0f}): enlarge the pool (--syllables)")
    return lines
