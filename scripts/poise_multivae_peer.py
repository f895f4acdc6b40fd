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
  alone, ``bayes`` ceiling);
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

Needs its own environment (multivae pins its own stack; see docs/poise.md)::

    python3 -m venv /work/benchenv/multivae2
    /work/benchenv/multivae2/bin/pip install torch==2.14.1 torchvision==0.29.1
    /work/benchenv/multivae2/bin/pip install multivae numpy scipy pandas scikit-learn h5py soundfile click tqdm matplotlib umap-learn
    /work/benchenv/multivae2/bin/pip install --no-deps -e .
    /work/benchenv/multivae2/bin/python scripts/poise_multivae_peer.py --radii 1 2 4 --epochs 15
    /work/benchenv/multivae2/bin/python scripts/poise_multivae_peer.py --experiment video-audio --epochs 20
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # reuse the experiments' data and metrics

ENV_HINT = ("python3 -m venv /work/benchenv/multivae2 && /work/benchenv/multivae2/bin/pip install torch==2.14.1 "
            "torchvision==0.29.1 multivae numpy scipy pandas scikit-learn h5py soundfile click tqdm matplotlib "
            "umap-learn && /work/benchenv/multivae2/bin/pip install --no-deps -e . ; then run this script with "
            "/work/benchenv/multivae2/bin/python")
MODELS = ("usvpipe-mvae", "usvpipe-mvae-warm", "usvpipe-mmvae", "multivae-mvae", "multivae-mvae-nowarm", "multivae-mmvae", "multivae-mmvae-elbo")


def _require_multivae():
    try:
        import multivae  # noqa: F401
        import torchvision  # noqa: F401  (multivae's trainer imports it)
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


def multivae_latent(model, x1, x2):
    import torch
    from multivae.data import MultimodalBaseDataset

    with torch.no_grad():
        ds = MultimodalBaseDataset(data={"x1": torch.as_tensor(x1), "x2": torch.as_tensor(x2)})
        return model.encode(ds, cond_mod="all", return_mean=True).z.numpy()


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


def run_modes(args, models):
    import poise_modes as pm

    from usvpipe.poise import PoiseParams, cross_generate, encode, make_digits_gaussians

    judge = pm.digit_judge()
    rows = []
    for radius in args.radii:
        for seed in args.seeds:
            # As scripts/poise_modes.py --seeds: the seed draws the data and initialises training.
            data = make_digits_gaussians(radius, copies=args.copies, seed=seed)
            labels = data.extra["label"]
            bayes = pm.bayes_accuracy(data)
            for name in models:
                base = name.split("-")[1]
                # The settings of scripts/poise_modes.py (10-D shared latent for the baselines).
                params = PoiseParams(model=base, latent_dim_1=8, latent_dim_2=2, hidden_units=128,
                                     epochs=args.epochs, batch_size=128, obs_sd=0.5, seed=seed)
                n = pm.N_COHERENCE
                t0 = time.perf_counter()
                if name.startswith("usvpipe"):
                    model = _train_ours(name, data, params)
                    secs = time.perf_counter() - t0
                    _, lat = encode(model, data.x1, data.x2)
                    gen = cross_generate(model, x2=data.x2[:n], mean=True)[0][:, 0]
                else:
                    with tempfile.TemporaryDirectory() as tmp:
                        model, liks = train_multivae(name, data, params, out_dir=tmp)
                    secs = time.perf_counter() - t0
                    lat = multivae_latent(model, data.x1, data.x2)
                    gen = multivae_cross(model, liks, data.x1[:n], data.x2[:n], given=2)
                row = {"radius": radius, "seed": seed, "model": name, **pm.mode_metrics(lat, gen, labels, judge),
                       "bayes": round(bayes, 3), "train_s": round(secs, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    width = max(len(m) for m in models)
    if len(args.seeds) == 1:
        pm.print_table(rows, model_width=width)
    else:
        _summary(rows, ("radius", "model"), ("knn", "ari", "coherence", "bayes", "train_s"), width)
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
                                 hidden_units=256, epochs=args.epochs, batch_size=128, seed=seed)
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
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of data and training (as --seed of the experiment scripts)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--radii", type=float, nargs="+", default=[1.0, 2.0, 4.0], help="modes: circle radii")
    ap.add_argument("--copies", type=int, default=2, help="modes: copies of each digit image")
    ap.add_argument("--samples", type=int, default=3000, help="video-audio: number of pairs")
    ap.add_argument("--latent-dims", type=int, default=4, help="video-audio: latents per modality (shared = 2x)")
    args = ap.parse_args(argv)
    _require_multivae()

    import torch

    torch.set_num_threads(args.threads)
    # multivae's Bernoulli decoders score grey-level targets in [0, 1] (as ours do: the
    # continuous relaxation without its normaliser); torch's argument validation would reject them.
    torch.distributions.Distribution.set_default_validate_args(False)
    for name in ("multivae", "pythae"):
        logging.getLogger(name).setLevel(logging.WARNING)
    print(f"torch {torch.__version__}, multivae {_version('multivae')}, threads {args.threads}, epochs {args.epochs}")
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
