"""Convolutional VAE for fixed-size syllable spectrograms.

The architecture follows the shape of AVA's VAE (Goffinet et al., eLife 2021): a stack
of 3×3 convolutions with batch normalisation that halves the resolution per stage,
fully connected layers down to a small latent, and a mirrored decoder. The approximate
posterior is either AVA's low-rank-plus-diagonal multivariate normal,
``q(z|x) = N(mu, U Uᵀ + diag(d))``, or a diagonal normal. The observation model is a
Gaussian with a fixed precision ``tau`` on pixel values in [0, 1], so the loss is the
negative ELBO in nats per syllable::

    loss = tau/2 * ||x - x̂||² - (H W / 2) log(tau / 2π) + KL(q(z|x) || N(0, I))

Everything in a training step stays on the device: no ``.item()``, no host-side control
flow that depends on tensor values, so CUDA kernels queue without synchronisation.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError


def check_input_shape(input_shape, n_stages: int) -> tuple[int, int]:
    """Validate ``(H, W)`` for an encoder with ``n_stages`` halvings; return it as ints."""
    try:
        h, w = (int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"spectrogram shape must be (height, width), got {input_shape!r}") from None
    factor = 2**n_stages
    if h < 2 * factor or w < 2 * factor or h % factor or w % factor:
        raise ConfigError(
            f"spectrogram shape {h}x{w} does not fit a VAE with {n_stages} down-sampling stages: "
            f"height and width must be multiples of {factor} and at least {2 * factor} "
            f"(fix: use power-of-two syllable sizes such as 128x128, or fewer `channels` stages)"
        )
    return h, w


def _conv_block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class VAE(nn.Module):
    """Convolutional VAE.

    Parameters
    ----------
    input_shape : (int, int)
        Spectrogram height and width (each a multiple of ``2 ** len(channels)``).
    latent_dim : int
    posterior : {"lowrank", "diagonal"}
    rank : int
        Rank of the low-rank covariance factor.
    obs_precision : float
        Precision of the Gaussian observation model.
    channels : sequence of int
        Channels per encoder stage; each stage is a stride-1 and a stride-2 convolution.
    hidden : sequence of int
        Fully connected widths between the flattened feature map and the latent.
    pool : int
        Average-pool the input images by this factor before the encoder (the CPU profile:
        128×128 store images are learnt at 64×64). Reconstructions, and the likelihood, are
        at the pooled size ``output_shape``.
    moved_axes : sequence of str
        Latent axes the decoder applies as moves instead of reading them
        (``axis_decoder = "move"``): ``("pitch",)`` or ``("pitch", "duration")``. The decoder
        network sees the latent with these dimensions set to 0 and draws the call where they
        are 0; its image is then moved along frequency by z0 (and widened by z1),
        :func:`usvpipe.vae.augment.move_by_latent`. So z0 cannot carry anything but where the
        call lies in frequency.
    located_axes : sequence of str
        ``("pitch",)``: z0's mean is read off the image (``pitch_locator``) instead of being a
        network output; ``()``: every mean is a network output.
    pitch_locator : {"detector", "contour"}
        What z0's mean is read off with ``located_axes``: a small learnt detector, or the fixed
        rule :func:`contour_row`.
    read_width : bool
        z1's mean is also a fixed rule, the call's width in the image (:func:`contour_width`):
        z1 = ``WIDTH_UNITS_PER_IMAGE_WIDTH`` × (width − ½) plus one learnt offset. Needs the pitch
        axis located by the contour (``axis_encoder = "contour+width"``).
    """

    def __init__(self, input_shape=(128, 128), latent_dim=32, posterior="lowrank", rank=1, obs_precision=10.0,
                 channels=(8, 16, 24, 32), hidden=(1024, 256), pool=1, moved_axes=(), located_axes=(),
                 pitch_locator="detector", read_width=False):
        super().__init__()
        if posterior not in ("lowrank", "diagonal"):
            raise ConfigError(f"posterior must be 'lowrank' or 'diagonal', got {posterior!r}")
        self._set_axis_reading(latent_dim, moved_axes, located_axes, pitch_locator, read_width)
        moved_axes, located_axes = self.moved_axes, self.located_axes
        channels = [int(c) for c in channels]
        hidden = [int(h) for h in hidden]
        self.pool = int(pool)
        if self.pool < 1 or any(int(side) % self.pool for side in input_shape):
            raise ConfigError(f"pool factor {pool} must be >= 1 and divide the spectrogram shape {tuple(input_shape)}")
        self.input_shape = tuple(int(side) for side in input_shape)
        self.output_shape = check_input_shape([side // self.pool for side in self.input_shape], len(channels))
        self.latent_dim = int(latent_dim)
        self.posterior = posterior
        self.rank = int(rank) if posterior == "lowrank" else 0
        self.obs_precision = float(obs_precision)
        self.config = {
            "input_shape": list(self.input_shape), "latent_dim": self.latent_dim, "posterior": posterior,
            "rank": int(rank), "obs_precision": self.obs_precision, "channels": channels, "hidden": hidden,
            "pool": self.pool, "moved_axes": list(moved_axes), "located_axes": list(located_axes),
        }
        if self.pitch_locator != "detector":  # (configs without the key are the detector's, as before)
            self.config["pitch_locator"] = self.pitch_locator
        if self.read_width:  # (likewise: configs without the key read z1 from the network)
            self.config["read_width"] = True
        h, w = self.output_shape
        factor = 2 ** len(channels)
        self._feat_shape = (channels[-1], h // factor, w // factor)
        n_feat = channels[-1] * (h // factor) * (w // factor)

        self._build_encoder(channels, hidden, n_feat)
        self._build_decoder(channels, hidden, n_feat)

    def _set_axis_reading(self, latent_dim, moved_axes, located_axes, pitch_locator, read_width) -> None:
        """Check and keep how the latent axes are read and drawn (``moved_axes``, ``located_axes``,
        ``pitch_locator``, ``read_width``: see the class docstring)."""
        from .augment import LATENT_AXES

        moved_axes = tuple(str(a) for a in moved_axes)
        if moved_axes != LATENT_AXES[:len(moved_axes)] or len(moved_axes) >= int(latent_dim):
            raise ConfigError(f"moved_axes must be a prefix of {LATENT_AXES} shorter than latent_dim, "
                              f"got {list(moved_axes)}")
        self.moved_axes = moved_axes
        located_axes = tuple(str(a) for a in located_axes)
        if located_axes not in ((), ("pitch",)):
            raise ConfigError(f"located_axes must be [] or ['pitch'], got {list(located_axes)}")
        self.located_axes = located_axes
        if pitch_locator not in PITCH_LOCATORS:
            raise ConfigError(f"pitch_locator must be one of {list(PITCH_LOCATORS)}, got {pitch_locator!r}")
        self.pitch_locator = str(pitch_locator)
        self.read_width = bool(read_width)
        if self.read_width and (located_axes != ("pitch",) or self.pitch_locator != "contour" or moved_axes
                                or int(latent_dim) < 3):
            raise ConfigError("read_width needs located_axes ['pitch'] with pitch_locator 'contour', no moved_axes "
                              f"and latent_dim >= 3, got {list(located_axes)}, {pitch_locator!r}, {list(moved_axes)}, "
                              f"{latent_dim}")

    def _build_encoder(self, channels, hidden, n_feat: int) -> None:
        """Convolutions, fully connected layers and the posterior head; with ``located_axes`` the pitch
        locator too. (Built in this order: the initial weights depend on it.)"""
        layers: list[nn.Module] = []
        c_prev = 1
        for c in channels:
            layers += _conv_block(c_prev, c, 1) + _conv_block(c, c, 2)
            c_prev = c
        self.encoder_conv = nn.Sequential(*layers)
        mlp: list[nn.Module] = []
        d_prev = n_feat
        for d in hidden:
            mlp += [nn.Linear(d_prev, d), nn.ReLU(inplace=True)]
            d_prev = d
        self.encoder_mlp = nn.Sequential(*mlp)
        k = self.latent_dim
        # One head: mean, log of the diagonal, and (low-rank) the factor U.
        self.head = nn.Linear(d_prev, k * (2 + self.rank))
        if self.located_axes and self.pitch_locator == "detector":
            # z0's mean is where a learnt detector fires along frequency (a soft arg-max over
            # rows of a convolutional map averaged over time): a convolution moves with the
            # call, so a call moved by r rows moves z0 by r rows' worth, and z0's value is a
            # position in the image for every kind of call, not a free offset. Exactly so only
            # for a sharp map; trained ones stay broad (13-29 of 64 effective rows on the real
            # store), the rows without the call do not move, and z0 moves somewhat less (docs/vae.md).
            self.locator = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(inplace=True),
                                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True),
                                         nn.Conv2d(8, 1, 1))
        if self.located_axes:
            self.locator_bias = nn.Parameter(torch.zeros(()))
        if self.read_width:
            self.width_bias = nn.Parameter(torch.zeros(()))

    def _build_decoder(self, channels, hidden, n_feat: int) -> None:
        """Fully connected layers back to the feature map, then transposed convolutions to one image."""
        k = self.latent_dim
        dec: list[nn.Module] = []
        d_prev = k
        for d in reversed(hidden):
            dec += [nn.Linear(d_prev, d), nn.ReLU(inplace=True)]
            d_prev = d
        dec += [nn.Linear(d_prev, n_feat), nn.ReLU(inplace=True)]
        self.decoder_mlp = nn.Sequential(*dec)
        up: list[nn.Module] = []
        rev = list(reversed(channels))
        for i, c in enumerate(rev):
            c_next = rev[i + 1] if i + 1 < len(rev) else channels[0]
            up += [nn.ConvTranspose2d(c, c, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            up += _conv_block(c, c_next, 1)
        up += [nn.Conv2d(channels[0], 1, 3, padding=1)]
        self.decoder_conv = nn.Sequential(*up)

    # -- posterior ---------------------------------------------------------------
    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Images as the network sees them: ``(n, 1, H, W)`` pooled to ``output_shape``."""
        if self.pool > 1 and tuple(x.shape[-2:]) == self.input_shape:
            x = nn.functional.avg_pool2d(x, self.pool)
        return x

    @property
    def rule_read_dims(self) -> tuple:
        """The latent dimensions whose means are fixed rules of the image, not learnt (z0 with the
        contour locator, z1 with ``read_width``): what a read-out of the network's own learning leaves out."""
        return ((0,) if self.located_axes and self.pitch_locator == "contour" else ()) + ((1,) if self.read_width else ())

    def encode(self, x: torch.Tensor):
        """Posterior parameters for images ``x`` of shape ``(n, 1, H, W)`` (store or pooled size).

        Returns ``(mu, log_d, u)`` as float32: mean ``(n, k)``, log of the diagonal
        ``(n, k)`` and the low-rank factor ``(n, k, rank)`` (``None`` for the diagonal posterior).
        """
        x = self.prepare(x)
        f = self.encoder_conv(x).flatten(1)
        out = self.head(self.encoder_mlp(f)).float()
        k = self.latent_dim
        mu = out[:, :k]
        if self.located_axes:
            from .augment import PITCH_AXIS_UNITS_PER_HEIGHT

            height = x.shape[-2]
            if self.pitch_locator == "contour":
                # (one pass over the image gives both rules their call columns: read_width needs the contour locator)
                columns = call_columns(x)
                row = contour_row(x, columns)
            else:
                weights = torch.softmax(self.locator(x).float().mean(-1)[:, 0], dim=-1)  # (n, H)
                row = (weights * torch.arange(height, device=x.device, dtype=torch.float32)).sum(-1)
            where = (row - (height - 1) / 2.0) * (PITCH_AXIS_UNITS_PER_HEIGHT / height)
            mu = torch.cat([(where + self.locator_bias)[:, None], mu[:, 1:]], 1)
        if self.read_width:
            width = WIDTH_UNITS_PER_IMAGE_WIDTH * (contour_width(x, columns) - 0.5) + self.width_bias
            mu = torch.cat([mu[:, :1], width[:, None], mu[:, 2:]], 1)
        log_d = _bounded(out[:, k:2 * k], LOG_VARIANCE_BOUNDS)
        u = out[:, 2 * k:].reshape(-1, k, self.rank) if self.rank else None
        return mu, log_d, u

    def sample(self, mu, log_d, u, generator: torch.Generator | None = None):
        """Reparameterised sample ``z = mu + U e1 + sqrt(d) e2``."""
        eps = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)
        z = mu + torch.exp(0.5 * log_d) * eps
        if u is not None:
            e1 = torch.randn((mu.shape[0], u.shape[2], 1), device=mu.device, dtype=mu.dtype, generator=generator)
            z = z + torch.bmm(u, e1).squeeze(-1)
        return z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean reconstruction ``(n, 1, H, W)`` at ``output_shape`` for latents ``z`` ``(n, k)`` (not clipped)."""
        if not self.moved_axes:
            return self.decoder_conv(self.decoder_mlp(z).view(-1, *self._feat_shape))
        from .augment import move_by_latent

        n_moved = len(self.moved_axes)
        unmoved = torch.cat([torch.zeros_like(z[:, :n_moved]), z[:, n_moved:]], 1)
        image = self.decoder_conv(self.decoder_mlp(unmoved).view(-1, *self._feat_shape))
        return move_by_latent(image, z, self.moved_axes)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, moved=None):
        """Loss terms for a batch; returns ``(loss, recon, kl)``, each a 0-d float32 mean.

        ``moved = (x_moved, target, sd)``: the batch with each call moved in a known way and the
        change of the latent that move should cause; :func:`axis_penalty` is added to
        the loss (one encoder pass for both batches, so they share batch-norm statistics).
        """
        x = self.prepare(x)
        penalty = None
        if moved is not None:
            x_moved, target, sd = moved
            mu_both, log_d_both, u_both = self.encode(torch.cat([x, self.prepare(x_moved)]))
            n = x.shape[0]
            mu, log_d, u = mu_both[:n], log_d_both[:n], (u_both[:n] if u_both is not None else None)
            moved_posterior = (mu_both[n:], log_d_both[n:], u_both[n:] if u_both is not None else None)
            penalty = axis_penalty((mu, log_d, u), moved_posterior, target, sd).mean()
            if self.moved_axes:
                penalty = penalty + centring_penalty(mu[:, :len(self.moved_axes)], sd)
        else:
            mu, log_d, u = self.encode(x)
        z = self.sample(mu, log_d, u, generator)
        x_hat = self.decode(z)
        recon = gaussian_nll(x, x_hat, self.obs_precision)
        kl = kl_lowrank(mu, log_d, u) if u is not None else kl_diagonal(mu, log_d)
        recon = recon.mean()
        kl = kl.mean()
        loss = recon + kl if penalty is None else recon + kl + penalty
        return loss, recon, kl

    def posterior_variance(self, log_d, u):
        """Marginal variances ``diag(U Uᵀ + diag(d))``."""
        var = torch.exp(log_d)
        if u is not None:
            var = var + (u * u).sum(-1)
        return var


#: Range of the log posterior variances: keeps exp() finite early in training and under reduced precision.
LOG_VARIANCE_BOUNDS = (-12.0, 8.0)


def _bounded(raw: torch.Tensor, bounds) -> torch.Tensor:
    """``raw`` clamped to ``bounds`` in value, with the gradient passed through as if unclamped.

    A plain clamp has no gradient outside its range, so a variance pushed past the upper bound by
    one early spike stays there for good. That happened on a real store (seed 3 of the latents
    benchmark): one dimension's log variance sat at 8 for the whole run, 1 500 nats of KL per
    syllable, and the dimension was lost to the decoder under noise of s.d. 55. Passed through,
    the KL's gradient brings it back. Inside the range the value and gradient are unchanged.
    """
    return raw + (raw.clamp(*bounds) - raw).detach()


def axis_penalty(posterior, moved_posterior, target: torch.Tensor, sd: float) -> torch.Tensor:
    """Per-image ``½ E|(z_moved − z) − target|² / sd²`` for a call and its moved copy.

    ``posterior`` and ``moved_posterior`` are ``(mu, log_d, u)`` as :meth:`VAE.encode` returns
    them (``u`` may be ``None``); ``z = mu + U e1 + sqrt(d) e2`` is drawn with the *same* noise
    for both, so the expectation has the closed form ``|Δmu − target|² + |ΔU|² + |Δ sqrt(d)|²``.

    With ``target`` zero except in the first dimensions (``latent_axes``): moving a call by
    ``r`` rows along frequency should move its latent by a fixed amount per row along z0,
    widening it by a factor ``s`` by a fixed amount per ``log s`` along z1, and leave every
    other direction where it was. Pitch (and duration) become straight latent axes, the same in
    every recording, and the other dimensions describe the call's shape whatever its pitch.
    The whole posterior is held to it, not only its mean: asked about the means alone, an
    encoder made the other means constant and passed the call's shape through the
    image-dependent covariance instead (the demo's store: the means decoded to R² −0.04 while
    samples decoded to 0.18). The geometry of the spectrogram is the only supervision; no
    measured acoustic feature is used.
    """
    (mu, log_d, u), (mu_moved, log_d_moved, u_moved) = posterior, moved_posterior
    diff = mu_moved - mu - target
    spread = torch.exp(0.5 * log_d_moved) - torch.exp(0.5 * log_d)
    total = (diff * diff).sum(-1) + (spread * spread).sum(-1)
    if u is not None:
        total = total + ((u_moved - u) ** 2).sum((-2, -1))
    return 0.5 * total / (sd * sd)


def centring_penalty(axes_mu: torch.Tensor, sd: float) -> torch.Tensor:
    """``½ |mean of the batch's axis means|² / sd²``: the batch's calls centred on the moved axes.

    With ``moved_axes`` the decoder draws a call where its axes are 0 and the encoder's penalty
    fixes only how the axes *change*, so where z0 = 0 lies is free, and nothing but the weak KL
    stops every z0 drifting by a common offset: one real-store run ended with every syllable's
    z0 beyond the move's bound (the decoder's call drawn half an image away, R² 0.07). Centring
    the batch fixes the origin: z0 = 0 is the pitch of the average call.
    """
    centre = axes_mu.mean(0)
    return 0.5 * (centre * centre).sum() / (sd * sd)


def gaussian_nll(x: torch.Tensor, x_hat: torch.Tensor, precision: float) -> torch.Tensor:
    """Per-image negative log-likelihood under ``N(x_hat, 1/precision)`` per pixel (float32)."""
    diff = (x.float() - x_hat.float()).flatten(1)
    n_pix = diff.shape[1]
    const = 0.5 * n_pix * math.log(precision / (2.0 * math.pi))
    return 0.5 * precision * (diff * diff).sum(1) - const


def kl_diagonal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Per-sample ``KL(N(mu, diag(exp(log_var))) || N(0, I))``."""
    return 0.5 * (torch.exp(log_var) + mu * mu - 1.0 - log_var).sum(-1)


