"""Training loop: split, data source, mixed precision, DDP, checkpoints and exact resume.

Outputs in ``OUT_DIR`` (only process rank 0 writes):

- ``model.pt``: the weights that ``keep`` selects (the last epoch's, or with enough held-out
  syllables the lowest validation loss), with the model configuration,
  parameters, optimiser state, epoch and package version; what ``encode`` loads;
- ``checkpoint.pt``: the full training state of the last checkpointed epoch (weights,
  optimiser, scheduler, gradient scaler, every RNG of every process, the data-order RNG,
  early-stopping state, loss history), written atomically; ``resume=True`` continues
  from it and reproduces the uninterrupted run exactly (on CPU; on CUDA with
  ``deterministic=True``);
- ``loss.csv``, ``loss.png``, ``reconstructions.png``, ``train.json`` (summary, with the
  training health of :mod:`usvpipe.vae.health`).

``model.pt`` is also written at every checkpoint (``"complete": False``) so a job stopped
by a time limit still leaves a model that ``encode`` can use (and says is unfinished).

Distributed training: launched by ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the
environment), every process runs this same function; NCCL on CUDA, gloo on CPU.

One file per concern: this one builds a run and runs its epochs; ``runtime.py`` is where a
process runs (torchrun, device, mixed precision), ``checkpoint.py`` the checkpoint files,
``schedule.py`` the run's length and learning rate, ``samples.py`` the syllables sampled
besides the batches, ``training_outputs.py`` what the run writes and prints as it goes.
"""
from __future__ import annotations

import contextlib
import logging
import math
import random
from typing import Optional
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import ensure_output_dir, write_json_atomic
from .._version import __version__
from ..config import params_to_dict
from ..errors import ConfigError, UsvpipeError
from .checkpoint import CHECKPOINT_NAME, MODEL_NAME, _cpu_state, _set_rng_state, load_checkpoint
from .params import MIN_VAL_SYLLABLES_TO_SELECT, TrainParams
from .runtime import _amp_name, _configure_backends, _Context, _has_fused_adam, _process_context, resolve_amp
from .samples import MAX_PCA_SYLLABLES, _pooled, _sample_rows, auto_obs_precision, end_of_run_check_rows
from .schedule import _lr_lambda, planned_epochs
from .training_outputs import _TrainerOutputs

