#!/usr/bin/env python
"""Time the CPU demo (`usvpipe demo`) stage by stage, and check what it promises.

    OMP_NUM_THREADS=2 python scripts/bench/demo_timing.py            # the demo, fresh output folder
    OMP_NUM_THREADS=2 python scripts/bench/demo_timing.py --aa       # also an A/A run (no planted difference)
    OMP_NUM_THREADS=2 python scripts/bench/demo_timing.py --aa-only --seed 1   # only the A/A run, other animals

The A/A run generates the demo's data with the group shift set to 0: both groups' animals come
from the same generator (each animal keeps its own random offset, as in the planted run). The
demo assigns the animals to groups by rerandomisation (``--balance-se``, default the demo's
``DEMO_BALANCE_SE``: every shape parameter's group means of the offsets within one standard
error), so an A/A run has no difference to find and the planted run only the planted one; the
test over all splits is then conservative on such data. With ``--balance-se none`` the groups
are drawn in order, exchangeable, and the animal-level p-value is uniform on its attainable
values: one A/A run lands below 0.05 in 5 % of seeds by design, so read several seeds, not one.

    OMP_NUM_THREADS=1 python scripts/bench/demo_timing.py --aa-measures-seeds 20   # A/A over many seeds, no VAE

runs only segment + classical measures (seconds per seed, no training) on A/A data for seeds
S..S+N-1 (``--seed S``, default 0) and prints how many seeds had a measure that differs after
Holm's correction (the family-wise false-positive rate; nominal <= 5 %), how many had the
animal-level MMD of the report's second opinion (classical measures; PCA-32 of the images) at
p <= 0.05 (nominal 5 %), and, per seed, the animal-level p of the generator's own animal
offsets in the parameter that is most unbalanced, so an "A/A" draw whose animals happen to
differ is seen as such.

Prints, for each run: every stage's seconds, the pipeline total (data generation excluded,
as the issue's "≤ 60 s of pipeline time" counts it), the planted-difference p-value and the
classical measures that differ. The machine is shared: the load average and core count are
printed beside the times, and a fixed reference workload (a float32 matrix product and a
small conv net's forward/backward in torch, the demo's two dominant kinds of work) is timed
before and after, so "pipeline / reference" is a ratio that moves less with the load than the
seconds do. Expect the UMAP stage to include numba's one-time compilation in a fresh process.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

#: The generator's shape parameters a 32x32 demo image shows (FM depth and rate fall under one
#: frequency row and harmonics mostly outside the band:
#: benchmarks/vae-synthetic-latents.md).
VISIBLE_AT_32 = ("start_freq_hz", "end_freq_hz", "duration_s")

from usvpipe.pipeline.demo import DEMO_BALANCE_SE, DEMO_SNR_DB, make_demo_data  # noqa: E402  (after the sys.path line above)


def cpu_seconds() -> float:
    """CPU seconds used so far by this process (all its threads) and its finished child processes
    (segmentation workers): what the demo costs a shared machine, beside its wall-clock time."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def reference_seconds(repeats: int = 3) -> float:
    """Best of ``repeats`` of a fixed CPU workload (seconds)."""
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024), dtype=np.float32)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3, padding=1),
                              torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(16 * 64 * 64, 32))
    x = torch.randn(64, 1, 64, 64)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(8):
            a @ a
        for _ in range(3):
            net.zero_grad()
            net(x).sum().backward()
        best = min(best, time.perf_counter() - t0)
    return best


def with_overrides(cfg, sets: dict):
    """The demo config with ``section.key=value`` overrides (e.g. ``train.min_steps=600``,
    ``syllables.shape=64,64``), parsed as the config file's values are."""
    from usvpipe.config import params_from_mapping, params_to_dict

    by_section: dict = {}
    for key, value in sets.items():
        section, _, name = key.partition(".")
        if section not in cfg.stages or not name:
            raise SystemExit(f"--set {key}: use SECTION.KEY with a section of {', '.join(cfg.stages)}")
        by_section.setdefault(section, {})[name] = [v.strip() for v in value.split(",")] if "," in value else value
    for section, values in by_section.items():
        old = cfg.stages[section]
        current = {k: v for k, v in params_to_dict(old).items() if v is not None}  # TOML has no null
        cfg.stages[section] = params_from_mapping(type(old), {**current, **values}, section=section)
    return cfg


