"""Run the synthetic demo at a fixed seed and compare its outputs byte for byte with a reference run.

A refactoring must not change what the pipeline computes. This script runs
``usvpipe demo`` from a source tree (``--src``, default this checkout) in a subprocess,
always in the same scratch folder (so every absolute path written into the outputs is the
same), moves the result to ``--dest``, and compares with a reference run made the same way:

    # once, from the commit before the change (e.g. a `git archive` of main in /tmp/ref_src)
    python scripts/compare_demo_outputs.py run --src /tmp/ref_src --dest /tmp/demo_ref
    # after the change
    python scripts/compare_demo_outputs.py compare --reference /tmp/demo_ref

Compared byte for byte: the segments (``store/segments.csv``), the syllables
(``store/syllables.csv``; every HDF5 shard's datasets, dtypes, shapes and attributes), the
latents (``latents.csv``), the MMD report (``mmd/report.json`` and its CSV tables), the
report (``report.md``, ``report.html``, figures embedded) and the explorer's payload (the
JSON data embedded in ``umap/explorer.html``: points, categories, thumbnails, audio clips).
A shard's file bytes are not compared: it records the WAV's modification time
(``source_mtime_ns``, for resumability), which differs whenever the demo data is
regenerated; that one attribute is left out. In the report, the "seconds" column of the
stage table is wall-clock time and is masked before comparing; everything else in it must
match. Timings files and the figure files themselves are not compared (the report embeds
the figures it shows). Exit status 0 when every file is identical, 1 otherwise (each
difference is listed).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SCRATCH = Path("/tmp/usvpipe_compare_demo/demo")
DEMO_ARGS = ["--animals-per-group", "5", "--duration-s", "10", "--epochs", "2", "--seed", "0", "--no-progress"]
COMPARED = ["store/segments.csv", "store/syllables.csv", "store/shards/*.h5", "latents.csv",
            "mmd/report.json", "mmd/*.csv", "report.md", "report.html", "umap/explorer.html"]

# the stage table's "seconds" cell: | train | ran | 45.3 | … (Markdown) and <td>train</td><td>ran</td><td>45.3</td> (HTML)
STAGE_SECONDS_MD = re.compile(r"^(\| [a-z]+ \| [^|\n]+ \| )[0-9.]+( \|)", re.M)
STAGE_SECONDS_HTML = re.compile(r"(<tr><td>[a-z]+</td><td>[^<]*</td><td>)[0-9.]+(</td>)")
EXPLORER_PAYLOAD = re.compile(rb'<script type="application/json" id="usvpipe-data">(.*?)</script>', re.S)


def run_demo(src: Path, dest: Path) -> None:
    """``usvpipe demo`` with ``src`` first on the path, in :data:`SCRATCH`, moved to ``dest``."""
    if SCRATCH.exists():
        shutil.rmtree(SCRATCH)
    SCRATCH.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(src.resolve()), MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "usvpipe", "demo", "--out", str(SCRATCH), *DEMO_ARGS]
    print("$", " ".join(cmd), f"(PYTHONPATH={src})", flush=True)
    subprocess.run(cmd, env=env, check=True, cwd=str(src))
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(SCRATCH), str(dest))


def compared_files(root: Path) -> list[str]:
    out = []
    for pattern in COMPARED:
        out += sorted(p.relative_to(root).as_posix() for p in root.glob(pattern))
    return out


# attributes that legitimately differ between two runs of the same code
VOLATILE_H5_ATTRS = {"source_mtime_ns"}


def _h5_content(path: Path) -> dict:
    """Every dataset (dtype, shape, raw bytes) and attribute of an HDF5 file, by name."""
    import h5py
    import numpy as np

    out = {}

    def attrs(name, obj):
        for k, v in obj.attrs.items():
            if k not in VOLATILE_H5_ATTRS:
                v = np.asarray(v)
                out[f"{name}@{k}"] = (v.dtype.str, v.shape, v.tobytes())

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            v = obj[()]
            v = np.asarray(v)
            out[name] = (v.dtype.str, v.shape, v.tobytes())
        attrs(name, obj)

    with h5py.File(path, "r") as f:
        attrs("", f)
        f.visititems(visit)
    return out


def _comparable_bytes(path: Path) -> bytes:
    """What is compared of a file: the report with its stage times masked, the explorer's payload, else every byte."""
    data = path.read_bytes()
    if path.name == "report.md":
        return STAGE_SECONDS_MD.sub(r"\1<seconds>\2", data.decode("utf-8")).encode("utf-8")
    if path.name == "report.html":
        return STAGE_SECONDS_HTML.sub(r"\1<seconds>\2", data.decode("utf-8")).encode("utf-8")
    if path.name == "explorer.html":
        found = EXPLORER_PAYLOAD.search(data)
        return found.group(1) if found else b"<no payload>"
    return data


def _first_difference(x: bytes, y: bytes) -> str:
    i = next((k for k, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
    return f"first at byte {i}: {x[max(0, i - 40):i + 40]!r} vs {y[max(0, i - 40):i + 40]!r}"


def _same(a: Path, b: Path) -> tuple[bool, str]:
    if a.suffix == ".h5":
        x, y = _h5_content(a), _h5_content(b)
        bad = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
        return not bad, f"HDF5 items differ: {', '.join(bad[:5])}"
    x, y = _comparable_bytes(a), _comparable_bytes(b)
    if x == y:
        return True, ""
    return False, (f"sha256 {hashlib.sha256(x).hexdigest()[:16]} vs {hashlib.sha256(y).hexdigest()[:16]}, "
                   + _first_difference(x, y))


def compare(reference: Path, candidate: Path) -> list[str]:
    """Differences between two demo output folders (empty when identical)."""
    ref, new = compared_files(reference), compared_files(candidate)
    problems = [f"only in the reference: {f}" for f in sorted(set(ref) - set(new))]
    problems += [f"only in the new run: {f}" for f in sorted(set(new) - set(ref))]
    for f in sorted(set(ref) & set(new)):
        a, b = reference / f, candidate / f
        same, why = _same(a, b)
        if not same:
            problems.append(f"differs: {f} ({why})")
    if not ref:
        problems.append(f"{reference}: no demo outputs found (fix: make it with `run --dest {reference}`)")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the demo and keep its outputs")
    r.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1])
    r.add_argument("--dest", type=Path, required=True)
    c = sub.add_parser("compare", help="run the demo from --src and compare with --reference")
    c.add_argument("--reference", type=Path, required=True)
    c.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1])
    c.add_argument("--dest", type=Path, default=Path("/tmp/usvpipe_compare_demo/new"))
    c.add_argument("--no-run", action="store_true", help="compare --dest as it is, without running the demo")
    args = ap.parse_args(argv)
    if not getattr(args, "no_run", False):
        run_demo(args.src, args.dest)
    if args.cmd == "run":
        print(f"demo outputs in {args.dest}: {len(compared_files(args.dest))} files to compare")
        return 0
    problems = compare(args.reference, args.dest)
    n = len(compared_files(args.reference))
    for p in problems:
        print(p)
    print(f"{n - len(problems)}/{n} reference files identical in {args.dest}" if problems
          else f"all {n} compared files identical (byte for byte; HDF5 shards item by item; "
               "the report with its stage times masked; the explorer's embedded payload)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
