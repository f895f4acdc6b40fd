#!/usr/bin/env python
"""Mode starvation: handwritten digits 1-8 paired with a 2-D mixture of 8 Gaussians on a circle.

Digit k is paired with a point from the k-th mode (s.d. 1) on a circle of radius r; small r
means overlapping modes, so the 2-D modality alone is a weak signal. For each radius and
model (POISE, MVAE, MMVAE with the same networks) it prints

* ``knn``: 5-NN accuracy (5-fold CV) of the mode label from the model's whole latent given
  both modalities (POISE: (z, z'); MVAE/MMVAE: the shared latent, of the same total size);
  ``knn_private`` (POISE only): the same from the 2-D modality's private z' -- did that
  space learn the 8 clusters?
* ``ari``: adjusted Rand index of k-means (k=8) on that latent vs the labels;
* ``coherence``: digits cross-generated from the 2-D points alone, classified by a logistic
  regression trained on real digits; accuracy vs the pair's label. ``bayes`` is the ceiling:
  the accuracy of the best possible guess of the label from the point (nearest mode angle).
* ``knn_alone``: as ``knn``, with the latent inferred from the 2-D point alone (bounded by ``bayes``).

    python scripts/poise_modes.py            # the table of docs/poise.md (~5 min, 1 thread)

A model is ``poise``, ``mvae`` or ``mmvae``, optionally with ``+``-separated variations:
``subset`` (POISE's one-modality ELBO terms), ``indep`` / ``paired`` (POISE prior started
nearly independent, the default / with z_i coupled to z'_i), ``pw<N>`` (hold the POISE prior for N epochs), ``kw<N>`` (KL annealing over N
epochs), ``b<x>`` (KL weight x), e.g. ``--models poise poise+paired+subset+pw7 mvae+kw10 mmvae``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

N_COHERENCE = 1000  # pairs whose 2-D point drives the cross-generated digits


def digit_judge():
    """Logistic regression on sklearn's real 8x8 digits 1-8 (scaled to [0, 1]): the coherence judge."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    digits = load_digits()
    keep = (digits.target >= 1) & (digits.target <= 8)
    return LogisticRegression(max_iter=2000).fit(digits.images[keep].reshape(-1, 64) / 16.0, digits.target[keep])


def bayes_accuracy(data) -> float:
    """Accuracy of the best guess of the mode from the 2-D point alone (nearest mode angle)."""
    labels = data.extra["label"]
    angle = np.arctan2(data.x2[:, 1], data.x2[:, 0])
    return float(np.mean((np.round(angle / (2 * np.pi / 8)) % 8 + 1) == labels))


def knn_accuracy(latent, labels) -> float:
    """5-NN accuracy (5-fold cross-validation) of the labels from a latent."""
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    return round(float(cross_val_score(KNeighborsClassifier(5), latent, labels, cv=5).mean()), 3)


def mode_metrics(latent_both, digits_from_points, labels, judge, latent_alone=None) -> dict:
    """``knn``, ``ari`` of the latent given both modalities, ``coherence`` of generated digits.

    ``latent_both`` (N, d): the latent given both modalities (the whole latent: (z, z') for
    POISE, the shared one for MVAE/MMVAE); ``digits_from_points`` (M, 8, 8) or (M, 64): digits generated from the first
    ``M`` 2-D points alone; ``labels`` (N,) the pairs' digits. ``latent_alone`` (N, d), if
    given: the same latent inferred from the 2-D point alone (``knn_alone``, bounded by ``bayes``).
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    knn = knn_accuracy(latent_both, labels)
    ari = adjusted_rand_score(labels, KMeans(8, n_init=4, random_state=0).fit_predict(latent_both))
    m = len(digits_from_points)
    coherence = float(np.mean(judge.predict(np.asarray(digits_from_points).reshape(m, -1)) == labels[:m]))
    out = {"knn": round(float(knn), 3), "ari": round(float(ari), 3), "coherence": round(coherence, 3)}
    if latent_alone is not None:
        out["knn_alone"] = knn_accuracy(latent_alone, labels)
    return out


def mean_rows(rows):
    """One row per (radius, model): each metric's mean over seeds (as ``"0.123±0.004"`` in ``sd``)."""
    out = []
    for key in dict.fromkeys((r["radius"], r["model"]) for r in rows):
        group = [r for r in rows if (r["radius"], r["model"]) == key]
        row = {"radius": key[0], "model": key[1]}
        for metric in ("knn", "ari", "coherence", "bayes", "knn_alone", "knn_private"):
            if metric not in group[0]:
                continue
            vals = np.array([r[metric] for r in group])
            row[metric], row[metric + "_sd"] = float(vals.mean()), float(vals.std())
        out.append(row)
    return out


def print_table(rows, model_width=6):
    alone = all("knn_alone" in r for r in rows)
    print(f"\n{'radius':>6s} {'model':{model_width}s} {'knn':>6s} {'ari':>6s} {'coherence':>9s} {'bayes':>6s}"
          + (f" {'knn_alone':>9s} {'knn_private':>11s}" if alone else ""))
    for r in rows:
        sd = (f"   (sd {r['knn_sd']:.3f} {r['ari_sd']:.3f} {r['coherence_sd']:.3f}, over seeds)"
              if "knn_sd" in r else "")
        knn_alone = f" {r['knn_alone']:9.3f}" if alone else ""
        knn_alone += f" {r['knn_private']:11.3f}" if "knn_private" in r else (f" {'':11s}" if alone else "")
        print(f"{r['radius']:6.1f} {r['model']:{model_width}s} {r['knn']:6.3f} {r['ari']:6.3f} {r['coherence']:9.3f} "
              f"{r['bayes']:6.3f}{knn_alone}{sd}")


