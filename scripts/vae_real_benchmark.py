"""Do the default VAE's latents describe real USVs? Real recordings, defaults, against PCA.

Segments every WAV under ``../shared/data`` with the default parameters, trains the VAE
with the default parameters (``usvpipe train`` as a new user runs it; on a CPU that is the
automatic CPU profile), encodes the store, and prints for ``duration_s``,
``mean_freq_hz`` and ``max_freq_hz`` the 5-fold cross-validated ridge R² from

(a) the VAE latents (posterior means),
(b) PCA of the *same* images with as many components as the latent has dimensions,

plus the training-health summary that ``train.json`` records. Nothing here is tuned on
these recordings: the script uses the package defaults unless an option says otherwise.

    OMP_NUM_THREADS=2 python scripts/vae_real_benchmark.py            # the issue's protocol
    python scripts/vae_real_benchmark.py --set profile=full           # the 128x128 AVA-sized model
    python scripts/vae_real_benchmark.py --synthetic 300              # the same protocol on a synthetic store

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


def cv_ridge_r2(features: np.ndarray, target: np.ndarray, *, folds: int = 5, seed: int = 0) -> float:
    """5-fold cross-validated R² of a ridge regression (standardised features, alpha by inner CV)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    pred = cross_val_predict(model, features, target, cv=KFold(folds, shuffle=True, random_state=seed))
    ss_res = float(((target - pred) ** 2).sum())
    ss_tot = float(((target - target.mean()) ** 2).sum())
    return 1.0 - ss_res / ss_tot


def pca_features(images: np.ndarray, n_components: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    flat = images.reshape(len(images), -1)
    return PCA(n_components=min(n_components, *flat.shape), random_state=0).fit_transform(flat)


def parse_sets(pairs):
    out = {}
    for item in pairs or []:
        key, _, value = item.partition("=")
        out[key.strip()] = value.strip()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder of WAV files (default ../shared/data)")
    ap.add_argument("--synthetic", type=int, default=0, metavar="N",
                    help="instead of real recordings, a synthetic dataset with about N syllables")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a [train] parameter")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--work", type=Path, default=None, help="keep the store/model/latents here")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)

    from usvpipe.config import params_from_mapping
    from usvpipe.store import open_store
    from usvpipe.vae import TrainParams, encode, train

    tmp = tempfile.TemporaryDirectory()
    work = args.work or Path(tmp.name)
    store_dir = work / "store"
    t0 = time.perf_counter()
    if not (store_dir / "syllables.csv").exists():
        if args.synthetic:
            from usvpipe.pipeline_segment import segment_recordings
            from usvpipe.synth import make_dataset

            # 2 groups x 4 animals at 2 calls/s: N syllables need N / 16 s per animal
            make_dataset(work / "wavs", animals_per_group=4, duration_s=max(2.0, args.synthetic / 16), seed=1)
            segment_recordings(work / "wavs", store_dir, metadata=work / "wavs" / "metadata.csv", progress=False)
        else:
            if not args.data.is_dir():
                raise SystemExit(f"{args.data}: not found (the real recordings live in ../shared/data)")
            from usvpipe.pipeline_segment import segment_recordings

            segment_recordings(sorted(args.data.rglob("*.wav")), store_dir, progress=False)
    store = open_store(store_dir)
    print(f"# store: {len(store)} syllables from {store.table['recording'].nunique()} recordings "
          f"({time.perf_counter() - t0:.1f} s)")

    params = params_from_mapping(TrainParams, parse_sets(args.set), section="train")
    t1, c1 = time.perf_counter(), time.process_time()
    res = train(store_dir, work / "vae", params, device=args.device, progress=False)
    train_s, train_cpu_s = time.perf_counter() - t1, time.process_time() - c1
    load = os.getloadavg()
    latents = encode(res.model_path, store_dir, work / "latents.csv", device=args.device)
    health = json.loads((work / "vae" / "train.json").read_text()).get("health", {})

    z = latents[[c for c in latents.columns if c.startswith("z") and c[1:].isdigit()]].to_numpy()
    images = store.read(np.arange(len(store)))
    pca = pca_features(images, z.shape[1])
    table = store.table
    rows = []
    for m in MEASURES:
        y = table[m].to_numpy(dtype=float)
        r_vae, r_pca = cv_ridge_r2(z, y), cv_ridge_r2(pca, y)
        rows.append({"measure": m, "vae_r2": r_vae, "pca_r2": r_pca, "vae_minus_pca": r_vae - r_pca})

    # CPU seconds beside the wall time: on a shared machine the wall time measures the neighbours too
    print(f"# trained {res.epochs_run} epochs / {res.steps} steps (batch {res.batch_size}, profile {res.profile}, "
          f"obs_precision {res.obs_precision:.4g}) on {res.device} in {train_s:.0f} s wall, {train_cpu_s:.0f} CPU s "
          f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; 10 min on 2 idle cores = 1200 CPU s)")
    print(f"# health: {json.dumps(health)}")
    print("measure,vae_r2,pca_r2,vae_minus_pca")
    for r in rows:
        print(f"{r['measure']},{r['vae_r2']:.3f},{r['pca_r2']:.3f},{r['vae_minus_pca']:+.3f}")
    met = all(r["vae_minus_pca"] >= 0.1 for r in rows) and all(
        r["vae_r2"] >= 0.8 for r in rows if r["measure"] in ("duration_s", "mean_freq_hz"))
    print(f"# goal (VAE >= PCA + 0.1 each; >= 0.8 duration and mean frequency): {'met' if met else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "health": health, "train_s": train_s, "train_cpu_s": train_cpu_s, "load": load,
                                         "n_syllables": len(store), "steps": res.steps}, indent=1))


if __name__ == "__main__":
    main()
