#!/usr/bin/env python
"""Segmentation per synthetic noise class at a fixed per-call SNR, with exact truth.

Default source (``--source world``): the vocal world's benchmark recording
(:func:`usvpipe.synth.known_calls_world`: ``--calls-per-type`` calls of each of its 11 call
types, every call at exactly ``--snr-db`` per-call SNR as the world defines it: the dry
call's mean square against the background's power in the call's own band +-5 kHz), one
recording per class with only that noise class switched on:
``clean`` (background only), ``clicks``, ``scratches``, ``reverb``, ``hum``, ``gain`` (see
:mod:`usvpipe.synth.noise` for what each is). Plus one extra class built here:

``dips``       (extra) calls of the legacy sweep model, every call longer than 40 ms with a
               near-silent stretch of 8-18 ms (20-30 dB down) near its middle: a call
               broken into pieces, which the plain 10 ms merge gap does not always bridge.

``--source own`` builds all classes here instead (the fixtures used before the vocal world
landed; SNR there is against the background's power in the whole 30-110 kHz band, so
10 dB is ~6 dB easier than the world's definition for a call spanning 10 kHz):

``clicks``     broadband clicks (decaying impulses of 0.1-1 ms, single or bursts of 3-5
               within 5 ms), 25-45 dB above the background in the band, 3 per second, in
               the gaps between calls (at least 2 ms from a call).
``scratches``  broadband noise bursts with a power-law tilt (power ~ f^-a, a in 0-2),
               20-300 ms, 15-35 dB above the background in the band, rough envelope,
               1 per second, in the gaps.
``reverb``     a reverberant tail (reflections starting 6 dB below the direct sound,
               decaying by 60 dB over RT60 = 20-40 ms).
``hum``        mains hum (50 Hz and harmonics to 5 kHz) 40 dB above the background's
               in-band power, plus 1/f room noise below 20 kHz at +20 dB.
``gain``       a 20 dB gain step at a random time (calls and background alike).

Truth is each call's own onset/offset (the synthesised waveform's first and last
sample; a tail or a dip does not change it). Scores: event F1 (one-to-one by overlap, the
amvoc rule), precision, recall, and boundary F1 with onset and offset each within
±10 ms (and ±5 ms), for each trace (``tonal`` and ``band_power``) at the package's
defaults otherwise.

Usage::

    OMP_NUM_THREADS=1 python scripts/bench/segment_noise_classes.py [--source world|own] [--calls-per-type 15]
        [--seed 0] [--snr-db 10] [--classes clean,clicks] [--set contour_max_gap_s=0 ...]
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from usvpipe.evaluate import evaluate_segments  # noqa: E402
from usvpipe.synth import CallParams, sample_calls, synthesize_call  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from segment_stress import _reverb as stress_reverb  # noqa: E402  (one reflection model for both benchmarks)

CLASSES = ("clean", "clicks", "scratches", "reverb", "hum", "gain")
EXTRA = ("dips",)
SR = 250_000
REF_RMS = 0.1  # RMS of every call; the background follows from the SNR
BAND_HZ = (30_000.0, 110_000.0)


def _background(n: int, snr_db: float, rng) -> np.ndarray:
    """White noise with in-band power REF_RMS**2 / 10**(snr_db / 10)."""
    band_power = REF_RMS**2 / 10 ** (snr_db / 10)
    return rng.standard_normal(n) * math.sqrt(band_power / ((BAND_HZ[1] - BAND_HZ[0]) / (SR / 2)))


def _band_rms(snr_db: float) -> float:
    return REF_RMS / 10 ** (snr_db / 20)


def _call(c: CallParams) -> np.ndarray:
    y = synthesize_call(dataclasses.replace(c, amplitude=1.0), SR).astype(np.float64)
    return y * REF_RMS / max(math.sqrt(float(np.mean(y**2))), 1e-12)


def _layout(seconds: float, rng):
    """Calls (CallParams, start sample) laid out with 20 ms + exponential (mean 250 ms) gaps."""
    calls = sample_calls(int(seconds * 4) + 10, seed=rng)
    out, t = [], int(0.1 * SR)
    for row in calls.itertuples(index=False):
        c = dataclasses.replace(CallParams(*row), amplitude=1.0)
        n = int(round(c.duration_s * SR))
        if t + n > int((seconds - 0.1) * SR):
            break
        out.append((c, t))
        t += n + int((0.020 + rng.exponential(0.25)) * SR)
    return out


def _click(level_db: float, snr_db: float, rng) -> np.ndarray:
    n = max(4, int(rng.uniform(0.0001, 0.001) * SR))
    y = rng.standard_normal(n) * np.exp(-np.arange(n) / (n / 4))
    # white-ish: its in-band power is ~(80/125) of its total
    return y * _band_rms(snr_db) * 10 ** (level_db / 20) / math.sqrt(float(np.mean(y**2)) * 0.64)


def _scratch(level_db: float, snr_db: float, rng) -> np.ndarray:
    n = int(rng.uniform(0.02, 0.3) * SR)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    a = rng.uniform(0.0, 2.0)
    spec *= np.maximum(f, 1000.0) ** (-a / 2)
    y = np.fft.irfft(spec, n)
    band = (f >= BAND_HZ[0]) & (f <= BAND_HZ[1])
    band_ms = float(np.sum(np.abs(spec[band]) ** 2)) * 2 / n**2
    env = np.abs(np.convolve(rng.standard_normal(n // 200 + 2), np.ones(3) / 3, "same"))
    env = np.interp(np.arange(n), np.linspace(0, n, env.size), env) * np.hanning(n) ** 0.2
    env /= math.sqrt(float(np.mean(env**2)))
    return y * env * _band_rms(snr_db) * 10 ** (level_db / 20) / math.sqrt(max(band_ms, 1e-30))


def _reverb(y: np.ndarray, rng) -> np.ndarray:
    """A room tail of RT60 20-40 ms: the stress benchmark's reflections, decaying by 60 dB over it."""
    return stress_reverb(y, SR, rng.uniform(0.020, 0.040), rng, decay_db=60.0)


