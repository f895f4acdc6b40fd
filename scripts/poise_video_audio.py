#!/usr/bin/env python
"""Video frame + USV syllable pairs: does cross-generation carry the coupled parameters?

Synthetic pairs from :func:`usvpipe.poise.make_video_audio` (a blob whose x-position, size and
brightness follow the syllable's pitch, duration and FM depth). A POISE-VAE (and MVAE,
MMVAE with the same networks) is trained on the training split; on held-out pairs each
modality is generated from the other, and a ridge regression fitted on *real* training
images (image -> the three standardised coupled factors) reads the factors back from the
generated images. R^2 against the source pair's true factors is printed, beside the
ceiling (the same regression on real held-out images). Writes the traversal figure
``docs/img/poise_traversal.png`` and a cross-generation grid ``docs/img/poise_cross.png``.

    python scripts/poise_video_audio.py [--seed 0 --samples 3000 --epochs 20 --models poise poise+subset mvae mmvae]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FACTORS = ("pitch", "log_duration", "log_fm_depth")


def split_and_readers(data, *, train_fraction=0.8, verbose=False):
    """Train/test split and the ridge "readers" (real image -> the 3 standardised coupled factors).

    Returns ``(train PairedData, (test_x1, test_x2, y_test), {"video": reg, "audio": reg})``;
    with ``verbose`` prints each reader's ceiling R^2 on the real held-out images.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score

    from usvpipe.poise import PairedData

    n_train = int(train_fraction * len(data))
    train = PairedData(data.x1[:n_train], data.x2[:n_train])
    truth = data.extra["coupled"]
    test1, test2, y_test = data.x1[n_train:], data.x2[n_train:], truth[n_train:]
    readers = {}
    for name, x in (("video", data.x1), ("audio", data.x2)):
        reg = RidgeCV(alphas=np.logspace(-2, 3, 12)).fit(x[:n_train].reshape(n_train, -1), truth[:n_train])
        readers[name] = reg
        if verbose:
            ceiling = r2_score(y_test, reg.predict(x[n_train:].reshape(len(y_test), -1)), multioutput="raw_values")
            print(f"ceiling R^2 (regression on real held-out {name}): " + ", ".join(f"{f} {r:.2f}" for f, r in zip(FACTORS, ceiling)))
    return train, (test1, test2, y_test), readers


def cross_r2(readers, y_test, audio_from_video, video_from_audio):
    """Per-factor R^2 of the factors read back from cross-generated images ``(n, H, W)``."""
    from sklearn.metrics import r2_score

    n = len(y_test)
    r_audio = r2_score(y_test, readers["audio"].predict(np.asarray(audio_from_video).reshape(n, -1)), multioutput="raw_values")
    r_video = r2_score(y_test, readers["video"].predict(np.asarray(video_from_audio).reshape(n, -1)), multioutput="raw_values")
    return r_audio, r_video


def print_table(results, model_width=7):
    print("\nR^2 of the coupled factors read from cross-generated images (pitch, log duration, log FM depth):")
    print(f"{'model':{model_width}s} {'audio <- video':>24s}   {'video <- audio':>24s}")
    for r in results:
        a = " ".join(f"{v:6.2f}" for v in r["audio_from_video_r2"].values())
        v = " ".join(f"{v:6.2f}" for v in r["video_from_audio_r2"].values())
        print(f"{r['model']:{model_width}s} {a:>24s}   {v:>24s}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--latent-dims", type=int, default=4)
    ap.add_argument("--models", nargs="+", default=["poise", "poise+subset", "mvae", "mmvae"],
                    help="model specs as in scripts/poise_modes.py, e.g. poise+subset, poise+indep, mvae+kw10")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--figures", default=str(ROOT / "docs" / "img"))
    ap.add_argument("--figure-model", default="poise+subset", help="which model draws the figures")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from poise_modes import model_params  # the shared "model+variation" spec parser

    from usvpipe.poise import (
        cross_generate,
        image_grid,
        make_video_audio,
        train_poise,
        traverse,
    )

    t0 = time.perf_counter()
    data = make_video_audio(args.samples, seed=args.seed)
    print(f"generated {len(data)} pairs in {time.perf_counter() - t0:.1f} s")
    train, (test1, test2, y_test), readers = split_and_readers(data, verbose=True)

    results = []
    for model in args.models:
        # "poise-subset" (kept for old command lines) = "poise+subset"; see poise_modes.model_params.
        params = model_params(model.replace("-subset", "+subset"), latent_dim_1=args.latent_dims,
                              latent_dim_2=args.latent_dims, hidden_units=256, epochs=args.epochs,
                              batch_size=128, seed=args.seed, heldout_fraction=0.0)
        t0 = time.perf_counter()
        run = train_poise(train, None, params)
        secs = time.perf_counter() - t0
        _, a_from_v = cross_generate(run.model, x1=test1, mean=True)
        v_from_a, _ = cross_generate(run.model, x2=test2, mean=True)
        r_audio, r_video = cross_r2(readers, y_test, a_from_v[:, 0], v_from_a[:, 0])
        row = {"model": model, "train_s": round(secs, 1),
               "audio_from_video_r2": dict(zip(FACTORS, np.round(r_audio, 3).tolist())),
               "video_from_audio_r2": dict(zip(FACTORS, np.round(r_video, 3).tolist()))}
        results.append(row)
        print(json.dumps(row), flush=True)
        if model == args.figure_model:
            fig = Path(args.figures)
            rows, titles = [], []
            for dim in range(args.latent_dims):
                _, _, g1, g2 = traverse(run.model, space=1, dim=dim, span=2.5, steps=9, x1=test1[:1], x2=test2[:1])
                rows += [g1, g2]
                titles += [f"z[{dim}] video", f"z[{dim}] -> audio"]
            image_grid(rows, fig / "poise_traversal.png", titles=titles)
            image_grid([test1[:8], test2[:8], a_from_v[:8, 0], v_from_a[:8, 0]],
                       fig / "poise_cross.png", titles=["video", "audio (true)", "audio from video", "video from audio"])
            print(f"wrote {fig / 'poise_traversal.png'} and {fig / 'poise_cross.png'}")
    print_table(results, model_width=max(7, *(len(m) for m in args.models)))


if __name__ == "__main__":
    main()
