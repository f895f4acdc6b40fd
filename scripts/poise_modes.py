#!/usr/bin/env python
"""Mode starvation: handwritten digits 1-8 paired with a 2-D mixture of 8 Gaussians on a circle.

Digit k is paired with a point from the k-th mode (s.d. 1) on a circle of radius r; small r
means overlapping modes, so the 2-D modality alone is a weak signal. For each radius and
model (POISE, MVAE, MMVAE with the same networks) it prints

* ``knn``: 5-NN accuracy (5-fold CV) of the mode label from the latent of the 2-D modality
  given both modalities (POISE: z'; MVAE/MMVAE: the shared latent) -- did that space learn
  the 8 clusters?
* ``ari``: adjusted Rand index of k-means (k=8) on that latent vs the labels;
* ``coherence``: digits cross-generated from the 2-D points alone, classified by a logistic
  regression trained on real digits; accuracy vs the pair's label. ``bayes`` is the ceiling:
  the accuracy of the best possible guess of the label from the point (nearest mode angle).

    python scripts/poise_modes.py [--radii 1 2 4 --epochs 20]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--radii", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["poise", "mvae", "mmvae"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import adjusted_rand_score
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from usvpipe.poise import PoiseParams, cross_generate, encode, make_digits_gaussians, train_poise

    digits = load_digits()
    keep = (digits.target >= 1) & (digits.target <= 8)
    judge = LogisticRegression(max_iter=2000).fit(digits.images[keep].reshape(-1, 64) / 16.0, digits.target[keep])
    rows = []
    for radius in args.radii:
        data = make_digits_gaussians(radius, copies=args.copies, seed=args.seed)
        labels = data.extra["label"]
        angle = np.arctan2(data.x2[:, 1], data.x2[:, 0])
        bayes = float(np.mean((np.round(angle / (2 * np.pi / 8)) % 8 + 1) == labels))
        for model in args.models:
            params = PoiseParams(model=model, latent_dim_1=8, latent_dim_2=2, hidden_units=128,
                                 epochs=args.epochs, batch_size=128, obs_sd=0.5, seed=args.seed)
            t0 = time.perf_counter()
            run = train_poise(data, None, params)
            _, lat2 = encode(run.model, data.x1, data.x2)
            knn = cross_val_score(KNeighborsClassifier(5), lat2, labels, cv=5).mean()
            ari = adjusted_rand_score(labels, KMeans(8, n_init=4, random_state=0).fit_predict(lat2))
            gen1, _ = cross_generate(run.model, x2=data.x2[:1000], mean=True)
            coherence = float(np.mean(judge.predict(gen1[:, 0].reshape(len(gen1), -1)) == labels[:1000]))
            row = {"radius": radius, "model": model, "knn": round(float(knn), 3), "ari": round(float(ari), 3),
                   "coherence": round(coherence, 3), "bayes": round(bayes, 3),
                   "train_s": round(time.perf_counter() - t0, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{'radius':>6s} {'model':6s} {'knn':>6s} {'ari':>6s} {'coherence':>9s} {'bayes':>6s}")
    for r in rows:
        print(f"{r['radius']:6.1f} {r['model']:6s} {r['knn']:6.3f} {r['ari']:6.3f} {r['coherence']:9.3f} {r['bayes']:6.3f}")


if __name__ == "__main__":
    main()
