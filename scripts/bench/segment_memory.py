#!/usr/bin/env python
"""Peak memory of ``usvpipe segment`` on a short and a long synthetic recording (flat memory check).

Writes two 16-bit 250 kHz WAVs to a temporary folder (default ``/tmp``) *streaming* (the long
one never exists in memory): ``--short-s`` (default 180 s = 3 min) and ``--long-s`` (default
10 800 s = 3 h, ~5.4 GB, as RF64 because a WAV stops at 4 GiB). Both are built by cycling six different 30-s synthetic recordings
(``usvpipe.synth.synth_recording``, SNR 10 dB, ``--call-rate`` calls/s nominal, default 4: a
dense session, ~3.5 syllables/s realised, the density of the 30-min recording in issue 11).

Each file is then segmented by ``segment_recordings`` (segmentation + 128x128 syllable images
+ HDF5 shard + segments.csv) in a fresh Python process, which reports its own peak resident
set size (``VmHWM`` of ``/proc/self/status``; ``ru_maxrss`` is not used because Linux carries
it over from the parent across fork and exec). The ratio long/short is the figure of merit (≤ 1.2 = flat). The
free space of the folder is checked first; if the long file does not fit (with 1 GB to
spare) it is shortened to what fits, and the output says so. The WAVs are deleted at the end.

Usage::

    OMP_NUM_THREADS=1 python scripts/bench/segment_memory.py [--long-s 10800] [--short-s 180] [--tmp /tmp]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

SR = 250_000
CHUNK_S = 30.0

# Peak RSS from /proc/self/status VmHWM (this process's own address space): Linux carries
# ru_maxrss across fork + exec, so a child's ru_maxrss would include this parent's peak.
CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[3])
from usvpipe.segmentation.batch import segment_recordings
t0 = time.perf_counter()
run = segment_recordings(sys.argv[1], sys.argv[2], jobs=1, progress=False)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"maxrss_mb": hwm / 1024, "n": run.n_syllables,
                  "audio_s": run.audio_s, "time_s": time.perf_counter() - t0, "failures": run.failures}))
"""


def write_synthetic(path: Path, seconds: float, call_rate: float, seed: int = 0) -> int:
    """Stream a ``seconds``-long WAV made of six cycled 30-s synthetic pieces; returns the true call count."""
    import soundfile as sf

    from usvpipe.synth import synth_recording

    pieces, counts = [], []
    for k in range(6):
        audio, truth = synth_recording(CHUNK_S, SR, snr_db=10.0, call_rate_hz=call_rate, seed=seed + k)
        pieces.append(np.clip(audio / 4.0 * 32767, -32768, 32767).astype(np.int16))
        counts.append(len(truth))
    n_total = int(round(seconds * SR))
    written = n_calls = k = 0
    # WAV's 32-bit chunk sizes stop at 4 GiB (2.39 h at 250 kHz, 16 bit): a longer "WAV" is
    # read back truncated, so the long file is RF64 (the 64-bit WAV recorders write), which
    # soundfile and usvpipe read like a WAV
    fmt = "RF64" if n_total * 2 > 2**32 - 1024 else "WAV"
    with sf.SoundFile(path, "w", samplerate=SR, channels=1, subtype="PCM_16", format=fmt) as fh:
        while written < n_total:
            piece = pieces[k % 6][: n_total - written]
            fh.write(piece)
            if piece.size == pieces[k % 6].size:
                n_calls += counts[k % 6]
            written += piece.size
            k += 1
    return n_calls


def measure(wav: Path, out: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    inp = wav.parent / (wav.stem + "_in")
    inp.mkdir(exist_ok=True)
    link = inp / wav.name
    if not link.exists():
        os.symlink(wav, link)
    res = subprocess.run([sys.executable, "-c", CHILD, str(inp), str(out), str(REPO)], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"segmenting {wav} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short-s", type=float, default=180.0)
    ap.add_argument("--long-s", type=float, default=10_800.0)
    ap.add_argument("--call-rate", type=float, default=4.0)
    ap.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    args = ap.parse_args(argv)
    free = shutil.disk_usage(args.tmp).free
    need = args.long_s * SR * 2 + 1e9
    long_s = args.long_s
    if need > free:
        long_s = max(args.short_s, (free - 1e9) / (SR * 2))
        print(f"only {free / 1e9:.1f} GB free in {args.tmp}: the long recording is shortened to {long_s / 3600:.2f} h")
    work = Path(tempfile.mkdtemp(prefix="usvpipe-mem-", dir=args.tmp))
    try:
        results = {}
        for name, secs in (("short", args.short_s), ("long", long_s)):
            wav = work / f"{name}.wav"
            t0 = time.perf_counter()
            n_true = write_synthetic(wav, secs, args.call_rate)
            gen_s = time.perf_counter() - t0
            r = measure(wav, work / f"out_{name}")
            r["n_true"], r["gen_s"], r["seconds"] = n_true, gen_s, secs
            results[name] = r
            wav.unlink()
            if abs(r["audio_s"] - secs) > 1.0:
                print(f"{name}: only {r['audio_s']:.0f} s of the {secs:.0f} s were read", file=sys.stderr)
            print(f"{name:>5}: {secs / 60:7.1f} min of audio ({secs * SR * 2 / 1e9:.2f} GB WAV, written in {gen_s:.0f} s), "
                  f"{r['n']} syllables found ({n_true} synthesised), max RSS {r['maxrss_mb']:.0f} MB, "
                  f"{r['time_s']:.1f} s = {r['audio_s'] / r['time_s']:.0f}x real time"
                  + (f", FAILED: {r['failures']}" if r["failures"] else ""))
        ratio = results["long"]["maxrss_mb"] / results["short"]["maxrss_mb"]
        print(f"max RSS long / short = {ratio:.2f} (flat memory: <= 1.2) for {long_s / args.short_s:.0f}x the audio")
        print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPU(s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
