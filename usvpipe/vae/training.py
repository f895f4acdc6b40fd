"""Training loop: split, data source, mixed precision, DDP, checkpoints and exact resume.

Outputs in ``OUT_DIR`` (only process rank 0 writes):

- ``model.pt``: the best weights (lowest validation loss), with the model configuration,
  parameters, optimiser state, epoch and package version; what ``encode`` loads;
- ``checkpoint.pt``: the full training state of the last checkpointed epoch (weights,
  optimiser, scheduler, gradient scaler, every RNG of every process, the data-order RNG,
  early-stopping state, loss history), written atomically; ``resume=True`` continues
  from it and reproduces the uninterrupted run exactly (on CPU; on CUDA with
  ``deterministic=True``);
- ``loss.csv``, ``loss.png``, ``reconstructions.png``, ``train.json`` (summary).

Distributed training: launched by ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the
environment), every process runs this same function; NCCL on CUDA, gloo on CPU.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import atomic_path, ensure_output_dir, write_csv_atomic, write_json_atomic
from .._version import __version__
from ..config import params_to_dict
from ..errors import ConfigError, InputFileError, UsvpipeError
from .params import TrainParams

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "usvpipe-vae"
CHECKPOINT_VERSION = 1
MODEL_NAME = "model.pt"
CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class TrainResult:
    """What :func:`train` produced.

    Attributes
    ----------
    model_path : Path
        ``OUT_DIR/model.pt`` (best weights).
    checkpoint_path : Path
        ``OUT_DIR/checkpoint.pt`` (resumable state).
    history : pandas.DataFrame
        One row per epoch: epoch, train_loss, train_recon, train_kl, val_loss, val_recon,
        val_kl, lr, n_syllables (trained on, all processes), epoch_s (training time; only
        this column depends on the machine, so resumed and uninterrupted runs' tables
        match in every other column).
    best_epoch, epochs_run : int
    stopped_early : bool
    n_train, n_val : int
        Syllables in each split.
    split : dict
        Unit of the split and the validation recordings/animals.
    device, amp : str
    data_on_device : bool
    world_size : int
    """

    model_path: Path
    checkpoint_path: Path
    out_dir: Path
    history: "object"
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    n_train: int
    n_val: int
    split: dict = field(default_factory=dict)
    device: str = "cpu"
    amp: str = "off"
    data_on_device: bool = True
    channels_last: bool = False
    world_size: int = 1


# -- environment ----------------------------------------------------------------------------
def distributed_env(environ=None) -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` if absent)."""
    env = os.environ if environ is None else environ
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ConfigError("RANK/WORLD_SIZE/LOCAL_RANK are not integers (fix: launch with torchrun or unset them)") from None
    return rank, world, local


