"""Do the default VAE's latents describe real USVs? Real recordings, defaults, against PCA.

Segments every WAV under ``../shared/data`` with the default parameters, trains the VAE
with the default parameters (``usvpipe train`` as a new user runs it; on a CPU that is the
automatic CPU profile), encodes the store, and prints for ``duration_s``,
``mean_freq_hz`` and ``max_freq_hz`` the 5-fold cross-validated ridge R² from

(a) the VAE latents (posterior means),
(b) PCA of the *same* images with as many components as the latent has dimensions, at the
    store's size and (``pca_seen``) at the size the network sees them (the CPU profile pools
    128x128 to 64x64; this PCA is the stricter baseline),

plus the training-health summary that ``train.json`` records. Nothing here is tuned on
these recordings: the script uses the package defaults unless an option says otherwise.

    OMP_NUM_THREADS=2 python scripts/vae_real_benchmark.py            # the issue's protocol
    python scripts/vae_real_benchmark.py --set profile=full           # the 128x128 AVA-sized model
    python scripts/vae_real_benchmark.py --synthetic 300              # the same protocol on a synthetic store
    python scripts/vae_real_benchmark.py --seeds 3                    # mean and s.d. over three training seeds
    python scripts/vae_real_benchmark.py --score WORK/latents_seed0.csv --work WORK   # latents already encoded

With ``--work`` the store, every run (``vae_seed0``; ``vae_min_steps=6000_seed0`` with
``--set min_steps=6000``) and its latents stay there: a re-run segments nothing again,
continues a run that was killed and reuses a finished one.

``--score`` trains nothing: it prints what ``usvpipe encode``'s read-out check gives (ridge and
10-nearest-neighbour R² from the latents and from PCA of the images as the network saw them)
for each latents file, on the store of ``--work`` (default: the store recorded beside the file). A measure the neighbours read out much better
than the ridge is in the latents but not along a straight direction. It also prints the same four
read-outs with folds that keep each recording whole (``by_recording``): scored on recordings the
regression never saw.

Goal (latents issue): VAE >= PCA + 0.1 on each measure, and >= 0.8 on duration and mean
frequency, training within 10 minutes wall on 2 CPU cores.
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
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
MEASURES = ("duration_s", "mean_freq_hz", "max_freq_hz")


def cv_ridge_r2(features: np.ndarray, target: np.ndarray, *, knn: int = 0) -> float:
    """5-fold cross-validated R² of a ridge (or, ``knn > 0``, a k-nearest-neighbour) regression:
    the same read-out that ``usvpipe encode`` records (:func:`usvpipe.vae.readout.cv_r2`)."""
    from usvpipe.vae.readout import cv_r2

    return cv_r2(features, target, neighbours=knn)


def pca_features(images: np.ndarray, n_components: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    flat = images.reshape(len(images), -1)
    return PCA(n_components=min(n_components, *flat.shape), random_state=0).fit_transform(flat)


def pooled(images: np.ndarray, factor: int) -> np.ndarray:
    """``(n, H, W)`` images average-pooled by ``factor`` (what the CPU profile's network sees)."""
    from usvpipe.vae.samples import _pooled

    return _pooled(images, factor)


def contour_features(images: np.ndarray, *, on_level: float | None = None) -> np.ndarray:
    """Hand-made read-outs of each image: what a linear model of the pixels' geometry can reach.

    Per column, the row of the loudest pixel (the call's frequency contour, as the segment
    table's frequency measures use the loudest bin of each frame); over the columns whose
    loudest pixel exceeds ``on_level`` (default :data:`usvpipe.vae.model.CONTOUR_ON_LEVEL`; the
    call's frames): the contour's mean, min and max row, and the number of such columns and its square root (time-stretched images show a
    syllable of duration d over sqrt(d * max_dur) seconds, so its width grows as sqrt(d)).
    Not a representation the pipeline learns; a reference for how much of each measure the
    images carry in a form a ridge read-out can use.
    """
    from usvpipe.vae.model import CONTOUR_ON_LEVEL  # the one level, shared with axis_encoder = "contour"

    on_level = CONTOUR_ON_LEVEL if on_level is None else on_level
    peak_row = images.argmax(axis=1).astype(np.float64)  # (n, W)
    on = images.max(axis=1) > on_level
    on[~on.any(axis=1)] = True  # a syllable with no column above the level: use them all
    masked = np.where(on, peak_row, np.nan)
    width = on.sum(axis=1).astype(np.float64)
    return np.c_[np.nanmean(masked, 1), np.nanmin(masked, 1), np.nanmax(masked, 1), width, np.sqrt(width)]


def rule_readouts(images_seen: np.ndarray, table) -> dict:
    """5-fold ridge R² of each measure from one fixed rule alone, on the images as the network sees
    them: the contour row (z0's rule), the call's width (z1's rule under ``contour+width``) and its
    log2 (the scale a trained duration axis would have). What the rule-read latents carry by themselves."""
    import torch

    from usvpipe.vae.model import call_columns, contour_row, contour_width

    x = torch.from_numpy(np.ascontiguousarray(images_seen, dtype=np.float32))[:, None]
    columns = call_columns(x)
    width = contour_width(x, columns).numpy().astype(np.float64)
    rules = {"contour row": contour_row(x, columns).numpy(), "width": width,
             "log2 width": np.log2(np.maximum(width, 1.0 / x.shape[-1]))}
    out = {name: {m: cv_ridge_r2(v[:, None], table[m].to_numpy(dtype=float)) for m in MEASURES}
           for name, v in rules.items()}
    out["median width share"] = float(np.median(width))
    return out


def real_store(store_dir: Path, data: Path = DATA) -> Path:
    """Every WAV under ``data`` segmented with the default parameters into ``store_dir`` (once)."""
    if not (store_dir / "syllables.csv").exists():
        if not data.is_dir():
            raise SystemExit(f"{data}: not found (the real recordings live in ../shared/data)")
        from usvpipe.segmentation.batch import segment_recordings

        segment_recordings(sorted(data.rglob("*.wav")), store_dir, progress=False)
    return store_dir


def synthetic_store(store_dir: Path, wav_dir: Path, *, seconds_per_animal: float, seed: int) -> Path:
    """A synthetic dataset (2 groups x 4 animals) written to ``wav_dir``, segmented with the defaults (once)."""
    if not (store_dir / "syllables.csv").exists():
        from usvpipe.segmentation.batch import segment_recordings
        from usvpipe.synth import make_dataset

        make_dataset(wav_dir, animals_per_group=4, duration_s=seconds_per_animal, seed=seed)
        segment_recordings(wav_dir, store_dir, metadata=wav_dir / "metadata.csv", progress=False)
    return store_dir


def score_latents(paths, store_dir: Path | None = None, *, without_padded: bool = False,
                  without_atypical: bool = False) -> None:
    """``usvpipe encode``'s read-out check (:func:`usvpipe.vae.readout.measure_readout`) for latents
    files already encoded, on every syllable of ``store_dir``: ridge and 10-NN R² from the latents
    and from PCA of the images as the network saw them (the pooling and the number of components
    from each file's model), with random folds (the check before it held out recordings) and with
    whole recordings held out, as ``encode`` now does (``folds`` says which it could use).
    ``without_padded`` leaves out the syllables whose images run past their recording (the
    store's ``image_padded`` column, e.g. pre-cut clips; an error when the store lacks it).
    ``without_atypical`` leaves out the syllables each latents file itself flags as atypical
    (its ``latent_atypical`` column: latents beyond 5 prior s.d., a threshold from the prior,
    so the left-out set is not chosen by looking at the read-outs)."""
    from usvpipe.artifacts import Latents
    from usvpipe.store import open_store
    from usvpipe.vae import read_latents
    from usvpipe.vae.readout import NEIGHBOURS, cv_r2, measure_readout

    print("latents,measure,latent_ridge_r2,latent_knn10_r2,pca_ridge_r2,pca_knn10_r2,"
          "by_recording:latent_ridge_r2,latent_knn10_r2,pca_ridge_r2,pca_knn10_r2,folds")
    for path in paths:
        table = read_latents(path)
        meta = Latents.read_meta(path)
        store = open_store(store_dir or meta["store"])
        train_json = Path(meta.get("model", "")).parent / "train.json"
        pool = int(json.loads(train_json.read_text()).get("pool", 1)) if train_json.is_file() else 1
        z = table[[c for c in table.columns if c.startswith("z") and c[1:].isdigit()]].to_numpy()
        keep = np.ones(len(store), bool)
        if without_padded:
            from usvpipe.segmentation.images import PADDED_COLUMN

            if PADDED_COLUMN not in store.table.columns:
                raise SystemExit(f"{store.path}: no {PADDED_COLUMN} column (fix: re-segment the recordings into a "
                                 "new store and pass it with --work)")
            keep = store.table[PADDED_COLUMN].fillna(0).to_numpy() == 0
            print(f"# {path}: {int((~keep).sum())} padded syllable(s) left out, {int(keep.sum())} scored")
        if without_atypical:
            from usvpipe.vae.atypical import ATYPICAL_COLUMN

            if ATYPICAL_COLUMN not in table.columns:
                raise SystemExit(f"{path}: no {ATYPICAL_COLUMN} column (fix: encode again with this usvpipe)")
            atypical = table[ATYPICAL_COLUMN].to_numpy() == 1
            where = table.loc[atypical & keep, "recording"].value_counts()
            print(f"# {path}: {int((atypical & keep).sum())} atypical syllable(s) left out ("
                  + ", ".join(f"{n} of {rec}" for rec, n in where.items()) + ")")
            keep &= ~atypical
        rows = np.flatnonzero(keep)
        z, measures = z[rows], store.table.iloc[rows]
        images = pooled(store.read(rows), pool)
        recordings = measures["recording"].to_numpy()
        # held out: nothing learnt from telling the recordings (four sources, 1-44 syllables each) apart helps
        held_out = {r.measure: r for r in measure_readout(z, measures, images, groups=recordings)}
        for r in measure_readout(z, measures, images):
            h = held_out[r.measure]
            print(f"{path},{r.measure},{r.latent_ridge_r2:.3f},{r.latent_knn_r2:.3f},{r.pca_ridge_r2:.3f},"
                  f"{r.pca_knn_r2:.3f},{h.latent_ridge_r2:.3f},{h.latent_knn_r2:.3f},{h.pca_ridge_r2:.3f},"
                  f"{h.pca_knn_r2:.3f},{h.folds}")
    if paths:  # the reference: the hand-made contour features of the last store, on both kinds of folds
        contour = contour_features(store.read(rows))
        for m in MEASURES:
            y = measures[m].to_numpy(dtype=float)
            ok = np.isfinite(y)
            cells = [cv_r2(contour[ok], y[ok], neighbours=k, groups=g)
                     for g in (None, recordings[ok]) for k in (0, NEIGHBOURS)]
            print(f"# contour features, {m}: ridge / 10-NN {cells[0]:.3f} / {cells[1]:.3f} (random folds), "
                  f"{cells[2]:.3f} / {cells[3]:.3f} (recordings held out)")


def parse_sets(pairs):
    out = {}
    for item in pairs or []:
        key, _, value = item.partition("=")
        out[key.strip()] = value.strip()
    return out


def run_suffix(sets: dict, seed: int) -> str:
    """``seed0`` for the defaults, ``min_steps=32_seed0`` with ``--set min_steps=32``.

    Each parameter set gets its own run folder, so a re-run on the same ``--work`` continues
    or reuses only a run made with the same parameters (resuming with other training
    parameters would extend the earlier run instead of making a new one).
    """
    changed = "_".join(f"{k}={v}" for k, v in sorted(sets.items()) if k != "seed")
    return "".join(c if c.isalnum() or c in "=._-" else "-" for c in changed + "_") * bool(changed) + f"seed{seed}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder of WAV files (default ../shared/data)")
    ap.add_argument("--synthetic", type=int, default=0, metavar="N",
                    help="instead of real recordings, a synthetic dataset with about N syllables")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a [train] parameter")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--work", type=Path, default=None, help="keep the store/model/latents here")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    ap.add_argument("--seeds", type=int, default=1, help="train this many seeds (seed, seed+1, ...); the table "
                    "gives the VAE's mean R² and its standard deviation across seeds")
    ap.add_argument("--score", nargs="+", type=Path, default=None, metavar="LATENTS_CSV",
                    help="train nothing: print ridge and 10-NN read-outs from these latents files")
    ap.add_argument("--without-padded", action="store_true",
                    help="with --score: leave out the syllables whose images run past their recording "
                         "(the store's image_padded column; PCA refitted on the others)")
    ap.add_argument("--without-atypical", action="store_true",
                    help="with --score: leave out the syllables each latents file flags as atypical "
                         "(its latent_atypical column; PCA refitted on the others)")
    args = ap.parse_args(argv)
    if args.score:
        return score_latents(args.score, (args.work / "store") if args.work else None,
                             without_padded=args.without_padded, without_atypical=args.without_atypical)

    from usvpipe.artifacts import Latents
    from usvpipe.config import params_from_mapping
    from usvpipe.store import open_store
    from usvpipe.vae import TrainParams, encode, load_model, train
    from usvpipe.vae.readout import folds_phrase, readouts_from

    tmp = tempfile.TemporaryDirectory()
    work = args.work or Path(tmp.name)
    store_dir = work / "store"
    t0 = time.perf_counter()
    if args.synthetic:
        # 2 groups x 4 animals at 2 calls/s: N syllables need N / 16 s per animal
        synthetic_store(store_dir, work / "wavs", seconds_per_animal=max(2.0, args.synthetic / 16), seed=1)
    else:
        real_store(store_dir, args.data)
    store = open_store(store_dir)
    print(f"# store: {len(store)} syllables from {store.table['recording'].nunique()} recordings "
          f"({time.perf_counter() - t0:.1f} s)")

    sets = parse_sets(args.set)
    images = store.read(np.arange(len(store)))
    table = store.table
    contour = contour_features(images)
    runs = []
    for k in range(args.seeds):
        seed_sets = dict(sets, seed=str(int(sets.get("seed", 0)) + k))
        params = params_from_mapping(TrainParams, seed_sets, section="train")
        t1, c1 = time.perf_counter(), time.process_time()
        suffix = run_suffix(sets, params.seed)
        run_dir = work / f"vae_{suffix}"
        if (run_dir / "checkpoint.pt").exists():
            # a re-run on the same --work continues a killed run, or reuses a finished one (its
            # times below are then this call's, not the training's); other parameters are refused
            print(f"# seed {params.seed}: continuing the run in {run_dir} (a finished one is reused as it is)")
        res = train(store_dir, run_dir, params, device=args.device, progress=False, resume=True)
        train_s, train_cpu_s = time.perf_counter() - t1, time.process_time() - c1
        load = os.getloadavg()
        latents = encode(res.model_path, store_dir, work / f"latents_{suffix}.csv", device=args.device)
        health = json.loads((res.out_dir / "train.json").read_text()).get("health", {})
        z = latents[[c for c in latents.columns if c.startswith("z") and c[1:].isdigit()]].to_numpy()
        # CPU seconds beside the wall time: on a shared machine the wall time measures the neighbours too
        print(f"# seed {params.seed}: {res.epochs_run} epochs / {res.steps} steps (batch {res.batch_size}, profile "
              f"{res.profile}, obs_precision {res.obs_precision:.4g}) on {res.device} in {train_s:.0f} s wall, "
              f"{train_cpu_s:.0f} CPU s (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; 10 min on 2 idle "
              f"cores = 1200 CPU s)")
        print(f"# health: {json.dumps(health)}")
        runs.append({"seed": params.seed, "train_s": train_s, "train_cpu_s": train_cpu_s, "load": load,
                     "steps": res.steps, "health": health,
                     "vae_r2": {m: cv_ridge_r2(z, table[m].to_numpy(dtype=float)) for m in MEASURES}})
        print(f"# seed {params.seed} R²: " + ", ".join(f"{m} {v:.3f}" for m, v in runs[-1]["vae_r2"].items()))
        rule_dims = load_model(res.model_path).rule_read_dims
        if rule_dims:  # how much the network itself carries, beside what the fixed rules read
            learnt = np.delete(z, rule_dims, axis=1)
            runs[-1]["learnt_dims_r2"] = {m: cv_ridge_r2(learnt, table[m].to_numpy(dtype=float)) for m in MEASURES}
            print(f"# seed {params.seed} R², the {learnt.shape[1]} learnt dimensions only (leaving out the rule-read "
                  + ", ".join(f"z{d}" for d in rule_dims) + "): "
                  + ", ".join(f"{m} {v:.3f}" for m, v in runs[-1]["learnt_dims_r2"].items()))
            print(f"# seed {params.seed} rule-read latents across syllables: " + ", ".join(
                f"z{d} s.d. {z[:, d].std(ddof=1):.2f} ({z[:, d].min():+.2f} to {z[:, d].max():+.2f})" for d in rule_dims))
        check = Latents.read_meta(work / f"latents_{suffix}.csv").get("readout")
        if check:  # encode's own check: recordings held out when there are >= 5 of them
            print(f"# seed {params.seed} encode's read-out ({folds_phrase(check)}; ridge / 10-NN, latents vs PCA "
                  "as the network sees the images): " + ", ".join(
                      f"{r.measure} {r.latent_ridge_r2:.3f} / {r.latent_knn_r2:.3f} vs {r.pca_ridge_r2:.3f} / "
                      f"{r.pca_knn_r2:.3f}" for r in readouts_from(check)))
        if k == 0:
            pca = pca_features(images, z.shape[1])
            # the stricter baseline: PCA of the images as the network sees them (the CPU profile pools them)
            pool = int(json.loads((res.out_dir / "train.json").read_text()).get("pool", 1))
            pca_seen = pca_features(pooled(images, pool), z.shape[1]) if pool > 1 else pca
            rules = rule_readouts(pooled(images, pool) if pool > 1 else images, table)
            print(f"# one rule alone ({images.shape[1] // pool}x{images.shape[2] // pool} images as the network sees "
                  f"them; the median call spans {rules['median width share']:.0%} of the columns): " + "; ".join(
                      f"{name}: " + ", ".join(f"{m} {v:.3f}" for m, v in r2.items())
                      for name, r2 in rules.items() if name != "median width share"))

    rows = []
    for m in MEASURES:
        y = table[m].to_numpy(dtype=float)
        vae = np.array([r["vae_r2"][m] for r in runs])
        r_pca = cv_ridge_r2(pca, y)
        r_pca_seen = cv_ridge_r2(pca_seen, y)
        rows.append({"measure": m, "vae_r2": float(vae.mean()), "vae_r2_sd": float(vae.std(ddof=1)) if len(vae) > 1 else 0.0,
                     "vae_r2_per_seed": vae.tolist(), "pca_r2": r_pca, "vae_minus_pca": float(vae.mean()) - r_pca,
                     "pca_seen_r2": r_pca_seen, "vae_minus_pca_seen": float(vae.mean()) - r_pca_seen,
                     "contour_r2": cv_ridge_r2(contour, y)})
    print(f"measure,vae_r2 (mean of {len(runs)} seed(s)),vae_r2_sd,pca_r2,vae_minus_pca,pca_seen_r2,"
          "vae_minus_pca_seen,contour_r2")
    for r in rows:
        print(f"{r['measure']},{r['vae_r2']:.3f},{r['vae_r2_sd']:.3f},{r['pca_r2']:.3f},{r['vae_minus_pca']:+.3f},"
              f"{r['pca_seen_r2']:.3f},{r['vae_minus_pca_seen']:+.3f},"
              f"{r['contour_r2']:.3f}")
    print("# contour_r2: hand-made contour/width features of the same images (contour_features), a reference "
          "for how much of each measure the images carry")
    met = all(min(r["vae_minus_pca"], r["vae_minus_pca_seen"]) >= 0.1 for r in rows) and all(
        r["vae_r2"] >= 0.8 for r in rows if r["measure"] in ("duration_s", "mean_freq_hz"))
    print(f"# goal (VAE >= PCA + 0.1 each, against both PCAs; >= 0.8 duration and mean frequency): {'met' if met else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "runs": runs, "n_syllables": len(store)}, indent=1))

if __name__ == "__main__":
    main()
