#!/usr/bin/env python
"""Stress benchmark: synthetic recordings with exact truth, one class per known failure.

Each class is a recording (default 30 s) of synthetic mouse-like calls (``usvpipe.synth``'s
call model) in white background noise, built to provoke one failure seen on real data:

``echo``
    Call trains with 30–50 ms gaps; every call is followed by a reverberant tail (a dense
    train of decaying reflections of the call, starting ~6 dB below it and decaying by
    30 dB over 20–80 ms). The tails bridge the gaps. Truth: the direct call.
``train``
    Call trains with 20–60 ms gaps (no reverberation).
``neighbours``
    Pairs of a loud call (30 dB) and a faint one 20 dB below it (10 dB), 20–80 ms apart.
``clicks``
    Calls at 20 dB plus broadband clicks (single decaying impulses of 0.1–1 ms and bursts
    of 3–5) in the gaps, 25–45 dB above the background in the band. Truth: the calls only.
``lowfreq``
    Calls at 20 dB plus low-frequency noise bursts (white noise low-passed at 25–40 kHz,
    30–300 ms, 25–40 dB above the background) in the gaps. Truth: the calls only.
``pup``
    300 kHz sampling; pup-like calls whose fundamental spans 60–125 kHz (30–120 ms).
    Scored with the default band (30–110 kHz) and with the band widened to 125 kHz.

Every class is scored (event F1: one-to-one by overlap; boundary F1: onset and offset each
within ±10 ms) for usvpipe with its defaults, for usvpipe with each optional decision of
the amplitude-threshold core switched on or off (valley splitting, call-vs-noise check;
whichever exist in this version's ``SegmentParams``), and for ``vocalpy.segment.ava`` (its
own venv, AVA's mouse defaults as in ``scripts/bench/segment.py``) on the same WAV files,
in the same run.

Usage::

    OMP_NUM_THREADS=1 python scripts/bench/segment_stress.py [--seconds 30] [--seed 0] [--classes echo,train]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import soundfile as sf  # noqa: E402

from usvpipe.evaluate import evaluate_segments  # noqa: E402
from usvpipe.synth import CallParams, sample_calls, synthesize_call  # noqa: E402

CLASSES = ("echo", "train", "neighbours", "clicks", "lowfreq", "pup")
REF_RMS = 0.1  # RMS of a call at its nominal level; the noise follows from the SNR
BAND_HZ = (30_000.0, 110_000.0)  # the band the SNR is defined in (usvpipe.synth's convention)


# --------------------------------------------------------------------------- building blocks
def _white(n: int, sr: float, snr_db: float, rng) -> np.ndarray:
    """White noise whose power inside BAND_HZ is REF_RMS**2 / 10**(snr_db / 10)."""
    band_power = REF_RMS**2 / 10 ** (snr_db / 10)
    frac = (min(BAND_HZ[1], sr / 2) - BAND_HZ[0]) / (sr / 2)
    return rng.standard_normal(n) * math.sqrt(band_power / frac)


def _call_wave(call: CallParams, sr: float, snr_db: float, ref_snr_db: float) -> np.ndarray:
    """A call scaled to ``snr_db`` relative to noise built with ``ref_snr_db``."""
    y = synthesize_call(dataclasses.replace(call, amplitude=1.0), sr).astype(np.float64)
    y *= REF_RMS * 10 ** ((snr_db - ref_snr_db) / 20) / max(math.sqrt(float(np.mean(y**2))), 1e-12)
    return y


def _calls(n: int, rng, dur_range=(0.010, 0.080)) -> list[CallParams]:
    table = sample_calls(n, seed=rng)
    out = []
    for row in table.itertuples(index=False):
        c = CallParams(*row)
        out.append(dataclasses.replace(c, duration_s=float(np.clip(c.duration_s, *dur_range))))
    return out


def _reverb(y: np.ndarray, sr: float, tail_s: float, rng, decay_db: float = 30.0) -> np.ndarray:
    """``y`` plus a dense train of reflections decaying by ``decay_db`` over ``tail_s``.

    About 2 reflections per ms; their gains are set so that the tail just after the call
    holds ~6 dB less power than the direct sound.
    """
    n_ref = int(tail_s * 2000)
    delays = np.sort(rng.uniform(0.0005, tail_s, n_ref))
    overlapping = 2000 * min(y.size / sr, tail_s)  # reflections summed at the call's end
    gains = 0.5 / math.sqrt(overlapping) * 10 ** (-decay_db / 20.0 * delays / tail_s) * rng.choice([-1.0, 1.0], n_ref)
    out = np.zeros(y.size + int(math.ceil(tail_s * sr)) + 1)
    out[: y.size] += y
    for d, g in zip(np.rint(delays * sr).astype(np.int64), gains):
        out[d : d + y.size] += g * y
    return out


def _click(sr: float, level_db: float, ref_snr_db: float, rng) -> np.ndarray:
    """A broadband click: a decaying impulse of 0.1–1 ms, ``level_db`` above the band noise."""
    length = rng.uniform(0.0001, 0.001)
    n = max(4, int(length * sr))
    y = rng.standard_normal(n) * np.exp(-np.arange(n) / (n / 4))
    noise_rms = REF_RMS / 10 ** (ref_snr_db / 20)
    return y * noise_rms * 10 ** (level_db / 20) / math.sqrt(float(np.mean(y**2)))


def _lowfreq_burst(sr: float, level_db: float, ref_snr_db: float, rng) -> np.ndarray:
    """White noise low-passed at 25–40 kHz (30–300 ms), ``level_db`` above the band noise."""
    from scipy.signal import butter, sosfilt

    n = int(rng.uniform(0.03, 0.3) * sr)
    sos = butter(6, rng.uniform(25_000, 40_000), fs=sr, output="sos")
    y = sosfilt(sos, rng.standard_normal(n + 2000))[2000:]
    ramp = min(n // 4, int(0.005 * sr))
    env = np.ones(n)
    env[:ramp] = np.linspace(0, 1, ramp)
    env[-ramp:] = np.linspace(1, 0, ramp)
    noise_rms = REF_RMS / 10 ** (ref_snr_db / 20)
    return y * env * noise_rms * 10 ** (level_db / 20) / math.sqrt(float(np.mean(y**2)))


def _place(audio: np.ndarray, y: np.ndarray, start: int) -> None:
    end = min(audio.size, start + y.size)
    audio[start:end] += y[: end - start]


# --------------------------------------------------------------------------- classes
def make_class(name: str, seconds: float = 30.0, seed: int = 0):
    """``(audio float32, sample_rate_hz, truth DataFrame onset_s/offset_s)`` of one class."""
    rng = np.random.default_rng([seed, CLASSES.index(name)])
    sr = 300_000 if name == "pup" else 250_000
    snr = 20.0
    audio = _white(int(seconds * sr), sr, snr, rng)
    truth = []
    t = 0.1
    if name in ("echo", "train"):
        while t < seconds - 1.0:
            calls = _calls(int(rng.integers(3, 7)), rng, (0.010, 0.060))
            for c in calls:
                y = _call_wave(c, sr, snr + 5.0, snr)
                start = int(t * sr)
                truth.append((start / sr, (start + int(round(c.duration_s * sr))) / sr))
                if name == "echo":
                    y = _reverb(y, sr, rng.uniform(0.020, 0.080), rng)
                _place(audio, y, start)
                gap = rng.uniform(0.030, 0.050) if name == "echo" else rng.uniform(0.020, 0.060)
                t += c.duration_s + gap
            t += rng.uniform(0.3, 0.8)  # between trains
    elif name == "neighbours":
        while t < seconds - 1.0:
            a, b = _calls(2, rng, (0.010, 0.080))
            levels = (30.0, 10.0) if rng.random() < 0.5 else (10.0, 30.0)
            for c, lev in zip((a, b), levels):
                start = int(t * sr)
                _place(audio, _call_wave(c, sr, lev, snr), start)
                truth.append((start / sr, (start + int(round(c.duration_s * sr))) / sr))
                t += c.duration_s + rng.uniform(0.020, 0.080)
            t += rng.uniform(0.2, 0.6)
    elif name in ("clicks", "lowfreq"):
        while t < seconds - 1.0:
            c = _calls(1, rng)[0]
            start = int(t * sr)
            _place(audio, _call_wave(c, sr, snr, snr), start)
            truth.append((start / sr, (start + int(round(c.duration_s * sr))) / sr))
            t += c.duration_s + rng.uniform(0.05, 0.15)
            # a distractor in the gap after the call
            if name == "clicks":
                burst = 1 if rng.random() < 0.6 else int(rng.integers(3, 6))
                for _ in range(burst):
                    _place(audio, _click(sr, rng.uniform(25, 45), snr, rng), int(t * sr))
                    t += rng.uniform(0.002, 0.004)
            else:
                y = _lowfreq_burst(sr, rng.uniform(25, 40), snr, rng)
                _place(audio, y, int(t * sr))
                t += y.size / sr
            t += rng.uniform(0.05, 0.3)
    elif name == "pup":
        while t < seconds - 1.0:
            d = rng.uniform(0.030, 0.120)
            lo = rng.uniform(60_000, 90_000)
            hi = rng.uniform(105_000, 122_000)
            f0, f1 = (lo, hi) if rng.random() < 0.5 else (hi, lo)
            c = CallParams(f0, f1, d, fm_depth_hz=rng.uniform(0, 3000), fm_rate_hz=rng.uniform(10, 40), harmonic_ratio=0.0)
            start = int(t * sr)
            _place(audio, _call_wave(c, sr, snr, snr), start)
            truth.append((start / sr, (start + int(round(d * sr))) / sr))
            t += d + rng.uniform(0.05, 0.4)
    else:
        raise ValueError(f"unknown class {name!r} (choose from {', '.join(CLASSES)})")
    keep = [(a, b) for a, b in truth if b < seconds - 0.05]
    return audio.astype(np.float32), sr, pd.DataFrame(keep, columns=["onset_s", "offset_s"])


def write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    """16-bit PCM, scaled to a 0.9 peak (the segmenters are gain-independent)."""
    sf.write(path, audio / (float(np.abs(audio).max()) / 0.9), sr, subtype="PCM_16")


# --------------------------------------------------------------------------- tools
VOCALPY_WORKER = r"""
import json, sys, time
import vocalpy as voc
out = {}
for p in json.loads(sys.argv[1]):
    sound = voc.Sound.read(p)
    t0 = time.process_time()
    segs = voc.segment.ava(sound, spect_min_val=2.0, spect_max_val=6.0)
    out[p] = {"cpu_s": time.process_time() - t0, "onset_s": [float(x) for x in segs.start_times],
              "offset_s": [float(x) for x in segs.stop_times]}
