#!/usr/bin/env python
"""Speed of the POISE-VAE hot paths, measured against baselines in the same run.

* Gibbs sweeps/s: the vectorised block sampler (all coordinates of z, then of z', batched
  over chains) against a per-coordinate loop (single-site Gibbs, still batched over chains).
* Training steps/s: POISE-VAE vs MVAE with the same convolutional encoders/decoders on
  32x32 image pairs (the price of Gibbs sampling + the KL estimator).

    python scripts/bench/poise.py [--threads 1] [--device cpu|cuda|auto]
"""
from __future__ import annotations

import argparse
import time


def _rate(fn, min_time=1.0, sync=lambda: None):
    fn()
    sync()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_time:
        fn()
        n += 1
    sync()
    return n / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dims", type=int, default=16, help="n = m latent dims for the sampler benchmark")
    ap.add_argument("--chains", type=int, default=1024)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from usvpipe.poise import prior as P
    from usvpipe.poise.model import PoiseParams, build_model

    devices = ["cpu"]
    if args.device in ("auto", "cuda") and torch.cuda.is_available():
        devices.append("cuda")
    print(f"torch {torch.__version__}, threads {args.threads}, devices {devices}")
    for dev in devices:
        sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
        prior = P.CoupledPrior(args.dims, args.dims).to(dev)
        with torch.no_grad():
            prior.g11.normal_(0, 0.3)
            prior.g22_raw.normal_(-1, 0.5)
        nat = prior.natural().detach()
        zp = torch.randn(args.chains, args.dims, device=dev)
        vec = _rate(lambda: P.gibbs(nat, zp, 1), sync=sync)
        loop = _rate(lambda: P.gibbs_loop(nat, zp, 1), sync=sync)
        print(f"[{dev}] Gibbs sweeps/s ({args.chains} chains, n=m={args.dims}): vectorised {vec:,.0f}, "
              f"per-coordinate loop {loop:,.0f}, ratio {vec / loop:.1f}x")

        x1 = torch.rand(128, 32, 32, device=dev)
        x2 = torch.rand(128, 32, 32, device=dev)
        rates = {}
        for model in ("poise", "mvae"):
            params = PoiseParams(model=model, latent_dim_1=8, latent_dim_2=8, hidden_units=256)
            net = build_model(params, (32, 32), (32, 32), "bernoulli", "bernoulli").to(dev)
            opt = torch.optim.Adam(net.parameters(), 1e-3)

            def step():
                loss, _ = net.loss(x1, x2)
                opt.zero_grad()
                loss.backward()
                opt.step()

            rates[model] = _rate(step, min_time=3.0, sync=sync)
        print(f"[{dev}] training steps/s (batch 128, 32x32 pairs): POISE {rates['poise']:.2f}, MVAE {rates['mvae']:.2f} "
              f"(MVAE: 3 ELBO terms/step), POISE/MVAE {rates['poise'] / rates['mvae']:.2f}")


if __name__ == "__main__":
    main()
