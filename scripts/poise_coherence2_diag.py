#!/usr/bin/env python
"""Is POISE's point <- digit coherence on MNIST limited by the point estimate, or by the posterior?

Trains one model of ``scripts/poise_modes.py`` (real MNIST digits paired with 8 Gaussians,
the reference setting) and scores the points generated from the digit alone four ways:

* ``marginal_mean``: decode ``E[z' | digit]`` (what ``coherence_2`` in poise_modes.py uses);
* ``plug_in``: decode ``E[z' | z = E[z | digit]]`` under the prior (one mode, no averaging);
* ``per_sample``: decode 32 posterior samples of ``z'`` and score each;
* ``majority``: the most frequent mode among those 32.

It also prints the posterior spread of ``z'`` given the digit alone (mean s.d. over the 32
samples). If the estimates agree and the spread is wide, the posterior itself is the limit.

    OMP_NUM_THREADS=1 python scripts/poise_coherence2_diag.py --model poise+subset+full --radius 2 --seed 0
    OMP_NUM_THREADS=1 python scripts/poise_coherence2_diag.py --model mmvae
    OMP_NUM_THREADS=1 python scripts/poise_coherence2_diag.py --latent-dims 4 2   # a wider digit latent
    OMP_NUM_THREADS=1 python scripts/poise_coherence2_diag.py --per-digit         # where the errors fall

``--per-digit`` also prints the confusion matrix of the points generated from the digit alone
(rows: digit 1-8, columns: nearest mode), each digit's mean and s.d. of both latents given both
modalities and of ``z'`` given the digit alone, and (POISE) the R^2 of a least-squares read-out of
``z'`` from ``z`` (and from ``(z, z^2)``) given both modalities and under the learnt prior.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="poise+subset+full", help="a model spec of poise_modes.py")
    ap.add_argument("--radius", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--per-digit", action="store_true", help="also print where the errors fall (see above)")
    ap.add_argument("--latent-dims", type=int, nargs=2, default=(2, 2), metavar=("D1", "D2"),
                    help="POISE's digit and point latent sizes (the reference: 2 2; MMVAE gets D1 + D2)")
    args = ap.parse_args()

    import torch

    from poise_modes import N_COHERENCE, make_mnist_gaussians, mode_of, model_params
    from usvpipe.poise import cross_generate, train_poise

    torch.set_num_threads(1)
    sizes = dict(latent_dim_1=args.latent_dims[0], latent_dim_2=args.latent_dims[1], hidden_units=256, batch_size=256, learning_rate=8e-4,
                 likelihood_1="bernoulli")
    data = make_mnist_gaussians(args.radius, seed=args.seed)
    data.x1 = data.x1.reshape(len(data.x1), -1)
    t0 = time.perf_counter()
    model = train_poise(data, None, model_params(args.model, **sizes, epochs=40, obs_sd=0.45, seed=args.seed,
                                                       heldout_fraction=0.0)).model
    train_s = time.perf_counter() - t0
    labels = data.extra["label"][:N_COHERENCE]
    digits = torch.as_tensor(data.x1[:N_COHERENCE], dtype=torch.float32)
    with torch.no_grad():
        _, marginal = cross_generate(model, x1=data.x1[:N_COHERENCE], mean=True)
        mz, _ = model.latent_means(digits, None)
        plug_in = model.decode2(model.conditional_mean_other(mz, 1)).numpy()
        _, zp = model.posterior_samples(digits, None, args.samples)
        points = model.decode2(zp).numpy()
    prior_scale = {}
    if hasattr(model, "prior"):
        # how sharp the learnt prior's conditionals can be: |a2|, |b2| (variance 1 / (2|.|) at 0)
        nat = model.prior.natural()
        prior_scale = {k: [round(float(getattr(nat, k).detach().abs().min()), 3), round(float(getattr(nat, k).detach().abs().max()), 3)]
                       for k in ("a2", "b2", "g11", "g22")}
    modes = mode_of(points.reshape(-1, points.shape[-1])).reshape(len(labels), -1)
    majority = np.array([np.bincount(row, minlength=8).argmax() for row in modes])
    print(json.dumps({
        "model": args.model, "radius": args.radius, "seed": args.seed,
        "marginal_mean": round(float(np.mean(mode_of(marginal[:, 0]) == labels)), 3),
        "plug_in": round(float(np.mean(mode_of(plug_in) == labels)), 3),
        "per_sample": round(float(np.mean(modes == labels[:, None])), 3),
        "majority": round(float(np.mean(majority == labels)), 3),
        "sd_zp_given_digit": round(float(zp.std(1).mean()), 3), "prior_abs_range": prior_scale,
        "train_s": round(train_s, 1), "load1": round(os.getloadavg()[0], 2)}))
    if args.per_digit:
        per_digit(model, data, mode_of(marginal[:, 0]), labels)


def per_digit(model, data, generated_modes, labels) -> None:
    """Confusion matrix, per-digit latent means and the z' <- z read-out (see the module docstring)."""
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import confusion_matrix

    from usvpipe.poise import encode

    print("points generated from the digit alone: rows digit 1-8, columns nearest mode 1-8")
    print(confusion_matrix(labels, generated_modes, labels=range(1, 9)))
    all_labels = data.extra["label"]
    z_both, zp_both = encode(model, data.x1, data.x2)
    _, zp_digit = encode(model, x1=data.x1)
    fmt = lambda a: np.array2string(np.round(a, 2), separator=", ")  # noqa: E731
    for k in range(1, 9):
        m = all_labels == k
        print(f"digit {k}: z | both {fmt(z_both[m].mean(0))} (s.d. {fmt(z_both[m].std(0))}); "
              f"z' | both {fmt(zp_both[m].mean(0))} (s.d. {fmt(zp_both[m].std(0))}); "
              f"z' | digit {fmt(zp_digit[m].mean(0))} (s.d. {fmt(zp_digit[m].std(0))})")

    def r2(a, b):
        return round(float(LinearRegression().fit(a, b).score(a, b)), 3)

    if hasattr(model, "prior"):
        zs, zps = (t.numpy() for t in model.prior_samples(20000))
        print(json.dumps({"r2_zp_from_z_given_both": r2(z_both, zp_both),
                          "r2_zp_from_z_z2_given_both": r2(np.c_[z_both, z_both ** 2], zp_both),
                          "r2_zp_from_z_under_prior": r2(zs, zps),
                          "r2_zp_from_z_z2_under_prior": r2(np.c_[zs, zs ** 2], zps)}))


if __name__ == "__main__":
    main()