print(json.dumps(out))
"""


def run_vocalpy(python: str, paths: list[Path]) -> dict | None:
    if not Path(python).exists():
        print(f"vocalpy interpreter {python} not found: the peer is skipped", file=sys.stderr)
        return None
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    res = subprocess.run([python, "-c", VOCALPY_WORKER, json.dumps([str(p) for p in paths])],
                         capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        print(f"vocalpy failed:\n{res.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def usvpipe_variants() -> dict:
    """Name -> SegmentParams: the defaults, and each optional decision of the core flipped."""
    from usvpipe.segmentation.params import SegmentParams

    base = SegmentParams()
    names = {f.name for f in dataclasses.fields(SegmentParams)}
    out = {"usvpipe (defaults)": base}
    if "valley_db" in names:
        out["valley split " + ("off" if base.valley_db else "on (15 dB)")] = dataclasses.replace(base, valley_db=0.0 if base.valley_db else 15.0)
    if "noise_check" in names:
        out["noise check " + ("off" if base.noise_check else "on")] = dataclasses.replace(base, noise_check=not base.noise_check)
    if "valley_db" in names and "noise_check" in names:
        out["both off (neither new decision)"] = dataclasses.replace(base, valley_db=0.0, noise_check=False)
    if "trace" in names:
        other = "band_power" if base.trace == "tonal" else "tonal"
        out[f"trace {other}"] = dataclasses.replace(base, trace=other)
        out[f"trace {other}, noise check off"] = dataclasses.replace(base, trace=other, noise_check=False)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each class's recording")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--classes", default=",".join(CLASSES))
    ap.add_argument("--vocalpy-python", default="/work/benchenv/vocalpy/bin/python")
    ap.add_argument("--tolerance-s", type=float, default=0.010)
    ap.add_argument("--json", type=Path, help="also write the scores here")
    args = ap.parse_args(argv)
    from usvpipe.segmentation.detection import segment_file
    from usvpipe.segmentation.spectrogram import SpectrogramParams

    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    variants = usvpipe_variants()
    rows = []
    with tempfile.TemporaryDirectory(prefix="usvpipe-stress-") as tmp:
        files = {}
        for name in classes:
            audio, sr, truth = make_class(name, args.seconds, args.seed)
            path = Path(tmp) / f"{name}.wav"
            write_wav(path, audio, sr)
            files[name] = (path, truth)
        voc = run_vocalpy(args.vocalpy_python, [p for p, _ in files.values()])
        for params in variants.values():  # warm-up (lazy imports), untimed
            segment_file(next(iter(files.values()))[0], params)
        for name, (path, truth) in files.items():
            for label, params in variants.items():
                sps = [("", SpectrogramParams())]
                if name == "pup":
                    sps.append((" band 30-125 kHz", SpectrogramParams(max_freq_hz=125_000.0)))
                for suffix, sp in sps:
                    c0 = time.process_time()
                    segs = segment_file(path, params, sp)
                    cpu = time.process_time() - c0
                    s = evaluate_segments(segs, truth, tolerance_s=args.tolerance_s)
                    rows.append({"class": name, "tool": label + suffix, "n_true": s.n_true, "n_pred": s.n_pred,
                                 "event_f1": s.event_f1, "boundary_f1": s.boundary_f1, "cpu_s": cpu})
            if voc is not None:
                v = voc[str(path)]
                s = evaluate_segments(pd.DataFrame({"onset_s": v["onset_s"], "offset_s": v["offset_s"]}), truth,
                                      tolerance_s=args.tolerance_s)
                rows.append({"class": name, "tool": "vocalpy.segment.ava", "n_true": s.n_true, "n_pred": s.n_pred,
                             "event_f1": s.event_f1, "boundary_f1": s.boundary_f1, "cpu_s": v["cpu_s"]})
    table = pd.DataFrame(rows)
    print(f"stress benchmark: {len(classes)} class(es) x {args.seconds:g} s, seed {args.seed}; "
          f"event F1 (overlap, one-to-one) and boundary F1 (onset and offset within ±{args.tolerance_s * 1000:g} ms)")
    print(f"{'class':<11} {'tool':<34} {'true':>5} {'pred':>5} {'event F1':>9} {'bound F1':>9} {'cpu s':>7}")
    for r in table.itertuples(index=False):
        print(f"{r[0]:<11} {r.tool:<34} {r.n_true:>5} {r.n_pred:>5} {r.event_f1:>9.3f} {r.boundary_f1:>9.3f} {r.cpu_s:>7.3f}")
    us = table[table.tool == "usvpipe (defaults)"]
    vp = table[table.tool == "vocalpy.segment.ava"]
    if len(vp):
        ratio = vp.cpu_s.sum() / max(us.cpu_s.sum(), 1e-9)
        print(f"CPU time vocalpy / usvpipe (defaults) over all classes: {ratio:.1f}x")
    print("mean over classes: " + ", ".join(
        f"{tool}: event {g.event_f1.mean():.3f} / boundary {g.boundary_f1.mean():.3f}"
        for tool, g in table[~table.tool.str.contains("band")].groupby("tool", sort=False)))
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPU(s)")
    if args.json:
        args.json.write_text(table.to_json(orient="records", indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