def run_once(out: Path, *, shift: float, animals: int, duration_s: float, epochs, seed: int, sets=None,
             balance_se: float | None = None, snr_db: float = DEMO_SNR_DB) -> dict:
    from usvpipe.pipeline import demo_config, run_pipeline

    t0 = time.perf_counter()
    # the demo's data generator, here with this run's planted shift (0 = A/A) and balance
    make_demo_data(out / "demo_data", animals_per_group=animals, duration_s=duration_s, seed=seed, group_shift=shift,
                   balance_se=balance_se, snr_db=snr_db)
    cfg = with_overrides(demo_config(out, animals_per_group=animals, duration_s=duration_s, epochs=epochs, seed=seed),
                         sets or {})
    gen_s = time.perf_counter() - t0
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    res = run_pipeline(cfg, progress=False, quiet=True)
    total, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    meas = {}
    try:
        meas = json.loads((out / "measures" / "measures.json").read_text())
    except (OSError, ValueError):
        pass
    mmd = res.mmd.to_dict() if hasattr(res.mmd, "to_dict") else (res.mmd or {})
    health = {}
    try:
        health = json.loads((out / "model" / "train.json").read_text()).get("health", {})
    except (OSError, ValueError):
        pass
    return {"data_generation_s": round(gen_s, 2), "pipeline_s": round(total, 2), "pipeline_cpu_s": round(cpu, 1),
            "health_passed": health.get("passed"), "recon_r2": health.get("recon_r2"), "pca_r2": health.get("pca_r2"),
            "stages_s": {s.name: round(s.seconds, 2) for s in res.stages},
            "p_value": mmd.get("p_value"), "reject": mmd.get("reject"),
            "measures_differ": [t["measure"] for t in meas.get("tests") or [] if t.get("reject")]}