def resolve_device(name: str = "auto", local_rank: int = 0):
    """``"auto"`` -> CUDA, then MPS, then CPU; ``"cuda"`` uses GPU ``local_rank`` under torchrun."""
    import torch

    name = str(name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA GPU is visible to torch (fix: use --device cpu or auto)")
        if name == "cuda":
            return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        return torch.device(name)
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise ConfigError("--device mps: Apple MPS is not available (fix: use --device cpu or auto)")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or mps")


def resolve_amp(amp: str, device):
    """The autocast dtype for ``amp`` on ``device`` (``None`` = full precision)."""
    import torch

    if amp == "off":
        return None
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "fp16":
        if device.type != "cuda":
            raise ConfigError("amp=fp16 needs a CUDA device (fix: use amp=bf16 or amp=off on CPU/MPS)")
        return torch.float16
    return torch.bfloat16


def _amp_name(dtype) -> str:
    import torch

    return {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


# -- checkpoint I/O ---------------------------------------------------------------------------
def _cpu_state(state):
    import torch

    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: _cpu_state(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_cpu_state(v) for v in state)
    return state


def save_checkpoint(obj: dict, path) -> Path:
    """``torch.save`` to a temporary file, then rename (a killed job never leaves half a file)."""
    import torch

    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def load_checkpoint(path) -> dict:
    """Load a checkpoint/model file on the CPU (``weights_only``: no code runs on load)."""
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / MODEL_NAME
    if not path.is_file():
        raise InputFileError(path, "model file not found", "pass OUT_DIR/model.pt written by `usvpipe train`")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, not a torch file, ...
        raise InputFileError(path, f"not a readable usvpipe model ({type(exc).__name__})", "re-run `usvpipe train`") from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise InputFileError(path, "not a usvpipe VAE checkpoint", "pass OUT_DIR/model.pt written by `usvpipe train`")
    return obj


def _rng_state(device) -> dict:
    import torch

    st = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        # plain lists/ints so the file loads with weights_only=True
        "numpy": [st[0], st[1].tolist(), int(st[2]), int(st[3]), float(st[4])],
        "python": _py_state_to_list(random.getstate()),
    }


def _py_state_to_list(state):
    return [state[0], list(state[1]), state[2]]


def _set_rng_state(state: dict, device) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    n = state["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


# -- the loop ----------------------------------------------------------------------------------
def _lr_lambda(params: TrainParams, steps_per_epoch: int):
    total = max(params.epochs * steps_per_epoch, 1)
    warm = params.warmup_epochs * steps_per_epoch
    floor = params.min_lr_fraction

    def f(step: int) -> float:
        if warm > 0 and step < warm:
            return (step + 1) / warm
        t = min((step - warm) / max(total - warm, 1), 1.0)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))

    return f


