#!/usr/bin/env python
"""Leave-one-recording-out (LORO) choice of the segmentation defaults on every annotated recording.

For each annotated recording R (the amvoc ground truth: ``N/rec_N.wav`` + ``N/gt_N.csv``):

1. every candidate parameter set of the grid below is scored on the *other* recordings
   (counts pooled over them; objective = event F1 + boundary F1 at ±10 ms);
2. the best candidate (ties: the one listed first, i.e. nearest the current defaults) is
   applied to R, and R's scores are reported. R never influences the choice made for it.

The table printed is therefore an honest estimate of accuracy on an unseen recording of the
same kind. The last lines give the candidate chosen on *all* recordings (what the package's
defaults should be if they are to follow this protocol), how often each fold chose it, and —
for reference only, in-sample — the current defaults' pooled scores.

Only segmentation parameters are searched (thresholds, merge gap, smoothing and, where this
version has them, the valley split and the call-vs-noise check); the spectrogram and noise
floor settings stay at their defaults, so one amplitude trace per recording serves every
candidate.

Usage::

    python scripts/bench/segment_loro.py [--data ../shared/data/amvoc] [--quick]
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from usvpipe.annotations import read_segments  # noqa: E402
from usvpipe.evaluate import evaluate_segments, pool_scores  # noqa: E402
from usvpipe.segmentation.detection import segment_file_with_trace, segments_from_trace  # noqa: E402
from usvpipe.segmentation.params import SegmentParams  # noqa: E402
from usvpipe.segmentation.spectrogram import SpectrogramParams  # noqa: E402

TOLERANCE_S = 0.010

#: Candidate values per parameter; the current default is put first (the tie-break).
GRID = {
    "high_threshold": (14.0, 15.0, 16.0, 17.0, 18.0, 20.0),
    "low_threshold": (10.0, 11.0, 12.0, 13.0, 14.0),
    "min_gap_s": (0.005, 0.010, 0.015, 0.020),
    "smoothing_s": (0.0, 0.001, 0.002),
    "valley_db": (0.0, 12.0, 15.0, 18.0),
    "noise_check": (False, True),
}
QUICK = {"high_threshold": (15.0, 16.0, 17.0), "low_threshold": (11.0, 12.0, 13.0), "min_gap_s": (0.010, 0.015),
         "smoothing_s": (0.001,), "valley_db": (0.0, 15.0), "noise_check": (False, True)}
#: Optional decisions of the core: the LORO protocol is repeated with each forced off / on.
ABLATIONS = {"valley_db": ("off", lambda v: v == 0.0, "on", lambda v: v > 0.0),
             "noise_check": ("off", lambda v: not v, "on", lambda v: bool(v))}


def candidates(grid: dict) -> list[SegmentParams]:
    """Every valid combination of the grid's values for the fields this SegmentParams has."""
    base = SegmentParams()
    fields = {f.name for f in dataclasses.fields(SegmentParams)}
    axes = []
    for name, values in grid.items():
        if name not in fields:
            continue
        default = getattr(base, name)
        axes.append((name, [default] + [v for v in values if v != default]))
    out = []
    for combo in itertools.product(*[v for _, v in axes]):
        kw = dict(zip([n for n, _ in axes], combo))
        if kw.get("low_threshold", base.low_threshold) > kw.get("high_threshold", base.high_threshold):
            continue
        out.append(dataclasses.replace(base, **kw))
    return out


def describe(p: SegmentParams, grid: dict) -> str:
    fields = {f.name for f in dataclasses.fields(SegmentParams)}
    return ", ".join(f"{k}={getattr(p, k)}" for k in grid if k in fields)


def load(data: Path):
    """{name: (trace, source, truth)} for every N/ with rec_N.wav and gt_N.csv."""
    recs = {}
    # the trace is computed with the lowest low threshold in the grid, so the per-frame
    # features every candidate needs are present (see usvpipe.segmentation.detection: features are kept
    # only where the trace exceeds the low threshold)
    kw = {"low_threshold": min(GRID["low_threshold"]), "high_threshold": max(GRID["high_threshold"])}
    if "noise_check" in {f.name for f in dataclasses.fields(SegmentParams)}:
        kw["noise_check"] = True
    lowest = SegmentParams(**kw)
    for d in sorted((p for p in data.iterdir() if p.is_dir()), key=lambda p: (len(p.name), p.name)):
        wav, gt = d / f"rec_{d.name}.wav", d / f"gt_{d.name}.csv"
        if wav.exists() and gt.exists():
            _, trace, source = segment_file_with_trace(wav, lowest, SpectrogramParams())
            recs[d.name] = (trace, source, read_segments(gt))
    return recs


