"""Random jitter of syllable spectrograms along the factors calls vary in, for training small stores.

A store of a few hundred syllables is seen hundreds of times over a training run of a few
thousand steps, and a VAE then learns to memorise each image instead of the factors that
vary between calls. The jitter shows it, at every step, each call slightly higher or lower
in frequency and a little longer or shorter: the factors a USV analyst reads (pitch and
duration) vary continuously, so the network has to encode them as continuous latent
directions rather than as a list of images. It is a training-time transformation only;
encoding always sees the images as they are.

Two choices keep the jittered images like the store's:

- the frequency shift is a whole number of rows, so a call's ridge stays as sharp as in
  the store (a sub-row shift interpolates, blurs the ridge, and the encoder then learns
  frequency from blurrier images than it is later shown);
- there is no shift along time: every store image is centred on its syllable, so a
  time shift would only add a nuisance factor for the latent space to spend dimensions on.

One ``affine_grid``/``grid_sample`` call per batch (CPU and CUDA alike); pixels moved in
from outside the image are 0 (the noise floor in the store's normalisation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

#: ``latent_axes``: z0 units per image height (a call moved by an eighth of the height moves
#: one prior s.d.; the store's calls span a few s.d.) ...
PITCH_AXIS_UNITS_PER_HEIGHT = 8.0
#: ... and z1 units per doubling of a call's width in the image.
DURATION_AXIS_UNITS_PER_DOUBLING = 1.0
#: The latent axes a model can have, in latent order.
LATENT_AXES = ("pitch", "duration")


def intended_axis_change(axis: str, amount, height: int):
    """The change of the ``axis`` latent that a move of ``amount`` should cause (what ``latent_axes`` trains).

    ``amount``: rows moved along frequency (``"pitch"``) or the natural log of the widening
    (``"duration"``); a number or a tensor. One definition for the training target and the
    end-of-run check (:mod:`usvpipe.vae.axis_check`), so the two cannot disagree on the scale.
    """
    if axis == "pitch":
        return amount * (PITCH_AXIS_UNITS_PER_HEIGHT / height)
    return amount * (DURATION_AXIS_UNITS_PER_DOUBLING / math.log(2.0))


@dataclass(frozen=True)
class Jitter:
    """Largest random changes applied to a training image.

    Attributes
    ----------
    shift_fraction : float
        Largest shift along frequency as a fraction of the image's height, rounded to whole
        rows (0.05 on a 30–110 kHz image: ±4 kHz, the spread of one call type's mean frequency).
    stretch_fraction : float
        Largest relative change of the time axis' scale around the image centre (0.15: the
        call is drawn between 1/1.15 and 1.15 times as wide, about the spread of one call
        type's duration).
    """

    shift_fraction: float = 0.05
    stretch_fraction: float = 0.15


def jitter_batch(x, jitter: Jitter, generator=None):
    """Each image of ``x`` (``(n, 1, H, W)``, frequency along H) shifted in frequency and stretched in time at random.

    Returns a new tensor of the same shape, dtype and device; ``x`` is not modified.
    """
    import torch

    n, _, height, _ = x.shape
    kw = {"device": x.device, "dtype": torch.float32}
    u = torch.rand(n, 2, generator=generator, **kw) * 2.0 - 1.0  # uniform in [-1, 1]
    widen = torch.exp(u[:, 0] * torch.log1p(torch.tensor(jitter.stretch_fraction, **kw)))
    # (the sign of the shift only mirrors a symmetric draw; kept as it was when the defaults were benchmarked)
    return move_calls(x, -torch.round(u[:, 1] * jitter.shift_fraction * height), widen)


def move_calls(x, shift_rows, widen, padding: str = "zeros"):
    """Each image of ``x`` (``(n, 1, H, W)``) moved by ``shift_rows[i]`` rows along frequency (towards
    higher rows) and drawn ``widen[i]`` times as wide around its centre; pixels moved in are 0
    (``padding="border"``: copies of the edge pixels).

    Whole-row shifts sample exactly at pixel centres, so without a stretch the result is the
    image moved, not blurred. One ``affine_grid``/``grid_sample`` call for the batch.
    """
    import torch
    from torch.nn import functional as F

    n, _, height, _ = x.shape
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=torch.float32)
    theta[:, 0, 0] = 1.0 / widen.float()  # sampling at x / s draws the image s times as wide
    theta[:, 1, 1] = 1.0
    # grid coordinates span [-1, 1] over the image: one row is 2 / height; sampling at y - r moves the image by +r
    theta[:, 1, 2] = -2.0 * shift_rows.float() / height
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode=padding, align_corners=False)
    return out.to(x.dtype)


def shift_rows(x, rows):
    """Each image of ``x`` (``(n, c, H, W)``) moved by ``rows[i]`` whole rows along H; zeros move in.

    Exact (an index gather, no interpolation), so an image and its moved copy differ in
    nothing but the call's position along frequency.
    """
    import torch

    n, c, height, width = x.shape
    src = torch.arange(height, device=x.device)[None, :] - rows.to(x.device).long()[:, None]
    inside = ((src >= 0) & (src < height)).to(x.dtype)[:, None, :, None]
    index = src.clamp(0, height - 1)[:, None, :, None].expand(n, c, height, width)
    return x.gather(2, index) * inside


def move_by_latent(images, z, axes):
    """Decoder images ``(n, 1, H, W)`` moved to where the latent axes ``z[:, :len(axes)]`` put them.

    The inverse reading of the encoder's axes (:func:`usvpipe.vae.model.axis_penalty`): z0 moves
    the image by ``z0 * H / PITCH_AXIS_UNITS_PER_HEIGHT`` rows towards higher rows (a fraction of
    a row interpolates; at most half the height either way), and z1 (``"duration"``) draws it
    ``2 ** (z1 / DURATION_AXIS_UNITS_PER_DOUBLING)`` times as wide around its centre (between a quarter
    and four times). ``axes`` is a prefix of :data:`LATENT_AXES`.
    """
    import torch

    n, height = images.shape[0], images.shape[-2]
    # At most half the height either way, and the edge rows (not zeros) move in: a call moved out of
    # the image would leave a blank one, which is close to the mean of these mostly dark images, and
    # from there no gradient leads back (a real-store run did this: z0 drifted to s.d. 37, R² 0).
    bound = PITCH_AXIS_UNITS_PER_HEIGHT / 2.0
    rows = z[:, 0].float().clamp(-bound, bound) * (height / PITCH_AXIS_UNITS_PER_HEIGHT)
    widen = (torch.exp(z[:, 1].float().clamp(-2.0, 2.0) * (math.log(2.0) / DURATION_AXIS_UNITS_PER_DOUBLING))
             if len(axes) > 1 else torch.ones(n, device=images.device))
    return move_calls(images, rows, widen, padding="border")
