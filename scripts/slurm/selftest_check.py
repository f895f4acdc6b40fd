"""Compare what the SLURM chain produced with a local ``usvpipe run`` of the same data.

    python scripts/slurm/selftest_check.py LOCAL_RUN SLURM_RUN [--store OTHER_STORE ...] [--latent-atol X]

Used by selftest.sh. Checks, each printed as one ``ok``/``FAIL`` line:

- the syllable stores are equal: same ``syllables.csv`` rows (recording, animal, group,
  onset/offset, every column) and bit-identical spectrogram images, in the same order;
  every ``--store`` given (e.g. one rebuilt after a cancelled array task) equals them too;
- the latents tables have the same rows and ``max |z_slurm - z_local| <= --latent-atol``;
- the MMD reports have the same p-value (exactly) and the same statistic within 1e-6
  relative;
- the SLURM run's train.json says it trained with the expected world size.

Exit status 1 when any check fails. Uses the top-level ``usvpipe`` API only.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import usvpipe

FAILED: list[str] = []


def check(ok: bool, what: str, detail: str = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}")
    if not ok:
        FAILED.append(what)


def compare_stores(a: Path, b: Path, label: str) -> None:
    sa, sb = usvpipe.open_store(a), usvpipe.open_store(b)
    ta, tb = sa.table.reset_index(drop=True), sb.table.reset_index(drop=True)
    same_table = list(ta.columns) == list(tb.columns) and ta.shape == tb.shape and ta.astype(str).equals(tb.astype(str))
    check(same_table, f"{label}: syllables.csv equal", f"{len(ta)} vs {len(tb)} syllables, {ta['recording'].nunique()} vs "
          f"{tb['recording'].nunique()} recordings")
    if same_table:
        ia, ib = sa.read_all(), sb.read_all()
        check(ia.shape == ib.shape and np.array_equal(ia, ib), f"{label}: spectrogram images bit-identical",
              f"{ia.shape} uint8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("local", type=Path)
    ap.add_argument("slurm", type=Path)
    ap.add_argument("--store", type=Path, action="append", default=[], help="another store that must equal the local one")
    ap.add_argument("--latent-atol", type=float, default=1e-5)
    ap.add_argument("--world-size", type=int, default=1)
    ap.add_argument("--json", type=Path, help="write the measured numbers here")
    args = ap.parse_args(argv)
    numbers: dict = {}

    compare_stores(args.local / "store", args.slurm / "store", "store (SLURM array vs local)")
    for other in args.store:
        compare_stores(args.local / "store", other, f"store {other} vs local")

    la, lb = usvpipe.read_latents(args.local / "latents.csv"), usvpipe.read_latents(args.slurm / "latents.csv")
    zc = [c for c in la.columns if c.startswith("z") and c[1:].isdigit()]
    meta = [c for c in la.columns if c not in zc]
    same_rows = list(la.columns) == list(lb.columns) and la[meta].astype(str).equals(lb[meta].astype(str))
    diff = float(np.max(np.abs(la[zc].to_numpy() - lb[zc].to_numpy()))) if same_rows and len(la) else float("nan")
    spread = float(np.std(la[zc].to_numpy())) if len(la) else float("nan")
    numbers.update(latent_max_abs_diff=diff, latent_sd=spread, n_syllables=len(la), latent_dim=len(zc))
    check(same_rows, "latents: same rows and columns", f"{len(la)} syllables x {len(zc)} dims")
    check(same_rows and diff <= args.latent_atol, f"latents: max |z_slurm - z_local| <= {args.latent_atol:g}",
          f"{diff:.3g} (latent SD {spread:.3g})")

    ra = json.loads((args.local / "mmd" / "report.json").read_text())
    rb = json.loads((args.slurm / "mmd" / "report.json").read_text())
    numbers.update(p_local=ra.get("p_value"), p_slurm=rb.get("p_value"), mmd2_local=ra.get("statistic"),
                   mmd2_slurm=rb.get("statistic"), unit=ra.get("unit"))
    check(ra.get("p_value") == rb.get("p_value"), "MMD p-value equal", f"{rb.get('p_value')} vs {ra.get('p_value')} (unit {ra.get('unit')})")
    sa_, sb_ = float(ra.get("statistic", np.nan)), float(rb.get("statistic", np.nan))
    check(abs(sa_ - sb_) <= 1e-6 * max(abs(sa_), 1e-12), "MMD statistic equal (1e-6 relative)", f"{sb_:.6g} vs {sa_:.6g}")

    tj = json.loads((args.slurm / "model" / "train.json").read_text())
    check(tj.get("world_size") == args.world_size, f"training world size {args.world_size}", f"train.json world_size={tj.get('world_size')}")

    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2))
    print(f"checks: {'all passed' if not FAILED else f'{len(FAILED)} FAILED: ' + '; '.join(FAILED)}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
