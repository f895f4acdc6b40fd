#!/usr/bin/env python
"""Why POISE's cross-generation fails in one direction (issue 12): small, fast diagnostics.

In-memory pairs like ``scripts/poise_video_pairs.py`` without the file round trip: modality 1 a
16x32 frame with a vertical bar whose column is linear in the call's start frequency
(:func:`usvpipe.poise.data.bar_video_frames`' profile), modality 2 the call's 32x32 spectrogram
(:func:`usvpipe.synth.render_call_images`, light noise). One POISE + subset-ELBO model per
``--recon-sweep`` (and seed), the networks and sizes of ``poise_video_pairs.py``; on held-out
pairs it prints

* ``v<-a`` / ``a<-v``: R^2 of the bar position of frames generated from the spectrogram alone,
  and of the pitch read (ridge fitted on real training spectrograms) from spectrograms
  generated from the frame alone (conditional means, 20 sweeps), beside the ceiling;
* ``v<-a sweeps=k`` (k = 1, 5, 100) and ``v<-a sample``: the same from k sweeps, and from one
  posterior sample per pair instead of the mean;
* ``r2 z|a~z|av``: how much of ``E[z | x1, x2]`` (the frame latent given both) a linear map of
  ``E[z | x2 alone]`` explains (and ``r2 z'|v~z'|av`` the other way);
* ``r2 z~z' prior``: the same between ``z`` and ``z'`` in samples of the learnt prior (how much
  of one space the coupling carries into the other), and ``|G11|``, ``|G22|``, ``a2``, ``b2``.

    OMP_NUM_THREADS=1 python scripts/poise_crossgen_diag.py --recon-sweep forward symmetric --seeds 0 1
    python scripts/poise_crossgen_diag.py --from-work WORK_DIR --seeds 0   # models of a poise_video_pairs.py run
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def r2(pred, true) -> float:
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    return float(1 - ((pred - true) ** 2).sum() / ((true - true.mean()) ** 2).sum())


def linear_r2(x, y) -> float:
    """Mean R^2 of each column of ``y`` from a least-squares fit on ``x`` (with intercept)."""
    xa = np.c_[x, np.ones(len(x))]
    coef, *_ = np.linalg.lstsq(xa, y, rcond=None)
    res = y - xa @ coef
    return float(np.mean(1 - res.var(0) / y.var(0)))


def make_pairs(n: int, seed: int):
    from usvpipe import synth

    calls = synth.sample_calls(n, seed=seed)
    specs = synth.render_call_images(calls, shape=(32, 32), noise=0.02, seed=seed)
    pitch = calls["start_freq_hz"].to_numpy()
    w, h = 32, 16
    frac = np.clip((pitch - 30_000.0) / 80_000.0, 0.0, 1.0)
    col = 2.0 + frac * (w - 5.0)
    prof = np.exp(-0.5 * ((np.arange(w)[None] - col[:, None]) / 1.5) ** 2)
    frames = np.repeat(prof[:, None, :], h, 1).astype(np.float32)
    return frames, np.clip(specs, 0, 1).astype(np.float32), pitch


def diagnose(model, frames, specs, bar, pitch, read_pitch, row):
    """Add the cross-generation R^2s and the latent / prior diagnostics of ``model`` to ``row``."""
    import torch

    from usvpipe.poise import cross_generate, encode
    from usvpipe.poise.data import bar_position

    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    torch.manual_seed(0)
    f_a, _ = cross_generate(model, x2=specs, mean=True)
    _, s_v = cross_generate(model, x1=frames, mean=True)
    row["v<-a"] = round(r2(bar_position(f_a[:, 0]), bar), 3)
    row["a<-v"] = round(r2(read_pitch.predict(flat(s_v[:, 0])), pitch), 3)
    t2 = torch.as_tensor(specs)
    with torch.no_grad():
        for k in (1, 5, 100):
            mz, _ = model.latent_means(None, t2, sweeps=k)
            row[f"v<-a sweeps={k}"] = round(r2(bar_position(model.decode1(mz).numpy()), bar), 3)
    f_s, _ = cross_generate(model, x2=specs, n_samples=1)
    row["v<-a sample"] = round(r2(bar_position(f_s[:, 0]), bar), 3)
    z_both, zp_both = encode(model, frames, specs)
    z_a, _ = encode(model, x2=specs)
    _, zp_v = encode(model, x1=frames)
    row["r2 z|a~z|av"] = round(linear_r2(z_a, z_both), 3)
    row["r2 z'|v~z'|av"] = round(linear_r2(zp_v, zp_both), 3)
    zs, zps = model.prior_samples(4000)
    row["r2 z~z' prior"] = round(linear_r2(zps.numpy(), zs.numpy()), 3)
    row["r2 z'~z prior"] = round(linear_r2(zs.numpy(), zps.numpy()), 3)
    with torch.no_grad():
        p = model.prior.natural()
    row["|G11|max"] = round(float(p.g11.detach().abs().max()), 3)
    row["|G22|max"] = round(float(p.g22.detach().abs().max()), 3)
    row["a2"] = [round(float(v), 2) for v in p.a2.detach()]
    row["b2"] = [round(float(v), 2) for v in p.b2.detach()]
    return row


def from_work(work: Path, seed: int):
    """The diagnostics for the POISE models a ``poise_video_pairs.py --work DIR`` run left in DIR."""
    from sklearn.linear_model import RidgeCV

    from usvpipe.poise import load_poise
    from usvpipe.poise.data import bar_position, load_pairs

    pairs = load_pairs(work / "pairs.npz")
    perm = np.random.default_rng(seed).permutation(len(pairs))  # the script's split
    train, test = perm[: int(0.8 * len(perm))], perm[int(0.8 * len(perm)):]
    bar = bar_position(pairs.x1)
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    # The bar is linear in pitch: read the bar position from spectrograms for the a<-v score.
    read = RidgeCV(alphas=np.logspace(-2, 3, 12)).fit(flat(pairs.x2[train]), bar[train])
    for ck in sorted(work.glob("model-poise*/model.pt")):
        row = {"work": str(work), "model": ck.parent.name[len("model-"):]}
        print(json.dumps(diagnose(load_poise(ck), pairs.x1[test], pairs.x2[test], bar[test], bar[test], read, row)), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1500)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--recon-sweep", nargs="+", default=["forward", "symmetric"])
    ap.add_argument("--subset-elbos", type=int, default=1, help="1 = subset ELBOs on (as poise_video_pairs.py)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--from-work", nargs="+", default=None, metavar="DIR",
                    help="no training: diagnose the POISE models in these poise_video_pairs.py --work folders "
                         "(with --seeds: the seed of each folder's run)")
    args = ap.parse_args(argv)
    import torch
    from sklearn.linear_model import RidgeCV

    torch.set_num_threads(1)
    if args.from_work:
        seeds = args.seeds if len(args.seeds) == len(args.from_work) else args.seeds[:1] * len(args.from_work)
        for work, seed in zip(args.from_work, seeds):
            from_work(Path(work), seed)
        return
    from usvpipe.poise import PairedData, PoiseParams, train_poise
    from usvpipe.poise.data import bar_position

    for seed in args.seeds:
        frames, specs, pitch = make_pairs(args.samples, seed)
        bar = bar_position(frames)
        n_tr = int(0.8 * len(bar))
        tr, te = slice(0, n_tr), slice(n_tr, None)
        flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
        read_pitch = RidgeCV(alphas=np.logspace(-2, 3, 12)).fit(flat(specs[tr]), pitch[tr])
        read_bar = RidgeCV(alphas=np.logspace(-2, 3, 12)).fit(flat(specs[tr]), bar[tr])
        print(json.dumps({"seed": seed, "ceiling v<-a": round(r2(read_bar.predict(flat(specs[te])), bar[te]), 3),
                          "ceiling a<-v": round(r2(read_pitch.predict(flat(specs[te])), pitch[te]), 3)}), flush=True)
        for sweep in args.recon_sweep:
            params = PoiseParams(latent_dim_1=4, latent_dim_2=4, hidden_units=64, epochs=args.epochs, batch_size=64,
                                 subset_elbos=bool(args.subset_elbos), recon_sweep=sweep, seed=seed,
                                 heldout_fraction=0.0)
            t0 = time.perf_counter()
            model = train_poise(PairedData(frames[tr], specs[tr]), None, params).model
            secs = time.perf_counter() - t0
            row = {"seed": seed, "recon_sweep": sweep, "subset": args.subset_elbos}
            diagnose(model, frames[te], specs[te], bar[te], pitch[te], read_pitch, row)
            row["train_s"] = round(secs, 1)
            row["load1"] = round(os.getloadavg()[0], 2)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
