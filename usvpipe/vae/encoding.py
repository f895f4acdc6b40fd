"""Loading a trained VAE, encoding a store to a latents table, decoding latents."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .._version import __version__
from ..artifacts import Latents
from ..errors import InputFileError, UsvpipeError

log = logging.getLogger(__name__)


def load_model(path, device="cpu"):
    """Load a trained VAE (``OUT_DIR/model.pt``, ``checkpoint.pt`` or the OUT_DIR itself).

    Returns the :class:`usvpipe.vae.model.VAE` in evaluation mode on ``device``, with
    ``model.checkpoint_info`` (params, epoch, version, path) attached.
    """
    import torch

    from .model import build_model
    from .._device import resolve_device
    from .checkpoint import load_checkpoint

    path = Path(path)
    ckpt = load_checkpoint(path)
    model = build_model(ckpt["model_config"])
    model.load_state_dict(ckpt["model_state"])
    dev = resolve_device(device) if isinstance(device, str) else torch.device(device)
    model = model.to(dev).eval()
    model.checkpoint_info = {
        "path": str(path / "model.pt" if path.is_dir() else path), "params": ckpt.get("params", {}),
        "epoch": ckpt.get("epoch"), "usvpipe_version": ckpt.get("usvpipe_version"), "kind": ckpt.get("kind"),
        # models written before the health check existed are complete and carry no health
        "complete": bool(ckpt.get("complete", True)), "epochs_planned": ckpt.get("epochs_planned"),
        "health": ckpt.get("health"),
    }
    return model


def _model_device(model):
    return next(model.parameters()).device


def decode(model, z, *, batch_size: int = 512) -> np.ndarray:
    """Mean spectrograms ``(n, H, W)`` float32 in [0, 1] for latents ``z`` ``(n, latent_dim)``."""
    import torch

    dev = _model_device(model)
    z = torch.as_tensor(np.asarray(z, dtype=np.float32) if not isinstance(z, torch.Tensor) else z, dtype=torch.float32)
    if z.ndim == 1:
        z = z[None]
    if z.shape[1] != model.latent_dim:
        raise UsvpipeError("decode", f"latents have {z.shape[1]} dimensions, the model has {model.latent_dim}",
                           "decode with the model that produced these latents")
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(z), batch_size):
            out.append(model.decode(z[i:i + batch_size].to(dev)).float().clamp_(0, 1)[:, 0])
    model.train(was_training)
    return torch.cat(out).cpu().numpy() if out else np.empty((0, *model.output_shape), np.float32)


def _readout(z: np.ndarray, store, pool: int, out_path) -> list[dict]:
    """:func:`~usvpipe.vae.readout.measure_readout` on a sample of the store (as dicts for the sidecar).

    A check that cannot run (latents or measures it cannot use) is logged and gives ``[]``:
    it must never cost the user the latents themselves.
    """
    from .readout import MAX_READOUT_SYLLABLES, measure_readout
    from .samples import _pooled, _sample_rows

    rows = np.sort(_sample_rows(np.arange(len(store)), MAX_READOUT_SYLLABLES, 0))
    try:
        images = _pooled(store.read(rows), pool)
        table = store.table.iloc[rows]
        # whole recordings held out when there are enough of them (see usvpipe.vae.readout)
        groups = table["recording"].to_numpy() if "recording" in table.columns else None
        return [r.to_dict() for r in measure_readout(z[rows], table, images, groups=groups)]
    except (ValueError, OSError) as exc:
        log.warning("%s: the acoustic read-out check could not run (%s); the latents are written without it",
                    out_path, str(exc).splitlines()[0])
        return []


def _flag_atypical(table, z: np.ndarray, out_path):
    """Mark the syllables with atypical latents in ``table`` (column added in place) and log the
    sentence on them; returns ``(mask, sentence)`` (:mod:`usvpipe.vae.atypical`)."""
    from .atypical import ATYPICAL_COLUMN, atypical_latents, describe_atypical

    atypical = atypical_latents(z) if len(z) else np.zeros(0, bool)
    table[ATYPICAL_COLUMN] = atypical.astype(np.int8)
    recordings = table["recording"] if "recording" in table.columns else np.zeros(len(z))
    line = describe_atypical(recordings, atypical)
    if line:
        log.warning("%s: %s", out_path, line)
    return atypical, line


def encode(model_path, store_dir, out_path, *, device: str = "auto", batch_size: int = 512, variances: bool = False,
           progress: bool = False, readout: bool = True):
    """Posterior means (and optionally variances) of every syllable in a store.

    Parameters
    ----------
    model_path : path
        ``model.pt`` written by :func:`usvpipe.vae.train` (or its OUT_DIR).
    store_dir : path
        Syllable store; its spectrogram shape must match the model's.
    out_path : path
        ``*.csv`` (default, ``latents.csv``) or ``*.h5`` for large runs; an existing
        directory gets ``latents.csv`` inside. Written atomically, with a ``.json`` sidecar
        (CSV) or attributes (HDF5) recording the model, parameters and version.
    device : str
        ``auto``, ``cpu``, ``cuda``, ``mps``.
    batch_size : int
    variances : bool
        Also write the marginal posterior variances ``var_z0 …``.
    readout : bool
        Check how well the latents carry the store's duration and frequencies against a PCA
        of the same images (:mod:`usvpipe.vae.readout`; ≤ 4096 syllables sampled); the result
        goes to the sidecar (``readout``, ``readout_warning``) and is logged as a warning when
        the latents carry clearly less than the PCA.

    Syllables whose latents lie far outside the prior (:mod:`usvpipe.vae.atypical`) are
    marked in the ``latent_atypical`` column (1/0), counted in the sidecar (``n_atypical``,
    ``atypical_warning``) and logged as one warning line; nothing is dropped.

    Returns
    -------
    pandas.DataFrame
        The store's ``syllables.csv`` columns plus ``latent_atypical`` and ``z0 … z{d-1}``
        (and ``var_z*``), one row per syllable in store order.
    """
    from .._device import resolve_device

    if batch_size < 1:
        raise UsvpipeError(f"batch_size must be >= 1, got {batch_size}")
    dev = resolve_device(device)
    model, store, out_path = _open_inputs(model_path, store_dir, out_path, dev)
    info = model.checkpoint_info
    n, k = len(store), model.latent_dim
    z, v = _posterior_moments(model, store, dev, batch_size, variances=variances, progress=progress)
    table = store.table.copy()
    atypical, atypical_line = _flag_atypical(table, z, out_path)
    latents = table.assign(**{f"z{i}": z[:, i] for i in range(k)})
    if variances:
        latents = latents.assign(**{f"var_z{i}": v[:, i] for i in range(k)})
    readout_rows = _readout(z, store, model.pool, out_path) if readout else []
    from .readout import readout_warning

    warning = readout_warning(readout_rows)
    if warning:
        log.warning("%s: %s", out_path, warning)
    meta = {
        "usvpipe_version": __version__, "model": model.checkpoint_info["path"], "model_epoch": model.checkpoint_info["epoch"],
        "model_params": model.checkpoint_info["params"], "store": str(store.path), "n_syllables": n,
        "latent_dim": k, "variances": bool(variances), "columns": list(latents.columns),
        "model_complete": info["complete"], "model_health": info["health"],
        "readout": readout_rows, "readout_warning": warning,
        "n_atypical": int(atypical.sum()), "atypical_warning": atypical_line,
    }
    Latents(latents, source=out_path).write(out_path, meta)
    log.info("wrote %d latents to %s", n, out_path)
    return latents


def _open_inputs(model_path, store_dir, out_path, dev):
    """The model on ``dev``, the store and the output path, each checked before anything is encoded:
    the store's images have the model's size, an unfinished model is said to be one, the output is
    ``.csv``/``.h5`` (a folder gets ``latents.csv``), and the store holds syllables."""
    from ..store import open_store

    model = load_model(model_path, dev)
    store = open_store(store_dir)
    if tuple(store.spec_shape) and tuple(store.spec_shape) != tuple(model.input_shape):
        raise InputFileError(store.path, f"spectrograms are {store.spec_shape[0]}x{store.spec_shape[1]} but the model "
                             f"expects {model.input_shape[0]}x{model.input_shape[1]}",
                             "encode with a model trained on this kind of store")
    info = model.checkpoint_info
    if not info["complete"]:
        log.warning("%s is from an unfinished training run (epoch %s of %s): its latents are provisional and carry no "
                    "health check (fix: `usvpipe train STORE OUT_DIR --resume` to finish it)",
                    info["path"], info["epoch"], info["epochs_planned"])
    out_path = Path(out_path)
    if out_path.is_dir():
        out_path = out_path / "latents.csv"
    if out_path.suffix.lower() not in (".csv", ".h5", ".hdf5"):
        raise UsvpipeError(f"{out_path}: output must end in .csv or .h5")
    store.require_syllables()  # (a header-only latents file would hide that nothing was encoded)
    return model, store, out_path


def _posterior_moments(model, store, dev, batch_size: int, *, variances: bool, progress: bool):
    """``(z, v)``: the posterior means ``(n, latent_dim)`` of every syllable in store order, and their
    marginal variances (``None`` unless ``variances``)."""
    import torch
    from tqdm.auto import tqdm

    n, k = len(store), model.latent_dim
    mus, vars_ = [], []
    bar = tqdm(total=n, unit="syll", desc="encode", disable=not progress)
    batches = store.iter_batches(batch_size, dtype=np.uint8)
    with torch.no_grad(), ThreadPoolExecutor(1) as pool:
        # read the next batch from HDF5 while the device encodes this one
        fut = pool.submit(next, batches, None)
        while True:
            item = fut.result()
            if item is None:
                break
            fut = pool.submit(next, batches, None)
            _, block = item
            x = torch.from_numpy(block).to(dev, non_blocking=True).unsqueeze(1).to(torch.float32).div_(255.0)
            mu, log_d, u = model.encode(x)
            mus.append(mu)  # stays on the device: no synchronisation per batch
            if variances:
                vars_.append(model.posterior_variance(log_d, u))
            bar.update(len(block))
    bar.close()
    z = torch.cat(mus).cpu().numpy() if mus else np.empty((0, k), np.float32)
    v = (torch.cat(vars_).cpu().numpy() if vars_ else np.empty((0, k), np.float32)) if variances else None
    return z, v


def read_latents(path):
    """Read a latents table written by :func:`encode` (``.csv`` or ``.h5``) as a DataFrame (validated)."""
    return Latents.read(path).frame