def train(store_dir, out_dir, params: TrainParams = TrainParams(), *, device: str = "auto", resume: bool = False,
          progress: bool = True, on_epoch_end=None) -> TrainResult:
    """Train a VAE on a syllable store.

    Parameters
    ----------
    store_dir : path
        Syllable store written by ``usvpipe segment`` (or :func:`usvpipe.store.write_shard`).
    out_dir : path
        Output directory (created); see the module docstring for its contents.
    params : TrainParams
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"}
    resume : bool
        Continue from ``OUT_DIR/checkpoint.pt`` if it exists (start fresh otherwise, so a
        requeued SLURM job can always pass it). Without ``resume`` an existing checkpoint
        is an error, so a finished run is never overwritten by accident.
    progress : bool
        Show a progress bar (rank 0 only).
    on_epoch_end : callable, optional
        ``f(epoch, row)`` called on every process after each epoch (and after its
        checkpoint); ``row`` is the epoch's history dict. Raising stops training.

    Returns
    -------
    TrainResult
    """
    import pandas as pd
    import torch

    from ..store import open_store
    from .data import DeviceSource, StreamSource, choose_data_on_device, epoch_batches, split_rows
    from .model import VAE, check_input_shape

    if not isinstance(params, TrainParams):
        raise TypeError("params must be a usvpipe.vae.TrainParams")
    rank, world, local_rank = distributed_env()
    dist = None
    dev = resolve_device(device, local_rank)
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if dev.type == "cuda" else "gloo"
            if dev.type == "cuda":
                torch.cuda.set_device(dev)
            dist.init_process_group(backend=backend)
    is_main = rank == 0
    try:
        out_dir = Path(out_dir)
        if is_main:
            ensure_output_dir(out_dir)
        # rank 0 merges the store if needed, the others read it afterwards
        store = open_store(store_dir) if is_main else None
        if dist is not None:
            dist.barrier()
        if store is None:
            store = open_store(store_dir)
        if len(store) == 0:
            raise UsvpipeError(f"{store_dir}: the syllable store is empty (fix: check the segmentation output)")
        check_input_shape(store.spec_shape, len(params.channels))
        ckpt_path = out_dir / CHECKPOINT_NAME
        model_path = out_dir / MODEL_NAME
        ckpt = None
        if ckpt_path.exists():
            if not resume:
                raise UsvpipeError(f"{ckpt_path} exists (fix: pass --resume to continue that run, or choose a new OUT_DIR)")
            ckpt = load_checkpoint(ckpt_path)

        if params.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        elif dev.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if dev.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        # -- split and data --------------------------------------------------------------
        train_rows, val_rows, split_info = split_rows(store.table, by=params.split_by,
                                                       val_fraction=params.val_fraction, seed=params.seed)
        if len(train_rows) < 2:
            raise UsvpipeError(f"{store_dir}: only {len(train_rows)} training syllable(s) (fix: more data or a smaller val_fraction)")
        channels_last = params.channels_last if isinstance(params.channels_last, bool) else dev.type == "cuda"
        h, w = store.spec_shape
        n_bytes = len(store) * h * w
        on_device = choose_data_on_device(params.data_on_device, n_bytes, dev, params.memory_fraction)
        if on_device:
            source = DeviceSource(store, dev, channels_last=channels_last)
        else:
            source = StreamSource(store, dev, channels_last=channels_last, num_workers=params.num_workers)
        log.info("training on %s: %d train / %d validation syllables (split by %s), data %s",
                 dev, len(train_rows), len(val_rows), split_info["unit"], "on device" if on_device else "streamed")

        # -- model and optimiser ------------------------------------------------------------
        torch.manual_seed(params.seed)  # identical initial weights on every process
        model = VAE(**params.model_config(store.spec_shape)).to(dev)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        torch.manual_seed(params.seed + 7919 * rank)  # independent sampling noise per process
        np.random.seed(params.seed)
        random.seed(params.seed)
        data_rng = np.random.default_rng(params.seed)  # the data order: same on every process
        opt_kwargs = {"fused": True} if dev.type == "cuda" else {}
        optimizer = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay, **opt_kwargs)
        steps_per_epoch = len(epoch_batches(train_rows, np.arange(len(train_rows)), params.batch_size,
                                            rank=rank, world_size=world))
        per_step_schedule = params.lr_schedule in ("cosine", "constant")
        if params.lr_schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(params, steps_per_epoch))
        elif params.lr_schedule == "constant":
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        else:
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=max(1, params.patience // 2))
        amp_dtype = resolve_amp(params.amp, dev)
        scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None

        start_epoch = 0
        history: list[dict] = []
        best = {"epoch": 0, "loss": math.inf, "bad_epochs": 0, "state": None}
        if ckpt is not None:
            if ckpt["model_config"] != model.config:
                raise ConfigError(f"{ckpt_path}: made with different model parameters {ckpt['model_config']} "
                                  "(fix: resume with the same parameters, or choose a new OUT_DIR)")
            if ckpt["store"]["n_syllables"] != len(store):
                raise UsvpipeError(f"{ckpt_path}: made from a store with {ckpt['store']['n_syllables']} syllables, "
                                   f"this one has {len(store)} (fix: resume on the same store, or choose a new OUT_DIR)")
            model.load_state_dict(ckpt["model_state"])
            optimizer.load_state_dict(ckpt["optimizer_state"])
            scheduler.load_state_dict(ckpt["scheduler_state"])
            if scaler is not None and ckpt.get("scaler_state"):
                scaler.load_state_dict(ckpt["scaler_state"])
            start_epoch = int(ckpt["epoch"])
            history = list(ckpt["history"])
            best = dict(ckpt["best"])
            data_rng.bit_generator.state = ckpt["rng"]["data"]
            if ckpt["world_size"] == world:
                _set_rng_state(ckpt["rng"]["process"][rank], dev)
            else:
                log.warning("checkpoint made with %d processes, resuming with %d: sampling noise is reseeded",
                            ckpt["world_size"], world)
                torch.manual_seed(params.seed + 7919 * rank + 104729 * start_epoch)
            if is_main:
                log.info("resuming from %s after epoch %d", ckpt_path, start_epoch)
            del ckpt

        net = model
        if dist is not None:
            net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
        if params.compile and dev.type == "cuda":
            net = torch.compile(net)
        autocast = (lambda: torch.autocast(device_type=dev.type, dtype=amp_dtype)) if amp_dtype is not None else contextlib.nullcontext

        def all_sum(t):
            if dist is not None:
                dist.all_reduce(t)
            return t

        def run_validation():
            model.eval()
            acc = torch.zeros(4, device=dev)
            # fixed noise: the validation loss of different epochs is comparable
            gen = torch.Generator(device=dev).manual_seed(params.seed + 1)
            with torch.no_grad(), autocast():
                for x in source.batches(epoch_batches(val_rows, np.arange(len(val_rows)), 4 * params.batch_size,
                                                      rank=rank, world_size=1, drop_last=False)[rank::world]):
                    loss, recon, kl = model(x, generator=gen)
                    acc += torch.stack([loss.float(), recon.float(), kl.float(), torch.ones((), device=dev)]) * x.shape[0]
            acc = all_sum(acc).cpu()
            model.train()
            return (acc[:3] / acc[3]).tolist() if acc[3] > 0 else [math.nan] * 3

        fig_rows = val_rows if len(val_rows) else train_rows
        fig_rows = fig_rows[np.unique(np.linspace(0, len(fig_rows) - 1, min(8, len(fig_rows))).astype(int))]

        def draw_figures(hist_df):
            from .plots import plot_losses, plot_reconstructions

            plot_losses(hist_df, out_dir / "loss.png")
            model.eval()
            with torch.no_grad():
                x = list(source.batches([fig_rows]))[0]
                mu, _, _ = model.encode(x)
                rec = model.decode(mu).float().clamp(0, 1)
            model.train()
            plot_reconstructions(x[:, 0].float().cpu().numpy(), rec[:, 0].cpu().numpy(), out_dir / "reconstructions.png",
                                 title=f"epoch {int(hist_df['epoch'].iloc[-1])}")

        def gather_rng():
            state = _rng_state(dev)
            if dist is None:
                return [state]
            out = [None] * world
            dist.all_gather_object(out, state)
            return out

        def checkpoint_obj(epoch, rng_states):
            return {
                "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "usvpipe_version": __version__,
                "kind": "checkpoint", "model_config": model.config, "params": params_to_dict(params),
                "model_state": _cpu_state(model.state_dict()), "optimizer_state": _cpu_state(optimizer.state_dict()),
                "scheduler_state": scheduler.state_dict(), "scaler_state": scaler.state_dict() if scaler else None,
                "epoch": epoch, "history": history, "best": best, "world_size": world,
                "rng": {"process": rng_states, "data": data_rng.bit_generator.state},
                "store": {"path": str(store.path), "n_syllables": len(store), "spec_shape": list(store.spec_shape)},
                "split": {"unit": split_info["unit"], "val_units": split_info["val_units"],
                          "n_train": int(len(train_rows)), "n_val": int(len(val_rows))},
            }

        # -- epochs ----------------------------------------------------------------------
        from tqdm.auto import tqdm

        model.train()
        stopped_early = False
        epoch = start_epoch
        stop = best["bad_epochs"] >= params.patience > 0
        for epoch in range(start_epoch + 1, params.epochs + 1):
            if stop:
                break
            t0 = time.perf_counter()
            perm = data_rng.permutation(len(train_rows))
            batches = epoch_batches(train_rows, perm, params.batch_size, rank=rank, world_size=world)
            acc = torch.zeros(4, device=dev)
            bar = tqdm(total=len(batches), desc=f"epoch {epoch}/{params.epochs}", leave=False, unit="batch",
                       disable=not (progress and is_main))
            for x in source.batches(batches):
                with autocast():
                    loss, recon, kl = net(x)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
                if per_step_schedule:
                    scheduler.step()
                # accumulate on the device: no host synchronisation inside the epoch
                acc += torch.stack([loss.detach().float(), recon.detach().float(), kl.detach().float(),
                                    torch.ones((), device=dev)]) * x.shape[0]
                bar.update(1)
            bar.close()
            acc = all_sum(acc).cpu()
            tr = (acc[:3] / acc[3]).tolist()
            n_seen = float(acc[3])
            va = run_validation() if len(val_rows) else [math.nan] * 3
            monitor = va[0] if len(val_rows) else tr[0]
            if not per_step_schedule:
                scheduler.step(monitor)
            if not math.isfinite(tr[0]):
                raise UsvpipeError(f"training diverged at epoch {epoch} (loss {tr[0]}) "
                                   "(fix: lower lr, or use amp=off / a smaller obs_precision)")
            dt = time.perf_counter() - t0
            row = {"epoch": epoch, "train_loss": tr[0], "train_recon": tr[1], "train_kl": tr[2],
                   "val_loss": va[0], "val_recon": va[1], "val_kl": va[2], "lr": optimizer.param_groups[0]["lr"],
                   "n_syllables": int(n_seen), "epoch_s": dt}
            history.append(row)
            if monitor < best["loss"] - params.min_delta:
                best = {"epoch": epoch, "loss": monitor, "bad_epochs": 0, "state": _cpu_state(model.state_dict())}
            else:
                best["bad_epochs"] += 1
            stop = params.patience > 0 and best["bad_epochs"] >= params.patience
            last = stop or epoch == params.epochs
            hist_df = pd.DataFrame(history)
            if is_main:
                write_csv_atomic(out_dir / "loss.csv", hist_df, float_format="%.6g")
                if (params.figure_every and epoch % params.figure_every == 0) or last:
                    draw_figures(hist_df)
                if progress:
                    val_txt = f" val {va[0]:.2f}" if len(val_rows) else ""
                    tqdm.write(f"epoch {epoch}/{params.epochs}: train {tr[0]:.2f}{val_txt} "
                               f"({n_seen / max(dt, 1e-9):.0f} syll/s)")
            if epoch % params.checkpoint_every == 0 or last:
                rng_states = gather_rng()
                if is_main:
                    save_checkpoint(checkpoint_obj(epoch, rng_states), ckpt_path)
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
        stopped_early = stop and (not history or history[-1]["epoch"] < params.epochs)

        # -- final model -------------------------------------------------------------------
        hist_df = pd.DataFrame(history)
        if is_main:
            state = best["state"] if best["state"] is not None else _cpu_state(model.state_dict())
            final = {
                "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "usvpipe_version": __version__,
                "kind": "model", "model_config": model.config, "params": params_to_dict(params),
                "model_state": state, "optimizer_state": _cpu_state(optimizer.state_dict()),
                "epoch": int(best["epoch"] or (history[-1]["epoch"] if history else 0)), "history": history,
                "store": {"path": str(store.path), "n_syllables": len(store), "spec_shape": list(store.spec_shape)},
                "split": {"unit": split_info["unit"], "val_units": split_info["val_units"]},
            }
            save_checkpoint(final, model_path)
            write_json_atomic(out_dir / "train.json", {
                "usvpipe_version": __version__, "params": params_to_dict(params), "store": str(store.path),
                "n_syllables": len(store), "n_train": int(len(train_rows)), "n_val": int(len(val_rows)),
                "split": split_info, "device": str(dev), "amp": _amp_name(amp_dtype), "data_on_device": bool(on_device),
                "channels_last": bool(channels_last),
                "world_size": world, "best_epoch": int(final["epoch"]), "epochs_run": len(history),
                "stopped_early": bool(stopped_early), "model": MODEL_NAME, "checkpoint": CHECKPOINT_NAME,
            })
        if dist is not None:
            dist.barrier()
        source.close()
        return TrainResult(
            model_path=model_path, checkpoint_path=ckpt_path, out_dir=out_dir, history=hist_df,
            best_epoch=int(best["epoch"]), epochs_run=len(history), stopped_early=bool(stopped_early),
            n_train=int(len(train_rows)), n_val=int(len(val_rows)), split=split_info, device=str(dev),
            amp=_amp_name(amp_dtype), data_on_device=bool(on_device), channels_last=bool(channels_last), world_size=world,
        )
    finally:
        if dist is not None and dist.is_initialized():
            dist.destroy_process_group()