def aa_measures(seeds: int, *, animals: int, duration_s: float, first_seed: int = 0,
                balance_se: float | None = None, snr_db: float = DEMO_SNR_DB) -> dict:
    """Segment + classical measures on A/A data for ``seeds`` seeds from ``first_seed`` on (no VAE)."""
    import dataclasses
    import itertools

    import numpy as np

    from usvpipe.measures import measures_stage
    from usvpipe.mmd import MMDParams
    from usvpipe.mmd.stage import mmd_test
    from usvpipe.mmd.trust import classical_features, pca_features
    from usvpipe.segmentation import SyllableParams, segment_recordings
    from usvpipe.store import open_store
    from usvpipe.synth import SHAPE_PARAMS

    rows = []
    for seed in range(first_seed, first_seed + seeds):
        with tempfile.TemporaryDirectory(prefix="usvpipe-aa-") as tmp:
            data, store = Path(tmp) / "data", Path(tmp) / "store"
            make_demo_data(data, animals_per_group=animals, duration_s=duration_s, seed=seed, group_shift=0.0,
                           balance_se=balance_se, snr_db=snr_db)
            segment_recordings(data, store, syllables=SyllableParams(shape=(32, 32)), metadata=data / "metadata.csv",
                               progress=False)
            res = measures_stage(store, Path(tmp) / "measures", input_root=data, a="A", b="B", figure=False)
            synth = json.loads((data / "synth.json").read_text())
            # the report's second opinion, animal-level MMD on two representations that need no training
            table = open_store(store).table
            mmd_p = {}
            for name, (frame, cols) in (("classical", classical_features(table)), ("pca32", pca_features(table, store, 32))):
                params = dataclasses.replace(MMDParams(), features=",".join(cols), syllable_view=False)
                mmd_p[name] = float(mmd_test(frame, group_col="group", a="A", b="B", params=params, health=None).p_value)
        off = np.array([[a["offset_sd"][k] for k in SHAPE_PARAMS] for a in synth["animals"]])
        grp = np.array([a["group"] == "A" for a in synth["animals"]])
        # the generator's truth: animal-level permutation p of each shape parameter's offsets
        splits = list(itertools.combinations(range(len(grp)), int(grp.sum())))
        truth_p = {}
        for j, name in enumerate(SHAPE_PARAMS):
            x = off[:, j]
            obs = abs(x[grp].mean() - x[~grp].mean())
            null = np.array([abs(x[list(c)].mean() - np.delete(x, list(c)).mean()) for c in splits])
            truth_p[name] = float(np.mean(null >= obs - 1e-12))
        worst = min(truth_p, key=truth_p.get)
        # jointly: the A/B split's rank among all splits by the squared distance of the group means
        # of the offsets, over every shape parameter and over those a 32x32 image shows
        joint_p = {}
        for label, cols in (("all", list(range(len(SHAPE_PARAMS)))),
                            ("visible", [SHAPE_PARAMS.index(k) for k in VISIBLE_AT_32])):
            x = off[:, cols]
            obs = ((x[grp].mean(0) - x[~grp].mean(0)) ** 2).sum()
            null = np.array([((x[list(c)].mean(0) - np.delete(x, list(c), axis=0).mean(0)) ** 2).sum()
                             for c in splits])
            joint_p[label] = float(np.mean(null >= obs - 1e-12))
        tests = res.tests
        rejected = [] if tests is None else list(tests.loc[tests["reject"], "measure"])
        min_holm = None if tests is None else float(tests["p_holm"].min())
        rows.append({"seed": seed, "rejected": rejected, "min_p_holm": min_holm, "mmd_p": mmd_p,
                     "most_unbalanced_offset": worst, "its_truth_p": round(truth_p[worst], 4),
                     "joint_truth_p": {k: round(v, 4) for k, v in joint_p.items()}})
        print(f"  seed {seed:2d}: measures that differ (Holm): {', '.join(rejected) or 'none'}; smallest Holm p "
              f"{min_holm:.3g}; animal-level MMD p: classical measures {mmd_p['classical']:.3g}, PCA-32 of the images "
              f"{mmd_p['pca32']:.3g}; generator's animals most unbalanced in {worst} (animal-level p "
              f"{truth_p[worst]:.3g}; all shape parameters jointly {joint_p['all']:.3g}, the 32x32-visible ones "
              f"{joint_p['visible']:.3g})", flush=True)
    k = sum(1 for r in rows if r["rejected"])
    print(f"A/A classical measures: {k} of {seeds} seeds with a measure that differs after Holm (nominal <= 5 %)")
    mmd_rejections = {}
    for name in ("classical", "pca32"):
        mmd_rejections[name] = sum(1 for r in rows if r["mmd_p"][name] <= 0.05)
        print(f"A/A animal-level MMD on {name}: {mmd_rejections[name]} of {seeds} seeds at p <= 0.05 (nominal 5 %)")
    return {"seeds": seeds, "n_seeds_with_a_rejection": k, "mmd_rejections": mmd_rejections, "per_seed": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aa", action="store_true", help="also run with no planted difference (expect p > 0.05)")
    ap.add_argument("--aa-only", action="store_true", help="run only the A/A run (no planted difference)")
    ap.add_argument("--aa-measures-seeds", type=int, default=0,
                    help="instead: segment + classical measures (no VAE) on A/A data for this many seeds")
    ap.add_argument("--animals", type=int, default=6)
    ap.add_argument("--duration-s", type=float, default=20.0)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--balance-se", default=str(DEMO_BALANCE_SE),
                    help="the generator's rerandomisation of animals to groups (make_dataset(balance_se)); 'none' "
                         "draws the groups in order, as the test's own calibration needs (default: the demo's)")
    ap.add_argument("--json", type=Path, default=None, help="also write the summary here")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a demo setting, e.g. --set syllables.shape=64,64 --set train.min_steps=600 "
                         "(how the demo's settings were chosen: see usvpipe/pipeline/demo.py)")
    ap.add_argument("--snr-db", type=float, default=DEMO_SNR_DB, help="per-call SNR of the generated calls "
                    "(default: the demo's)")
    args = ap.parse_args()
    balance_se = None if args.balance_se.lower() == "none" else float(args.balance_se)
    sets = dict(item.split("=", 1) for item in args.set)

    def load() -> str:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())

    print(f"cores: {os.cpu_count()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}, "
          f"load average before: {load()}")
    if args.aa_measures_seeds:
        t0 = time.perf_counter()
        res = aa_measures(args.aa_measures_seeds, animals=args.animals, duration_s=args.duration_s, first_seed=args.seed,
                          balance_se=balance_se, snr_db=args.snr_db)
        print(f"{time.perf_counter() - t0:.0f} s; load average now {load()}")
        if args.json:
            args.json.write_text(json.dumps(res, indent=2))
        return
    ref_before = reference_seconds()
    summary = {"cores": os.cpu_count(), "load_before": load(), "reference_before_s": round(ref_before, 3), "runs": {}}
    runs = ([] if args.aa_only else [("planted difference", 1.0)]) + (
        [("A/A (no difference)", 0.0)] if args.aa or args.aa_only else [])
    for label, shift in runs:
        with tempfile.TemporaryDirectory(prefix="usvpipe-demo-timing-") as tmp:
            r = run_once(Path(tmp) / "run", shift=shift, animals=args.animals, duration_s=args.duration_s,
                         epochs=args.epochs, seed=args.seed, sets=sets,
                         balance_se=balance_se, snr_db=args.snr_db)
        summary["runs"][label] = r
        print(f"\n{label}: pipeline {r['pipeline_s']:.1f} s wall, {r['pipeline_cpu_s']:.1f} CPU-s "
              f"(data generation {r['data_generation_s']:.1f} s, not counted); "
              f"load average now {load()}")
        for name, s in r["stages_s"].items():
            print(f"  {name:<9}{s:8.1f} s")
        print(f"  p = {r['p_value']}, reject = {r['reject']}; measures that differ: {', '.join(r['measures_differ']) or 'none'}")
        if r.get("health_passed") is not None:
            print(f"  VAE health: {'passed' if r['health_passed'] else 'FAILED'} (held-out reconstruction R² "
                  f"{r['recon_r2']:.2f}, PCA {r['pca_r2']:.2f})")
    ref_after = reference_seconds()
    ref = min(ref_before, ref_after)
    summary.update({"reference_after_s": round(ref_after, 3), "load_after": load()})
    print(f"\nreference workload: {ref_before:.2f} s before, {ref_after:.2f} s after")
    for label, r in summary["runs"].items():
        r["pipeline_over_reference"] = round(r["pipeline_s"] / ref, 1)
        print(f"{label}: pipeline / reference = {r['pipeline_over_reference']}")
    if len(summary["runs"]) > 1:
        print("p-values side by side (seed %d): " % args.seed
              + "; ".join(f"{label}: p = {r['p_value']}" for label, r in summary["runs"].items()))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
