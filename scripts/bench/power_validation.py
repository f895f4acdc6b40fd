#!/usr/bin/env python
"""Does the planted-effect power (usvpipe.power) agree with the true power of fresh experiments?

    OMP_NUM_THREADS=1 python scripts/bench/power_validation.py                 # the record's table
    OMP_NUM_THREADS=1 python scripts/bench/power_validation.py --quick         # a smoke run (minutes less)

The world (exact truth, no audio): a population of animals, each with its own call-shape
offsets (N(0, 0.3) SD per shape parameter, as ``usvpipe synth``) and its own share of a second
call type ("long", duration and FM depth +2 SD) around 50 % (SD 10 points); every call is
rendered as a 32x32 image over 30-110 kHz (:func:`usvpipe.synth.render_call_images`). A VAE is
trained on a store of such images with the demo's recipe, and is the representation throughout.

True power: fresh experiments of 6 + 6 animals drawn without replacement from a pool of
``--pool`` animals, 40 calls each drawn afresh from each animal's own calls; group B carries
the effect in the world itself (pitch: every call rendered Δ kHz higher; usage: the long
type's share raised by δ points, calls drawn with that share); the test is
:func:`usvpipe.mmd.mmd_test` (the report's test, its own median bandwidth each time).

Planted estimate: ``--pilots`` null experiments drawn the same way (no effect anywhere) are
each a pilot; :mod:`usvpipe.power` plants the same effects into random pseudo-groups of the
pilot's 12 animals and counts rejections. The table gives the true power with its Monte Carlo
s.e., the planted estimate averaged over the pilots with its s.e. (the pilots' spread / √P)
and the pilots' range, and whether the two agree within 2 combined s.e.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SHAPE = (32, 32)
BAND = (30_000.0, 110_000.0)
ROW_KHZ = (BAND[1] - BAND[0]) / 1e3 / (SHAPE[0] - 1)  # 2.58 kHz per image row
LONG_TYPE = {"duration_s": 2.0, "fm_depth_hz": 2.0}


def make_population(n_animals: int, reservoir: int, pitch_rows, seed: int, harmonics: bool = True):
    """Per animal: its long-type share and a reservoir of normal and long calls, rendered at each pitch shift.

    A call moved Δ kHz up has its 2nd harmonic moved 2Δ; ``harmonics=False`` draws calls without one.
    """
    from usvpipe.synth import render_call_images, sample_calls

    rng = np.random.default_rng(seed)
    animals = []
    for i in range(n_animals):
        offset = rng.normal(0, 0.3, 6)
        share = float(np.clip(0.5 + rng.normal(0, 0.10), 0.1, 0.9))
        calls = {t: sample_calls(reservoir, seed=rng, animal_offset=offset,
                                 group_shift=LONG_TYPE if t == "long" else 0.0) for t in ("normal", "long")}
        if not harmonics:
            calls = {t: c.assign(harmonic_ratio=0.0) for t, c in calls.items()}
        images = {}
        for t, table in calls.items():
            for r in (0, *pitch_rows):
                moved = table.assign(start_freq_hz=table["start_freq_hz"] + r * ROW_KHZ * 1e3,
                                     end_freq_hz=table["end_freq_hz"] + r * ROW_KHZ * 1e3)
                images[t, r] = render_call_images(moved, shape=SHAPE, min_freq_hz=BAND[0], max_freq_hz=BAND[1],
                                                  seed=np.random.default_rng([seed, i, r]))
        animals.append({"share": share, "images": images, "freq": {t: (c["start_freq_hz"] + c["end_freq_hz"]) / 2e3
                                                                    for t, c in calls.items()}})
    return animals


def train_model(population, work: Path, seed: int) -> Path:
    """A VAE with the demo's recipe (32x32, 1500 steps, lr 2e-3) on every animal's unshifted calls."""
    from usvpipe.store import write_shard
    from usvpipe.vae import TrainParams, train

    store = work / "store"
    for i, a in enumerate(population):
        imgs = np.concatenate([a["images"]["normal", 0], a["images"]["long", 0]])
        onset = np.arange(len(imgs)) * 0.3
        write_shard(store, f"pop/a{i}/rec.wav", imgs, onset, onset + 0.05, animal=f"a{i}", group="pop")
    params = TrainParams(epochs=1, min_steps=1500, lr=2e-3, seed=seed)
    return train(store, work / "model", params, device="cpu", progress=False, quiet=True).model_path


def draw_experiment(population, rng, *, n_per_group: int, calls: int, pitch_rows: int = 0, usage_points: float = 0.0):
    """(images, animal, group, mean freq kHz) of a fresh experiment; group B carries the effect."""
    chosen = rng.choice(len(population), 2 * n_per_group, replace=False)
    images, animal, group, freq = [], [], [], []
    for j, idx in enumerate(chosen):
        a, is_b = population[idx], j >= n_per_group
        share = min(1.0, a["share"] + (usage_points / 100.0 if is_b else 0.0))
        n_long = rng.binomial(calls, share)
        for t, n in (("long", n_long), ("normal", calls - n_long)):
            pick = rng.choice(len(a["images"][t, 0]), n, replace=False)
            images.append(a["images"][t, pitch_rows if is_b else 0][pick])
            freq.append(a["freq"][t].to_numpy()[pick])
        animal += [f"x{j}"] * calls
        group += ["B" if is_b else "A"] * calls
    return np.concatenate(images), np.array(animal), np.array(group), np.concatenate(freq)


def true_power(population, encoder, *, kind, size, experiments, seed, n_per_group, calls):
    from usvpipe.mmd import MMDParams, mmd_test

    params = MMDParams(syllable_view=False)
    hits = 0
    for e in range(experiments):
        rng = np.random.default_rng([seed, 7, e])
        kw = {"pitch_rows": int(size)} if kind == "pitch" else {"usage_points": size}
        images, animal, group, _ = draw_experiment(population, rng, n_per_group=n_per_group, calls=calls, **kw)
        Z = encoder(images)
        frame = pd.DataFrame(Z, columns=[f"z{i}" for i in range(Z.shape[1])]).assign(animal=animal, group=group)
        hits += mmd_test(frame, params=params, health=None).reject
    return hits / experiments


def planted_powers(population, encoder, *, sizes, pilots, draws, seed, n_per_group, calls, n_clusters):
    """Per pilot, the planted power at each (kind, size)."""
    from usvpipe.power import build_pilot
    from usvpipe.power.animal_test import SplitSource
    from usvpipe.power.designs import make_design
    from usvpipe.power.search import planted_power

    out = []
    k = 2 * n_per_group
    splits = SplitSource(k, n_per_group, max_exact_splits=20_000, permutations=199)
    for p in range(pilots):
        images, animal, group, freq = draw_experiment(population, np.random.default_rng([seed, 11, p]),
                                                      n_per_group=n_per_group, calls=calls)
        pilot = build_pilot(images, animal, group, encoder, a="A", b="B", rows_per_khz=1 / ROW_KHZ, time_stretch=False,
                            mean_freq_khz=freq, max_per_animal=10_000, seed=p)
        row = {}
        for kind in ("pitch", "usage"):
            design = make_design(pilot, kind, n_clusters=n_clusters, seed=p)
            for size in sizes[kind]:
                row[kind, size] = planted_power(design, size, k_a=n_per_group, k_b=n_per_group, pilot_k=k, alpha=0.05,
                                                draws=draws, seed=p, splits=splits).power
        out.append(row)
        print(f"pilot {p + 1}/{pilots}: " + ", ".join(f"{k[0]} {k[1]:g}: {v:.2f}" for k, v in row.items()),
              file=sys.stderr, flush=True)
    return out


def _markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=int, default=48, help="animals in the population pool")
    ap.add_argument("--experiments", type=int, default=200, help="fresh experiments per effect size (true power)")
    ap.add_argument("--pilots", type=int, default=10, help="null pilots the planted estimate is averaged over")
    ap.add_argument("--draws", type=int, default=200, help="planted experiments per pilot and size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="60 experiments, 4 pilots, 100 draws")
    ap.add_argument("--no-harmonics", action="store_true", help="calls without a 2nd harmonic (see make_population)")
    ap.add_argument("--work", default=None, help="folder for the store and model (default: a temporary one)")
    args = ap.parse_args(argv)
    if args.quick:
        args.experiments, args.pilots, args.draws = 60, 4, 100
    n_per_group, calls, reservoir = 6, 40, 80
    sizes = {"pitch": [0, 1, 2, 3], "usage": [0.0, 15.0, 30.0, 45.0]}
    t0 = time.perf_counter()
    work = Path(args.work or tempfile.mkdtemp(prefix="power_validation_"))
    population = make_population(args.pool, reservoir, sizes["pitch"][1:], args.seed, harmonics=not args.no_harmonics)
    model = work / "model" / "model.pt"
    if not model.exists():
        model = train_model(population, work, args.seed)
    from usvpipe.power.io import model_encoder

    encoder = model_encoder(model)
    t_setup = time.perf_counter() - t0
    print(f"setup {t_setup:.0f} s", file=sys.stderr, flush=True)
    planted = planted_powers(population, encoder, sizes=sizes, pilots=args.pilots, draws=args.draws, seed=args.seed,
                             n_per_group=n_per_group, calls=calls, n_clusters=2)
    t_planted = time.perf_counter() - t0 - t_setup
    rows = []
    for kind in ("pitch", "usage"):
        for size in sizes[kind]:
            truth = true_power(population, encoder, kind=kind, size=size, experiments=args.experiments, seed=args.seed,
                               n_per_group=n_per_group, calls=calls)
            print(f"true {kind} {size:g}: {truth:.3f}", file=sys.stderr, flush=True)
            est = np.array([p[kind, size] for p in planted])
            se_true = math.sqrt(max(truth * (1 - truth), 1e-12) / args.experiments)
            se_est = float(est.std(ddof=1) / math.sqrt(len(est))) if len(est) > 1 else float("nan")
            within = math.sqrt(np.mean(est * (1 - est)) / args.draws)
            se_est = max(se_est, within / math.sqrt(len(est)))
            agree = abs(truth - est.mean()) <= 2 * math.hypot(se_true, se_est)
            rows.append({"kind": kind, "effect": f"{size * ROW_KHZ:.2f} kHz" if kind == "pitch" else f"{size:g} points",
                         "true power": f"{truth:.3f} ± {se_true:.3f}", "planted (mean of pilots)": f"{est.mean():.3f} ± {se_est:.3f}",
                         "pilots' range": f"{est.min():.2f}–{est.max():.2f}", "agree (2 s.e.)": "yes" if agree else "NO"})
    t_total = time.perf_counter() - t0
    table = pd.DataFrame(rows)
    print(f"# power validation: {args.pool} animals in the pool, 6 + 6 per experiment, {calls} calls each; "
          f"{args.experiments} fresh experiments per size; {args.pilots} pilots x {args.draws} planted draws; "
          f"usage planted into one of 2 k-means clusters at random" + ("; calls without harmonics" if args.no_harmonics else ""))
    print(_markdown(table))
    table.to_csv(work / "power_validation.csv", index=False)
    print(f"\nseconds: setup (render + train) {t_setup:.0f}, planted {t_planted:.0f}, total {t_total:.0f}; "
          f"load average {os.getloadavg()[0]:.2f}; work folder {work}")


if __name__ == "__main__":
    main()
