#!/usr/bin/env python
"""Speed of usvpipe.evaluate on large tables, vs. baselines measured in the same run.

* ``naive``: the same greedy rules with an all-pairs O(n*m) overlap/distance matrix
  (what a straightforward implementation does); same counts required.
* ``vocalpy`` (if a venv with vocalpy exists, default /work/benchenv/vocalpy):
  ``vocalpy.metrics.segmentation.ir.precision_recall_fscore`` on the sorted onset/offset
  boundary times at 10 ms. It scores a different rule (each boundary on its
  own, not onset AND offset of one syllable), so only its time is comparable; its
  F-score is printed for reference.

Usage: python scripts/bench/evaluate.py [--n 5000] [--repeats 3]
Prints seconds per call and ratios (baseline time / usvpipe time).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from usvpipe.evaluate import evaluate_segments, _greedy  # noqa: E402


def make_tables(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    dur = rng.uniform(0.005, 0.1, n)
    gap = 0.02 + rng.exponential(0.3, n)
    on = np.cumsum(gap + dur) - dur
    truth = np.column_stack([on, on + dur])
    keep = rng.random(n) > 0.1                      # 10 % missed
    pred = truth[keep] + rng.normal(0, 0.004, (keep.sum(), 2))
    extra_on = rng.uniform(0, on[-1], n // 10)       # 10 % false alarms
    pred = np.vstack([pred, np.column_stack([extra_on, extra_on + 0.01])])
    pred[:, 1] = np.maximum(pred[:, 1], pred[:, 0] + 1e-4)
    pred = pred[np.argsort(pred[:, 0])]
    return pred, truth


def naive(pred, truth, tol):
    ov = np.minimum(pred[:, None, 1], truth[None, :, 1]) - np.maximum(pred[:, None, 0], truth[None, :, 0])
    pi, tj = np.nonzero(ov > 0)
    n_event = len(_greedy(pi, tj, -ov[pi, tj], len(pred), len(truth))[0])
    d_on = np.abs(pred[:, None, 0] - truth[None, :, 0])
    d_off = np.abs(pred[:, None, 1] - truth[None, :, 1])
    pi, tj = np.nonzero((d_on <= tol + 1e-9) & (d_off <= tol + 1e-9))
    n_bound = len(_greedy(pi, tj, (d_on + d_off)[pi, tj], len(pred), len(truth))[0])
    return n_event, n_bound


def best_time(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


VOCALPY_SNIPPET = r"""
import json, sys, time
import numpy as np
from vocalpy.metrics.segmentation.ir import precision_recall_fscore, concat_starts_and_stops
d = np.load(sys.argv[1])
# Overlapping false alarms make the concatenation non-monotonic; vocalpy needs strictly
# increasing boundary times, so pass the sorted unique set of all onsets/offsets.
hyp = np.unique(d["pred"].ravel())
ref = concat_starts_and_stops(d["truth"][:, 0], d["truth"][:, 1])
best = float("inf")
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    f, n_tp, _ = precision_recall_fscore(hyp, ref, "fscore", tolerance=0.010)
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"seconds": best, "fscore": float(f)}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="reference syllables (naive baseline is O(n^2) memory)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--vocalpy-python", default="/work/benchenv/vocalpy/bin/python")
    args = ap.parse_args(argv)
    pred, truth = make_tables(args.n)
    print(f"tables: {len(pred)} predictions, {len(truth)} reference syllables "
          f"({truth[-1, 1] / 3600:.2f} h of recording)")
    t_ours, s = best_time(lambda: evaluate_segments(pred, truth, tolerance_s=0.010), args.repeats)
    print(f"usvpipe.evaluate_segments: {t_ours:.4f} s  (event F1 {s.event_f1:.3f}, boundary F1@10ms {s.boundary_f1:.3f})")
    t_naive, counts = best_time(lambda: naive(pred, truth, 0.010), args.repeats)
    same = counts == (s.n_event_matches, s.n_boundary_matches)
    print(f"naive all-pairs, same rules: {t_naive:.4f} s  ratio naive/usvpipe = {t_naive / t_ours:.1f}x  "
          f"(same counts: {same})")
    vp = Path(args.vocalpy_python)
    if vp.exists():
        with tempfile.TemporaryDirectory() as tmp:
            npz = Path(tmp) / "tables.npz"
            np.savez(npz, pred=pred, truth=truth)
            res = subprocess.run([str(vp), "-c", VOCALPY_SNIPPET, str(npz), str(args.repeats)],
                                 capture_output=True, text=True)
        if res.returncode == 0:
            out = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"vocalpy ir.precision_recall_fscore (boundaries pooled, 10 ms): {out['seconds']:.4f} s  "
                  f"ratio vocalpy/usvpipe = {out['seconds'] / t_ours:.1f}x  (its F-score {out['fscore']:.3f}; different rule)")
        else:
            print(f"vocalpy failed: {res.stderr.strip().splitlines()[-1] if res.stderr else res.returncode}")
    else:
        print(f"vocalpy: not found at {vp} (skipped)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
