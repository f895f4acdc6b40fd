"""Training, checkpoints and inference (reconstruction, cross/joint generation, traversals)."""
from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._device import resolve_device
from .._version import __version__
from ..config import params_from_mapping, params_to_dict
from ..errors import ConfigError, InputFileError, UsvpipeError
from .check import CHECK_FILE, MAX_HELDOUT, MIN_HELDOUT, CrossGenerationCheck, check_directions, heldout_split
from .data import PairedData, load_pairs
from .model import build_model, resolve_likelihood
from .params import PoiseParams

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "usvpipe-poise-1"
MODEL_FILE = "model.pt"
HISTORY_FILE = "history.csv"
GENERATE_BATCH = 256  # held-out pairs per cross-generation pass of the check


@dataclass
class PoiseRun:
    """Result of :func:`train_poise`: the trained model, per-epoch history and checkpoint path."""

    model: object
    history: object  # pandas.DataFrame
    model_path: Path | None
    check: CrossGenerationCheck | None = None  # cross-generation on held-out pairs


def _device(device):
    """The torch device for ``device`` ("auto": a CUDA GPU if one is visible, else the CPU).

    MPS is left out of "auto", as it was before POISE used the shared resolver: no POISE run
    has been tested on it. ``device="mps"`` still asks for it explicitly.
    """
    return resolve_device(device, auto_order=("cuda",))


def _model_for(data: PairedData, params: PoiseParams, dev, model=None):
    """``model`` (or a fresh one built for ``params`` and the data's shapes and ranges), on ``dev``."""
    lik1 = resolve_likelihood(params.likelihood_1, data.x1.shape[1:], float(data.x1.min()), float(data.x1.max()))
    lik2 = resolve_likelihood(params.likelihood_2, data.x2.shape[1:], float(data.x2.min()), float(data.x2.max()))
    if model is None:
        model = build_model(params, data.x1.shape[1:], data.x2.shape[1:], lik1, lik2)
    return model.to(dev)


def _optimizer(model, params: PoiseParams):
    """Adam over the trainable parameters, and the trainable prior parameters (their own, larger step)."""
    import torch

    # The prior has a handful of parameters that must travel far (e.g. G22 from ~0 to O(1));
    # a larger step for them lets the couplings keep pace with the networks.
    prior_ids = {id(p) for n_, p in model.named_parameters() if n_.startswith("prior.")}
    groups = [{"params": [p for p in model.parameters() if id(p) not in prior_ids and p.requires_grad],
               "lr": params.learning_rate}]
    prior_train = [p for p in model.parameters() if id(p) in prior_ids and p.requires_grad]
    if prior_train:
        groups.append({"params": prior_train, "lr": params.learning_rate * params.prior_lr_factor})
    return torch.optim.Adam(groups), prior_train


def _pairs_digest(data: PairedData, held_idx) -> str:
    """A fingerprint of the pairs and of which are held out: a resume must continue on the same."""
    import hashlib

    h = hashlib.sha256()
    for arr in (data.x1, data.x2, np.asarray(held_idx, dtype=np.int64)):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def _random_state(rng, dev) -> dict:
    """The batch-order generator's and torch's random states (for an exact resume)."""
    import torch

    return {"batches": rng.bit_generator.state, "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}


def _restore_random_state(state: dict | None, rng, dev) -> None:
    """Continue the random streams where the checkpoint left them, so a resumed run draws the
    batches and Gibbs chains an uninterrupted one would (checkpoints without them: fresh streams)."""
    import torch

    if not state:
        return
    rng.bit_generator.state = state["batches"]
    torch.set_rng_state(state["torch"])
    if dev.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], dev)


def _resume_from(model_path: Path, model, opt, params: PoiseParams, dev, pairs_digest: str) -> tuple[int, list, dict | None]:
    """Load the checkpoint's weights and optimiser state; returns ``(epochs done, history rows,
    random state or None)``."""
    ck = _read_checkpoint(model_path, dev)
    # Everything but the number of epochs must match (resume = train for longer).
    # (a checkpoint from before a parameter existed counts as that parameter's default).
    same = {k: v for k, v in params_to_dict(params).items() if k != "epochs"}
    theirs = params_to_dict(_checkpoint_params(ck, model_path))
    differ = sorted(k for k in set(same) | set(theirs) if k != "epochs" and same.get(k) != theirs.get(k))
    if differ:
        shown = ", ".join(f"{k} = {theirs.get(k)!r} there, {same.get(k)!r} now" for k in differ[:3])
        raise InputFileError(model_path, f"was trained with different parameters ({shown})",
                             "use a new OUT_DIR, or the checkpoint's parameters")
    if ck.get("pairs_digest") not in (None, pairs_digest):  # None: written before digests were kept
        raise InputFileError(model_path, "was trained on other pairs (or another held-out split) than these",
                             "use a new OUT_DIR, or resume with the same PAIRS")
    model.load_state_dict(ck["state_dict"])
    opt.load_state_dict(ck["optimizer"])
    return int(ck["epoch"]), list(ck["history"]), ck.get("random_state")


