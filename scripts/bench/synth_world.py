"""Cost of the vocal world per syllable, against the sweep world's in the same run.

Prints the time to draw the tables (simulate_world), to render one call's clip
(render_call_clip, all noise classes on), and to render whole recordings, each per
syllable, with the sweep world's synth_recording per call as the baseline, and the load
average beside every absolute time (the machine is shared).

    PYTHONPATH=. python scripts/bench/synth_world.py [--syllables 2000]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from usvpipe.synth import (WorldParams, render_call_clip, render_recording, simulate_world,  # noqa: E402
                           synth_recording)


def per_item(fn, n_items: int) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) / max(n_items, 1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--syllables", type=int, default=2000, help="calls in the world (tables)")
    ap.add_argument("--clips", type=int, default=200, help="clips rendered")
    args = ap.parse_args(argv)
    _, truth = synth_recording(30.0, seed=0)  # warm-up, and the baseline's call count
    baseline = per_item(lambda: synth_recording(30.0, seed=1), len(truth))
    params = WorldParams(animals_per_group=5, syllables_per_animal=max(1, args.syllables // 10), seed=0)
    tables = per_item(lambda: simulate_world(params), args.syllables)
    world = simulate_world(params)
    n = min(args.clips, len(world.calls))
    clip = per_item(lambda: [render_call_clip(world, i, 0.05) for i in world.calls.index[:n]], n)
    rec = world.recordings.recording[0]
    n_rec = int((world.calls.recording == rec).sum())
    whole = per_item(lambda: render_recording(world, rec), n_rec)
    load = os.getloadavg()[0]
    print(f"| step | ms per syllable | ratio to the sweep world's call | load average |")
    print("|---|---|---|---|")
    print(f"| sweep world: synth_recording (baseline) | {baseline * 1e3:.2f} | 1.00 | {load:.2f} |")
    for label, t in (("vocal world: simulate_world (tables)", tables),
                     ("vocal world: render_call_clip ±50 ms, all noise", clip),
                     ("vocal world: render_recording, all noise", whole)):
        print(f"| {label} | {t * 1e3:.2f} | {t / baseline:.2f} | {load:.2f} |")


if __name__ == "__main__":
    main()