def _dip(y: np.ndarray, c: CallParams, rng) -> np.ndarray:
    """A near-silent stretch of 8-18 ms (20-30 dB down, 1 ms ramps) inside calls longer than 40 ms."""
    if c.duration_s < 0.040:
        return y
    width = rng.uniform(0.008, 0.018)
    mid = rng.uniform(0.4, 0.6) * c.duration_s
    t = np.arange(y.size) / SR
    depth = 10 ** (-rng.uniform(20, 30) / 20)
    x = np.clip((np.abs(t - mid) - width / 2) / 0.001 + 1.0, 0, 1)  # 0 inside the stretch, 1 outside, 1 ms ramps
    return y * (depth + (1 - depth) * (0.5 - 0.5 * np.cos(np.pi * x)))


def _gaps(layout, n_total: int):
    """(start, stop) sample ranges between calls, 2 ms clear of them."""
    edges = [0] + [x for c, s in layout for x in (s, s + int(round(c.duration_s * SR)))] + [n_total]
    pad = int(0.002 * SR)
    return [(a + pad, b - pad) for a, b in zip(edges[0::2], edges[1::2]) if b - a > 2 * pad + int(0.01 * SR)]


def _place_in_gaps(audio, gaps, make, rate_hz: float, rng) -> None:
    total = audio.size / SR
    for _ in range(int(rate_hz * total)):
        y = make()
        fits = [(a, b) for a, b in gaps if b - a > y.size]
        if not fits:
            continue
        a, b = fits[int(rng.integers(len(fits)))]
        s = int(rng.integers(a, b - y.size))
        audio[s : s + y.size] += y


def make_world_class(name: str, calls_per_type: int = 15, seed: int = 0, snr_db: float = 10.0):
    """``(audio float32, truth onset_s/offset_s)``: the vocal world's benchmark recording
    (:func:`usvpipe.synth.known_calls_world`: ``calls_per_type`` calls of each of the 11
    call types in turn, every call at exactly ``snr_db``) under noise class ``name`` only."""
    from usvpipe.synth import known_calls_world, render_recording

    world = known_calls_world(noise=None if name == "clean" else name, snr_db=snr_db, calls_per_type=calls_per_type,
                              seed=seed)
    audio, calls, _ = render_recording(world, world.recordings.recording[0])
    return audio, calls[["onset_s", "offset_s"]].reset_index(drop=True)


def make_class(name: str, seconds: float = 30.0, seed: int = 0, snr_db: float = 10.0):
    """``(audio float32, truth DataFrame onset_s/offset_s)`` of one class at 250 kHz."""
    rng = np.random.default_rng([seed, (CLASSES + EXTRA).index(name)])
    n = int(seconds * SR)
    audio = _background(n, snr_db, rng)
    layout = _layout(seconds, rng)
    truth = []
    for c, s in layout:
        y = _call(c)
        truth.append((s / SR, (s + y.size) / SR))
        if name == "reverb":
            y = _reverb(y, rng)
        elif name == "dips":
            y = _dip(y, c, rng)
        e = min(n, s + y.size)
        audio[s:e] += y[: e - s]
    gaps = _gaps(layout, n)
    if name == "clicks":
        def click_or_burst():
            k = 1 if rng.random() < 0.5 else int(rng.integers(3, 6))
            level = rng.uniform(25, 45)
            out = np.zeros(int(0.006 * SR))
            for j in range(k):
                y = _click(level, snr_db, rng)
                s = int(j * 0.005 / max(k - 1, 1) * SR) if k > 1 else 0
                out[s : s + y.size] += y[: out.size - s]
            return out
        _place_in_gaps(audio, gaps, click_or_burst, 3.0, rng)
    elif name == "scratches":
        _place_in_gaps(audio, gaps, lambda: _scratch(rng.uniform(15, 35), snr_db, rng), 1.0, rng)
    elif name == "hum":
        t = np.arange(n) / SR
        hum = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 101))
        hum *= _band_rms(snr_db) * 10 ** (40 / 20) / math.sqrt(float(np.mean(hum**2)))
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / SR)
        room = np.fft.irfft(spec * np.where((f > 50) & (f < 20_000), 1 / np.sqrt(np.maximum(f, 50)), 0), n)
        room *= _band_rms(snr_db) * 10 ** (20 / 20) / math.sqrt(float(np.mean(room**2)))
        audio += hum + room
    elif name == "gain":
        step = int(rng.uniform(0.3, 0.7) * n)
        audio[step:] *= 10.0
    return audio.astype(np.float32), pd.DataFrame(truth, columns=["onset_s", "offset_s"])


