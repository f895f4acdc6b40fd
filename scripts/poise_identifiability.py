#!/usr/bin/env python
"""Identifiability of POISE-VAE vs independent VAEs vs MVAE on iVAE-style synthetic data.

(z, z') are Gibbs-sampled from a known coupled prior (G11 = ±coupling, G22 < 0), each pushed
through a random injective leaky-ReLU MLP to x, x'. Every model is trained on the same
pairs; the mean correlation coefficient (MCC, Hungarian matching on |Pearson corr|, also
Spearman) between the true (z, z') and the learned posterior means is printed.

    python scripts/poise_identifiability.py                      # defaults below
    python scripts/poise_identifiability.py --seeds 0 1 2 --epochs 60

For MVAE the learned latent is the shared one (n + m dims) matched to (z, z').
``poise-oracle`` is a diagnostic: POISE with the prior fixed at the true couplings (only
encoders/decoders learnt), separating "the couplings are not learnt" from "even the right
prior does not pin the axes".
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _oracle(params, data):
    """A POISE model whose prior is frozen at the data's true natural parameters."""
    import math

    import torch

    from usvpipe.poise.model import build_model

    model = build_model(params, data.x1.shape[1:], data.x2.shape[1:], "gaussian", "gaussian")
    pr = model.prior
    inv_softplus = lambda v: torch.log(torch.expm1(torch.as_tensor(v, dtype=torch.float32)))  # noqa: E731
    with torch.no_grad():
        pr.a1.zero_()
        pr.b1.zero_()
        pr.a2_raw.fill_(math.log(math.expm1(0.5)))
        pr.b2_raw.fill_(math.log(math.expm1(0.5)))
        pr.g11.copy_(torch.as_tensor(data.extra["g11"], dtype=torch.float32))
        pr.g22_raw.copy_(inv_softplus(-data.extra["g22"] - pr.g22_floor))
    for prm in pr.parameters():
        prm.requires_grad_(False)
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=6000)
    ap.add_argument("--dims", type=int, default=3, help="n = m latent dims")
    ap.add_argument("--dim-x", type=int, default=10)
    ap.add_argument("--coupling", type=float, default=1.0)
    ap.add_argument("--quartic", type=float, default=0.5)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--models", nargs="+", default=["poise", "vae", "mvae"])
    ap.add_argument("--obs-sd", type=float, default=0.1, help="Gaussian observation s.d. of every model")
    ap.add_argument("--kl-gradient", choices=["score", "pathwise"], default="score")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from usvpipe.poise import PoiseParams, encode, make_identifiability_data, mean_corr_coef, train_poise

    rows = []
    for seed in args.seeds:
        data = make_identifiability_data(args.samples, n=args.dims, m=args.dims, dim_x=args.dim_x,
                                         coupling=args.coupling, quartic=args.quartic, seed=seed)
        true = np.concatenate([data.extra["z"], data.extra["zp"]], 1)
        for model in args.models:
            params = PoiseParams(model=model.split("-")[0], latent_dim_1=args.dims, latent_dim_2=args.dims, hidden_units=64,
                                 epochs=args.epochs, batch_size=128, obs_sd=args.obs_sd, seed=seed,
                                 kl_gradient=args.kl_gradient)
            t0 = time.perf_counter()
            init = _oracle(params, data) if model == "poise-oracle" else None
            run = train_poise(data, None, params, model=init)
            m1, m2 = encode(run.model, data.x1, data.x2)
            learned = m1 if model in ("mvae", "mmvae") else np.concatenate([m1, m2], 1)
            row = {
                "seed": seed, "model": model,
                "mcc": mean_corr_coef(true, learned),
                "mcc_spearman": mean_corr_coef(true, learned, method="spearman"),
                "train_s": time.perf_counter() - t0,
            }
            if model.startswith("poise"):
                row["mcc_z"] = mean_corr_coef(data.extra["z"], m1)
                row["mcc_zp"] = mean_corr_coef(data.extra["zp"], m2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\nmodel   MCC (Pearson)     MCC (Spearman)   [mean ± sd over seeds]")
    for model in args.models:
        a = np.array([r["mcc"] for r in rows if r["model"] == model])
        b = np.array([r["mcc_spearman"] for r in rows if r["model"] == model])
        print(f"{model:6s}  {a.mean():.3f} ± {a.std():.3f}     {b.mean():.3f} ± {b.std():.3f}")
    if args.json:
        from usvpipe._io import write_json_atomic

        write_json_atomic(args.json, {"args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
