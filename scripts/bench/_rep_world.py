"""The benchmark's own 8-type world (``representations.py --world typed``; the default is the product's
vocal world, ``_rep_vocal.py``): a group-blind pool of call-typed syllables, and
animals drawn from it by exact importance resampling.

Why a pool and resampling
-------------------------
The benchmark needs thousands of simulated experiments (≥ 100 per condition, 18 conditions).
Rendering and segmenting fresh audio for each is far too slow on a CPU, and rendering clips
outside the pipeline would make images that the product never makes. So the audio of ONE pool
of syllables is rendered as recordings and goes through the real pipeline
(``usvpipe.segmentation.segment_recordings`` → store); every representation is computed once
on that store. An experiment then draws each animal's syllables from the pool with
probabilities proportional to the density ratio of the animal's call distribution over the
pool's (call type: a categorical ratio; pitch, duration and shape latents: Gaussian ratios).
Every image in every experiment is therefore an image the pipeline made, and the animal-level
distributions are exactly those asked for (up to the finite pool). Animals are drawn
independently from the same pool, so under A/A they are exchangeable and the permutation test
stays exact.

The generative model (swappable: ``pool_world`` is the one function the harness calls)
---------------------------------------------------------------------------------------
Eight call types after the published mouse USV classification schemes (Scattoni et al. 2008;
Grimsley et al. 2011; frequency jumps: Holy & Guo 2005): flat, up-sweep, down-sweep,
chevron, U-shape, frequency step (a jump between two flat parts), complex (sinusoidal FM),
short. Each call has three standard-normal latents: pitch ``zp`` (its mean frequency,
±5 kHz per unit around the type's mean), duration ``zd`` (log duration, ×exp(0.35) per unit
around the type's median) and shape ``zs`` (the type's sweep bandwidth / chevron height / jump
size / FM depth, ×exp(0.3) per unit), drawn independently, so a shape shift leaves pitch and
duration matched. Noise: white background in the call band with a per-call SNR drawn from
N(18, 5) dB clipped to 6–35 dB, broadband clicks (1 ms, 0.5 per second), low-band hum
(< 20 kHz); a second harmonic on 30 % of calls.

When the world generator of ``usvpipe.synth`` (branch ``world``) is merged, its call types can
replace ``_contour``; the resampling needs only each call's type and standard-normal latents.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

SAMPLE_RATE_HZ = 250_000
TYPES = ("flat", "up", "down", "chevron", "u_shape", "step", "complex", "short")
#: pool's (and the A groups') mean usage of each type
BASE_USAGE = np.array([0.18, 0.14, 0.10, 0.14, 0.08, 0.10, 0.14, 0.12])
#: per type: mean frequency (Hz), median duration (s), shape size (Hz): bandwidth / height / jump / FM depth
TYPE_PARAMS = {
    "flat": (68_000.0, 0.030, 2_000.0),
    "up": (66_000.0, 0.035, 12_000.0),
    "down": (70_000.0, 0.035, 12_000.0),
    "chevron": (72_000.0, 0.045, 10_000.0),
    "u_shape": (66_000.0, 0.045, 10_000.0),
    "step": (68_000.0, 0.050, 14_000.0),
    "complex": (70_000.0, 0.060, 6_000.0),
    "short": (72_000.0, 0.008, 4_000.0),
}
PITCH_HZ_PER_UNIT = 5_000.0
LOG_DUR_PER_UNIT = 0.35
LOG_SHAPE_PER_UNIT = 0.3
#: the pool's latents are wider than an animal's (sd 1) so shifted animals stay covered
POOL_SD = 1.3
LATENTS = ("zp", "zd", "zs")
#: which latent each kind of difference moves (usage moves type probabilities instead)
KIND_LATENT = {"pitch": "zp", "duration": "zd", "shape": "zs"}
#: usage difference: log-ratio direction per type (+: used more by group B)
USAGE_DIRECTION = np.array([0.0, 1.0, -1.0, 1.0, 0.0, -1.0, 0.0, 0.0])
#: the two sizes of each kind: usage in log-ratio of the moved types' use, latents in within-call sd
SIZES = {"usage": (0.3, 0.6), "pitch": (0.15, 0.3), "duration": (0.15, 0.3), "shape": (0.25, 0.5)}


@dataclass(frozen=True)
class WorldParams:
    """How animals vary (within a group) around their group's vocal repertoire."""

    usage_concentration: float = 60.0   # Dirichlet concentration of an animal's usage around its group's
    animal_sd: float = 0.25             # sd of an animal's own offset of each latent (within-call sd is 1)


