#!/usr/bin/env python
"""Do VAE latents + the animal-level MMD find group differences that simpler representations miss?

Compares four representations of the same syllable images, all computed once on one
group-blind pool store made by the real pipeline. The world (``--world``) is the product's
vocal world by default (``vocal``, ``_rep_vocal.py``: ``usvpipe.synth``'s 11 call types, noise
classes, repertoires, animal offsets and group differences, sizes in the product's units);
``--world typed`` is the benchmark's earlier 8-type world (``_rep_world.py``), kept so that
benchmarks/representations-central-claim.md stays reproducible. Either way ONE pool is
rendered and segmented, and each experiment's animals resample it exactly (see the module):

* ``vae-learnt``  the VAE with every dimension learnt (``latent_axes="off"``);
* ``vae-default`` the VAE with the product's defaults (pitch axis, ``contour+width`` encoder);
* ``pca-32``      PCA with 32 components of the same images;
* ``measures``    the classical measures (duration, mean/min/max frequency, bandwidth), standardised;

and ``oracle``, an upper reference that knows the truth (the true call type for usage, the true moved
quantity for the other kinds; see :func:`oracle_p`), plus ``measures-holm``: what a lab does with
those measures, the per-animal means compared one by one (``usvpipe.measures.animal_permutation_p``) with Holm's correction (reject if any).

Outputs (printed, and as markdown with ``--out``): call-type recovery (5-fold kNN accuracy, the
adjusted Rand index of k-means with k = number of types; on the representation and on its 2-D
UMAP), and the animal-level MMD power (share of experiments with p < 0.05, Monte-Carlo error
beside it) for the four kinds of difference at two sizes with 6 + 6 and 12 + 12 animals, and
the type-I error of A/A experiments. A few experiments are re-analysed with a VAE re-trained on
the experiment's own syllables, to show that the pooled, group-blind model does not change the
answer.

Usage::

    python scripts/bench/representations.py --quick                  # CI smoke run (~minutes)
    python scripts/bench/representations.py --world typed --syllables 10000 --steps 600   # the record's world
    python scripts/bench/representations.py --syllables 10000        # CPU, <= 60 min on 2 cores
    python scripts/bench/representations.py --syllables 100000 --device cuda

Threads are held at 1 (override with OMP_NUM_THREADS); times are printed with the load average.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import _rep_store as rs  # noqa: E402
import _rep_vocal  # noqa: E402
import _rep_world  # noqa: E402

#: --world: the module that makes the pool and draws the experiments (TYPES, SIZES, draw_experiment, ...)
WORLDS = {"vocal": _rep_vocal, "typed": _rep_world}
#: the world of this run, set by main() from --world (the functions below read it)
rw = _rep_vocal
KINDS = ("usage", "pitch", "duration", "shape")
#: kinds whose first 6+6 experiment is re-analysed with a re-trained VAE, in this order (--retrain N: the first N)
RETRAIN_ORDER = ("none", "usage", "shape", "pitch", "duration")
REPS = ("vae-learnt", "vae-default", "pca-32", "measures", "oracle")
#: kernel bandwidth rules of the MMD (usvpipe.mmd.MMDParams.bandwidth): the median heuristic, and MMDAgg
#: (median x 2**e for e in -2..2, level-corrected by the permutation distribution of the smallest p)
TESTS = ("median", "agg")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--world", choices=tuple(WORLDS), default="vocal",
                   help="vocal: the product's vocal world (usvpipe.synth); typed: the benchmark's earlier 8-type world")
    p.add_argument("--syllables", type=int, default=10_000, help="calls rendered into the pool store")
    p.add_argument("--experiments", type=int, default=None, help="experiments per condition (default 100; --quick 8)")
    p.add_argument("--per-animal", type=int, default=None, help="syllables per animal (default min(40, pool/60))")
    p.add_argument("--steps", type=int, default=None, help="VAE optimiser steps (default: the product's min_steps, 2000)")
    p.add_argument("--retrain", type=int, default=None,
                   help="experiments (6+6; A/A, then the larger size of usage, shape, pitch, duration; one each) "
                        "re-analysed with a VAE re-trained on their own syllables (default 5)")
    p.add_argument("--part", choices=("all", "main", "retrain", "report"), default="all",
                   help="main: representations, recovery, power; retrain: only the re-train check (for a second process); report: print what is cached")
    p.add_argument("--reps", default=",".join(REPS),
                   help="representations this process computes (the tables show every one cached in --workdir)")
    p.add_argument("--tests", default=",".join(TESTS),
                   help="MMD bandwidth rules to compare (median: the median heuristic; agg: MMDAgg over 5 bandwidths)")
    p.add_argument("--quick", action="store_true", help="CI smoke run: 600 calls, few steps and experiments")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None, help="cache of the pool store and models")
    p.add_argument("--out", type=Path, default=None, help="also write the tables as markdown here")
    a = p.parse_args(argv)
    if a.quick:
        a.syllables = min(a.syllables, 600)
        a.experiments = a.experiments or 8
        a.steps = a.steps or 60
        a.retrain = 1 if a.retrain is None else a.retrain
    a.experiments = a.experiments or 100
    a.steps = a.steps or 2000
    a.retrain = 5 if a.retrain is None else a.retrain
    a.per_animal = a.per_animal or max(8, min(40, a.syllables // 60))
    a.reps = [r for r in a.reps.split(",") if r]
    a.tests = [t for t in a.tests.split(",") if t]
    if set(a.tests) - set(TESTS):
        p.error(f"unknown test(s) {sorted(set(a.tests) - set(TESTS))}; choose from {', '.join(TESTS)}")
    unknown = sorted(set(a.reps) - set(REPS))
    if unknown:
        p.error(f"unknown representation(s) {unknown}; choose from {', '.join(REPS)}")
    a.workdir = a.workdir or Path(f"/tmp/usvpipe_bench_rep/{a.world}_n{a.syllables}_s{a.seed}_st{a.steps}")
    return a


def representations(args, store_dir: Path) -> dict:
    """name -> (n_store, d) matrix over every store row, for the representations in ``args.reps``."""
    from usvpipe.store import open_store

    store = open_store(store_dir)
    reps = {}
    # the default first: a second process may still be training the learnt one (it is then waited for)
    for variant in ("default", "learnt"):
        if f"vae-{variant}" in args.reps:
            reps[f"vae-{variant}"] = rs.vae_latents(store_dir, args.workdir / f"vae_{variant}", variant, args.steps,
                                                    args.seed, args.device, _log)
    if "pca-32" in args.reps:
        t0 = time.perf_counter()
        reps["pca-32"] = rs.pca_matrix(store, args.seed)
        _log(f"PCA-32 of {len(store)} images in {time.perf_counter() - t0:.0f} s (load {os.getloadavg()[0]:.1f})")
    if "measures" in args.reps:
        reps["measures"] = rs.measures_matrix(store.table)
    if "oracle" in args.reps:  # no matrix: the oracle tests the truth (see oracle_p)
        reps["oracle"] = None
    return reps


def cached_per_rep(args, what: str, reps: dict, compute) -> pd.DataFrame:
    """``compute(name, matrix)`` for each representation, cached as ``workdir/<what>_<name>.csv``; then the
    rows of every representation cached so far (other processes' included), in :data:`REPS` order."""
    from usvpipe._io import write_csv_atomic

    for name, matrix in reps.items():
        path = args.workdir / f"{what}_{name}.csv"
        if not path.exists():
            write_csv_atomic(path, compute(name, matrix), index=False)
    frames = [pd.read_csv(args.workdir / f"{what}_{n}.csv") for n in REPS if (args.workdir / f"{what}_{n}.csv").exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def power_tables(args, reps: dict, pool: pd.DataFrame) -> pd.DataFrame:
    """Power of every representation under every bandwidth rule of ``args.tests``, cached per (rule,
    representation) as ``power_<rep>.csv`` (median: the first records' name) or ``power-<rule>_<rep>.csv``."""
    frames = []
    for test in args.tests:
        what = "power" if test == "median" else f"power-{test}"
        part = cached_per_rep(args, what, reps, lambda n, m, t=test: power_table(n, m, pool, args, t))
        if len(part):  # rows cached before bandwidth rules were compared have no test: theirs was the median
            legacy = pd.Series(np.where(part["representation"] == "measures-holm", "holm", "median"), index=part.index)
            part["test"] = part.get("test", legacy).fillna(legacy)
        frames.append(part)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["test"])


def type_recovery(name: str, full: np.ndarray, pool: pd.DataFrame, seed: int) -> pd.DataFrame:
    """5-fold kNN accuracy and k-means ARI of the call type, on one representation and its UMAP."""
    import umap
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    y = pool["type_id"].to_numpy()
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    rows = []
    x = full[pool["store_row"].to_numpy()]
    t0 = time.perf_counter()
    emb = umap.UMAP(n_components=2, random_state=seed, n_jobs=1).fit_transform(x)
    for space, feats in (("latents", x), ("umap", emb)):
        acc = cross_val_score(KNeighborsClassifier(5), feats, y, cv=folds).mean()
        labels = KMeans(len(rw.TYPES), n_init=4, random_state=seed).fit_predict(feats)
        rows.append({"representation": name, "space": space, "knn_accuracy": acc,
                     "ari_kmeans": adjusted_rand_score(y, labels)})
    _log(f"type recovery {name}: {time.perf_counter() - t0:.0f} s (load {os.getloadavg()[0]:.1f})")
    return pd.DataFrame(rows)


def mmd_p(z: np.ndarray, exp: pd.DataFrame, seed: int, bandwidth: str = "median") -> float:
    """The package's animal-level MMD test (animals permuted) of group A vs B with one bandwidth rule."""
    from usvpipe.mmd import MMDParams, mmd_test

    table = pd.DataFrame(z, columns=[f"z{i}" for i in range(z.shape[1])])
    table["group"], table["animal"] = exp["group"].to_numpy(), exp["animal"].to_numpy()
    params = MMDParams(unit="animal", syllable_view=False, seed=seed, permutations=1000, backend="numpy", device="cpu",
                        bandwidth=bandwidth)
    return float(mmd_test(table, a="A", b="B", params=params, health=None).p_value)


def oracle_p(pool: pd.DataFrame, exp: pd.DataFrame, kind: str, seed: int, test: str) -> float:
    """The test that knows the truth: for usage (and A/A), the same animal-level MMD on each syllable's
    true call type (one-hot); for pitch, duration and shape, the animal-level permutation test of the
    animals' means of the true quantity the difference moves (``world.oracle_values``). An upper
    reference for the representations, never a method a lab has."""
    rows = exp["row"].to_numpy()
    if kind in ("none", "usage"):
        return mmd_p(np.eye(len(rw.TYPES))[pool["type_id"].to_numpy()[rows]], exp, seed=seed, bandwidth=test)
    return animal_mean_ps(rw.oracle_values(pool, kind)[rows, None], exp, seed)[0]


def animal_mean_ps(values: np.ndarray, exp: pd.DataFrame, seed: int) -> list:
    """For each column of ``values`` (one row per syllable of ``exp``), the animal-level permutation p of
    group A's animal means against group B's (``usvpipe.measures.animal_permutation_p``)."""
    from usvpipe.measures import animal_permutation_p

    per_animal = pd.DataFrame(values).assign(group=exp["group"].to_numpy(), animal=exp["animal"].to_numpy())
    means = per_animal.groupby(["group", "animal"]).mean()
    return [float(animal_permutation_p(means.loc["A", c].to_numpy(), means.loc["B", c].to_numpy(), permutations=1999,
                                       seed=seed)["p_value"]) for c in means.columns]


def holm_measures_p(measures: np.ndarray, exp: pd.DataFrame, seed: int) -> float:
    """Smallest Holm-adjusted p of the five per-animal-mean tests (what a lab reads first)."""
    from usvpipe.measures import holm

    return float(np.min(holm(animal_mean_ps(measures, exp, seed))))


def conditions():
    yield "none", 0.0
    for kind in KINDS:
        for size in rw.SIZES[kind]:
            yield kind, size


def power_table(name: str, matrix: np.ndarray, pool: pd.DataFrame, args, test: str = "median") -> pd.DataFrame:
    """Share of experiments with p < 0.05 per condition, for one representation and MMD bandwidth rule
    (the same experiments for all)."""
    rows = []
    t0 = time.perf_counter()
    for n_per_group in (6, 12):
        for ci, (kind, size) in enumerate(conditions()):
            rng = np.random.default_rng([args.seed, n_per_group, ci])
            ps = {name: [], "measures-holm": []} if name == "measures" and test == "median" else {name: []}
            for e in range(args.experiments):
                exp = rw.draw_experiment(pool, kind, size, n_per_group, args.per_animal, rng)
                rows_store = pool["store_row"].to_numpy()[exp["row"].to_numpy()]
                if matrix is None:
                    ps[name].append(oracle_p(pool, exp, kind, e, test))
                    continue
                ps[name].append(mmd_p(matrix[rows_store], exp, seed=e, bandwidth=test))
                if name == "measures" and test == "median":
                    ps["measures-holm"].append(holm_measures_p(matrix[rows_store], exp, seed=e))
            for label, p in ps.items():
                k = len(p)
                share = float(np.mean(np.asarray(p) < 0.05))
                rows.append({"animals": f"{n_per_group}+{n_per_group}", "kind": kind, "size": size,
                             "representation": label, "test": "holm" if label == "measures-holm" else test, "power": share, "mc_se": math.sqrt(share * (1 - share) / k),
                             "experiments": k})
        _log(f"power {name} ({test}), {n_per_group}+{n_per_group} animals: {time.perf_counter() - t0:.0f} s so far "
             f"(load {os.getloadavg()[0]:.1f})")
    return pd.DataFrame(rows)


def retrain_experiments(pool: pd.DataFrame, args) -> list:
    """The experiments of the re-train check: the first 6+6 experiment of A/A and of each kind's larger size
    (the same draws as in :func:`power_table`: each condition's generator starts afresh)."""
    drawn = []
    for ci, (kind, size) in enumerate(conditions()):
        if RETRAIN_ORDER.index(kind) < args.retrain and (kind == "none" or size == rw.SIZES[kind][1]):
            rng = np.random.default_rng([args.seed, 6, ci])
            drawn.append((kind, size, rw.draw_experiment(pool, kind, size, 6, args.per_animal, rng)))
    return sorted(drawn, key=lambda d: RETRAIN_ORDER.index(d[0]))


def retrain_check(pool: pd.DataFrame, store_dir: Path, args) -> pd.DataFrame:
    """p of the pooled group-blind VAE beside the p of a VAE re-trained on the experiment's own syllables."""
    from usvpipe.store import open_store

    store = open_store(store_dir)
    retrained = []
    for kind, size, exp in retrain_experiments(pool, args):
        work = args.workdir / f"retrain_{kind}_{size}_0"
        rows_store = pool["store_row"].to_numpy()[exp["row"].to_numpy()]
        sub = work / "store"
        if not (sub / "syllables.csv").exists():
            rs.write_substore(store, rows_store, exp["animal"].to_numpy(), sub)
        z = rs.vae_latents(sub, work / "vae", "default", args.steps, args.seed, args.device, _log)
        sub_table = open_store(sub).table
        # the sub-store's rows are in shard (animal) order: give each its animal and group back
        sub_exp = pd.DataFrame({"animal": sub_table["animal"].astype(str).to_numpy()})
        sub_exp["group"] = sub_exp["animal"].str[0]
        retrained.append((kind, size, exp, rows_store, mmd_p(z, sub_exp, seed=0)))
    # the pooled model's latents (another process may still be training it: then this waits)
    pooled = rs.vae_latents(store_dir, args.workdir / "vae_default", "default", args.steps, args.seed, args.device, _log)
    return pd.DataFrame([{"kind": kind, "size": size, "experiment": 0, "p_pooled_vae": mmd_p(pooled[rows], exp, seed=0),
                          "p_retrained_vae": p} for kind, size, exp, rows, p in retrained])


def _fmt_power(df: pd.DataFrame) -> pd.DataFrame:
    df = df.assign(cell=[f"{p:.2f} ± {s:.2f}" for p, s in zip(df["power"], df["mc_se"])])
    wide = df.pivot_table(index=["animals", "kind", "size"], columns="representation", values="cell", aggfunc="first")
    wide = wide[[c for c in (*REPS, "measures-holm") if c in wide.columns]].reset_index()
    order = {k: i for i, k in enumerate(["none", *KINDS])}
    wide = wide.assign(_n=wide["animals"].str.split("+").str[0].astype(int), _k=wide["kind"].map(order))
    return wide.sort_values(["_n", "_k", "size"]).drop(columns=["_n", "_k"])


def _markdown(df: pd.DataFrame, floatfmt=".3f") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(format(v, floatfmt) if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    global rw
    args = parse_args(argv)
    rw = WORLDS[args.world]
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    t_start = time.perf_counter()
    _log(f"representations benchmark: world {args.world}, {args.syllables} calls, "
         f"{args.experiments} experiments/condition, {args.per_animal} syllables/animal, {args.steps} VAE steps, device {args.device}, seed {args.seed}, "
         f"{platform.node()}, torch {torch.__version__}, threads {torch.get_num_threads()}, load {os.getloadavg()}")
    store_dir, truth = rs.build_pool_store(args.syllables, args.seed, args.workdir, _log, world=rw)
    from usvpipe.store import open_store

    table = open_store(store_dir).table
    pool = rs.match_truth(table, truth)
    _log(f"pool store: {len(table)} detections, {len(pool)} matched to {len(truth)} calls "
         f"({len(pool) / len(truth):.1%} of calls; the rest are missed or merged)")
    if hasattr(rw, "diagnostics"):  # the vocal world: detection per type, resampling ESS
        for line in rw.diagnostics(pool, truth, args.per_animal, list(conditions())[1:], args.seed):
            _log(line)
    sections = []

    def report(title, body, frame=None, name=None):
        # each table is printed (and written) as soon as it exists: a run cut short keeps what it made
        sections.append(f"### {title}\n\n{body}")
        print(sections[-1] + "\n", flush=True)
        if args.out:
            from usvpipe._io import write_csv_atomic, write_text_atomic

            write_text_atomic(args.out, "\n\n".join(sections) + "\n")
            if frame is not None:
                write_csv_atomic(args.out.with_suffix(f".{name}.csv"), frame, index=False)

    if args.part in ("all", "main", "report"):
        reps = representations(args, store_dir) if args.part != "report" else {}
        # power first: it is the question; the UMAP of type recovery is the slow, secondary part
        power = power_tables(args, reps, pool)
        for test in (t for t in TESTS if t in set(power["test"])):
            part = power[power["test"].isin([test, "holm"] if test == "median" else [test])]
            report(f"Animal-level MMD ({test} bandwidth): share of experiments with p < 0.05 (± Monte-Carlo se); "
                   "kind 'none' = type-I error", _markdown(_fmt_power(part)), part, f"power-{test}")
        # the oracle (no matrix) knows the type: nothing to recover
        recovery = cached_per_rep(args, "recovery", {n: m for n, m in reps.items() if m is not None},
                                  lambda n, m: type_recovery(n, m, pool, args.seed))
        report("Call-type recovery (matched pool syllables)", _markdown(recovery), recovery, "recovery")
    if args.part in ("all", "retrain", "report") and (args.part != "report" or (args.workdir / "retrain.csv").exists()):
        retrain = pd.DataFrame()
        if (args.workdir / "retrain.csv").exists():
            retrain = pd.read_csv(args.workdir / "retrain.csv")
        elif args.retrain:
            from usvpipe._io import write_csv_atomic

            retrain = retrain_check(pool, store_dir, args)
            write_csv_atomic(args.workdir / "retrain.csv", retrain, index=False)
        report("Pooled group-blind VAE vs VAE re-trained per experiment (vae-default, 6+6)",
               _markdown(retrain) if len(retrain) else "(none)", retrain if len(retrain) else None, "retrain")
    report("Run", f"wall {time.perf_counter() - t_start:.0f} s, load average {os.getloadavg()[0]:.2f} (1 min) at the "
           f"end; world {args.world}; {len(pool)} pool syllables, {args.per_animal} per animal, {args.steps} VAE steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
