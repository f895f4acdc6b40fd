"""Segmentation scaling: throughput for 1, 2, ... workers and shards on this machine,
and the projected wall time of a large SLURM array job from the measured per-core rate.

    python scripts/bench/scaling.py [--minutes 4] [--recordings 8] [--nodes 20 --cores-per-node 32 --hours 1000]

It generates synthetic 250 kHz recordings (usvpipe.synth), then segments them into fresh
stores with --jobs 1, 2 (and --shard i/N run as separate processes), timing each run.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env=None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recordings", type=int, default=8)
    ap.add_argument("--minutes", type=float, default=1.0, help="audio minutes per recording")
    ap.add_argument("--workers", default="1,2", help="comma-separated --jobs values")
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--cores-per-node", type=int, default=32)
    ap.add_argument("--hours", type=float, default=1000.0)
    ap.add_argument("--fs-gb-per-s", type=float, default=2.0,
                    help="assumed aggregate read bandwidth of the cluster file system (GB/s)")
    args = ap.parse_args()

    from usvpipe.synth import make_dataset

    tmp = Path(tempfile.mkdtemp(prefix="usvpipe-scaling-"))
    data = tmp / "data"
    per_group = max(1, args.recordings // 2)
    make_dataset(data, groups=("A", "B"), animals_per_group=per_group, recordings_per_animal=1,
                 duration_s=args.minutes * 60, seed=0)
    audio_s = 2 * per_group * args.minutes * 60
    exe = [sys.executable, "-m", "usvpipe", "-q", "segment"]
    print(f"{2 * per_group} recordings, {audio_s / 60:.1f} min of 250 kHz audio, {os.cpu_count()} cores here")
    print(f"{'setup':<24}{'wall s':>10}{'x real time':>14}{'speed-up':>10}")
    base = None
    rates = {}
    for w in [int(x) for x in args.workers.split(",")]:
        dt = timed(exe + [str(data), str(tmp / f"jobs{w}"), "--jobs", str(w), "--no-progress"])
        base = base or dt
        rates[w] = audio_s / dt
        print(f"{f'--jobs {w}':<24}{dt:>10.2f}{audio_s / dt:>14.0f}{base / dt:>10.2f}")
    # two shards as two concurrent processes, as two array tasks would run
    t0 = time.perf_counter()
    procs = [subprocess.Popen(exe + [str(data), str(tmp / "shards"), "--shard", f"{i}/2", "--no-progress"], stdout=subprocess.DEVNULL)
             for i in range(2)]
    for p in procs:
        if p.wait():
            raise SystemExit("shard run failed")
    dt = time.perf_counter() - t0
    print(f"{'--shard 0/2 + 1/2':<24}{dt:>10.2f}{audio_s / dt:>14.0f}{base / dt:>10.2f}")
    per_core = rates[min(rates)]
    total_cores = args.nodes * args.cores_per_node
    audio_total_s = args.hours * 3600
    compute_min = audio_total_s / (per_core * total_cores) / 60
    tb = audio_total_s * 250e3 * 2 / 1e12
    io_min = tb * 1e12 / (args.fs_gb_per_s * 1e9) / 60
    print(f"\nmeasured per-core rate (--jobs 1, whole batch incl. images and store): {per_core:.0f}x real time")
    print(f"projection for {args.hours:.0f} h of 250 kHz 16-bit audio ({tb:.1f} TB) on {args.nodes} nodes x "
          f"{args.cores_per_node} cores (assumed):")
    print(f"  compute-bound: {compute_min:.1f} min  (measured per-core rate x {total_cores} cores, linear scaling)")
    print(f"  read-bound at an assumed {args.fs_gb_per_s:g} GB/s file system: {io_min:.1f} min")
    print(f"  => about {max(compute_min, io_min):.0f} min wall time, plus queueing")


if __name__ == "__main__":
    main()