def model_params(spec: str, **common):
    """``PoiseParams`` for a model spec such as ``poise+subset+pw7`` (see the module docstring)."""
    from usvpipe.poise import PoiseParams

    base, *variations = spec.split("+")
    extra = {}
    for v in variations:
        if v == "subset":
            extra["subset_elbos"] = True
        elif v in ("indep", "paired"):
            extra["prior_init"] = "independent" if v == "indep" else "paired"
        elif v.startswith("pw"):
            extra["prior_warmup_epochs"] = int(v[2:])
        elif v.startswith("kw"):
            extra["kl_warmup_epochs"] = int(v[2:])
        elif v.startswith("b"):
            extra["kl_weight"] = float(v[1:])
        else:
            raise SystemExit(f"unknown model variation {v!r} in {spec!r}")
    return PoiseParams(model=base, **common, **extra)


def plot_latents(latents, radii, models, path):
    """One panel per (model, radius): the latent given both modalities, coloured by mode.

    Latents of more than 2 dims are shown by their first two principal components; POISE
    gets a second row with its private 2-D ``z'`` as it is.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    from usvpipe._io import save_figure_atomic
    from usvpipe.viz._figures import category_colors

    panels = []
    for model in models:
        panels.append((f"{model} (PCA)", model, 0))
        if model.startswith("poise"):
            panels.append((model + ": z'", model, 1))
    fig, axes = plt.subplots(len(panels), len(radii), figsize=(1.9 * len(radii), 1.8 * len(panels)), squeeze=False)
    show = np.random.default_rng(0).permutation(len(next(iter(latents.values()))[2]))[:1500]  # keeps the PNG small
    for i, (title, model, which) in enumerate(panels):
        for j, radius in enumerate(radii):
            whole, private, labels = latents[(radius, model)]
            xy = private if which else (whole if whole.shape[1] == 2 else PCA(2, random_state=0).fit_transform(whole))
            colours = category_colors(labels)
            ax = axes[i, j]
            ax.scatter(xy[show, 0], xy[show, 1], s=2, c=[colours[str(v)] for v in labels[show]], linewidths=0)
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(f"radius {radius:g}", fontsize=8)
            if j == 0:
                ax.set_ylabel(title, fontsize=7)
    handles = [plt.Line2D([], [], marker="o", ls="", ms=4, color=c, label=k) for k, c in colours.items()]
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False,
               handletextpad=0.1, columnspacing=0.8)
    return _palette_png(save_figure_atomic(fig, path, dpi=110, bbox_inches="tight"))


def _palette_png(path, colours=64):
    """Rewrite a PNG with a small palette (27 scatter panels: ~0.9 MB -> ~0.2 MB), atomically."""
    from PIL import Image  # matplotlib's own dependency

    from usvpipe._io import atomic_path

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colours)
    with atomic_path(path) as tmp:
        small.save(tmp, format="PNG", optimize=True)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--radii", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--models", nargs="+",
                    default=["poise", "poise+subset", "poise+paired", "mvae", "mvae+kw10", "mmvae"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--obs-sd", type=float, default=0.5, help="Gaussian observation s.d. of the 2-D points")
    ap.add_argument("--figure", default=str(ROOT / "docs" / "img" / "poise_modes_latents.png"),
                    help="latent plots of the first seed's models ('' for none)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from usvpipe.poise import cross_generate, encode, make_digits_gaussians, train_poise

    judge = digit_judge()
    rows, latents = [], {}
    for seed in args.seeds:
        for radius in args.radii:
            data = make_digits_gaussians(radius, copies=args.copies, seed=seed)
            labels = data.extra["label"]
            bayes = bayes_accuracy(data)
            for model in args.models:
                params = model_params(model, latent_dim_1=8, latent_dim_2=2, hidden_units=128,
                                      epochs=args.epochs, batch_size=128, obs_sd=args.obs_sd, seed=seed)
                t0 = time.perf_counter()
                run = train_poise(data, None, params)
                lat1, lat2 = encode(run.model, data.x1, data.x2)
                _, lat2_alone = encode(run.model, x2=data.x2)
                gen1, _ = cross_generate(run.model, x2=data.x2[:N_COHERENCE], mean=True)
                private = params.model == "poise"
                # knn/ari on the model's whole latent given both: (z, z') for POISE, the shared
                # latent for MVAE/MMVAE (same total size); POISE's private z' alone is extra.
                whole = np.concatenate([lat1, lat2], 1) if private else lat2
                metrics = mode_metrics(whole, gen1[:, 0], labels, judge, latent_alone=lat2_alone)
                if private:
                    metrics["knn_private"] = knn_accuracy(lat2, labels)
                row = {"seed": seed, "radius": radius, "model": model, **metrics,
                       "bayes": round(bayes, 3), "train_s": round(time.perf_counter() - t0, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if seed == args.seeds[0]:
                    latents[(radius, model)] = (whole, lat2 if private else None, labels)
    if args.figure:
        print(f"wrote {plot_latents(latents, args.radii, args.models, args.figure)}")
    if len(args.seeds) > 1:
        rows = mean_rows(rows)
    print_table(rows, model_width=max(6, *(len(m) for m in args.models)))


if __name__ == "__main__":
    main()