log = logging.getLogger(__name__)


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
        One row per epoch: epoch, train_loss, train_recon, train_kl, train_axis (the
        latent-axis penalty), val_loss, val_recon, val_kl, lr, n_syllables (trained on, all
        processes), epoch_s (training time; only this column depends on the machine, so
        resumed and uninterrupted runs' tables match in every other column).
    best_epoch, epochs_run : int
    stopped_early : bool
    n_train, n_val : int
        Syllables in each split.
    split : dict
        Unit of the split and the validation recordings/animals.
    device, amp : str
    data_on_device : bool
    world_size : int
    steps : int
        Optimiser steps made (all epochs of this and earlier, resumed, runs).
    profile : {"full", "cpu"}
        ``"cpu"``: the images were average-pooled (see ``TrainParams.profile``).
    batch_size : int
        The resolved batch size.
    obs_precision : float
        The resolved observation precision.
    health : usvpipe.vae.health.TrainingHealth
        Active units, held-out reconstruction R² against the mean image and PCA, pass/fail.
    axis_checks : list of usvpipe.vae.axis_check.AxisCheck
        With ``latent_axes``: how each trained axis responds to its move on held-out syllables.
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
    steps: int = 0
    profile: str = "full"
    batch_size: int = 0
    obs_precision: float = 0.0
    health: "object" = None
    axis_checks: list = field(default_factory=list)


class _Trainer(_TrainerOutputs):
    """One training run: :meth:`__init__` builds it (split, data, model, optimiser, restored
    state), :meth:`fit` runs the epochs and writes the outputs. Every process of a DDP run
    holds one; only rank 0 writes."""

    thread_choice = None  # set by train(): the CPU thread count and why (usvpipe._threads.ThreadChoice)

    def __init__(self, store_dir, out_dir, params: TrainParams, ctx: _Context, *, resume: bool, progress: bool,
                 verbose: bool = True):
        self.params, self.ctx, self.progress = params, ctx, progress
        self.verbose = verbose and ctx.is_main
        from .eta import FinishEstimate

        self._finish_estimate = FinishEstimate()  # the time-left line, smoothed (see eta.py)
        self.out_dir = Path(out_dir)
        if ctx.is_main:
            ensure_output_dir(self.out_dir)
        ckpt = self._open_store(store_dir, resume)
        _configure_backends(params, ctx.device)
        self._resolve_data(store_dir)
        self._build_model()
        self._build_optimiser()
        self.start_epoch = 0
        self.history: list[dict] = []
        self.best = {"epoch": 0, "loss": math.inf, "bad_epochs": 0, "state": None}
        if ckpt is not None:
            self._restore(ckpt)
        self._wrap_model()
        fig_rows = self.val_rows if len(self.val_rows) else self.train_rows
        self.fig_rows = fig_rows[np.unique(np.linspace(0, len(fig_rows) - 1, min(8, len(fig_rows))).astype(int))]

    # -- set-up pieces ---------------------------------------------------------------------------
    def _open_store(self, store_dir, resume: bool):
        """Open the store (rank 0 merges it first if needed); returns the checkpoint to resume, or None."""
        from ..store import open_store

        store = open_store(store_dir) if self.ctx.is_main else None
        self.ctx.barrier()
        self.store = store if store is not None else open_store(store_dir)
        self.store.require_syllables()
        self.store.require_complete()  # a segmentation that stopped (e.g. a full disk) is not trained on
        self.ckpt_path, self.model_path = self.out_dir / CHECKPOINT_NAME, self.out_dir / MODEL_NAME
        if not self.ckpt_path.exists():
            return None
        if not resume:
            raise UsvpipeError(f"{self.ckpt_path} exists (fix: pass --resume to continue that run, or choose a new OUT_DIR)")
        return load_checkpoint(self.ckpt_path)

    def _resolve_data(self, store_dir) -> None:
        """The split, and every "auto" choice that depends on the store: profile, batch, jitter, keep, precision."""
        from .data import choose_data_on_device, split_rows

        params, dev = self.params, self.ctx.device
        self.train_rows, self.val_rows, self.split_info = split_rows(
            self.store.table, by=params.split_by, val_fraction=params.val_fraction, seed=params.seed)
        if len(self.train_rows) < 2:
            raise UsvpipeError(f"{store_dir}: only {len(self.train_rows)} training syllable(s) "
                               "(fix: more data or a smaller val_fraction)")
        self.pool = params.resolved_pool(dev.type, self.store.spec_shape)
        self.profile = "cpu" if self.pool > 1 else "full"
        self.batch_size = params.resolved_batch_size(len(self.train_rows))
        self.jitter = None
        if params.resolved_augment(len(self.train_rows)):
            from .augment import Jitter

            self.jitter = Jitter(params.augment_shift, params.augment_stretch)
        self.axes = params.axis_names
        self.keep = params.keep if params.keep != "auto" else (
            "best" if len(self.val_rows) >= MIN_VAL_SYLLABLES_TO_SELECT else "last")
        self.channels_last = params.channels_last if isinstance(params.channels_last, bool) else dev.type == "cuda"
        h, w = self.store.spec_shape
        self.on_device = choose_data_on_device(params.data_on_device, len(self.store) * h * w, dev, params.memory_fraction)
        self.source = self._open_source()
        sample = _sample_rows(self.train_rows, MAX_PCA_SYLLABLES, params.seed)
        self.obs_precision = (auto_obs_precision(_pooled(self.store.read(sample), self.pool), params.obs_noise_fraction)
                              if params.obs_precision == "auto" else float(params.obs_precision))

    def _build_model(self) -> None:
        """The VAE with identical initial weights on every process, then the per-process random streams."""
        import torch

        from .model import VAE

        params, ctx = self.params, self.ctx
        torch.manual_seed(params.seed)  # identical initial weights on every process
        config = params.model_config(self.store.spec_shape, obs_precision=self.obs_precision, pool=self.pool)
        self.model = VAE(**config).to(ctx.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        torch.manual_seed(params.seed + 7919 * ctx.rank)  # independent sampling noise per process
        np.random.seed(params.seed)
        random.seed(params.seed)
        self.data_rng = np.random.default_rng(params.seed)  # the data order: same on every process

    def _build_optimiser(self) -> None:
        """Adam, the planned length in epochs, the learning-rate schedule and the mixed-precision scaler."""
        import torch

        from .data import epoch_batches

        params, ctx, dev = self.params, self.ctx, self.ctx.device
        opt_kwargs = {"fused": True} if _has_fused_adam(dev) else {}
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=params.lr, weight_decay=params.weight_decay,
                                          **opt_kwargs)
        self.steps_per_epoch = len(epoch_batches(self.train_rows, np.arange(len(self.train_rows)), self.batch_size,
                                                 rank=ctx.rank, world_size=ctx.world))
        self.n_epochs = planned_epochs(params, self.steps_per_epoch)
        self.per_step_schedule = params.lr_schedule in ("cosine", "constant")
        if params.lr_schedule == "cosine":
            lam = _lr_lambda(params.warmup_epochs * self.steps_per_epoch, self.n_epochs * self.steps_per_epoch,
                             params.min_lr_fraction)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lam)
        elif params.lr_schedule == "constant":
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 1.0)
        else:
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=0.1,
                                                                        patience=max(1, params.patience // 2))
        self.amp_dtype = resolve_amp(params.amp, dev)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None

    def _wrap_model(self) -> None:
        """``self.net``: the model as the training steps call it (DDP across processes, compiled on CUDA)."""
        import torch

        dev = self.ctx.device
        self.net = self.model
        if self.ctx.dist is not None:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[dev.index] if dev.type == "cuda" else None)
        if self.params.compile and dev.type == "cuda":
            self.net = torch.compile(self.net)

    def _open_source(self):
        from .data import DeviceSource, StreamSource

        if self.on_device:
            return DeviceSource(self.store, self.ctx.device, channels_last=self.channels_last)
        return StreamSource(self.store, self.ctx.device, channels_last=self.channels_last,
                            num_workers=self.params.num_workers)

    def _restore(self, ckpt: dict) -> None:
        """Continue from ``checkpoint.pt``: weights, optimiser, schedule, history and every RNG."""
        import torch

        # (checkpoints written before `moved_axes` existed decoded every dimension through the network)
        made = {"moved_axes": [], "located_axes": [], **ckpt["model_config"]}
        if made != self.model.config:
            # runs from before axis_encoder = "auto" have the network's z0 and z1: say which setting resumes them
            older = (" (this run's z0 and z1 come from the network: resume with axis_encoder = \"network\")"
                     if not made["located_axes"] and self.model.config.get("read_width")
                     and {**made, **{k: self.model.config[k] for k in ("located_axes", "pitch_locator", "read_width")}}
                     == self.model.config else "")
            raise ConfigError(f"{self.ckpt_path}: made with different model parameters {ckpt['model_config']}{older} "
                              "(fix: resume with the same parameters, or choose a new OUT_DIR)")
        _refuse_changed_optimiser(self.ckpt_path, ckpt.get("params", {}), params_to_dict(self.params))
        if ckpt["store"]["n_syllables"] != len(self.store):
            raise UsvpipeError(f"{self.ckpt_path}: made from a store with {ckpt['store']['n_syllables']} syllables, "
                               f"this one has {len(self.store)} (fix: resume on the same store, or choose a new OUT_DIR)")
        self.model.load_state_dict(ckpt["model_state"])
        self.optimizer.load_state_dict(ckpt["optimizer_state"])
        self.scheduler.load_state_dict(ckpt["scheduler_state"])
        if self.scaler is not None and ckpt.get("scaler_state"):
            self.scaler.load_state_dict(ckpt["scaler_state"])
        self.start_epoch = int(ckpt["epoch"])
        self.history = list(ckpt["history"])
        self.best = dict(ckpt["best"])
        self.data_rng.bit_generator.state = ckpt["rng"]["data"]
        if ckpt["world_size"] == self.ctx.world:
            _set_rng_state(ckpt["rng"]["process"][self.ctx.rank], self.ctx.device)
        else:
            log.warning("checkpoint made with %d processes, resuming with %d: sampling noise is reseeded",
                        ckpt["world_size"], self.ctx.world)
            torch.manual_seed(self.params.seed + 7919 * self.ctx.rank + 104729 * self.start_epoch)
        if self.ctx.is_main:
            log.info("resuming from %s after epoch %d", self.ckpt_path, self.start_epoch)

    def _autocast(self):
        import torch

        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.ctx.device.type, dtype=self.amp_dtype)

    # -- one epoch ---------------------------------------------------------------------------------
    def _run_epoch(self, epoch: int):
        import torch
        from tqdm.auto import tqdm

        from .augment import jitter_batch
        from .data import epoch_batches

        dev = self.ctx.device
        perm = self.data_rng.permutation(len(self.train_rows))
        batches = epoch_batches(self.train_rows, perm, self.batch_size, rank=self.ctx.rank, world_size=self.ctx.world)
        acc = torch.zeros(4, device=dev)
        bar = tqdm(total=len(batches), desc=f"epoch {epoch}/{self.n_epochs}", leave=False, unit="batch",
                   # a bar redrawn with carriage returns is megabytes of noise in a SLURM log or a
                   # file; the one-line epoch summary below is what a log should hold
                   disable=not (self.progress and self.ctx.is_main and sys.stderr.isatty()))
        for x in self.source.batches(batches):
            if self.jitter is not None:
                x = jitter_batch(self.model.prepare(x), self.jitter)
            with self._autocast():
                loss, recon, kl = self.net(x, moved=self._moved_copy(x) if self.axes else None)
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
            if self.per_step_schedule:
                self.scheduler.step()
            # accumulate on the device: no host synchronisation inside the epoch
            acc += torch.stack([loss.detach().float(), recon.detach().float(), kl.detach().float(),
                                torch.ones((), device=dev)]) * x.shape[0]
            bar.update(1)
        bar.close()
        acc = self.ctx.all_sum(acc).cpu()
        return (acc[:3] / acc[3]).tolist(), float(acc[3])

    def _moved_copy(self, x):
        """The batch with each call moved at random along the ``latent_axes`` and the latent change each move should cause."""
        import math

        import torch

        from .augment import intended_axis_change, move_calls, shift_rows

        x = self.model.prepare(x)
        n, height = x.shape[0], x.shape[-2]
        target = torch.zeros(n, self.params.latent_dim, device=x.device)
        max_rows = max(1, round(self.params.axis_shift * height))
        rows = torch.randint(-max_rows, max_rows + 1, (n,), device=x.device)
        target[:, 0] = intended_axis_change("pitch", rows.float(), height)
        moved = shift_rows(x, rows)
        if "duration" in self.axes:
            log_widen = (torch.rand(n, device=x.device) * 2.0 - 1.0) * math.log1p(self.params.axis_stretch)
            target[:, 1] = intended_axis_change("duration", log_widen, height)
            moved = move_calls(moved, torch.zeros(n, device=x.device), torch.exp(log_widen))
        return moved, target, self.params.axis_sd

    def _validate(self):
        import torch

        from .data import epoch_batches

        if not len(self.val_rows):
            return [math.nan] * 3
        dev, model = self.ctx.device, self.model
        model.eval()
        acc = torch.zeros(4, device=dev)
        # fixed noise: the validation loss of different epochs is comparable
        gen = torch.Generator(device=dev).manual_seed(self.params.seed + 1)
        batches = epoch_batches(self.val_rows, np.arange(len(self.val_rows)), 4 * self.batch_size,
                                rank=self.ctx.rank, world_size=1)[self.ctx.rank::self.ctx.world]
        with torch.no_grad(), self._autocast():
            for x in self.source.batches(batches):
                loss, recon, kl = model(x, generator=gen)
                acc += torch.stack([loss.float(), recon.float(), kl.float(), torch.ones((), device=dev)]) * x.shape[0]
        acc = self.ctx.all_sum(acc).cpu()
        model.train()
        return (acc[:3] / acc[3]).tolist() if acc[3] > 0 else [math.nan] * 3

    # -- end-of-run checks ---------------------------------------------------------------------------
    def _check_rows(self, limit: int) -> np.ndarray:
        return end_of_run_check_rows(self.train_rows, self.val_rows, limit, self.params.seed)

    def assess_health(self):
        """:class:`~usvpipe.vae.health.TrainingHealth` of the current weights (held-out syllables)."""
        from .health import MAX_HEALTH_SYLLABLES, measure_health

        rows = self._check_rows(MAX_HEALTH_SYLLABLES)
        train_sample = _sample_rows(self.train_rows, MAX_PCA_SYLLABLES, self.params.seed)
        batches = self.source.batches([rows[i:i + 256] for i in range(0, len(rows), 256)])
        return measure_health(self.model, batches, _pooled(self.store.read(train_sample), self.pool),
                              held_out=len(self.val_rows) > 0, n_store=len(self.store), steps=self._steps_done())

    def check_axes(self) -> list:
        """:class:`~usvpipe.vae.axis_check.AxisCheck` of each trained latent axis (``[]`` without ``latent_axes``)."""
        from .axis_check import MAX_AXIS_CHECK_SYLLABLES, measure_axes

        if not self.axes:
            return []
        rows = self._check_rows(MAX_AXIS_CHECK_SYLLABLES)
        batches = self.source.batches([rows[i:i + 128] for i in range(0, len(rows), 128)])
        return measure_axes(self.model, batches, self.axes, axis_shift=self.params.axis_shift,
                            axis_stretch=self.params.axis_stretch,
                            recordings=self.store.table["recording"].astype(str).to_numpy()[rows])

    # -- the run ------------------------------------------------------------------------------------
    def fit(self, on_epoch_end=None) -> TrainResult:
        from tqdm.auto import tqdm

        p, ctx = self.params, self.ctx
        if self.verbose:
            tqdm.write(self.start_line())  # the details (describe()) go to train.json's "plan"
        if ctx.is_main:
            self.warn_if_short_of_the_floor()
        from .health import MIN_SYLLABLES_SHOWN_TO_LEARN

        if ctx.is_main and len(self.store) < MIN_SYLLABLES_SHOWN_TO_LEARN:
            log.warning("%s: only %d syllables; the default training was shown to learn from %d (real recordings, "
                        "scripts/vae_real_benchmark.py): check the training health at the end before reading the latents",
                        self.store.path, len(self.store), MIN_SYLLABLES_SHOWN_TO_LEARN)
        self.model.train()
        self._last_checkpoint_t = self._last_figure_t = time.monotonic()
        self._first_epoch_row = len(self.history)
        stop = self._should_stop()
        for epoch in range(self.start_epoch + 1, self.n_epochs + 1):
            if stop:
                break
            t0 = time.perf_counter()
            tr, n_seen = self._run_epoch(epoch)
            va = self._validate()
            monitor = va[0] if len(self.val_rows) else tr[0]
            if not self.per_step_schedule:
                self.scheduler.step(monitor)
            if not math.isfinite(tr[0]):
                raise UsvpipeError(f"training diverged at epoch {epoch} (loss {tr[0]}) "
                                   "(fix: lower lr, or use amp=off / a smaller obs_precision)")
            dt = time.perf_counter() - t0
            row = {"epoch": epoch, "train_loss": tr[0], "train_recon": tr[1], "train_kl": tr[2],
                   # the latent-axis penalty: the part of the training loss that is neither term
                   "train_axis": tr[0] - tr[1] - tr[2] if self.axes else 0.0,
                   "val_loss": va[0], "val_recon": va[1], "val_kl": va[2], "lr": self.optimizer.param_groups[0]["lr"],
                   "n_syllables": int(n_seen), "epoch_s": dt}
            self.history.append(row)
            if monitor < self.best["loss"] - p.min_delta:
                self.best = {"epoch": epoch, "loss": monitor, "bad_epochs": 0,
                             "state": _cpu_state(self.model.state_dict()) if self.keep == "best" else None}
            else:
                self.best["bad_epochs"] += 1
            stop = self._should_stop()
            last = stop or epoch == self.n_epochs
            if ctx.is_main:
                self._log_epoch(epoch, row, dt, last)
                if stop and epoch < self.n_epochs and self.verbose:
                    tqdm.write(f"stopping early after epoch {epoch}: no validation improvement for {p.patience} epochs "
                               f"(best epoch {self.best['epoch']})")
            if self._checkpoint_due(epoch, last):
                rng_states = self._gather_rng()
                if ctx.is_main:
                    self._save_checkpoint(epoch, rng_states)
                    if not last:
                        self._save_model(complete=False, health=None)
                self._last_checkpoint_t = time.monotonic()
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
        return self._finish(stop)

    def _checkpoint_due(self, epoch: int, last: bool) -> bool:
        """Write ``checkpoint.pt`` now? Every ``checkpoint_every`` epochs, at most once per
        ``checkpoint_min_interval_s`` (the demo wrote 0.045 s of checkpoints after each of ~90
        sub-second epochs, scripts/bench/cpu_overheads.py), and always after the last epoch."""
        p = self.params
        if last:
            return True
        if epoch % p.checkpoint_every:
            return False
        due = time.monotonic() - self._last_checkpoint_t >= p.checkpoint_min_interval_s
        if self.ctx.dist is not None:  # rank 0's clock decides: the RNG gather that follows is collective
            flag = [due]
            self.ctx.dist.broadcast_object_list(flag, src=0)
            due = bool(flag[0])
        return due

    def _steps_done(self) -> int:
        return len(self.history) * self.steps_per_epoch

    def _should_stop(self) -> bool:
        """Early stopping: ``patience`` epochs without improvement, never before ``min_steps``."""
        p = self.params
        return p.patience > 0 and self.best["bad_epochs"] >= p.patience and self._steps_done() >= p.step_floor

    def _finish(self, stop: bool) -> TrainResult:
        import pandas as pd

        ctx = self.ctx
        hist_df = pd.DataFrame(self.history)
        stopped_early = bool(stop and (not self.history or self.history[-1]["epoch"] < self.n_epochs))
        best_epoch = int(self.best["epoch"])
        health, axis_checks = None, []
        if ctx.is_main:
            if self.keep == "best" and self.best["state"] is not None:
                self.model.load_state_dict(self.best["state"])  # health of the weights model.pt keeps
            health = self.assess_health()
            axis_checks = self.check_axes()
            for check in axis_checks:
                if check.needs_warning:
                    log.warning("%s", check.summary())
            kept_epoch = self._save_model(complete=True, health=health.to_dict())
            write_json_atomic(self.out_dir / "train.json", {
                "usvpipe_version": __version__, "params": params_to_dict(self.params), "store": str(self.store.path),
                "n_syllables": len(self.store), "n_train": int(len(self.train_rows)), "n_val": int(len(self.val_rows)),
                "split": self.split_info, "device": str(ctx.device), "amp": _amp_name(self.amp_dtype),
                "data_on_device": bool(self.on_device), "channels_last": bool(self.channels_last),
                "world_size": ctx.world, "profile": self.profile, "pool": self.pool,
                "axis_encoder": self.params.resolved_axis_encoder,
                "image_shape": list(self.model.output_shape), "batch_size": self.batch_size,
                "obs_precision": self.obs_precision, "augmented": self.jitter is not None,
                "steps": self._steps_done(), "epochs_planned": self.n_epochs,
                "best_epoch": best_epoch, "kept_epoch": kept_epoch, "keep": self.keep, "epochs_run": len(self.history),
                "stopped_early": stopped_early, "model": MODEL_NAME, "checkpoint": CHECKPOINT_NAME,
                "health": health.to_dict(), "latent_axes_check": [c.to_dict() for c in axis_checks],
                "plan": self.describe(),
            })
        ctx.barrier()
        self.source.close()
        return TrainResult(
            model_path=self.model_path, checkpoint_path=self.ckpt_path, out_dir=self.out_dir, history=hist_df,
            best_epoch=best_epoch, epochs_run=len(self.history), stopped_early=stopped_early,
            n_train=int(len(self.train_rows)), n_val=int(len(self.val_rows)), split=self.split_info,
            device=str(ctx.device), amp=_amp_name(self.amp_dtype), data_on_device=bool(self.on_device),
            channels_last=bool(self.channels_last), world_size=ctx.world, steps=self._steps_done(),
            profile=self.profile, batch_size=self.batch_size, obs_precision=self.obs_precision, health=health,
            axis_checks=axis_checks,
        )