def background_statistics(seconds: float = 30.0, seed: int = 0) -> None:
    """Print each trace's distribution on white noise alone: what the thresholds are set from."""
    from usvpipe.segmentation import SegmentParams, segment_audio
    from usvpipe.segmentation.sources import ArraySource
    from usvpipe.segmentation.spectrogram import SpectrogramParams
    from usvpipe.segmentation.trace import compute_trace

    x = (np.random.default_rng(seed).standard_normal(int(seconds * SR)) * 0.01).astype(np.float32)
    sp = SpectrogramParams()
    print(f"background only ({seconds:g} s of white noise): trace percentiles 50/99/99.9/99.99 (dB), "
          "fraction of frames above the low / high threshold, detections")
    for trace in ("tonal", "band_power"):
        p = SegmentParams(trace=trace, noise_check=False)
        amp = compute_trace(ArraySource(x), sp.geometry(SR), sp, p).amplitude
        q = np.percentile(amp, [50, 99, 99.9, 99.99])
        print(f"  {trace:<11} {q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f} / {q[3]:.2f} dB; > {p.low_threshold:g} dB: "
              f"{np.mean(amp > p.low_threshold):.4f}, > {p.high_threshold:g} dB: {np.mean(amp > p.high_threshold):.5f}; "
              f"{len(segment_audio(x, SR, SegmentParams(trace=trace)))} detection(s)")


def _parse_sets(items):
    out = {}
    for it in items or []:
        k, v = it.split("=", 1)
        for cast in (int, float):
            try:
                out[k] = cast(v)
                break
            except ValueError:
                continue
        else:
            out[k] = {"true": True, "false": False}.get(v.lower(), v)
    return out


def main(argv=None) -> int:
    from usvpipe.segmentation import SegmentParams, segment_audio

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=["world", "own"], default="world")
    ap.add_argument("--calls-per-type", type=int, default=15, help="calls of each of the 11 call types (world source)")
    ap.add_argument("--seconds", type=float, default=30.0, help="recording length (own source, and the dips class)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--snr-db", type=float, default=10.0)
    ap.add_argument("--classes", default=",".join(CLASSES + EXTRA))
    ap.add_argument("--traces", default="tonal,band_power")
    ap.add_argument("--set", action="append", help="a SegmentParams field=value applied to every trace (repeatable)")
    ap.add_argument("--background", action="store_true", help="first print each trace's statistics on white noise alone")
    args = ap.parse_args(argv)
    if args.background:
        background_statistics(seed=args.seed)
    extra = _parse_sets(args.set)
    t0 = time.perf_counter()
    names = [c for c in args.classes.split(",") if c]
    data = {c: make_world_class(c, args.calls_per_type, args.seed, args.snr_db) if args.source == "world" and c in CLASSES
            else make_class(c, args.seconds, args.seed, args.snr_db) for c in names}
    print(f"noise classes ({args.source} source; dips: own) at {args.snr_db:g} dB per-call SNR, seed {args.seed}; "
          f"settings besides the defaults: {extra or 'none'}")
    print(f"{'class':<10} {'trace':<11} {'true':>5} {'pred':>5} {'ev P':>6} {'ev R':>6} {'ev F1':>6} {'b10 F1':>7} {'b5 F1':>6}")
    means = {}
    for trace in args.traces.split(","):
        params = SegmentParams(**{**extra, "trace": trace})
        for c in names:
            audio, truth = data[c]
            segs = segment_audio(audio, SR, params)
            s10 = evaluate_segments(segs, truth, tolerance_s=0.010)
            s5 = evaluate_segments(segs, truth, tolerance_s=0.005)
            means.setdefault(trace, []).append((s10.event_f1, s10.boundary_f1))
            print(f"{c:<10} {trace:<11} {s10.n_true:>5} {s10.n_pred:>5} {s10.event_precision:>6.3f} {s10.event_recall:>6.3f} "
                  f"{s10.event_f1:>6.3f} {s10.boundary_f1:>7.3f} {s5.boundary_f1:>6.3f}")
    for trace, v in means.items():
        ev, b = np.array(v).T
        print(f"{'min':<10} {trace:<11} event F1 {ev.min():.3f}, boundary F1 (10 ms) {b.min():.3f}; mean {ev.mean():.3f} / {b.mean():.3f}")
    print(f"{time.perf_counter() - t0:.1f} s; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPU(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
