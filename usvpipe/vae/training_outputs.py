"""What a training run writes and prints as it goes: ``checkpoint.pt``, ``model.pt``, ``loss.csv``, the
figures, the one-line description of the run and the line per epoch.

:class:`_TrainerOutputs` is mixed into the trainer (:class:`usvpipe.vae.training._Trainer`): the
methods read the trainer's state (model, optimiser, history, store, split) and never change it.
Only rank 0 calls the writing methods.
"""
from __future__ import annotations

import logging
import time

from .._io import write_csv_atomic
from .._version import __version__
from ..config import params_to_dict
from .checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, _cpu_state, _rng_state, save_checkpoint
from .schedule import describe_seconds, seconds_left

log = logging.getLogger(__name__)


class _TrainerOutputs:
    """The trainer's outputs and messages (see the module docstring)."""

    def start_line(self) -> str:
        """What this run will do, in one short line of plain words (printed before the first epoch)."""
        device = {"cpu": "the CPU", "cuda": "the GPU", "mps": "the Apple GPU"}.get(self.ctx.device.type, str(self.ctx.device))
        epochs = f"{self.n_epochs} epoch" + ("" if self.n_epochs == 1 else "s")
        if self.ctx.device.type == "cpu" and self.thread_choice is not None:  # why is in train.json's plan
            n = self.thread_choice.threads
            device += f" ({n} thread{'' if n == 1 else 's'})"
        return (f"training the VAE on {device}: learning from {len(self.train_rows):,} syllables, checking on "
                f"{len(self.val_rows):,} held out; {epochs} ({self.n_epochs * self.steps_per_epoch:,} steps); "
                f"details in {self.out_dir / 'train.json'}")

    def warn_if_short_of_the_floor(self) -> None:
        """Epochs the user typed win over the automatic step floor (issue 40); say that health may fail."""
        p, steps = self.params, self.n_epochs * self.steps_per_epoch
        if self.n_epochs == p.resolved_epochs and p.epochs != "auto" and steps < p.resolved_min_steps:
            log.warning("%s: %d epochs as asked make %d optimiser steps, fewer than the %d of the automatic floor: "
                        "the training health may fail (fix: leave epochs at auto, or set min_steps)",
                        self.out_dir, self.n_epochs, steps, p.resolved_min_steps)

    def describe(self) -> str:
        """What this run will do, in detail (train.json's "plan"; :meth:`start_line` is what the terminal shows)."""
        p = self.params
        encoder = p.resolved_axis_encoder
        h, w = self.model.output_shape
        profile = (f"CPU profile: {self.store.spec_shape[0]}x{self.store.spec_shape[1]} syllables averaged to {h}x{w} "
                   "so a CPU can train enough steps (profile = \"full\" keeps them as they are)"
                   if self.profile == "cpu" else f"{h}x{w} syllables")
        length = f"{self.n_epochs} epoch{'' if self.n_epochs == 1 else 's'} x {self.steps_per_epoch} steps"
        if self.n_epochs > p.resolved_epochs:
            length += f" (raised from {p.resolved_epochs} epochs to reach min_steps = {p.step_floor})"
        elif self.n_epochs * self.steps_per_epoch < p.resolved_min_steps:
            length += (f" as asked (epochs = {p.epochs}: {self.n_epochs * self.steps_per_epoch} steps, fewer than the "
                       f"{p.resolved_min_steps} the default would make; the training health may fail)")
        threads = self.thread_choice.line() if self.thread_choice is not None else "threads as torch chose"
        return (f"training on {self.ctx.device} ({threads}): {len(self.train_rows)} train / {len(self.val_rows)} validation syllables "
                f"(split by {self.split_info['unit']}); {profile}; batch {self.batch_size}, {length}; "
                f"obs_precision {self.obs_precision:.4g}{' (auto)' if p.obs_precision == 'auto' else ''}; "
                f"model.pt keeps the {self.keep} weights"
                + (f"; training images jittered (frequency shift up to {p.augment_shift:.0%} of the height, "
                   f"time stretch up to {p.augment_stretch:.0%})"
                   if self.jitter is not None else "")
                + (f"; z0 trained as a straight pitch axis (moves up to {p.axis_shift:.0%} of the height)"
                   if "pitch" in self.axes else "")
                + (f", z1 as a duration axis (widened up to {p.axis_stretch:.0%})" if "duration" in self.axes else "")
                + ("; z0 read off where a learnt detector fires along frequency (axis_encoder = locate)"
                   if encoder == "locate" else "")
                + ("; z0 read off the call's contour in the image, a fixed rule (axis_encoder = contour)"
                   if encoder == "contour" else "")
                + ("; z0 read off the call's contour and z1 off its width in the image, fixed rules (axis_encoder = "
                   f"{p.axis_encoder}{' -> contour+width' if p.axis_encoder == 'auto' else ''})"
                   if encoder == "contour+width" else "")
                + ("; the decoder moves its image by the axes instead of reading them"
                   if self.axes and p.axis_decoder == "move" else ""))

    def _draw_figures(self, hist_df) -> None:
        import torch

        from .plots import plot_losses, plot_reconstructions

        plot_losses(hist_df, self.out_dir / "loss.png")
        model = self.model
        model.eval()
        with torch.no_grad():
            x = model.prepare(list(self.source.batches([self.fig_rows]))[0])
            mu, _, _ = model.encode(x)
            rec = model.decode(mu).float().clamp(0, 1)
        model.train()
        plot_reconstructions(x[:, 0].float().cpu().numpy(), rec[:, 0].cpu().numpy(), self.out_dir / "reconstructions.png",
                             title=f"epoch {int(hist_df['epoch'].iloc[-1])}")

    def _gather_rng(self):
        state = _rng_state(self.ctx.device)
        if self.ctx.dist is None:
            return [state]
        out = [None] * self.ctx.world
        self.ctx.dist.all_gather_object(out, state)
        return out

    def _store_info(self) -> dict:
        return {"path": str(self.store.path), "n_syllables": len(self.store), "spec_shape": list(self.store.spec_shape)}

    def _save_checkpoint(self, epoch: int, rng_states) -> None:
        save_checkpoint({
            "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "usvpipe_version": __version__,
            "kind": "checkpoint", "model_config": self.model.config, "params": params_to_dict(self.params),
            "model_state": _cpu_state(self.model.state_dict()), "optimizer_state": _cpu_state(self.optimizer.state_dict()),
            "scheduler_state": self.scheduler.state_dict(), "scaler_state": self.scaler.state_dict() if self.scaler else None,
            "epoch": epoch, "history": self.history, "best": self.best, "world_size": self.ctx.world,
            "rng": {"process": rng_states, "data": self.data_rng.bit_generator.state},
            "store": self._store_info(),
            "split": {"unit": self.split_info["unit"], "val_units": self.split_info["val_units"],
                      "n_train": int(len(self.train_rows)), "n_val": int(len(self.val_rows))},
        }, self.ckpt_path)

    def _kept_weights(self):
        """``(epoch, state)`` of the weights ``model.pt`` keeps under the ``keep`` policy."""
        if self.keep == "best" and self.best["state"] is not None:
            return int(self.best["epoch"]), self.best["state"]
        epoch = int(self.history[-1]["epoch"]) if self.history else 0
        return epoch, _cpu_state(self.model.state_dict())

    def _save_model(self, *, complete: bool, health: dict | None) -> int:
        """Write ``model.pt``; an unfinished run's (``complete=False``) is still encodable."""
        epoch, state = self._kept_weights()
        save_checkpoint({
            "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "usvpipe_version": __version__,
            "kind": "model", "complete": bool(complete), "model_config": self.model.config,
            "params": params_to_dict(self.params), "model_state": state,
            "optimizer_state": _cpu_state(self.optimizer.state_dict()) if complete else None,
            "epoch": epoch, "epochs_planned": self.n_epochs, "history": self.history, "store": self._store_info(),
            "split": {"unit": self.split_info["unit"], "val_units": self.split_info["val_units"]},
            "health": health,
        }, self.model_path)
        return epoch

    def _log_epoch(self, epoch: int, row: dict, dt: float, last: bool) -> None:
        import pandas as pd
        from tqdm.auto import tqdm

        p = self.params
        hist_df = pd.DataFrame(self.history)
        write_csv_atomic(self.out_dir / "loss.csv", hist_df, float_format="%.6g")
        if last or (p.figure_every and epoch % p.figure_every == 0
                    and time.monotonic() - self._last_figure_t >= p.figure_min_interval_s):
            self._draw_figures(hist_df)
            self._last_figure_t = time.monotonic()
        if self.verbose:
            val_txt = f" val {row['val_loss']:.2f}" if len(self.val_rows) else ""
            # this process's epochs only: a resumed run's earlier epochs ran elsewhere, at another pace
            left = None if last else seconds_left([r["epoch_s"] for r in self.history[self._first_epoch_row:]],
                                                  self.n_epochs - epoch)
            left = self._finish_estimate.update(time.monotonic(), left)  # smoothed: it does not swing between epochs
            left_txt = f"; ~{describe_seconds(left)} left" if left is not None else ""
            tqdm.write(f"epoch {epoch}/{self.n_epochs}: train {row['train_loss']:.2f}{val_txt} "
                       f"({row['n_syllables'] / max(dt, 1e-9):.0f} syll/s{left_txt})")