def kl_lowrank(mu: torch.Tensor, log_d: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Per-sample ``KL(N(mu, U Uᵀ + diag(exp(log_d))) || N(0, I))``.

    ``KL = ½ (tr Σ + |mu|² − k − log det Σ)`` with ``tr Σ = Σ d + Σ U²`` and, by the matrix
    determinant lemma, ``log det Σ = Σ log d + log det(I_r + Uᵀ D⁻¹ U)``. Rank 1 has a
    closed form; higher ranks use a Cholesky factor of the small ``r × r`` matrix
    (``cholesky_ex`` does not synchronise with the host to check for errors).
    """
    k = mu.shape[-1]
    d = torch.exp(log_d)
    trace = d.sum(-1) + (u * u).sum((-2, -1))
    if u.shape[-1] == 1:
        logdet_small = torch.log1p((u[..., 0] ** 2 / d).sum(-1))
    else:
        cap = torch.eye(u.shape[-1], device=u.device, dtype=u.dtype) + torch.einsum("bki,bk,bkj->bij", u, 1.0 / d, u)
        chol = torch.linalg.cholesky_ex(cap).L
        logdet_small = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    logdet = log_d.sum(-1) + logdet_small
    return 0.5 * (trace + (mu * mu).sum(-1) - k - logdet)


#: ``pitch_locator``: what z0's mean is read off when ``located_axes`` holds the pitch axis.
PITCH_LOCATORS = ("detector", "contour")
#: A column belongs to the call when its loudest pixel exceeds this (images are noise-normalised
#: to [0, 1]); the level of the benchmark's reference contour features, not chosen for this use.
CONTOUR_ON_LEVEL = 0.25


def call_columns(x: "torch.Tensor") -> tuple:
    """``(row, on)`` of each image ``(n, 1, H, W)``, both ``(n, W)``: the loudest row of each column, and
    1.0 where that column's loudest pixel exceeds :data:`CONTOUR_ON_LEVEL` (the call's columns), else 0.0.
    What :func:`contour_row` and :func:`contour_width` read; computed once when both are wanted."""
    peak, row = x.float()[:, 0].max(dim=1)
    return row, (peak > CONTOUR_ON_LEVEL).float()


def contour_row(x: "torch.Tensor", columns: tuple | None = None) -> "torch.Tensor":
    """The call's mean contour row of each image ``(n, 1, H, W)``: the loudest row of each column,
    averaged over the columns whose loudest pixel exceeds :data:`CONTOUR_ON_LEVEL`; the middle row
    when none does (no call to place). A fixed rule, no parameters: the frequency a segment table's
    mean frequency reads (its loudest bin per frame), in rows of the image. ``columns``: the
    images' :func:`call_columns`, when already computed."""
    row, on = call_columns(x) if columns is None else columns
    middle = torch.full_like(on[:, 0], (x.shape[-2] - 1) / 2.0)
    return torch.where(on.sum(-1) > 0, (row.float() * on).sum(-1) / on.sum(-1).clamp(min=1.0), middle)


