"""Do VAE latents carry the parameters that generated the syllables?

Renders synthetic calls (``usvpipe.synth``: ``sample_calls`` + ``render_call_image``) with
known parameters into a syllable store of several "recordings", trains the VAE, encodes
every syllable, fits a linear regression from the posterior mean to each generating
parameter on the training recordings, and prints R² on the held-out (validation)
recordings, which the VAE never trained on. For reference it also prints the R² of a
10-nearest-neighbour regression on the same latents: the information present whether or
not it is linearly laid out.

Usage (full scale, 128×128: needs a GPU and has not been run yet; benchmarks/vae-synthetic-latents.md
has the CPU runs)::

    python scripts/vae_synthetic_r2.py --size 128 --n 20000 --epochs 30 --device auto

Small and quick (CPU)::

    python scripts/vae_synthetic_r2.py --size 32 --n 3000 --epochs 5 --latent-dim 16
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PARAMS = ("start_freq_hz", "end_freq_hz", "duration_s", "fm_depth_hz", "fm_rate_hz", "harmonic_ratio", "amplitude")


def make_synthetic_store(store_dir, *, n: int, size: int, n_recordings: int = 10, noise: float = 0.05, seed: int = 0,
                         blur_bins: float = 0.0):
    """Write ``n`` rendered calls as ``n_recordings`` shards; returns the call-parameter table (store order)."""
    import pandas as pd

    from usvpipe.store import merge_store, write_shard
    from usvpipe.synth import render_call_image, sample_calls

    calls = sample_calls(n, seed=seed)
    records = calls.to_dict("records")
    rng = np.random.default_rng(seed + 1)
    images = np.stack([render_call_image(c, (size, size), noise=noise, seed=rng) for c in records])
    if blur_bins > 0:  # widen the one-bin ridges along frequency, as spectral leakage does
        from scipy.ndimage import gaussian_filter1d

        images = gaussian_filter1d(images, blur_bins, axis=1)
        images /= np.maximum(images.max(axis=(1, 2), keepdims=True), 1e-6)
    parts = np.array_split(np.arange(n), n_recordings)
    frames = []
    for r, idx in enumerate(parts):
        rec = f"rec{r:02d}"
        onset = np.arange(len(idx)) * 0.5
        write_shard(store_dir, rec, images[idx], onset, onset + calls["duration_s"].to_numpy()[idx],
                    animal=f"animal{r // 2}", group="AB"[r % 2])
        frames.append(calls.iloc[idx].assign(recording=rec))
    merge_store(store_dir)
    # merged table is ordered by recording then onset == the order written here
    return pd.concat(frames, ignore_index=True)


def latent_r2(latents, truth, val_recordings, params=PARAMS) -> dict:
    """Held-out R² of linear (and 10-NN) regressions latent -> each generating parameter."""
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score
    from sklearn.neighbors import KNeighborsRegressor

    z = latents.filter(regex=r"^z\d+$").to_numpy()
    held = latents["recording"].isin(val_recordings).to_numpy()
    out = {}
    for p in params:
        y = truth[p].to_numpy()
        lin = LinearRegression().fit(z[~held], y[~held])
        knn = KNeighborsRegressor(10).fit(z[~held], y[~held])
        out[p] = (float(r2_score(y[held], lin.predict(z[held]))), float(r2_score(y[held], knn.predict(z[held]))))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=128, help="spectrogram side (power of two)")
    ap.add_argument("--n", type=int, default=20000, help="number of syllables")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--latent-dim", type=int, default=32)
    ap.add_argument("--posterior", default="lowrank", choices=["lowrank", "diagonal"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--blur-bins", type=float, default=0.0, help="Gaussian blur of the ridges along frequency (bins)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="keep the store/model here (default: temporary)")
    # the documented runs predate the store-derived defaults: AVA's fixed precision, no step floor
    ap.add_argument("--obs-precision", default="10", help="observation precision, or auto (the package default)")
    ap.add_argument("--min-steps", type=int, default=0, help="step floor (package default 2000)")
    ap.add_argument("--latent-axes", default="off", choices=["off", "pitch", "pitch+duration"],
                    help="straight latent axes (package default pitch)")
    args = ap.parse_args(argv)

    from usvpipe.vae import TrainParams, encode, train

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        t0 = time.perf_counter()
        truth = make_synthetic_store(root / "store", n=args.n, size=args.size, noise=args.noise, seed=args.seed,
                                     blur_bins=args.blur_bins)
        small = args.size <= 32
        params = TrainParams(
            latent_dim=args.latent_dim, posterior=args.posterior, epochs=args.epochs, batch_size=args.batch_size,
            channels=(8, 16) if small else (8, 16, 24, 32), hidden=(128,) if small else (1024, 256),
            val_fraction=0.2, patience=0, seed=args.seed, figure_every=0, lr=args.lr,
            obs_precision=args.obs_precision, min_steps=args.min_steps, profile="full", latent_axes=args.latent_axes,
        )
        t1 = time.perf_counter()
        res = train(root / "store", root / "vae", params, device=args.device, progress=False)
        t2 = time.perf_counter()
        lat = encode(res.model_path, root / "store", root / "latents.csv", device=args.device)
        r2 = latent_r2(lat, truth, res.split["val_units"])
        print(f"# {args.n} syllables {args.size}x{args.size}, {res.epochs_run} epochs on {res.device} "
              f"(store {t1 - t0:.1f} s, training {t2 - t1:.1f} s); held-out recordings: {', '.join(res.split['val_units'])}")
        print(f"# final train loss {res.history['train_loss'].iloc[-1]:.1f}, val loss {res.history['val_loss'].iloc[-1]:.1f} nats")
        print("parameter,r2_linear_heldout,r2_knn_heldout")
        for p, (lin, knn) in r2.items():
            print(f"{p},{lin:.3f},{knn:.3f}")


if __name__ == "__main__":
    main()