def _contour(kind: str, t: np.ndarray, f0: float, size: float, rng) -> np.ndarray:
    """Instantaneous frequency (Hz) over normalised time ``t`` in [0, 1]."""
    if kind == "flat":
        return f0 + size * (t - 0.5)
    if kind == "up":
        return f0 + size * (t - 0.5)
    if kind == "down":
        return f0 - size * (t - 0.5)
    if kind == "chevron":
        return f0 - size / 2 + size * (1 - (2 * t - 1) ** 2)
    if kind == "u_shape":
        return f0 + size / 2 - size * (1 - (2 * t - 1) ** 2)
    if kind == "step":
        direction = 1.0 if rng.random() < 0.5 else -1.0
        return f0 + direction * size * np.where(t < 0.5, -0.5, 0.5)
    if kind == "complex":
        return f0 + size * np.sin(2 * np.pi * 3.0 * t)
    if kind == "short":
        return f0 + size * (t - 0.5)
    raise ValueError(kind)


def call_parameters(kind: str, zp: float, zd: float, zs: float) -> tuple[float, float, float]:
    """(mean frequency Hz, duration s, shape size Hz) of a call of ``kind`` with latents ``zp, zd, zs``."""
    f_mean, dur, size = TYPE_PARAMS[kind]
    f0 = float(np.clip(f_mean + PITCH_HZ_PER_UNIT * zp, 45_000.0, 95_000.0))
    return f0, float(dur * math.exp(LOG_DUR_PER_UNIT * zd)), float(size * math.exp(LOG_SHAPE_PER_UNIT * zs))


def _render_call(kind, f0, dur, size, harmonic, rng) -> np.ndarray:
    n = max(8, int(round(dur * SAMPLE_RATE_HZ)))
    t = np.arange(n) / n
    freq = np.clip(_contour(kind, t, f0, size, rng), 35_000.0, 105_000.0)
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE_HZ
    ramp = np.minimum(1.0, np.minimum(t, 1 - t) / 0.1)
    env = 0.5 - 0.5 * np.cos(np.pi * ramp)
    wave = np.sin(phase) + (harmonic * np.sin(2 * phase) if harmonic and 2 * freq.max() < SAMPLE_RATE_HZ / 2 else 0.0)
    return env * wave


def _noise(n: int, rng, noise_sd: float) -> np.ndarray:
    audio = rng.normal(0.0, noise_sd, n).astype(np.float32)
    tt = np.arange(n) / SAMPLE_RATE_HZ
    audio += np.float32(noise_sd * 3) * np.sin(2 * np.pi * 60 * 97 * tt, dtype=np.float64).astype(np.float32)  # hum, 5.8 kHz
    for c in rng.integers(0, max(1, n - 300), rng.poisson(0.5 * n / SAMPLE_RATE_HZ)):  # clicks: 1 ms broadband
        audio[c : c + 250] += rng.normal(0.0, noise_sd * 8, len(audio[c : c + 250])).astype(np.float32)
    return audio


def pool_calls(n: int, seed: int) -> pd.DataFrame:
    """The pool's call table: type and latents (types at :data:`BASE_USAGE`, latents N(0, POOL_SD²))."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(len(TYPES), n, p=BASE_USAGE / BASE_USAGE.sum())
    z = rng.normal(0.0, POOL_SD, (n, 3))
    table = pd.DataFrame({"type_id": kinds, "type": [TYPES[k] for k in kinds], "zp": z[:, 0], "zd": z[:, 1], "zs": z[:, 2]})
    params = [call_parameters(t, *row) for t, row in zip(table["type"], z)]
    table["f0_hz"], table["duration_s"], table["shape_hz"] = map(np.array, zip(*params))
    table["snr_db"] = np.clip(rng.normal(18.0, 5.0, n), 6.0, 35.0)
    table["harmonic"] = np.where(rng.random(n) < 0.3, rng.uniform(0.1, 0.4, n), 0.0)
    return table


def render_recordings(calls: pd.DataFrame, seed: int, calls_per_recording: int = 100):
    """Yield ``(name, audio float32, truth rows)``: the pool's calls laid out as recordings."""
    rng = np.random.default_rng(seed + 1)
    noise_sd = 0.01
    # band noise power of white noise of variance s² inside 30-110 kHz: s² * 80/125
    band_power = noise_sd**2 * 80.0 / 125.0
    for r0 in range(0, len(calls), calls_per_recording):
        part = calls.iloc[r0 : r0 + calls_per_recording].copy()
        gaps = 0.04 + rng.exponential(0.08, len(part))
        onsets = 0.1 + np.cumsum(gaps) + np.r_[0.0, np.cumsum(part["duration_s"].to_numpy())[:-1]]
        total = onsets[-1] + part["duration_s"].iloc[-1] + 0.2
        audio = _noise(int(total * SAMPLE_RATE_HZ), rng, noise_sd)
        for on, row in zip(onsets, part.itertuples()):
            wave = _render_call(row.type, row.f0_hz, row.duration_s, row.shape_hz, row.harmonic, rng)
            amp = math.sqrt(band_power * 10 ** (row.snr_db / 10) / max(np.mean(wave**2), 1e-12))
            i = int(on * SAMPLE_RATE_HZ)
            audio[i : i + wave.size] += (amp * wave).astype(np.float32)
        part["onset_s"] = onsets
        part["offset_s"] = onsets + part["duration_s"].to_numpy()
        part["pool_index"] = np.arange(r0, r0 + len(part))
        yield f"pool_{r0 // calls_per_recording:04d}", np.clip(audio, -1.0, 1.0), part