def _kl_weight(params: PoiseParams, epoch: int) -> float:
    """The KL term's weight in ``epoch`` (0-based): ramped linearly over ``kl_warmup_epochs``."""
    return params.kl_weight * (min(1.0, (epoch + 1) / params.kl_warmup_epochs) if params.kl_warmup_epochs else 1.0)


def _train_epoch(model, opt, x1, x2, perm, *, batch_size: int, steps: int, kl_weight: float, dev) -> dict:
    """One pass of ``steps`` mini-batches in the order ``perm``; returns the mean of each loss term."""
    import torch

    sums = {}
    for s in range(steps):
        idx = torch.as_tensor(perm[s * batch_size:(s + 1) * batch_size])
        loss, info = model.loss(x1[idx].to(dev), x2[idx].to(dev), kl_weight=kl_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
        opt.step()
        info["loss"] = loss.item()
        for k, v in info.items():
            sums[k] = sums.get(k, 0.0) + v
    return {k: v / steps for k, v in sums.items()}


def _check_finite(row: dict, epoch: int) -> None:
    if not all(math.isfinite(v) for v in row.values()):
        raise UsvpipeError(f"training diverged at epoch {epoch + 1} (loss {row.get('loss')}) "
                           "(fix: lower learning_rate, or raise obs_sd)")


def _run_epochs(model, opt, prior_train: list, data: PairedData, params: PoiseParams, rng, dev, *,
                start_epoch: int, rows: list, model_path, progress: bool, pairs_digest: str | None = None) -> list:
    """Epochs ``start_epoch`` .. ``params.epochs``: appends one history row each to ``rows`` and
    checkpoints after each, with ``history.csv`` (when ``model_path`` is set); returns ``rows``."""
    import pandas as pd
    import torch

    from .._io import write_csv_atomic

    x1 = torch.as_tensor(data.x1)
    x2 = torch.as_tensor(data.x2)
    n = len(data)
    bs = min(params.batch_size, n)
    steps = max(1, n // bs)
    bar = None
    if progress and sys.stderr.isatty():  # no carriage-return bars in a log file
        from tqdm import tqdm

        bar = tqdm(total=params.epochs, initial=start_epoch, desc="poise", unit="epoch")
    try:
        for epoch in range(start_epoch, params.epochs):
            model.train()
            perm = rng.permutation(n)
            beta = _kl_weight(params, epoch)
            # Prior warm-up: the prior holds its (paired) start while the networks settle on its
            # axes. Without gradients it neither moves nor enters the clipping norm or Adam's
            # moments; the switch depends on the epoch only, so a resumed run does the same.
            for p in prior_train:
                p.requires_grad_(epoch >= params.prior_warmup_epochs)
            t0 = time.perf_counter()
            means = _train_epoch(model, opt, x1, x2, perm, batch_size=bs, steps=steps, kl_weight=beta, dev=dev)
            row = {"epoch": epoch + 1, **means, "seconds": time.perf_counter() - t0}
            _check_finite(row, epoch)
            rows.append(row)
            if progress:
                log.info("epoch %d: %s", epoch + 1, ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
                if bar is not None:
                    bar.update(1)
            if model_path is not None:
                save_poise(model, model_path, optimizer=opt, epoch=epoch + 1, history=rows, pairs_digest=pairs_digest,
                           random_state=_random_state(rng, dev))
                # after the checkpoint, so the history never runs ahead of the weights
                write_csv_atomic(model_path.parent / HISTORY_FILE, pd.DataFrame(rows))
    finally:
        if bar is not None:
            bar.close()
        for p in prior_train:  # the returned (or failed) model is left trainable as usual
            p.requires_grad_(True)
    return rows


def train_poise(data, out_dir=None, params: PoiseParams = PoiseParams(), *, device="auto",
                resume: bool = False, progress: bool = False, model=None) -> PoiseRun:
    """Train a POISE-VAE (or a baseline, ``params.model``) on paired data.

    Parameters
    ----------
    data : PairedData, or path to PAIRS (``.npz`` with ``x1``/``x2`` or a folder with ``pairs.csv``)
    out_dir : path or None
        Where ``model.pt`` (written atomically after every epoch) and ``history.csv`` go.
    params : PoiseParams
    device : {"auto", "cpu", "cuda", ...}
    resume : bool
        Continue from ``out_dir/model.pt`` if it exists (same parameters required).
    progress : bool
        Log one line per epoch at INFO level (and a tqdm bar).
    model : nn.Module or None
        Start from this model (built for ``params`` and the data's shapes) instead of a fresh
        one, e.g. with some parameters frozen (``requires_grad=False``) for ablations.

    Returns
    -------
    PoiseRun
    """
    import pandas as pd
    import torch

    from .._io import ensure_output_dir, write_csv_atomic, write_json_atomic

    if not isinstance(data, PairedData):
        data = load_pairs(data)
    train_idx, held_idx, split = heldout_split(len(data), params.heldout_fraction, seed=params.seed,
                                               groups=_recordings(data))
    train_data = data.take(train_idx) if len(held_idx) else data
    dev = _device(device)
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    # Built on every pair, so the likelihood's "auto" choice does not depend on the split.
    model = _model_for(data, params, dev, model)
    opt, prior_train = _optimizer(model, params)
    start_epoch, rows = 0, []
    model_path = None
    digest = _pairs_digest(data, held_idx)
    if out_dir is not None:
        out_dir = ensure_output_dir(out_dir)
        model_path = out_dir / MODEL_FILE
        if resume and model_path.is_file():
            start_epoch, rows, random_state = _resume_from(model_path, model, opt, params, dev, digest)
            _restore_random_state(random_state, rng, dev)

    rows = _run_epochs(model, opt, prior_train, train_data, params, rng, dev, start_epoch=start_epoch, rows=rows,
                       model_path=model_path, progress=progress, pairs_digest=digest)

    history = pd.DataFrame(rows)
    if out_dir is not None:
        write_csv_atomic(out_dir / HISTORY_FILE, history)
    model.eval()
    check = check_cross_generation(model, data, held_idx, split, params)
    if out_dir is not None:
        write_json_atomic(out_dir / CHECK_FILE, {"model": params.model, **check.to_dict()})
    return PoiseRun(model, history, model_path, check)


def _recordings(data: PairedData):
    """Each pair's recording (``poise pairs`` writes them), or None when the pairs do not say."""
    rec = data.extra.get("recording")
    return None if rec is None or np.ndim(rec) != 1 or len(rec) != len(data) else np.asarray(rec).astype(str)


def check_cross_generation(model, data: PairedData, held_idx, split: str, params: PoiseParams) -> CrossGenerationCheck:
    """Does each modality generated from the other alone follow its input, on the held-out pairs?

    See :mod:`usvpipe.poise.check`. Up to ``MAX_HELDOUT`` of the held-out pairs are used (a
    seeded sample); fewer than ``MIN_HELDOUT`` give an unchecked result that says why. Seeded,
    so a fresh and a resumed run of the same model give the same check.
    """
    import torch

    held_idx = np.asarray(held_idx, dtype=int)
    if params.heldout_fraction == 0:
        return CrossGenerationCheck("none", 0, reason="heldout_fraction = 0, so every pair was trained on")
    if len(held_idx) < MIN_HELDOUT:
        return CrossGenerationCheck(split, len(held_idx), reason=(
            f"only {len(held_idx)} of {len(data)} pairs held out (heldout_fraction {params.heldout_fraction:g}); "
            f"at least {MIN_HELDOUT} are needed"))
    n_total = len(held_idx)
    if n_total > MAX_HELDOUT:
        held_idx = np.sort(np.random.default_rng(params.seed).choice(held_idx, MAX_HELDOUT, replace=False))
    # The posterior means come from Gibbs chains on torch's global random state, which training
    # leaves somewhere different in a fresh and a resumed run.
    torch.manual_seed(params.seed)
    x1, x2 = data.x1[held_idx], data.x2[held_idx]
    recordings = _recordings(data)
    groups = None if recordings is None else recordings[held_idx]
    gen1, gen2, rec1, rec2 = [], [], [], []
    for start in range(0, len(held_idx), GENERATE_BATCH):
        part = slice(start, start + GENERATE_BATCH)
        gen1.append(cross_generate(model, x2=x2[part], mean=True)[0][:, 0])
        gen2.append(cross_generate(model, x1=x1[part], mean=True)[1][:, 0])
        r1, r2 = reconstruct(model, x1[part], x2[part])
        rec1.append(r1)
        rec2.append(r2)
    return check_directions(np.concatenate(gen1), x1, np.concatenate(gen2), x2, split=split, groups=groups,
                            recon=(np.concatenate(rec1), np.concatenate(rec2)), n_heldout_total=n_total,
                            suggest_subset_elbos=params.model == "poise" and not params.subset_elbos,
                            seed=params.seed)


def save_poise(model, path, *, optimizer=None, epoch: int = 0, history=(), pairs_digest: str | None = None,
               random_state: dict | None = None) -> Path:
    """Write a checkpoint (weights, optimiser, epoch, parameters, shapes, version, and, when
    given, the fingerprint of the pairs it trains on and the random streams) atomically."""
    import torch

    from .._io import atomic_path

    state = {
        "format": CHECKPOINT_FORMAT,
        "usvpipe_version": __version__,
        "params": params_to_dict(model.params),
        "shape1": list(model.shape1),
        "shape2": list(model.shape2),
        "likelihood_1": model.lik1,
        "likelihood_2": model.lik2,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "epoch": int(epoch),
        "history": list(history),
        "pairs_digest": pairs_digest,
        "random_state": random_state,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def _read_checkpoint(path, device):
    """The checkpoint's dictionary, read with ``weights_only=True``: no code in the file runs.

    A checkpoint holds only tensors, numbers, strings, lists and dicts (``save_poise``), so
    torch's restricted unpickler reads a genuine one; anything else (e.g. a pickle whose
    ``__reduce__`` would run a command) is refused with a one-line error naming the file.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "model checkpoint not found", "train one with `usvpipe poise train PAIRS OUT_DIR`")
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # truncated file, not a torch file, or objects outside the allow-list
        kind = "holds objects a checkpoint never has" if isinstance(exc, pickle.UnpicklingError) else "not a readable checkpoint"
        raise InputFileError(path, f"{kind} ({type(exc).__name__}); not loaded",
                             "retrain with `usvpipe poise train`, or restore the file from a trusted copy") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise InputFileError(path, "not a usvpipe POISE checkpoint", "pass the model.pt written by `usvpipe poise train`")
    return ck


def _checkpoint_params(ck, path) -> PoiseParams:
    mapping = dict(ck.get("params") or {})
    # Checkpoints from before the held-out check were trained on every pair.
    mapping.setdefault("heldout_fraction", 0.0)
    try:
        return params_from_mapping(PoiseParams, mapping)
    except ConfigError as exc:
        raise InputFileError(path, f"checkpoint parameters are invalid ({exc})", "retrain with this usvpipe version") from None


def load_poise(path, device="cpu"):
    """Load a model saved by :func:`train_poise` / :func:`save_poise` (in eval mode)."""
    dev = _device(device)
    ck = _read_checkpoint(path, dev)
    params = _checkpoint_params(ck, path)
    try:
        model = build_model(params, tuple(ck["shape1"]), tuple(ck["shape2"]), ck["likelihood_1"], ck["likelihood_2"])
        model.load_state_dict(ck["state_dict"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise InputFileError(path, f"checkpoint does not match its model ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})",
                             "retrain with `usvpipe poise train`") from None
    return model.to(dev).eval()


# ------------------------------------------------------------------------------------- inference
def _tensor(model, x):
    import torch

    if x is None:
        return None
    dev = next(model.parameters()).device
    return torch.as_tensor(np.asarray(x, dtype=np.float32), device=dev)


def _np(t):
    return t.detach().cpu().numpy()


def encode(model, x1=None, x2=None, *, n_samples=32):
    """Posterior means of the two latent spaces given the available modalities (numpy)."""
    m1, m2 = model.latent_means(_tensor(model, x1), _tensor(model, x2), n_samples=n_samples)
    return (None if m1 is None else _np(m1)), (None if m2 is None else _np(m2))


def reconstruct(model, x1, x2):
    """Decode both modalities from the posterior means given both: ``(x1_hat, x2_hat)``."""
    import torch

    with torch.no_grad():
        m1, m2 = model.latent_means(_tensor(model, x1), _tensor(model, x2))
        return _np(model.decode1(m1)), _np(model.decode2(m2))


def cross_generate(model, x1=None, x2=None, *, n_samples=1, mean=False):
    """Generate both modalities from ``q(latents | the one given)`` (the missing one has Δλ = 0).

    Returns ``(x1_gen, x2_gen)`` of shapes ``(B, n_samples, *shape)``; with ``mean=True`` the
    decoders get posterior means instead (``n_samples`` ignored, shape ``(B, 1, *shape)``).
    """
    import torch

    if (x1 is None) == (x2 is None):
        raise ConfigError("cross_generate needs exactly one of x1, x2 (fix: pass the given modality only)")
    t1, t2 = _tensor(model, x1), _tensor(model, x2)
    with torch.no_grad():
        if mean:
            z, zp = model.latent_means(t1, t2)
            z, zp = z.unsqueeze(1), zp.unsqueeze(1)
        else:
            z, zp = model.posterior_samples(t1, t2, n_samples)
        return _np(model.decode1(z)), _np(model.decode2(zp))


def joint_generate(model, n: int, *, seed=None):
    """Sample ``n`` pairs from the prior (no modality given): ``(x1, x2)``."""
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        z, zp = model.prior_samples(int(n))
        return _np(model.decode1(z)), _np(model.decode2(zp))


def traverse(model, *, space: int = 1, dim: int = 0, span: float = 3.0, steps: int = 9, x1=None, x2=None):
    """Latent traversal: a straight line in one latent space, decoded in both modalities.

    The path starts from the posterior mean of the given data (first item) or from 0, and
    moves coordinate ``dim`` of latent space ``space`` over ``[-span, span]`` around it; the
    other space follows its prior conditional mean (``E[z' | z]`` for POISE, so a straight
    line in one space becomes a curve in the other). Returns
    ``(path_1 (steps, n), path_2 (steps, m), x1 (steps, *shape1), x2 (steps, *shape2))``.
    """
    import torch

    if space not in (1, 2):
        raise ConfigError(f"traverse: space must be 1 or 2, got {space!r}")
    with torch.no_grad():
        if x1 is not None or x2 is not None:
            m1, m2 = model.latent_means(_tensor(model, x1), _tensor(model, x2))
            base = (m1 if space == 1 else m2)
            if base is None:
                raise ConfigError("traverse: no data of the traversed modality (fix: pass x1 for space 1, x2 for space 2, or neither)")
            base = base[:1]
        else:
            d = _latent_dim(model, space)
            base = torch.zeros(1, d, device=next(model.parameters()).device)
        if not 0 <= dim < base.shape[-1]:
            raise ConfigError(f"traverse: dim must be in [0, {base.shape[-1]}), got {dim}")
        ts = torch.linspace(-span, span, steps, device=base.device)
        line = base.repeat(steps, 1)
        line[:, dim] = line[:, dim] + ts
        other = model.conditional_mean_other(line, space)
        p1, p2 = (line, other) if space == 1 else (other, line)
        return _np(p1), _np(p2), _np(model.decode1(p1)), _np(model.decode2(p2))


def _latent_dim(model, space):
    if hasattr(model, "n"):
        return model.n if space == 1 else model.m
    return model.d1 if space == 1 else model.d2


def image_grid(rows, path, *, titles=None, cmap="magma") -> Path:
    """Save a grid of images: ``rows`` is a list of arrays ``(k, H, W)`` (vectors are plotted as bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .._io import save_figure_atomic

    nr = len(rows)
    nc = max(len(r) for r in rows)
    fig, axes = plt.subplots(nr, nc, figsize=(1.1 * nc, 1.15 * nr), squeeze=False)
    for i, r in enumerate(rows):
        for j in range(nc):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(r):
                ax.axis("off")
                continue
            item = np.asarray(r[j])
            if item.ndim == 2:
                ax.imshow(item, cmap=cmap, origin="lower", vmin=0, vmax=max(1.0, float(item.max())))
            else:
                ax.bar(np.arange(item.size), item.ravel())
        if titles is not None:
            axes[i, 0].set_ylabel(titles[i], fontsize=7)
    fig.tight_layout(pad=0.2)
    return save_figure_atomic(fig, path, dpi=100)