# What the optimiser and its schedule were built from. A resume continues the checkpoint's
# optimiser state and schedule, so another value here would be recorded but not used.
OPTIMISER_PARAMS = ("lr", "lr_schedule", "warmup_epochs", "min_lr_fraction", "weight_decay", "batch_size")


def _refuse_changed_optimiser(ckpt_path, saved: dict, now: dict) -> None:
    """Refuse ``--resume`` with optimiser settings other than the checkpoint's (one line naming each)."""
    changed = [f"{k} {saved[k]!r} -> {now.get(k)!r}" for k in OPTIMISER_PARAMS if k in saved and saved[k] != now.get(k)]
    if changed:
        raise ConfigError(ckpt_path, f"resuming with other optimiser settings than the run was trained with "
                          f"({', '.join(changed)}); the checkpoint's optimiser and schedule would continue "
                          "regardless", "resume with the run's settings (drop the changed options), or train "
                          "afresh into a new OUT_DIR with the new ones")


def train(store_dir, out_dir, params: TrainParams = TrainParams(), *, device: str = "auto", resume: bool = False,
          progress: bool = True, quiet: bool = False, on_epoch_end=None, threads: Optional[int] = None) -> TrainResult:
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
        Show a progress bar per epoch (rank 0 only, and only on a terminal).
    quiet : bool
        Print nothing; otherwise rank 0 prints what the run will do (profile, batch size,
        length, likelihood scale), a line per epoch and the early stop.
    on_epoch_end : callable, optional
        ``f(epoch, row)`` called on every process after each epoch (and after its
        checkpoint); ``row`` is the epoch's history dict. Raising stops training.
    threads : int, optional
        torch's CPU threads for this run (restored after it); default: chosen from the CPUs
        this process may use and the load at start (:func:`usvpipe._threads.choose_threads`).

    Returns
    -------
    TrainResult
    """
    import torch

    from .._threads import choose_threads

    if not isinstance(params, TrainParams):
        raise TypeError("params must be a usvpipe.vae.TrainParams")
    before = torch.get_num_threads()
    with _process_context(device) as ctx:
        choice = choose_threads(threads)
        torch.set_num_threads(choice.threads)
        try:
            trainer = _Trainer(store_dir, out_dir, params, ctx, resume=resume, progress=progress, verbose=not quiet)
            trainer.thread_choice = choice
            return trainer.fit(on_epoch_end)
        finally:
            torch.set_num_threads(before)
