#!/usr/bin/env python
"""Accuracy of usvpipe's default segmentation on the annotated amvoc recordings.

Prints, per recording and pooled (counts summed over recordings), event-level
precision/recall/F1 (one-to-one matching by overlap, the amvoc benchmark's rule) and
boundary-level P/R/F1 with onset and offset each within +-10 ms and +-5 ms. The
detections of the published tools shipped with the data (DeepSqueak, VocalMat, MUPET,
...) are scored with the same code for comparison.

Usage::

    python scripts/amvoc_accuracy.py [--data ../shared/data/amvoc] [--threshold-mode noise|absolute]
        [--trace tonal|band_power] [--set min_dur_s=0.003 ...] [--no-tools]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from usvpipe.annotations import read_segments  # noqa: E402
from usvpipe.evaluate import evaluate_segments, pool_scores  # noqa: E402
from usvpipe.segmentation import SegmentParams, segment_file  # noqa: E402

RECORDINGS = ("1", "2", "3", "6")
TOOLS = ("deepsqueak", "vocalmat", "mupet", "msa2", "msa1")


def score(pred_by_rec: dict, truth_by_rec: dict):
    rows = {}
    for rec in truth_by_rec:
        pred, truth = pred_by_rec[rec], truth_by_rec[rec]
        rows[rec] = (evaluate_segments(pred, truth, tolerance_s=0.010), evaluate_segments(pred, truth, tolerance_s=0.005))
    pooled = (pool_scores(r[0] for r in rows.values()), pool_scores(r[1] for r in rows.values()))
    return rows, pooled


def fmt(name: str, s10, s5) -> str:
    return (f"{name:<14} {s10.n_pred:>5} {s10.n_true:>5}  {s10.event_precision:6.3f} {s10.event_recall:6.3f} {s10.event_f1:6.3f}"
            f"   {s10.boundary_precision:6.3f} {s10.boundary_recall:6.3f} {s10.boundary_f1:6.3f}   {s5.boundary_f1:6.3f}")


HEADER = f"{'':<14} {'pred':>5} {'true':>5}  {'ev P':>6} {'ev R':>6} {'ev F1':>6}   {'b10 P':>6} {'b10 R':>6} {'b10 F1':>6}   {'b5 F1':>6}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "amvoc")
    ap.add_argument("--threshold-mode", default=None, choices=["noise", "absolute"])
    ap.add_argument("--trace", default=None, choices=["tonal", "band_power"])
    ap.add_argument("--set", action="append", default=[], help="a SegmentParams field=value (repeatable)")
    ap.add_argument("--no-tools", action="store_true", help="do not score the published tools' detections")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"amvoc data not found at {args.data} (pass --data)", file=sys.stderr)
        return 2
    kw = {k: v for k, v in (("threshold_mode", args.threshold_mode), ("trace", args.trace)) if v is not None}
    for item in args.set:
        key, value = item.split("=", 1)
        kw[key] = type(getattr(SegmentParams(), key))(value)
    params = SegmentParams(**kw)
    truth = {n: read_segments(args.data / n / f"gt_{n}.csv") for n in RECORDINGS}
    pred = {n: segment_file(args.data / n / f"rec_{n}.wav", params) for n in RECORDINGS}
    rows, pooled = score(pred, truth)
    print(f"usvpipe segment (threshold_mode={params.threshold_mode}, trace={params.trace}, {kw or 'defaults'})")
    print(HEADER)
    for n, (s10, s5) in rows.items():
        print(fmt(f"rec_{n}", s10, s5))
    print(fmt("pooled", *pooled))
    if not args.no_tools:
        print("\npublished tools on the same recordings, same scoring (pooled over 1, 2, 3, 6)")
        print(HEADER)
        for tool in TOOLS:
            files = {n: args.data / n / f"{tool}_{n}.csv" for n in RECORDINGS}
            if not all(f.exists() for f in files.values()):
                continue
            _, p = score({n: read_segments(f) for n, f in files.items()}, truth)
            print(fmt(tool, *p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