#: ``read_width``: z1 units per image width (a call spanning the whole image lies 4 units above
#: one spanning none: a store's calls, a tenth to nine tenths of the width, span about 3 prior s.d.).
WIDTH_UNITS_PER_IMAGE_WIDTH = 4.0


def contour_width(x: "torch.Tensor", columns: tuple | None = None) -> "torch.Tensor":
    """The call's width in each image ``(n, 1, H, W)`` as a fraction of ``W``: the share of columns
    whose loudest pixel exceeds :data:`CONTOUR_ON_LEVEL`, the columns :func:`contour_row` averages.
    A fixed rule, linear in the width (a segment table's duration is read off the same frames; with
    time-stretched store images a call of duration d is drawn sqrt(d) wide, so this is monotone in d).
    ``columns``: the images' :func:`call_columns`, when already computed."""
    return (call_columns(x) if columns is None else columns)[1].mean(-1)


def build_model(config: dict) -> VAE:
    """Rebuild a :class:`VAE` from its ``config`` dictionary (as stored in checkpoints)."""
    return VAE(
        input_shape=tuple(config["input_shape"]), latent_dim=config["latent_dim"], posterior=config["posterior"],
        rank=config.get("rank", 1), obs_precision=config.get("obs_precision", 10.0),
        channels=tuple(config["channels"]), hidden=tuple(config["hidden"]), pool=config.get("pool", 1),
        moved_axes=tuple(config.get("moved_axes", ())), located_axes=tuple(config.get("located_axes", ())),
        pitch_locator=config.get("pitch_locator", "detector"), read_width=config.get("read_width", False),
    )
