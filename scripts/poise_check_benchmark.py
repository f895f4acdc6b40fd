#!/usr/bin/env python
"""The held-out cross-generation check of ``poise train``: its figures in benchmarks/poise-heldout-check.md.

Three parts, each printing what that record reports:

* ``--part calibration``: the permutation p-value under the null (generations independent of
  their partners): the share of ``--null-sets`` random data sets (30 items of 4 values, 99
  re-pairings each) with p <= 1 %, 5 % and 20 %.
* ``--part mnist``: the MNIST modes pairs at radius 2 (``poise_modes.py``'s data, data seed 0;
  the reference setting, 2 + 2 latents, 40 epochs) and the same pairs with the points shuffled
  across digits; each model in ``--models`` trained by ``train_poise`` with the default
  ``heldout_fraction`` (0.1) for each of ``--seeds``; the skill and p of each direction, and
  mean +- s.d. over the seeds.
* ``--part files``: ``poise_video_pairs.py``'s synthetic WAVs + bar videos (``--recordings``
  recordings of ``--duration-s`` s) through ``segment`` and ``poise pairs``; POISE with subset
  ELBOs and ``heldout_fraction`` 0.25 (whole recordings held out), on the real pairs and on the
  same pairs with each recording's frames shuffled among its own syllables (a broken sync).

    OMP_NUM_THREADS=1 python scripts/poise_check_benchmark.py --part calibration
    OMP_NUM_THREADS=1 python scripts/poise_check_benchmark.py --part mnist --seeds 0 1 2   # ~15 min on one core
    OMP_NUM_THREADS=1 python scripts/poise_check_benchmark.py --part files                 # ~8 min on one core
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

#: ``--part mnist`` models: name -> PoiseParams settings on top of the reference setting
MNIST_MODELS = {
    "poise": {},
    "poise+subset+full": {"subset_elbos": True, "full_coupling": True},
    "mvae": {"model": "mvae"},
    "mmvae": {"model": "mmvae"},
}
REFERENCE = dict(latent_dim_1=2, latent_dim_2=2, hidden_units=256, epochs=40, batch_size=256, learning_rate=8e-4,
                 likelihood_1="bernoulli", obs_sd=0.45)


def calibration(n_sets: int) -> None:
    from usvpipe.poise.check import permutation_skill

    rng = np.random.default_rng(7)
    ps = np.array([permutation_skill(rng.standard_normal((30, 4)), rng.standard_normal((30, 4)), n_permutations=99,
                                     seed=int(rng.integers(1 << 30)))[1] for _ in range(n_sets)])
    print(json.dumps({"part": "calibration", "null_sets": n_sets,
                      **{f"rejected_at_{a:g}": round(float(np.mean(ps <= a)), 4) for a in (0.01, 0.05, 0.2)}}))


def _row(name, check, seconds):
    d = {x.target: x for x in check.directions}
    return {"model": name, "x2<-x1 skill": d["x2"].skill, "x2<-x1 p": d["x2"].p_value,
            "x1<-x2 skill": d["x1"].skill, "x1<-x2 p": d["x1"].p_value, "passed": check.passed,
            "reconstruction": dict(check.reconstruction), "n_heldout": check.n_heldout,
            "train_s": round(seconds, 1), "load1": round(os.getloadavg()[0], 2)}


def mnist(models, seeds) -> None:
    from poise_modes import make_mnist_gaussians

    from usvpipe.poise import PairedData, PoiseParams, train_poise

    data = make_mnist_gaussians(2.0, seed=0)
    x1 = data.x1.reshape(len(data.x1), -1)
    real = PairedData(x1, data.x2)
    shuffled = PairedData(x1, data.x2[np.random.default_rng(0).permutation(len(x1))])
    rows = []
    for pairs_name, pairs in (("real", real), ("points shuffled", shuffled)):
        for name in models:
            for seed in seeds:
                t0 = time.perf_counter()
                run = train_poise(pairs, None, PoiseParams(**{**REFERENCE, **MNIST_MODELS[name]}, seed=seed))
                row = {"pairs": pairs_name, "seed": seed, **_row(name, run.check, time.perf_counter() - t0)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\npairs, model: point<-digit (x2<-x1) skill, digit<-point (x1<-x2) skill (mean +- s.d. over seeds); "
          "p range; passed")
    for pairs_name in ("real", "points shuffled"):
        for name in models:
            group = [r for r in rows if r["pairs"] == pairs_name and r["model"] == name]
            a = np.array([r["x2<-x1 skill"] for r in group])
            b = np.array([r["x1<-x2 skill"] for r in group])
            ps = [r[k] for r in group for k in ("x2<-x1 p", "x1<-x2 p")]
            print(f"{pairs_name}, {name}: {a.mean():.3f} +- {a.std():.3f}, {b.mean():.3f} +- {b.std():.3f}; "
                  f"p {min(ps):.3f}-{max(ps):.3f}; passed {sum(r['passed'] for r in group)} of {len(group)}")


def files(recordings: int, duration_s: float, work: Path) -> None:
    from poise_video_pairs import make_files, run_cli

    from usvpipe.poise import PairedData, PoiseParams, train_poise
    from usvpipe.poise.data import load_pairs

    make_files(work / "data", recordings, duration_s, 30, 0)
    (work / "usvpipe.toml").write_text("[syllables]\nshape = [32, 32]\n")
    run_cli(["segment", work / "data", work / "store", "--config", work / "usvpipe.toml", "--no-progress"])
    run_cli(["poise", "pairs", work / "store", work / "data", work / "pairs.npz", "--size", 16, 32])
    pairs = load_pairs(work / "pairs.npz")
    recording = pairs.extra["recording"]
    rng = np.random.default_rng(0)
    frames = pairs.x1.copy()
    for rec in np.unique(recording):
        idx = np.flatnonzero(recording == rec)
        frames[idx] = pairs.x1[rng.permutation(idx)]
    missync = PairedData(frames, pairs.x2, {"recording": recording})
    params = PoiseParams(latent_dim_1=4, latent_dim_2=4, hidden_units=64, epochs=60, batch_size=64, subset_elbos=True,
                         heldout_fraction=0.25)
    print(f"{len(pairs)} pairs from {recordings} recordings", flush=True)
    for name, data in (("real pairs", pairs), ("frames shuffled within recordings", missync)):
        t0 = time.perf_counter()
        check = train_poise(data, None, params).check
        print(json.dumps({"pairs": name, "split": check.split, "null": check.null,
                          **_row("poise+subset", check, time.perf_counter() - t0)}), flush=True)
        for line in check.lines() + check.warnings():
            print("  " + line)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["calibration", "mnist", "files"], required=True)
    ap.add_argument("--null-sets", type=int, default=4000)
    ap.add_argument("--models", nargs="+", default=list(MNIST_MODELS), choices=list(MNIST_MODELS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--recordings", type=int, default=8)
    ap.add_argument("--duration-s", type=float, default=45.0)
    ap.add_argument("--work", default="", help="--part files: working folder (default: a temporary one)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.part == "calibration":
        calibration(args.null_sets)
    elif args.part == "mnist":
        mnist(args.models, args.seeds)
    else:
        files(args.recordings, args.duration_s, Path(args.work or tempfile.mkdtemp(prefix="poise_check_")))


if __name__ == "__main__":
    main()
