#!/usr/bin/env python
"""Calibration study of the usvpipe MMD test on synthetic nested latents.

    OMP_NUM_THREADS=2 python scripts/mmd_calibration.py --reps 1000
    OMP_NUM_THREADS=2 python scripts/mmd_calibration.py --reps 1000 --bandwidth median   # the 2026-11-25 record

``--bandwidth`` is the rule of tests 1-4 (default: the product's, ``MMDParams().bandwidth``, which is
``agg`` since 2026-12-06; the record benchmarks/mmd-calibration.md was measured with ``median``).

Prints rejection rates at alpha (default 0.05) with their Monte Carlo standard errors for:
  1. i.i.d. syllables, no group difference, syllable unit          (should be ~alpha)
  2. animals differ individually, no group difference, animal unit  (should be ~alpha)
  3. the same data with the syllable unit                           (anticonservative)
  4. a group shift of increasing size, animal unit                  (power)
  5. bandwidth aggregation (MMDAgg, min-p correction) under the null (should be <= alpha)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from usvpipe.mmd import MMDParams, mmd_test, permutation_test  # noqa: E402


def nested(rng, *, animals=(6, 6), per_animal=10, d=4, animal_sd=1.0, shift=0.0):
    rows = []
    for gi, (grp, k) in enumerate(zip(("A", "B"), animals)):
        for j in range(k):
            mu = rng.normal(scale=animal_sd, size=d) + (shift if gi == 0 else 0.0)
            for zz in rng.normal(size=(per_animal, d)) + mu:
                rows.append({"animal": f"{grp}{j}", "group": grp, **{f"z{i}": v for i, v in enumerate(zz)}})
    return pd.DataFrame(rows)


def rate(pvals, alpha):
    p = np.asarray(pvals)
    r = float(np.mean(p <= alpha))
    return r, float(np.sqrt(max(r * (1 - r), 1e-12) / len(p)))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--permutations", type=int, default=500)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bandwidth", default=MMDParams().bandwidth, help="bandwidth rule of tests 1-4: agg, median or h")
    args = ap.parse_args(argv)
    print(f"bandwidth rule of tests 1-4: {args.bandwidth}")
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    al = args.alpha

    def show(name, pv):
        r, se = rate(pv, al)
        print(f"{name:70s} rejection rate {r:.3f} ± {se:.3f}  ({len(pv)} reps)")

    p = [permutation_test(rng.normal(size=(60, 4)), rng.normal(size=(60, 4)), permutations=args.permutations,
                          bandwidth=args.bandwidth, seed=int(rng.integers(2**31))).p_value for _ in range(args.reps)]
    show("1. iid syllables, null, syllable unit", p)

    params = MMDParams(permutations=args.permutations, syllable_view=True, seed=None, bandwidth=args.bandwidth)
    pa, ps = [], []
    for _ in range(args.reps):
        res = mmd_test(nested(rng), params=params)
        pa.append(res.p_value)
        ps.append(res.syllable_view["p_value"])
    show("2. animal effects (sd 1), null, animal unit (6 vs 6, exact 924 splits)", pa)
    show("3. same data, syllable unit (treats syllables as independent)", ps)

    params = MMDParams(permutations=args.permutations, syllable_view=False, seed=None, bandwidth=args.bandwidth)
    for shift in (0.25, 0.5, 1.0, 1.5):
        p = [mmd_test(nested(rng, shift=shift, animal_sd=0.5), params=params).p_value for _ in range(args.reps // 4)]
        show(f"4. group shift {shift} (animal sd 0.5), animal unit", p)

    p = [permutation_test(rng.normal(size=(60, 4)), rng.normal(size=(60, 4)), permutations=args.permutations,
                          bandwidth="agg", seed=int(rng.integers(2**31))).p_value for _ in range(args.reps // 2)]
    show("5. iid null, bandwidth aggregation (5 bandwidths, min-p correction)", p)
    print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
