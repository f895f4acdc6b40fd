#!/usr/bin/env python
"""Event/boundary scores of the published detectors on the amvoc recordings we have.

Reads ../shared/data/amvoc/N/{deepsqueak,vocalmat,mupet,msa1,msa2}_N.csv and gt_N.csv
(N = 1, 2, 3, 6), scores them with usvpipe.evaluate (greedy one-to-one, largest overlap
first; boundaries within 5 and 10 ms) and prints counts pooled over the recordings.

The published event F1 values (DeepSqueak 0.90, VocalMat 0.87, MUPET 0.85, MSA2 0.84,
MSA1 0.68) are over the *full* amvoc evaluation set; these four files are a subset,
so the numbers differ.

Usage: python scripts/amvoc_peers.py [--data ../shared/data/amvoc] [--per-recording]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from usvpipe.annotations import read_segments  # noqa: E402
from usvpipe.evaluate import score_table  # noqa: E402

TOOLS = ("deepsqueak", "vocalmat", "mupet", "msa2", "msa1")
PUBLISHED_F1 = {"deepsqueak": 0.90, "vocalmat": 0.87, "mupet": 0.85, "msa2": 0.84, "msa1": 0.68}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "amvoc")
    ap.add_argument("--per-recording", action="store_true", help="also print each recording's event F1")
    args = ap.parse_args(argv)
    recs = sorted((p for p in args.data.iterdir() if p.is_dir() and (p / f"gt_{p.name}.csv").exists()),
                  key=lambda p: int(p.name) if p.name.isdigit() else p.name) if args.data.is_dir() else []
    if not recs:
        print(f"no amvoc recordings under {args.data}", file=sys.stderr)
        return 1
    print(f"amvoc recordings: {', '.join(p.name for p in recs)} (counts pooled over them)")
    head = (f"{'tool':<11}{'n_pred':>7}{'n_true':>7}{'event P':>9}{'R':>7}{'F1':>7}"
            f"{'bnd@5ms F1':>12}{'bnd@10ms F1':>13}{'published F1 (full set)':>25}")
    print(head)
    print("-" * len(head))
    per_rec = {}
    for tool in TOOLS:
        pairs = [(p.name, read_segments(p / f"{tool}_{p.name}.csv"), read_segments(p / f"gt_{p.name}.csv"))
                 for p in recs if (p / f"{tool}_{p.name}.csv").exists()]
        table = score_table(pairs, tolerances_s=(0.005, 0.010))
        tot = table.iloc[-1]
        per_rec[tool] = table.iloc[:-1]
        print(f"{tool:<11}{int(tot.n_pred):>7}{int(tot.n_true):>7}{tot.event_precision:>9.3f}{tot.event_recall:>7.3f}"
              f"{tot.event_f1:>7.3f}{tot['boundary_f1@5ms']:>12.3f}{tot['boundary_f1@10ms']:>13.3f}"
              f"{PUBLISHED_F1[tool]:>25.2f}")
    if args.per_recording:
        print("\nevent F1 per recording")
        print(f"{'tool':<11}" + "".join(f"{p.name:>8}" for p in recs))
        for tool, t in per_rec.items():
            f1 = dict(zip(t.key, t.event_f1))
            print(f"{tool:<11}" + "".join(f"{f1.get(p.name, float('nan')):>8.3f}" for p in recs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
