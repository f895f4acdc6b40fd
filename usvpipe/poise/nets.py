"""Encoders and decoders, chosen by the shape of one datum.

``(H, W)`` images whose sides are multiples of 4 (and at least 8) get a small convolutional
network; anything else (vectors, odd images) is flattened into an MLP.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn


def use_conv(shape) -> bool:
    """Convolutional networks for 2-D data with sides divisible by 4 and >= 8."""
    return len(shape) == 2 and shape[0] % 4 == 0 and shape[1] % 4 == 0 and min(shape) >= 8


class Encoder(nn.Module):
    """``x -> (batch, out_dim)`` features (the caller splits them into parameters)."""

    def __init__(self, shape, out_dim: int, hidden: int = 256):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        if use_conv(self.shape):
            h, w = self.shape
            ch = 32
            self.body = nn.Sequential(
                nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(16, ch, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Flatten(),
                nn.Linear(ch * (h // 4) * (w // 4), hidden), nn.LeakyReLU(0.2),
                nn.Linear(hidden, out_dim),
            )
            self.conv = True
        else:
            d = int(math.prod(self.shape))
            self.body = nn.Sequential(
                nn.Flatten(),
                nn.Linear(d, hidden), nn.LeakyReLU(0.2),
                nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
                nn.Linear(hidden, out_dim),
            )
            self.conv = False

    def forward(self, x):
        if self.conv:
            x = x.reshape(x.shape[0], 1, *self.shape)
        return self.body(x)


class Decoder(nn.Module):
    """``latent (..., d) -> x (..., *shape)``; a sigmoid output for images (data in [0, 1])."""

    def __init__(self, shape, in_dim: int, hidden: int = 256, *, sigmoid: bool = False):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.sigmoid = bool(sigmoid)
        if use_conv(self.shape):
            h, w = self.shape
            ch = 32
            self.body = nn.Sequential(
                nn.Linear(in_dim, hidden), nn.LeakyReLU(0.2),
                nn.Linear(hidden, ch * (h // 4) * (w // 4)), nn.LeakyReLU(0.2),
                nn.Unflatten(1, (ch, h // 4, w // 4)),
                nn.ConvTranspose2d(ch, 16, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1),
            )
        else:
            d = int(math.prod(self.shape))
            self.body = nn.Sequential(
                nn.Linear(in_dim, hidden), nn.LeakyReLU(0.2),
                nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
                nn.Linear(hidden, d),
            )

    def forward(self, z):
        lead = z.shape[:-1]
        out = self.body(z.reshape(-1, z.shape[-1]))
        out = out.reshape(*lead, *self.shape)
        return torch.sigmoid(out) if self.sigmoid else out


def log_likelihood(x, x_hat, kind: str, obs_sd: float, ndim: int) -> torch.Tensor:
    """Log-likelihood summed over the last ``ndim`` (feature) axes; ``x`` broadcasts to ``x_hat``.

    ``gaussian``: fixed observation s.d. ``obs_sd`` (constant dropped); ``bernoulli``: ``x`` in
    [0, 1] (grey levels allowed; the continuous-Bernoulli normaliser is dropped), ``x_hat``
    probabilities.
    """
    if kind == "bernoulli":
        xh = x_hat.clamp(1e-6, 1 - 1e-6)
        ll = x * torch.log(xh) + (1 - x) * torch.log1p(-xh)
    else:
        ll = -0.5 * ((x - x_hat) / obs_sd) ** 2
    return ll.flatten(start_dim=ll.dim() - ndim).sum(-1)