def pool_world(n: int, seed: int) -> pd.DataFrame:
    """THE swappable data source: the pool's truth table (see :func:`render_recordings` for audio)."""
    return pool_calls(n, seed)


def oracle_values(pool: pd.DataFrame, kind: str) -> np.ndarray:
    """Per call, the true latent a ``kind`` difference moves (the harness's oracle compares the animals'
    means of it: an upper reference that knows the kind of difference and the truth)."""
    return pool[KIND_LATENT[kind]].to_numpy(float)


def animal_weights(pool: pd.DataFrame, usage: np.ndarray, mean: dict) -> np.ndarray:
    """Sampling probabilities over the pool that turn it into an animal with type ``usage`` and latent ``mean``.

    The animal's calls: type ~ ``usage``; each latent ~ N(mean, 1), independently.
    The pool's: type ~ BASE_USAGE, latents ~ N(0, POOL_SD²). Weight = density ratio.
    """
    base = BASE_USAGE / BASE_USAGE.sum()
    logw = np.log(usage[pool["type_id"].to_numpy()] / base[pool["type_id"].to_numpy()])
    for name in LATENTS:
        z = pool[name].to_numpy()
        logw += -0.5 * (z - mean.get(name, 0.0)) ** 2 + 0.5 * (z / POOL_SD) ** 2
    w = np.exp(logw - logw.max())
    return w / w.sum()


def group_design(kind: str, size: float) -> tuple[np.ndarray, dict]:
    """Group B's type usage and latent means for a difference of ``kind`` and ``size`` (group A: base, 0)."""
    base = BASE_USAGE / BASE_USAGE.sum()
    if kind == "usage":
        u = base * np.exp(size * USAGE_DIRECTION)
        return u / u.sum(), {}
    if kind == "none":
        return base, {}
    return base, {KIND_LATENT[kind]: size}


def draw_experiment(pool: pd.DataFrame, kind: str, size: float, n_per_group: int, per_animal: int, rng,
                    world: WorldParams = WorldParams()) -> pd.DataFrame:
    """Pool rows of one simulated experiment: ``row``, ``animal``, ``group`` (A = base, B = base + difference)."""
    parts = []
    for g, (usage, mean) in (("A", group_design("none", 0.0)), ("B", group_design(kind, size))):
        for a in range(n_per_group):
            own_usage = rng.dirichlet(world.usage_concentration * usage)
            own_usage = np.maximum(own_usage, 1e-6)
            own_mean = {k: mean.get(k, 0.0) + rng.normal(0.0, world.animal_sd) for k in LATENTS}
            p = animal_weights(pool, own_usage / own_usage.sum(), own_mean)
            rows = rng.choice(len(pool), per_animal, replace=False, p=p) if (p > 0).sum() >= per_animal else \
                rng.choice(len(pool), per_animal, replace=True, p=p)
            parts.append(pd.DataFrame({"row": rows, "animal": f"{g}{a:02d}", "group": g}))
    return pd.concat(parts, ignore_index=True)


def effective_sample_size(p: np.ndarray) -> float:
    """Kish's effective sample size of resampling weights ``p`` (how much of the pool an animal really uses)."""
    return float(1.0 / np.sum(p**2))
