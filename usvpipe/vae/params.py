"""Training parameters of the syllable VAE (no torch import here, so the CLI stays fast)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..config import bool_from_text
from ..constraints import Interval, OneOf, check_params, config_error

_POSTERIORS = ("lowrank", "diagonal")
_SPLITS = ("recording", "animal")
_AMP = ("auto", "bf16", "fp16", "off")
_SCHEDULES = ("cosine", "plateau", "constant")
_PROFILES = ("auto", "full", "cpu")
_KEEP = ("auto", "best", "last")
_AUGMENT = ("auto", "on", "off")
_LATENT_AXES = ("off", "pitch", "pitch+duration")
# epochs = "auto": this many, raised to reach the step floor; min_steps = "auto": this floor.
# 2000 steps: small stores otherwise stop after a few dozen steps (see min_steps).
AUTO_EPOCHS = 100
AUTO_MIN_STEPS = 2000
_AXIS_DECODERS = ("network", "move")
#: Values of ``TrainParams.axis_encoder`` (the CLI's ``--axis-encoder`` choices too).
AXIS_ENCODERS = ("auto", "network", "locate", "contour", "contour+width")

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
    epochs : "auto" or int
        ``"auto"`` (default): 100 epochs, or as many as reach ``min_steps`` optimiser steps when
        100 are fewer. A number: exactly that many epochs, as asked, even when they are fewer
        than ``min_steps`` steps (a warning then says the training health may fail), unless
        ``min_steps`` is given too.
    min_steps : "auto" or int
        Floor on the number of optimiser steps (0: none). ``"auto"``: 2000, applied when
        ``epochs`` is ``"auto"``; a number given here applies whatever ``epochs`` is. Small stores
        otherwise stop after a few dozen steps, long before the latents describe anything.
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
    augment : {"auto", "on", "off"}
        Jitter the training images at random (a shift along frequency by whole rows and a
        stretch of the time axis around the centre, :mod:`usvpipe.vae.augment`) so a small
        store is not memorised image by image. ``"auto"``: on below 20 000 training
        syllables, where a run of ``min_steps`` shows each syllable dozens of times or more.
    augment_shift, augment_stretch : float
        Largest frequency shift (fraction of the image height; default 0.05) and largest
        relative stretch of the time axis (default 0.15) of the jitter.
    latent_axes : {"off", "pitch", "pitch+duration"}
        Make the first latent dimension a straight pitch axis (and the second a duration
        axis): at every step each training image is also encoded moved by up to
        ``axis_shift`` of the height (whole rows) along frequency (and drawn up to
        ``1 + axis_stretch`` times wider or narrower), and the two posteriors are asked to
        differ by the move along those dimensions only (means, spread and low-rank factor alike),
        within ``axis_sd`` latent units (:func:`usvpipe.vae.model.axis_penalty`; z0: one unit
        per eighth of the image height, z1: one unit per doubling of the call's width in the image).
    axis_decoder : {"network", "move"}
        How the decoder uses the latent axes. ``"network"``: they are inputs of the decoder
        network like every other dimension; the encoder's penalty alone makes them axes, and
        where a call's shape puts it on z0 is free. ``"move"``: the decoder network never sees
        them; it draws the call where they are 0 and the image is then moved by z0 along
        frequency (and widened by z1), so an axis carries only where the call lies and nothing
        of its shape (z0 then reads pitch with one slope in every recording, but neighbours in
        the latent space weigh pitch less; benchmarks/vae-axis-decoder-move.md).
    axis_encoder : {"auto", "network", "locate", "contour", "contour+width"}
        How the encoder gives z0 when ``latent_axes`` has a pitch axis. ``"auto"`` (the default):
        ``"contour+width"`` where it applies (``latent_axes = "pitch"``, ``axis_decoder =
        "network"``, ``latent_dim >= 3``; measured best on the real and the synthetic store,
        benchmarks/vae-axis-encoder.md), ``"network"`` otherwise (:attr:`resolved_axis_encoder`).
        ``"network"``: z0's mean is an output of the encoder network like every other dimension,
        held to the move by the penalty alone. ``"locate"``: z0's mean is where a small
        convolutional detector fires along frequency (a soft arg-max over the rows of its map
        averaged over time), so z0's value is a position in the image for every kind of call, and
        a call moved by r rows moves z0 by r rows' worth (exactly only for a sharp map; trained
        maps stay broad, and z0 moves somewhat less). On the real store it gave z0 the nominal
        scale, but read the laboratory mice's mean frequency less well than the default, cost
        duration on the synthetic store, and takes a third or more CPU time
        (benchmarks/vae-axis-encoder.md, "z0 read off a detector"; measured, not the default).
        ``"contour"``: z0's mean is a fixed rule, no detector to learn: the mean of the loudest
        row of each column where the call is (:func:`usvpipe.vae.model.contour_row`), the image's
        own reading of mean frequency; z0 is then as good a pitch read-out as that rule, by
        construction, and the network's other dimensions are free of it
        (benchmarks/vae-axis-encoder.md, "z0 read off the contour"; measured, not the default).
        ``"contour+width"``: as ``"contour"``, and z1's mean is a second fixed rule, the share of
        the image's columns the call spans (:func:`usvpipe.vae.model.contour_width`), so the two
        things an analyst reads first are latents on fixed scales and the network's 30 others
        describe the rest of the call; needs ``latent_axes = "pitch"`` (z1 is then a read-out of
        the width, not a trained log-width axis; benchmarks/vae-axis-encoder.md, "z0 and z1 read
        off the contour").
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
    checkpoint_min_interval_s : float
        … but no more often than once per this many seconds of training (0: every
        ``checkpoint_every`` epochs). A run killed in between resumes from the last
        checkpoint, exactly, so it loses at most this long plus one epoch; the unfinished
        ``model.pt`` is written with each checkpoint.
    figure_every : int
        Redraw ``reconstructions.png`` and ``loss.png`` every this many epochs (0: only at the end).
    figure_min_interval_s : float
        … but no more often than once per this many seconds (0: every ``figure_every``
        epochs); the last epoch is always drawn. A redraw costs about half a second, which
        for a store of a few hundred syllables is as long as an epoch.
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
    epochs: Union[str, int] = "auto"
    min_steps: Union[str, int] = "auto"
    profile: str = "auto"
    keep: str = "auto"
    augment: str = "auto"
    augment_shift: float = 0.05
    augment_stretch: float = 0.15
    latent_axes: str = "pitch"
    axis_shift: float = 0.1
    axis_stretch: float = 0.3
    axis_sd: float = 0.1
    axis_decoder: str = "network"
    axis_encoder: str = "auto"
    patience: int = 10
    min_delta: float = 0.0
    val_fraction: float = 0.1
    split_by: str = "recording"
    seed: int = 0
    checkpoint_every: int = 1
    checkpoint_min_interval_s: float = 30.0
    figure_every: int = 10
    figure_min_interval_s: float = 30.0
    amp: str = "auto"
    channels_last: Union[str, bool] = "auto"
    data_on_device: Union[str, bool] = "auto"
    memory_fraction: float = 0.5
    num_workers: int = 2
    compile: bool = False
    deterministic: bool = False

    _constraints = {
        "latent_dim": [Interval(int, 1, None)],
        "posterior": [OneOf(*_POSTERIORS)],
        "obs_precision": [OneOf("auto"), Interval(float, 0, None, closed="neither")],
        "obs_noise_fraction": [Interval(float, 0, 10, closed="right")],
        "lr": [Interval(float, 0, None, closed="neither")],
        "lr_schedule": [OneOf(*_SCHEDULES)],
        "warmup_epochs": [Interval(float, 0, None)],
        "min_lr_fraction": [Interval(float, 0, 1)],
        "weight_decay": [Interval(float, 0, None)],
        # batch normalisation needs two images per batch
        "batch_size": [OneOf("auto"), Interval(int, 2, None)],
        "epochs": [OneOf("auto"), Interval(int, 1, None)],
        "min_steps": [OneOf("auto"), Interval(int, 0, None)],
        "profile": [OneOf(*_PROFILES)],
        "keep": [OneOf(*_KEEP)],
        "augment": [OneOf(*_AUGMENT)],
        "augment_shift": [Interval(float, 0, 0.5)],
        "augment_stretch": [Interval(float, 0, 1)],
        "latent_axes": [OneOf(*_LATENT_AXES)],
        "axis_shift": [Interval(float, 0, 0.5, closed="right")],
        "axis_stretch": [Interval(float, 0, 1, closed="right")],
        "axis_sd": [Interval(float, 0, None, closed="neither")],
        "axis_decoder": [OneOf(*_AXIS_DECODERS)],
        "axis_encoder": [OneOf(*AXIS_ENCODERS)],
        "patience": [Interval(int, 0, None)],
        "min_delta": [Interval(float, 0, None)],
        "val_fraction": [Interval(float, 0, 1, closed="left")],
        "split_by": [OneOf(*_SPLITS)],
        "checkpoint_every": [Interval(int, 1, None)],
        "checkpoint_min_interval_s": [Interval(float, 0, None)],
        "figure_every": [Interval(int, 0, None)],
        "figure_min_interval_s": [Interval(float, 0, None)],
        "amp": [OneOf(*_AMP)],
        "data_on_device": [OneOf("auto", True, False)],
        "channels_last": [OneOf("auto", True, False)],
        "memory_fraction": [Interval(float, 0, 1, closed="right")],
        "num_workers": [Interval(int, 0, None)],
    }

    def __post_init__(self):
        # values that arrive as text from the CLI or TOML are normalised first, then checked as data
        object.__setattr__(self, "obs_precision", _auto_or_number(self.obs_precision, float, "obs_precision"))
        object.__setattr__(self, "batch_size", _auto_or_number(self.batch_size, int, "batch_size"))
        object.__setattr__(self, "epochs", _auto_or_number(self.epochs, int, "epochs"))
        object.__setattr__(self, "min_steps", _auto_or_number(self.min_steps, int, "min_steps"))
        for name in ("data_on_device", "channels_last"):
            object.__setattr__(self, name, _auto_or_bool(getattr(self, name), name))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        check_params(self, "train")
        if not 1 <= self.rank <= self.latent_dim:
            raise config_error("train", "rank", f"{self.rank} is not in 1..latent_dim ({self.latent_dim})",
                               f"set rank to an integer from 1 to {self.latent_dim}")
        if not self.channels or min(self.channels) < 1:
            raise config_error("train", "channels", f"{list(self.channels)} is not a non-empty list of positive integers",
                               "set channels to e.g. [8, 16, 24, 32]")
        n_axes = len(self.axis_names)
        if n_axes >= self.latent_dim:
            raise config_error("train", "latent_axes", f"{self.latent_axes!r} needs more than {n_axes} latent dimension(s) "
                               f"(latent_dim = {self.latent_dim})", "raise latent_dim or set latent_axes = \"off\"")
        if self.axis_encoder == "contour+width" and (self.latent_axes != "pitch" or self.axis_decoder != "network"
                                                     or self.latent_dim < 3):
            raise config_error("train", "axis_encoder", "'contour+width' reads z1 as the call's width, so it needs "
                               f"latent_axes = \"pitch\", axis_decoder = \"network\" and latent_dim >= 3 (got "
                               f"{self.latent_axes!r}, {self.axis_decoder!r}, {self.latent_dim})",
                               "set latent_axes = \"pitch\", axis_decoder = \"network\" and latent_dim >= 3, or "
                               "axis_encoder = \"contour\"")
        if any(h < 1 for h in self.hidden):
            raise config_error("train", "hidden", f"{list(self.hidden)} has a non-positive width",
                               "set hidden to positive integers, e.g. [1024, 256]")

    @property
    def resolved_epochs(self) -> int:
        """The epochs asked for: a number given, or :data:`AUTO_EPOCHS` (before any ``min_steps`` floor)."""
        return AUTO_EPOCHS if self.epochs == "auto" else int(self.epochs)

    @property
    def step_floor(self) -> int:
        """The optimiser steps training is raised to (and early stopping waits for); 0 when none applies.

        An epoch count the user gave wins over the automatic floor (``min_steps = "auto"``); a
        ``min_steps`` the user gave applies in any case.
        """
        if self.min_steps != "auto":
            return int(self.min_steps)
        return AUTO_MIN_STEPS if self.epochs == "auto" else 0

    @property
    def resolved_min_steps(self) -> int:
        """``min_steps`` with ``"auto"`` read as :data:`AUTO_MIN_STEPS` (what health advice compares to)."""
        return AUTO_MIN_STEPS if self.min_steps == "auto" else int(self.min_steps)

    def resolved_batch_size(self, n_train: int) -> int:
        """The batch size for ``n_train`` training syllables (per process)."""
        if self.batch_size != "auto":
            return int(self.batch_size)
        return int(min(AUTO_MAX_BATCH, max(AUTO_MIN_BATCH, n_train // AUTO_MIN_STEPS_PER_EPOCH)))

    @property
    def resolved_axis_encoder(self) -> str:
        """``axis_encoder`` with ``"auto"`` resolved: ``"contour+width"`` where it applies, else ``"network"``."""
        if "pitch" not in self.axis_names:  # no pitch axis: nothing is read off the image, whatever was asked
            return "network"
        if self.axis_encoder != "auto":
            return self.axis_encoder
        fits = self.latent_axes == "pitch" and self.axis_decoder == "network" and self.latent_dim >= 3
        return "contour+width" if fits else "network"

    @property
    def axis_names(self) -> tuple:
        """The latent axes trained, in latent order: ``()``, ``("pitch",)`` or ``("pitch", "duration")``."""
        return () if self.latent_axes == "off" else tuple(self.latent_axes.split("+"))

    def resolved_augment(self, n_train: int) -> bool:
        """Whether training images are jittered (see :mod:`usvpipe.vae.augment`)."""
        if self.augment != "auto":
            return self.augment == "on"
        return n_train < AUGMENT_BELOW_SYLLABLES

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
        encoder = self.resolved_axis_encoder
        return {
            "input_shape": [int(s) for s in input_shape],
            "latent_dim": self.latent_dim,
            "posterior": self.posterior,
            "rank": self.rank,
            "obs_precision": float(precision),
            "channels": list(self.channels),
            "hidden": list(self.hidden),
            "pool": int(pool),
            "moved_axes": list(self.axis_names) if self.axis_decoder == "move" else [],
            "located_axes": ["pitch"] if encoder != "network" else [],  # (resolved: network without a pitch axis)
            **({"pitch_locator": "contour"} if encoder.startswith("contour") else {}),
            **({"read_width": True} if encoder == "contour+width" else {}),
        }


#: ``augment="auto"`` jitters the training images of stores with fewer training syllables than this.
AUGMENT_BELOW_SYLLABLES = 20_000
#: ``batch_size="auto"``: AVA's 128, but small stores get at least this many steps per epoch …
AUTO_MIN_STEPS_PER_EPOCH = 16
#: … with batches no smaller than this (batch normalisation statistics get noisy below it).
AUTO_MIN_BATCH = 16
AUTO_MAX_BATCH = 128


def _auto_or_number(value, kind, name):
    """``"auto"`` stays ``"auto"``; a number (or its text, from the CLI/TOML) becomes ``kind``."""
    what = "an integer" if kind is int else "a number"
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return "auto"
        try:
            value = float(value)
        except ValueError:
            raise config_error("train", name, f"{value!r} is not {what} or auto", f"set {name} to {what} or auto") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise config_error("train", name, f"{value!r} is not {what} or auto", f"set {name} to {what} or auto")
    if kind is int:
        if float(value) != int(value):
            raise config_error("train", name, f"{value!r} is not an integer or auto", f"set {name} to an integer or auto")
        return int(value)
    return float(value)


def _auto_or_bool(value, name):
    """``"auto"``, a bool, or its text (true/yes/on/1, false/no/off/0) becomes ``"auto"`` or a bool."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.lower() == "auto":
        return "auto"
    flag = bool_from_text(text)
    if flag is None:
        raise config_error("train", name, f"{value!r} is not auto, true or false", f"set {name} to auto, true or false")
    return flag
