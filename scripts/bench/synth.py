#!/usr/bin/env python
"""Speed of usvpipe.synth.render_call_image vs. the obvious baseline, same run.

Baseline: synthesise the call's waveform (250 kHz), take an STFT with scipy
(nperseg 512, hop 128, as a segmenter would), crop to 30-110 kHz, log-compress and
resample to 128x128 with scipy.ndimage.zoom. Both make one AVA-style syllable image.

Usage: python scripts/bench/synth.py [--n 300]
Prints images per second and the ratio (baseline time / render_call_image time).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from usvpipe.synth import render_call_image, sample_calls, synthesize_call  # noqa: E402


def stft_image(call, sr=250_000, shape=(128, 128), window_s=0.2):
    from scipy import ndimage, signal

    y = synthesize_call(call, sr)
    n = int(window_s * sr)
    x = np.zeros(max(n, len(y)), np.float32)
    start = (len(x) - len(y)) // 2
    x[start:start + len(y)] = y
    f, _, z = signal.stft(x, fs=sr, nperseg=512, noverlap=512 - 128)
    band = (f >= 30_000) & (f <= 110_000)
    s = np.log1p(50 * np.abs(z[band]) ** 2)
    s /= max(s.max(), 1e-12)
    return ndimage.zoom(s, (shape[0] / s.shape[0], shape[1] / s.shape[1]), order=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args(argv)
    calls = sample_calls(args.n, seed=0)
    rows = [r for _, r in calls.iterrows()]
    t0 = time.perf_counter()
    for r in rows:
        render_call_image(r)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    for r in rows:
        stft_image(r)
    t_base = time.perf_counter() - t0
    print(f"render_call_image: {args.n / t_ours:.0f} images/s")
    print(f"waveform + STFT baseline: {args.n / t_base:.0f} images/s")
    print(f"ratio baseline/render_call_image = {t_base / t_ours:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
