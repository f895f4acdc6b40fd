"""Training parameters of the syllable VAE (no torch import here, so the CLI stays fast)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..config import check_choice, check_finite
from ..errors import ConfigError

_POSTERIORS = ("lowrank", "diagonal")
_SPLITS = ("recording", "animal")
_AMP = ("auto", "bf16", "fp16", "off")
_SCHEDULES = ("cosine", "plateau", "constant")
_PROFILES = ("auto", "full", "cpu")
_KEEP = ("auto", "best", "last")

#: Side of the images the CPU profile trains on (the store's images are average-pooled to it).
CPU_PROFILE_SIDE = 64
#: ``keep="auto"`` keeps the best-validation weights only when the validation loss is measured
#: on at least this many syllables; below it the loss of one epoch differs from the next by more
#: than the improvements it should rank (measured: 26 validation syllables chose weights whose
#: latents read out worse than the last epoch's), so the last weights are kept.
MIN_VAL_SYLLABLES_TO_SELECT = 256


@dataclass(frozen=True)
class TrainParams:
    """Everything that defines a VAE training run (the ``[train]`` section of ``usvpipe.toml``).

    Parameters
    ----------
    latent_dim : int
        Dimension of the latent space (AVA: 32).
    posterior : {"lowrank", "diagonal"}
        Approximate posterior family. ``"lowrank"`` is AVA's multivariate normal with
        covariance ``U Uᵀ + diag(d)`` (``U`` is ``latent_dim × rank``); ``"diagonal"`` is the
        usual mean-field Gaussian.
    rank : int
        Rank of ``U`` for the low-rank posterior (AVA: 1).
    obs_precision : "auto" or float
        Precision (1/variance) of the Gaussian observation model on pixel values in [0, 1];
        it weighs reconstruction against the KL term. ``"auto"`` (default) sets it from the
        store: ``1 / (obs_noise_fraction × V)`` where ``V`` is the training images' mean
        per-pixel variance around the mean image, so the balance of reconstruction and KL
        does not depend on how dark the images are (AVA fixes 10, which on noise-normalised
        mouse syllables, ``V`` ≈ 0.01, makes the likelihood so flat that small stores collapse
        to the mean image).
    obs_noise_fraction : float
        For ``obs_precision="auto"``: the observation noise variance as a fraction of ``V``
        (0.1: the model is asked to explain about 90 % of the pixel variance).
    channels : tuple of int
        Convolution channels per encoder stage; each stage halves height and width, so
        the spectrogram sides must be divisible by ``2 ** len(channels)``.
    hidden : tuple of int
        Widths of the fully connected layers between the convolutions and the latent.
    lr : float
        Peak learning rate of Adam.
    lr_schedule : {"cosine", "plateau", "constant"}
        ``"cosine"``: linear warm-up over ``warmup_epochs`` then cosine decay to
        ``lr * min_lr_fraction`` (stepped every batch); ``"plateau"``: divide by 10 after
        ``patience // 2`` epochs without validation improvement; ``"constant"``.
    warmup_epochs : float
        Warm-up length for the cosine schedule (fractions allowed).
    min_lr_fraction : float
        Final learning rate of the cosine schedule, as a fraction of ``lr``.
    weight_decay : float
        Adam weight decay.
    batch_size : "auto" or int
        Syllables per optimisation step *per process* (under DDP the global batch is
        ``batch_size × world size``). ``"auto"``: 128 (AVA's), lowered for small stores so an
        epoch has at least 16 steps (never below 16). An incomplete last batch is kept (a
        single left-over syllable joins the previous batch: batch normalisation needs two).
    epochs : int
        Epochs to train, unless that is fewer than ``min_steps`` optimiser steps: then as many
        epochs as reach ``min_steps``.
    min_steps : int
        Floor on the number of optimiser steps (0: none). Small stores otherwise stop after a
        few dozen steps, long before the latents describe anything.
    profile : {"auto", "full", "cpu"}
        ``"full"``: train on the store's images as they are (128×128, AVA-sized). ``"cpu"``:
        average-pool them to 64×64 first (4× fewer pixels, the same model shape), so a CPU
        trains enough steps in minutes. ``"auto"`` (default): ``"cpu"`` when training on a CPU
        and the images are larger than 64 on a side, else ``"full"``; the choice is printed
        and recorded in ``train.json``, never silent.
    keep : {"auto", "best", "last"}
        Which weights ``model.pt`` keeps: the epoch with the lowest validation loss, or the
        last. ``"auto"``: ``"best"`` when at least 256 syllables are held out, else ``"last"``
        (a loss measured on a few dozen syllables is too noisy to choose weights by).
    patience : int
        Early stopping: stop after this many epochs without a validation-loss improvement
        larger than ``min_delta`` (0 disables early stopping).
    min_delta : float
        Smallest decrease of the validation loss that counts as an improvement.
    val_fraction : float
        Target fraction of syllables held out for validation (0 = no validation set).
    split_by : {"recording", "animal"}
        Unit of the train/validation split: whole recordings (or animals) go to one side,
        so the validation loss measures generalisation to new recordings.
    seed : int
        Seeds weights, the split, the data order and the sampling noise.
    checkpoint_every : int
        Write ``checkpoint.pt`` (resumable state) every this many epochs (and at the end).
    figure_every : int
        Redraw ``reconstructions.png`` and ``loss.png`` every this many epochs (0: only at the end).
    amp : {"auto", "bf16", "fp16", "off"}
        Mixed precision. ``"auto"``: bf16 autocast on CUDA GPUs that support it (else fp16
        with a gradient scaler), off on CPU/MPS.
    channels_last : "auto", True or False
        Use the channels-last memory format for convolutions. ``"auto"``: on CUDA only,
        where tensor-core convolutions want it; CPU kernels choose their own layout.
    data_on_device : "auto", True or False
        Keep the whole store on the training device as uint8 and index batches there
        (``True``), or stream batches from the HDF5 shards with ``num_workers`` workers
        (``False``). ``"auto"`` keeps it on the device when it takes less than
        ``memory_fraction`` of the device's free memory (host RAM for CPU training).
    memory_fraction : float
        Budget for ``data_on_device="auto"``.
    num_workers : int
        Data-loading worker processes for the streaming path.
    compile : bool
        ``torch.compile`` the model (CUDA only; first epoch slower, later ones faster).
    deterministic : bool
        Ask torch for deterministic kernels (needed for bit-for-bit resume on CUDA; CPU
        training is deterministic anyway).
    """

    latent_dim: int = 32
    posterior: str = "lowrank"
    rank: int = 1
    obs_precision: Union[str, float] = "auto"
    obs_noise_fraction: float = 0.1
    channels: tuple[int, ...] = (8, 16, 24, 32)
    hidden: tuple[int, ...] = (1024, 256)
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    warmup_epochs: float = 1.0
    min_lr_fraction: float = 0.05
    weight_decay: float = 0.0
    batch_size: Union[str, int] = "auto"
    epochs: int = 100
    min_steps: int = 2000
    profile: str = "auto"
    keep: str = "auto"
    patience: int = 10
    min_delta: float = 0.0
    val_fraction: float = 0.1
    split_by: str = "recording"
    seed: int = 0
    checkpoint_every: int = 1
    figure_every: int = 10
    amp: str = "auto"
    channels_last: Union[str, bool] = "auto"
    data_on_device: Union[str, bool] = "auto"
    memory_fraction: float = 0.5
    num_workers: int = 2
    compile: bool = False
    deterministic: bool = False

    def __post_init__(self):
        check_finite(self, "[train]")
        def bad(msg):
            raise ConfigError(f"[train] {msg}")

        if self.latent_dim < 1:
            bad(f"latent_dim must be >= 1, got {self.latent_dim}")
        check_choice("[train] posterior", self.posterior, _POSTERIORS)
        if self.rank < 1 or self.rank > self.latent_dim:
            bad(f"rank must be in 1..latent_dim ({self.latent_dim}), got {self.rank}")
        object.__setattr__(self, "obs_precision", _auto_or_number(self.obs_precision, float, "obs_precision", bad))
        if self.obs_precision != "auto" and not self.obs_precision > 0:
            bad(f"obs_precision must be > 0 or auto, got {self.obs_precision}")
        if not 0 < self.obs_noise_fraction <= 10:
            bad(f"obs_noise_fraction must be in (0, 10], got {self.obs_noise_fraction}")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if not self.channels or min(self.channels) < 1:
            bad(f"channels must be a non-empty list of positive integers, got {list(self.channels)}")
        if any(h < 1 for h in self.hidden):
            bad(f"hidden sizes must be positive, got {list(self.hidden)}")
        if not self.lr > 0:
            bad(f"lr must be > 0, got {self.lr}")
        check_choice("[train] lr_schedule", self.lr_schedule, _SCHEDULES)
        if self.warmup_epochs < 0 or not (0 <= self.min_lr_fraction <= 1):
            bad("warmup_epochs must be >= 0 and min_lr_fraction in [0, 1]")
        if self.weight_decay < 0:
            bad(f"weight_decay must be >= 0, got {self.weight_decay}")
        object.__setattr__(self, "batch_size", _auto_or_number(self.batch_size, int, "batch_size", bad))
        if self.batch_size != "auto" and self.batch_size < 2:
            bad(f"batch_size must be >= 2 (batch normalisation) or auto, got {self.batch_size}")
        if self.epochs < 1:
            bad(f"epochs must be >= 1, got {self.epochs}")
        if self.min_steps < 0:
            bad(f"min_steps must be >= 0, got {self.min_steps}")
        check_choice("[train] profile", self.profile, _PROFILES)
        check_choice("[train] keep", self.keep, _KEEP)
        if self.patience < 0:
            bad(f"patience must be >= 0, got {self.patience}")
        if not (0 <= self.val_fraction < 1):
            bad(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        check_choice("[train] split_by", self.split_by, _SPLITS)
        if self.checkpoint_every < 1:
            bad(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")
        if self.figure_every < 0:
            bad(f"figure_every must be >= 0, got {self.figure_every}")
        check_choice("[train] amp", self.amp, _AMP)
        for name in ("data_on_device", "channels_last"):
            value = getattr(self, name)
            if isinstance(value, str):
                low = value.lower()
                if low in ("true", "yes", "on", "1"):
                    value = True
                elif low in ("false", "no", "off", "0"):
                    value = False
                elif low != "auto":
                    bad(f"{name} must be auto, true or false, got {value!r}")
                else:
                    value = "auto"
                object.__setattr__(self, name, value)
            elif not isinstance(value, bool):
                bad(f"{name} must be auto, true or false, got {value!r}")
        if not (0 < self.memory_fraction <= 1):
            bad(f"memory_fraction must be in (0, 1], got {self.memory_fraction}")
        if self.num_workers < 0:
            bad(f"num_workers must be >= 0, got {self.num_workers}")

    def resolved_batch_size(self, n_train: int) -> int:
        """The batch size for ``n_train`` training syllables (per process)."""
        if self.batch_size != "auto":
            return int(self.batch_size)
        return int(min(AUTO_MAX_BATCH, max(AUTO_MIN_BATCH, n_train // AUTO_MIN_STEPS_PER_EPOCH)))

    def resolved_pool(self, device_type: str, input_shape) -> int:
        """Average-pooling factor applied to the store's images before the network (1 = none)."""
        profile = self.profile
        if profile == "auto":
            profile = "cpu" if device_type == "cpu" else "full"
        if profile == "full":
            return 1
        side = min(int(s) for s in input_shape)
        return max(1, side // CPU_PROFILE_SIDE)

    def model_config(self, input_shape, *, obs_precision: float | None = None, pool: int = 1) -> dict:
        """The architecture part of the parameters (what a checkpoint needs to rebuild the model).

        ``obs_precision`` is the resolved value when the parameter is ``"auto"``.
        """
        precision = self.obs_precision if obs_precision is None else obs_precision
        if precision == "auto":
            raise ValueError("model_config: obs_precision='auto' must be resolved from the store first")
        return {
            "input_shape": [int(s) for s in input_shape],
            "latent_dim": self.latent_dim,
            "posterior": self.posterior,
            "rank": self.rank,
            "obs_precision": float(precision),
            "channels": list(self.channels),
            "hidden": list(self.hidden),
            "pool": int(pool),
        }


#: ``batch_size="auto"``: AVA's 128, but small stores get at least this many steps per epoch …
AUTO_MIN_STEPS_PER_EPOCH = 16
#: … with batches no smaller than this (batch normalisation statistics get noisy below it).
AUTO_MIN_BATCH = 16
AUTO_MAX_BATCH = 128


def _auto_or_number(value, kind, name, bad):
    """``"auto"`` stays ``"auto"``; a number (or its text, from the CLI/TOML) becomes ``kind``."""
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return "auto"
        try:
            value = float(value)
        except ValueError:
            bad(f"{name} must be a number or auto, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        bad(f"{name} must be a number or auto, got {value!r}")
    if kind is int:
        if float(value) != int(value):
            bad(f"{name} must be an integer or auto, got {value!r}")
        return int(value)
    return float(value)
