#!/usr/bin/env python
"""Identifiability of POISE-VAE vs independent VAEs vs MVAE on iVAE-style synthetic data.

(z, z') are Gibbs-sampled from a known coupled prior (G11 = ±coupling, G22 < 0), each pushed
through a random injective leaky-ReLU MLP to x, x'. Every model is trained on the same
pairs; the mean correlation coefficient (MCC, Hungarian matching on |Pearson corr|, also
Spearman) between the true (z, z') and the learned posterior means is printed.

The defaults are the benchmark of benchmarks/poise-identifiability.md: 5 + 5 latents, each z_i coupled with its
partner z'_i only (G11_ii = ±0.75..1.5, G22_ii = -1.5..-4.5), 6000 pairs, every model trained
450 epochs with beta = 2 (KL weight), 5 seeds; POISE with the paired prior start held for the
first half of the epochs and the score-function KL gradient:

    python scripts/poise_identifiability.py --floors            # ~20-30 min on one CPU core
    python scripts/poise_identifiability.py --models poise --prior-init independent   # the old start

``--floors`` prints what needs no identifiability (random orthogonal rotations of the true
latents within each modality, PCA / FastICA of x). The floor falls with the dimension (3
latents: 0.83; 5: 0.73), so small ``--dims`` cannot tell models apart. ``--no-diagonal`` gives
dense, weak couplings over all pairs (``--dims 3 --no-diagonal --coupling 1 --quartic 0.5
--epochs 40 --kl-weight 1 --prior-init independent --prior-warmup-epochs 0`` is the first,
non-discriminating benchmark of that record).

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


def _linear_r2(true, learned):
    """Mean R^2 of least-squares regressions of each true latent on all learned ones."""
    a = np.column_stack([learned, np.ones(len(learned))])
    coef, *_ = np.linalg.lstsq(a, true, rcond=None)
    resid = true - a @ coef
    return float(np.mean(1.0 - resid.var(0) / true.var(0)))


def _floors(data, dims, n_rot=200):
    """MCC floors: random orthogonal rotations of the true latents, PCA and FastICA of x."""
    from scipy.stats import ortho_group
    from sklearn.decomposition import PCA, FastICA

    from usvpipe.poise import mean_corr_coef

    z, zp = data.extra["z"], data.extra["zp"]
    true = np.concatenate([z, zp], 1)
    rot = np.array([mean_corr_coef(true, np.concatenate(
        [z @ ortho_group.rvs(dims, random_state=2 * r), zp @ ortho_group.rvs(dims, random_state=2 * r + 1)], 1))
        for r in range(n_rot)]) if dims > 1 else np.ones(1)
    pca = np.concatenate([PCA(dims).fit_transform(data.x1), PCA(dims).fit_transform(data.x2)], 1)
    ica = np.concatenate([FastICA(dims, random_state=0, max_iter=2000).fit_transform(x) for x in (data.x1, data.x2)], 1)
    return {"rotation_mean": float(rot.mean()), "rotation_p90": float(np.quantile(rot, 0.9)),
            "pca": mean_corr_coef(true, pca), "ica": mean_corr_coef(true, ica)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=6000)
    ap.add_argument("--dims", type=int, default=5, help="n = m latent dims")
    ap.add_argument("--dim-x", type=int, default=10)
    ap.add_argument("--coupling", type=float, default=1.5)
    ap.add_argument("--quartic", type=float, default=3.0)
    ap.add_argument("--epochs", type=int, default=450)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--models", nargs="*", default=["poise", "vae", "mvae"],
                    help="models to train (none: with --floors, only the floors)")
    ap.add_argument("--obs-sd", type=float, default=0.1, help="Gaussian observation s.d. of every model")
    ap.add_argument("--kl-gradient", choices=["score", "pathwise"], default="score")
    ap.add_argument("--noise-sd", type=float, default=0.0, help="observation noise added to x, x' before standardising")
    ap.add_argument("--diagonal", action=argparse.BooleanOptionalAction, default=True,
                    help="couple z_i with z'_i only (strong pairwise couplings; --no-diagonal: dense, weak couplings)")
    ap.add_argument("--kl-weight", type=float, default=2.0, help="beta: weight of the KL term")
    ap.add_argument("--kl-warmup-epochs", type=int, default=0, help="linear KL annealing from 0 over this many epochs")
    ap.add_argument("--prior-init", choices=["paired", "independent"], default="paired",
                    help="POISE prior start: z_i coupled with z'_i, or nearly independent normals")
    ap.add_argument("--prior-warmup-epochs", type=int, default=None,
                    help="POISE: hold the prior at its start for this many epochs (default: half of --epochs)")
    ap.add_argument("--floors", action="store_true",
                    help="also print the MCC of random orthogonal rotations of the true latents (per modality) "
                         "and of PCA / FastICA of x, x' (what needs no identifiability at all)")
    ap.add_argument("--recon-sweep", choices=["symmetric", "forward"], default="symmetric",
                    help="POISE's reconstruction sweep (forward: the sweep before issue 12's fix)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from usvpipe.poise import PoiseParams, encode, make_identifiability_data, mean_corr_coef, train_poise

    warmup = args.epochs // 2 if args.prior_warmup_epochs is None else args.prior_warmup_epochs
    rows = []
    for seed in args.seeds:
        data = make_identifiability_data(args.samples, n=args.dims, m=args.dims, dim_x=args.dim_x,
                                         coupling=args.coupling, quartic=args.quartic, noise_sd=args.noise_sd,
                                         diagonal=args.diagonal,
                                         seed=seed)
        true = np.concatenate([data.extra["z"], data.extra["zp"]], 1)
        if args.floors:
            row = {"seed": seed, "model": "floors", **_floors(data, args.dims)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        for model in args.models:
            params = PoiseParams(model=model.split("-")[0], latent_dim_1=args.dims, latent_dim_2=args.dims, hidden_units=64,
                                 epochs=args.epochs, batch_size=128, obs_sd=args.obs_sd, seed=seed, heldout_fraction=0.0,
                                 kl_gradient=args.kl_gradient, kl_weight=args.kl_weight,
                                 kl_warmup_epochs=args.kl_warmup_epochs, prior_init=args.prior_init,
                                 recon_sweep=args.recon_sweep,
                                 prior_warmup_epochs=warmup)
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
            # R^2 of the best *linear* read-out of the true latents: separates "latents lost /
            # collapsed" (low R^2) from "latents kept but rotated" (high R^2, MCC near the floor).
            row["r2_linear"] = _linear_r2(true, learned)
            if model.startswith("poise"):
                row["mcc_z"] = mean_corr_coef(data.extra["z"], m1)
                row["mcc_zp"] = mean_corr_coef(data.extra["zp"], m2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\nmodel   MCC (Pearson)     MCC (Spearman)   [mean ± sd over seeds]")
    for r in (r for r in rows if r["model"] == "floors"):
        print(f"floors seed {r['seed']}: random rotation {r['rotation_mean']:.3f} (p90 {r['rotation_p90']:.3f}), "
              f"PCA {r['pca']:.3f}, ICA {r['ica']:.3f}")
    for model in args.models:
        a = np.array([r["mcc"] for r in rows if r["model"] == model])
        b = np.array([r["mcc_spearman"] for r in rows if r["model"] == model])
        print(f"{model:6s}  {a.mean():.3f} ± {a.std():.3f}     {b.mean():.3f} ± {b.std():.3f}")
    if args.json:
        from usvpipe._io import write_json_atomic

        write_json_atomic(args.json, {"args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
