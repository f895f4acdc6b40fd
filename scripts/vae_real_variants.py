"""Variants of the real-store VAE benchmark, measured and not adopted (benchmarks/vae-rejected-variants.md).

Each variant trains differently, then scores the latents of the *real* syllables the way
``scripts/vae_real_benchmark.py`` does (5-fold ridge R² of duration, mean and max frequency):

* ``synthetic-only``: train on a synthetic store (``usvpipe.synth.make_dataset``, segmented
  with the defaults), encode the real store with that model; also prints how well it
  reconstructs the real images (R² against their mean image).
* ``mixed``: train on the real and the synthetic syllables together (batch 16), score the real ones.
* ``finetune``: start from the ``synthetic-only`` model, then train on the real store.
* ``denoise``: subtract each image's per-row median (its stationary background) in a copy
  of the real store, train on that.

    OMP_NUM_THREADS=1 python scripts/vae_real_variants.py --variant mixed --seed 0 --work /tmp/vv
    OMP_NUM_THREADS=1 python scripts/vae_real_variants.py --variant synthetic-only --synthetic-s 125 --seed 0 --work /tmp/vv

``--work`` keeps the stores between runs (the real store is segmented once, the synthetic one
generated once: about a minute).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from vae_real_benchmark import MEASURES, cv_ridge_r2, real_store, synthetic_store  # noqa: E402


def synthetic_store_in(work: Path, seconds_per_animal: float) -> Path:
    """The synthetic store of these variants (seed 7; its WAVs are deleted once segmented)."""
    out = work / f"synthetic_{seconds_per_animal:g}s"
    if not (out / "syllables.csv").exists():
        synthetic_store(out, work / "synthetic_wavs", seconds_per_animal=seconds_per_animal, seed=7)
        shutil.rmtree(work / "synthetic_wavs")
    return out


def union_store(work: Path, *stores: Path) -> Path:
    """A store whose shards are copies of the given stores' shards (the table is re-merged)."""
    out = work / "union"
    if not (out / "syllables.csv").exists():
        (out / "shards").mkdir(parents=True, exist_ok=True)
        for store in stores:
            for shard in (store / "shards").glob("*.h5"):
                shutil.copy2(shard, out / "shards" / shard.name)
    return out


def denoised_store(work: Path, store: Path) -> Path:
    import h5py

    out = work / "denoised"
    if not (out / "syllables.csv").exists():
        shutil.copytree(store, out, dirs_exist_ok=True)
        for shard in (out / "shards").glob("*.h5"):
            with h5py.File(shard, "r+") as f:
                x = f["spectrograms"][()].astype(np.int16)
                if len(x):
                    background = np.median(x, axis=2, keepdims=True).astype(np.int16)
                    f["spectrograms"][...] = np.clip(x - background, 0, 255).astype(np.uint8)
    return out


def reconstruction_r2(model_path: Path, store_dir: Path) -> float:
    import torch

    from usvpipe.store import open_store
    from usvpipe.vae.encoding import load_model
    from usvpipe.vae.health import r2_against

    model = load_model(model_path, device="cpu")
    store = open_store(store_dir)
    with torch.no_grad():
        x = model.prepare(torch.from_numpy(store.read(np.arange(len(store)))[:, None]))
        recon = model.decode(model.encode(x)[0]).clamp(0, 1)
    x, recon = x.flatten(1).numpy(), recon.flatten(1).numpy()
    return r2_against(float(((x - x.mean(0)) ** 2).sum()), float(((x - recon) ** 2).sum()))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", required=True, choices=["synthetic-only", "mixed", "finetune", "denoise"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synthetic-s", type=float, default=125.0, help="seconds per synthetic animal (8 animals; 125 s: ~1940 syllables)")
    ap.add_argument("--work", type=Path, required=True)
    args = ap.parse_args(argv)

    import torch

    from usvpipe.store import open_store
    from usvpipe.vae import TrainParams, encode, train
    from usvpipe.vae import training

    args.work.mkdir(parents=True, exist_ok=True)
    real = real_store(args.work / "real")
    params = TrainParams(seed=args.seed)
    train_on = real
    if args.variant in ("synthetic-only", "finetune", "mixed"):
        synthetic = synthetic_store_in(args.work, args.synthetic_s)
        if args.variant == "mixed":
            train_on = union_store(args.work, real, synthetic)
            params = TrainParams(seed=args.seed, batch_size=16, epochs=1)  # the real store's batch; min_steps decides
        elif args.variant == "synthetic-only":
            train_on, params = synthetic, TrainParams(seed=args.seed, batch_size=16, epochs=1)
        else:
            start = args.work / f"synthetic-only_seed{args.seed}" / "model.pt"
            if not start.exists():
                raise SystemExit(f"{start}: run --variant synthetic-only --seed {args.seed} first")
            build = training._Trainer._build_model

            def build_from_synthetic(trainer):
                build(trainer)
                trainer.model.load_state_dict(torch.load(start, map_location="cpu", weights_only=True)["model_state"])

            training._Trainer._build_model = build_from_synthetic
    elif args.variant == "denoise":
        train_on = real = denoised_store(args.work, real)
    t0 = time.perf_counter()
    out = args.work / f"{args.variant}_seed{args.seed}"
    if out.exists():
        shutil.rmtree(out)
    res = train(train_on, out, params, device="cpu", progress=False)
    # the synthetic-trained models are scored on the real store; the others on what they trained on
    latents = encode(res.model_path, real if args.variant in ("synthetic-only", "finetune") else train_on,
                     out / "latents.csv", device="cpu")
    table = open_store(real).table
    latents = latents[latents["id"].isin(table["id"])]
    z = latents[[c for c in latents.columns if c.startswith("z") and c[1:].isdigit()]].to_numpy()
    print(f"# {args.variant}, seed {args.seed}: trained on {len(open_store(train_on))} syllables, {res.steps} steps, "
          f"{time.perf_counter() - t0:.0f} s wall (load average {os.getloadavg()[0]:.2f}); {len(z)} real syllables scored")
    print("R² " + ", ".join(f"{m} {cv_ridge_r2(z, latents[m].to_numpy(dtype=float)):.3f}" for m in MEASURES))
    print(f"reconstruction R² of the real images (against their mean): {reconstruction_r2(res.model_path, real):.3f}")


if __name__ == "__main__":
    main()
