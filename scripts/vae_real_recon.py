"""Train the VAE briefly on real mouse USV syllables and report reconstruction quality.

Segments the real recordings in ``../shared/data`` (amvoc + unlabelled) into a syllable
store, trains the VAE with a split by recording, and reports on the held-out recordings:

- pixel MSE of the posterior-mean reconstruction,
- the same for a "mean syllable" baseline (every syllable predicted by the training mean),
- their ratio's complement, the fraction of pixel variance the VAE explains.

Saves ``docs/img/vae_recon_real.png`` (held-out inputs above their reconstructions).

    python scripts/vae_real_recon.py --epochs 40 --size 128 [--device auto]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder(s) of WAV files (default ../shared/data)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--size", type=int, default=128, help="syllable spectrogram side")
    ap.add_argument("--latent-dim", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--obs-precision", type=float, default=10.0,
                    help="observation precision; raise it when syllables are faint (mostly dark images)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "vae_recon_real.png")
    ap.add_argument("--work", type=Path, default=None, help="keep store/model here (default: temporary)")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: not found (the real recordings live in ../shared/data)")

    import torch

    from usvpipe.segmentation import SyllableParams, segment_recordings
    from usvpipe.store import open_store
    from usvpipe.vae import TrainParams, load_model, train
    from usvpipe.vae.plots import plot_reconstructions

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        wavs = sorted(p for p in args.data.rglob("*.wav"))
        t0 = time.perf_counter()
        run = segment_recordings(wavs, work / "seg", syllables=SyllableParams(shape=(args.size, args.size)), progress=False)
        store = open_store(work / "seg")
        print(f"# segmented {len(wavs)} recordings -> {len(store)} syllables in {time.perf_counter() - t0:.1f} s "
              f"({len(getattr(run, 'failures', []) or [])} failed)")
        small = args.size <= 32
        params = TrainParams(latent_dim=args.latent_dim, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             obs_precision=args.obs_precision,
                             val_fraction=0.2, patience=0, figure_every=0, seed=0,
                             channels=(8, 16) if small else (8, 16, 24, 32), hidden=(128,) if small else (1024, 256))
        t1 = time.perf_counter()
        res = train(work / "seg", work / "vae", params, device=args.device, progress=False)
        print(f"# trained {res.epochs_run} epochs on {res.device} in {time.perf_counter() - t1:.1f} s: "
              f"{res.n_train} train / {res.n_val} held-out syllables (held-out recordings: {', '.join(res.split['val_units'])})")
        model = load_model(res.model_path, "cpu")
        table = store.table
        held = np.flatnonzero(table["recording"].isin(res.split["val_units"]).to_numpy())
        train_rows = np.setdiff1d(np.arange(len(table)), held)
        x_held = store.read(held)
        mean_img = store.read(train_rows).mean(0)
        with torch.no_grad():
            mu = model.encode(torch.from_numpy(x_held)[:, None])[0]
            rec = model.decode(mu).clamp(0, 1)[:, 0].numpy()
        mse = float(((rec - x_held) ** 2).mean())
        mse_mean = float(((mean_img[None] - x_held) ** 2).mean())
        print("metric,value")
        print(f"heldout_pixel_mse_vae,{mse:.5f}")
        print(f"heldout_pixel_mse_mean_syllable,{mse_mean:.5f}")
        print(f"heldout_variance_explained,{1 - mse / mse_mean:.3f}")
        print(f"final_val_loss_nats,{res.history['val_loss'].iloc[-1]:.1f}")
        pick = held[np.linspace(0, len(held) - 1, min(8, len(held))).astype(int)]
        sel = np.searchsorted(held, pick)
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        plot_reconstructions(x_held[sel], rec[sel], args.figure,
                             title=f"real USVs, held-out recordings: input (top) vs VAE reconstruction (bottom), "
                                   f"{res.epochs_run} epochs")
        print(f"# wrote {args.figure}")


if __name__ == "__main__":
    main()