def segment(trace, source, params):
    try:
        return segments_from_trace(trace, params, source=source)
    except TypeError:  # a version without the source argument
        return segments_from_trace(trace, params)


def objective(s10) -> float:
    return s10.event_f1 + s10.boundary_f1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "amvoc")
    ap.add_argument("--quick", action="store_true", help="a small grid (for a smoke run)")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"annotated recordings not found at {args.data} (pass --data)", file=sys.stderr)
        return 2
    grid = QUICK if args.quick else GRID
    t0 = time.perf_counter()
    recs = load(args.data)
    cands = candidates(grid)
    names = list(recs)
    # scores[i][name] = (score at 10 ms, score at 5 ms) of candidate i on recording name
    scores = []
    for p in cands:
        row = {}
        for name, (trace, source, truth) in recs.items():
            segs = segment(trace, source, p)
            row[name] = (evaluate_segments(segs, truth, tolerance_s=TOLERANCE_S), evaluate_segments(segs, truth, tolerance_s=0.005))
        scores.append(row)

    def best(on: list[str], allowed=None) -> int:
        idx = range(len(cands)) if allowed is None else allowed
        vals = {i: objective(pool_scores(scores[i][n][0] for n in on)) for i in idx}
        return max(idx, key=lambda i: (vals[i], -i))

    def loro(allowed=None):
        """Pooled left-out scores (10 ms, 5 ms) and the per-fold choices."""
        picks = [best([n for n in names if n != name], allowed) for name in names]
        return (pool_scores(scores[i][n][0] for i, n in zip(picks, names)),
                pool_scores(scores[i][n][1] for i, n in zip(picks, names)), picks)

    print(f"LORO over {len(names)} recordings ({', '.join(names)}); {len(cands)} candidate parameter sets; "
          f"objective on the training recordings: pooled event F1 + boundary F1 (±{TOLERANCE_S * 1000:g} ms)")
    print(f"{'left out':<9} {'true':>5} {'pred':>5} {'event P':>8} {'event R':>8} {'event F1':>9} {'bnd F1 10ms':>12} {'bnd F1 5ms':>11}  chosen on the others")
    left_out10, left_out5, chosen = [], [], []
    for name in names:
        i = best([n for n in names if n != name])
        chosen.append(i)
        s10, s5 = scores[i][name]
        left_out10.append(s10)
        left_out5.append(s5)
        print(f"rec_{name:<5} {s10.n_true:>5} {s10.n_pred:>5} {s10.event_precision:>8.3f} {s10.event_recall:>8.3f} {s10.event_f1:>9.3f} "
              f"{s10.boundary_f1:>12.3f} {s5.boundary_f1:>11.3f}  {describe(cands[i], grid)}")
    p10, p5 = pool_scores(left_out10), pool_scores(left_out5)
    mean_ev = sum(s.event_f1 for s in left_out10) / len(left_out10)
    mean_b = sum(s.boundary_f1 for s in left_out10) / len(left_out10)
    print(f"{'pooled':<9} {p10.n_true:>5} {p10.n_pred:>5} {p10.event_precision:>8.3f} {p10.event_recall:>8.3f} {p10.event_f1:>9.3f} "
          f"{p10.boundary_f1:>12.3f} {p5.boundary_f1:>11.3f}  (left-out counts summed)")
    print(f"mean of the left-out recordings: event F1 {mean_ev:.3f}, boundary F1 (10 ms) {mean_b:.3f}")
    i_all = best(names)
    n_same = sum(1 for i in chosen if i == i_all)
    print(f"chosen on all {len(names)} recordings: {describe(cands[i_all], grid)} (the same as {n_same} of {len(names)} folds' choices)")
    fields = {f.name for f in dataclasses.fields(SegmentParams)}
    for name, (off, is_off, on, is_on) in ABLATIONS.items():
        if name not in fields or name not in grid:
            continue
        line = []
        for label, test in ((off, is_off), (on, is_on)):
            allowed = [i for i, c in enumerate(cands) if test(getattr(c, name))]
            a10, a5, _ = loro(allowed)
            line.append(f"{label}: event F1 {a10.event_f1:.3f}, boundary F1 {a10.boundary_f1:.3f} (5 ms: {a5.boundary_f1:.3f})")
        print(f"LORO with {name} forced " + " | ".join(line))
    d = scores[0]
    d10 = pool_scores(d[n][0] for n in names)
    print(f"current defaults, in-sample (not an estimate): {describe(cands[0], grid)}: pooled event F1 {d10.event_f1:.3f}, "
          f"boundary F1 {d10.boundary_f1:.3f}")
    print(f"{time.perf_counter() - t0:.1f} s; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPU(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
