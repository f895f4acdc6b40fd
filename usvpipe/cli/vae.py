"""``usvpipe train`` and ``usvpipe encode``: the VAE stage's command line (thin wrappers)."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import ConfigError
from ..vae.params import AXIS_ENCODERS

_DEVICES = click.Choice(["auto", "cpu", "cuda", "mps"])


def _parse_set(items) -> dict:
    """``KEY=VALUE`` strings -> mapping; list parameters take comma-separated values."""
    import dataclasses

    from ..vae import TrainParams

    list_fields = {f.name for f in dataclasses.fields(TrainParams) if str(f.type).startswith("tuple")}
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE (a [train] parameter)")
        key, value = item.split("=", 1)
        key, value = key.strip().replace("-", "_"), value.strip()
        if key in list_fields:  # e.g. channels=8,16,24,32 or channels=[8,16,24,32]
            value = [v.strip() for v in value.strip("[]() ").split(",") if v.strip()]
        out[key] = value
    return out


@click.command("train")
@click.argument("store", type=click.Path(path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="usvpipe.toml; its [train] section gives defaults, options override it.")
@click.option("--epochs", type=int, default=None,
              help="Epochs, trained as asked (a warning when fewer than 2000 steps) [default: auto: 100, raised to "
                   "reach --min-steps].")
@click.option("--min-steps", type=int, default=None,
              help="Floor on optimiser steps, 0 = none; given, it applies to --epochs too [default: auto: 2000 when "
                   "--epochs is not given].")
@click.option("--batch-size", default=None,
              help="Syllables per step per process, or auto (128, smaller for small stores) [default: auto].")
@click.option("--profile", type=click.Choice(["auto", "full", "cpu"]), default=None,
              help="full: train on the store's images; cpu: pooled to 64x64; auto: cpu on a CPU [default: auto].")
@click.option("--keep", type=click.Choice(["auto", "best", "last"]), default=None,
              help="Weights model.pt keeps: best validation loss or last epoch [default: auto, by validation size].")
@click.option("--augment", type=click.Choice(["auto", "on", "off"]), default=None,
              help="Jitter training images (shift, time stretch) so small stores are not memorised "
                   "[default: auto = on below 20000 training syllables].")
@click.option("--latent-axes", type=click.Choice(["off", "pitch", "pitch+duration"]), default=None,
              help="Train z0 as a straight pitch axis (and z1 as a duration axis) from frequency-shifted "
                   "(and widened) copies of each image [default: pitch].")
@click.option("--axis-encoder", type=click.Choice(list(AXIS_ENCODERS)), default=None,
              help="How z0 (and z1) are encoded with a pitch axis: network output; locate, where a learnt detector "
                   "fires; contour, z0 the call's mean loudest row, a fixed rule; contour+width, that and z1 the "
                   "share of columns the call spans; auto, contour+width where it applies, else network "
                   "(docs/vae.md) [default: auto].")
@click.option("--lr", type=float, default=None, help="Peak learning rate [default: 1e-3].")
@click.option("--lr-schedule", type=click.Choice(["cosine", "plateau", "constant"]), default=None,
              help="Learning-rate schedule [default: cosine].")
@click.option("--latent-dim", type=int, default=None, help="Latent dimension [default: 32].")
@click.option("--posterior", type=click.Choice(["lowrank", "diagonal"]), default=None,
              help="Posterior family [default: lowrank, as AVA].")
@click.option("--rank", type=int, default=None, help="Rank of the low-rank covariance factor [default: 1].")
@click.option("--obs-precision", default=None,
              help="Observation-model precision, or auto (from the store's pixel variance) [default: auto].")
@click.option("--patience", type=int, default=None, help="Early-stopping patience in epochs, 0 = off [default: 10].")
@click.option("--val-fraction", type=float, default=None, help="Fraction of syllables for validation [default: 0.1].")
@click.option("--split-by", type=click.Choice(["recording", "animal"]), default=None,
              help="Unit of the train/validation split [default: recording].")
@click.option("--seed", type=int, default=None, help="Random seed [default: 0].")
@click.option("--checkpoint-every", type=int, default=None, help="Checkpoint every N epochs [default: 1].")
@click.option("--amp", type=click.Choice(["auto", "bf16", "fp16", "off"]), default=None,
              help="Mixed precision [default: auto = bf16 on CUDA, off on CPU].")
@click.option("--channels-last", type=click.Choice(["auto", "true", "false"]), default=None,
              help="Channels-last memory format [default: auto = on CUDA only].")
@click.option("--data-on-device", type=click.Choice(["auto", "true", "false"]), default=None,
              help="Keep the store on the device (true) or stream it from HDF5 (false) [default: auto, by size].")
@click.option("--num-workers", type=int, default=None, help="Loader workers for the streaming path [default: 2].")
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the model (CUDA) [default: off].")
@click.option("--deterministic", is_flag=True, default=None, help="Deterministic kernels (bit-exact resume on CUDA).")
@click.option("--set", "set_items", multiple=True, metavar="KEY=VALUE",
              help="Any other [train] parameter, e.g. --set channels=8,16,24,32 --set hidden=1024,256.")
@click.option("--device", type=_DEVICES, default="auto", show_default=True, help="Training device.")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="torch CPU threads [default: OMP_NUM_THREADS if set, else the CPUs this process may use less the "
                   "load at start].")
@click.option("--resume", is_flag=True, help="Continue from OUT_DIR/checkpoint.pt if present (exactly where it stopped).")
@click.option("--no-progress", is_flag=True, help="No progress bar (the epoch lines stay).")
@click.option("--quiet", is_flag=True, help="Only the summary at the end (no plan, epoch lines or bar).")
def train(store, out_dir, config_path, epochs, min_steps, batch_size, profile, keep, augment, latent_axes, axis_encoder, lr, lr_schedule, latent_dim, posterior, rank, obs_precision,
          patience, val_fraction, split_by, seed, checkpoint_every, amp, channels_last, data_on_device, num_workers,
          compile_, deterministic, set_items, device, threads, resume, no_progress, quiet):
    """Train a VAE on the syllable store STORE; write model.pt, checkpoints, loss.csv and figures to OUT_DIR.

    Works unchanged as a torchrun entry point for multi-GPU / multi-node training, e.g.
    `torchrun --nproc_per_node=4 -m usvpipe train STORE OUT_DIR` (rank 0 writes the files).
    """
    from ..config import load_config, params_from_mapping
    from ..vae import TrainParams
    from ..vae import train as train_vae

    section = dict(load_config(config_path).get("train", {}) or {}) if config_path else {}
    section.update(_parse_set(set_items))
    params = params_from_mapping(
        TrainParams, section, section="train", epochs=epochs, min_steps=min_steps, batch_size=batch_size,
        profile=profile, keep=keep, augment=augment, latent_axes=latent_axes, axis_encoder=axis_encoder, lr=lr, lr_schedule=lr_schedule,
        latent_dim=latent_dim, posterior=posterior, rank=rank, obs_precision=obs_precision, patience=patience,
        val_fraction=val_fraction, split_by=split_by, seed=seed, checkpoint_every=checkpoint_every, amp=amp,
        channels_last=channels_last, data_on_device=data_on_device, num_workers=num_workers, compile=compile_,
        deterministic=deterministic,
    )
    result = train_vae(store, out_dir, params, device=device, resume=resume, progress=not (no_progress or quiet),
                       quiet=quiet, threads=threads)
    from ..vae.runtime import distributed_env

    if distributed_env()[0] != 0:
        return
    h = result.history
    last = h.iloc[-1] if len(h) else None
    click.echo(f"trained {result.epochs_run} epoch(s), {result.steps} steps, on {result.device} (amp {result.amp}, "
               f"data {'on device' if result.data_on_device else 'streamed'}, {result.world_size} process(es)): "
               f"{result.n_train} train / {result.n_val} validation syllables, split by {result.split.get('unit')}")
    if last is not None:
        click.echo(f"best epoch {result.best_epoch}; last train loss {last['train_loss']:.2f}, "
                   f"validation loss {last['val_loss']:.2f} nats/syllable"
                   + ("; stopped early" if result.stopped_early else ""))
    click.echo(f"wrote {result.model_path}")
    if result.health is not None:
        click.echo(result.health.summary(), err=not result.health.passed)
    for check in result.axis_checks:
        if not check.needs_warning:  # the others were already logged as warnings
            click.echo(check.summary())


@click.command("encode")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("store", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--device", type=_DEVICES, default="auto", show_default=True, help="Device for the encoder.")
@click.option("--batch-size", type=int, default=512, show_default=True, help="Syllables per batch.")
@click.option("--variances", is_flag=True, help="Also write posterior variances var_z0...")
@click.option("--progress/--no-progress", default=False, show_default=True, help="Progress bar.")
def encode(model, store, out, device, batch_size, variances, progress):
    """Encode every syllable of STORE with MODEL (model.pt or a train OUT_DIR) into OUT.

    OUT is a latents table: latents.csv (the syllables.csv columns + z0..z{d-1}), or an
    HDF5 file when it ends in .h5 (for large runs).
    """
    from ..vae import encode as encode_store

    latents = encode_store(model, store, out, device=device, batch_size=batch_size, variances=variances, progress=progress)
    out = Path(out)
    if out.is_dir():
        out = out / "latents.csv"
    n_z = sum(1 for c in latents.columns if c.startswith("z") and c[1:].isdigit())
    click.echo(f"encoded {len(latents)} syllables to {n_z}-d latents: {out}")
