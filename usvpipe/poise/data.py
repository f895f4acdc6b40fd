"""Paired datasets for POISE-VAE: file formats and synthetic generators with ground truth.

File formats (``PAIRS``)
------------------------
* ``.npz`` with arrays ``x1`` and ``x2`` (same first dimension: pair ``i`` is ``x1[i], x2[i]``;
  each datum is a vector ``(D,)`` or an image ``(H, W)``, float, images in [0, 1]); other
  arrays in the file (e.g. ground truth) are ignored by training.
* a folder with ``pairs.csv`` holding columns ``x1,x2``: paths (relative to the folder) of
  ``.npy`` or ``.png`` files, one pair per row. PNGs are read as grey levels in [0, 1].
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputFileError

PAIRS_CSV = "pairs.csv"


@dataclass
class PairedData:
    """Two aligned arrays: ``x1[i]`` and ``x2[i]`` are one pair; ``extra`` holds optional truth."""

    x1: np.ndarray
    x2: np.ndarray
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.x1 = np.asarray(self.x1, dtype=np.float32)
        self.x2 = np.asarray(self.x2, dtype=np.float32)
        if len(self.x1) != len(self.x2):
            raise ConfigError(f"x1 and x2 must pair up: {len(self.x1)} vs {len(self.x2)} items")
        for name, x in (("x1", self.x1), ("x2", self.x2)):
            if x.ndim not in (2, 3):
                raise ConfigError(f"{name}: each item must be a vector or a 2-D image, got array of shape {x.shape}")
            if not np.isfinite(x).all():
                raise ConfigError(f"{name}: contains NaN or infinite values")

    def __len__(self):
        return len(self.x1)

    def take(self, idx) -> "PairedData":
        """The pairs at ``idx``, with every per-pair ``extra`` array taken along (others kept whole)."""
        idx = np.asarray(idx, dtype=int)
        n = len(self)
        extra = {k: (np.asarray(v)[idx] if np.ndim(v) >= 1 and len(v) == n else v) for k, v in self.extra.items()}
        return PairedData(self.x1[idx], self.x2[idx], extra)


def _read_item(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False).astype(np.float32)  # an object array would unpickle
    if path.suffix.lower() == ".png":
        import matplotlib.image as mpimg

        img = mpimg.imread(path)
        if img.ndim == 3:
            img = img[..., :3].mean(-1)
        return img.astype(np.float32)
    raise InputFileError(path, "unsupported item type (expected .npy or .png)")


def load_pairs(path) -> PairedData:
    """Read ``PAIRS`` (a ``.npz`` or a folder with ``pairs.csv``; see the module docstring).

    Raises
    ------
    InputFileError
        Missing file, missing arrays/columns, unreadable items, mismatched shapes.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "not found", "pass a .npz with arrays x1, x2 or a folder with pairs.csv")
    if path.is_dir():
        table_path = path / PAIRS_CSV
        if not table_path.is_file():
            raise InputFileError(path, f"folder has no {PAIRS_CSV}", "add a CSV with columns x1,x2 naming paired .npy/.png files")
        from .._csv import read_csv

        table = read_csv(table_path, text_columns=("x1", "x2"), ours=False)
        missing = {"x1", "x2"} - set(table.columns)
        if missing:
            raise InputFileError(table_path, f"missing column(s) {', '.join(sorted(missing))}", "columns must be x1,x2")
        if len(table) == 0:
            raise InputFileError(table_path, "no pairs listed")
        items = {}
        for col in ("x1", "x2"):
            arrs = []
            for rel in table[col]:
                p = path / str(rel)
                if not p.is_file():
                    raise InputFileError(p, "listed in pairs.csv but not found", "fix the path in pairs.csv")
                try:
                    arrs.append(_read_item(p))
                except (OSError, ValueError) as exc:
                    raise InputFileError(p, f"cannot read ({exc})") from None
            shapes = {a.shape for a in arrs}
            if len(shapes) != 1:
                raise InputFileError(table_path, f"{col} items differ in shape ({sorted(shapes)[:3]})", "resize them to one shape")
            items[col] = np.stack(arrs)
        try:
            return PairedData(items["x1"], items["x2"])
        except ValueError as exc:
            raise InputFileError(table_path, str(exc)) from None
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = {"x1", "x2"} - set(npz.files)
            if missing:
                raise InputFileError(path, f"missing array(s) {', '.join(sorted(missing))}", "save with np.savez(path, x1=..., x2=...)")
            extra = {k: npz[k] for k in npz.files if k not in ("x1", "x2")}
            x1, x2 = npz["x1"], npz["x2"]
    except InputFileError:
        raise
    except Exception as exc:  # zipfile/pickle/format errors from np.load
        raise InputFileError(path, f"not a readable .npz ({type(exc).__name__}: {exc})", "save with np.savez(path, x1=..., x2=...)") from None
    try:
        return PairedData(x1, x2, extra)
    except ValueError as exc:
        raise InputFileError(path, str(exc)) from None


def save_pairs(path, data: PairedData) -> Path:
    """Write ``data`` as a ``.npz`` (``x1``, ``x2`` and the ``extra`` arrays), atomically."""
    from .._io import atomic_path

    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, x1=data.x1, x2=data.x2, **{k: np.asarray(v) for k, v in data.extra.items()})
    return Path(path)


# ---------------------------------------------------------------------------------- synthetic data
def sample_coupled_prior(n_samples: int, g11, g22, *, a2=-0.5, b2=-0.5, sweeps: int = 200, seed=0):
    """Exact-in-the-limit samples of ``p(z, z') ∝ exp(a2 z^2 + b2 z'^2 + z^T G11 z' + (z^2)^T G22 z'^2)``.

    Independent Gibbs chains (one per sample), ``sweeps`` sweeps each. Returns ``(z, z')`` as
    float64 arrays of shapes ``(n_samples, n)`` and ``(n_samples, m)``.
    """
    import torch

    from . import prior as P

    g11 = torch.as_tensor(np.asarray(g11, dtype=np.float64))
    g22 = torch.as_tensor(np.asarray(g22, dtype=np.float64))
    n, m = g11.shape
    if (g22 >= 0).any():
        raise ConfigError("G22 must be < 0 elementwise for a normalisable prior")
    nat = P.NatParams(torch.zeros(n, dtype=torch.float64), torch.full((n,), float(a2), dtype=torch.float64),
                      torch.zeros(m, dtype=torch.float64), torch.full((m,), float(b2), dtype=torch.float64), g11, g22)
    gen = torch.Generator().manual_seed(int(seed))
    zp0 = torch.randn(n_samples, m, dtype=torch.float64, generator=gen)
    z, zp = P.gibbs(nat, zp0, sweeps, generator=gen)
    return z.numpy(), zp.numpy()


def random_mixing(dim_in: int, dim_out: int, *, n_layers: int = 3, slope: float = 0.2, seed=0):
    """A random injective leaky-ReLU MLP ``R^dim_in -> R^dim_out`` (``dim_out >= dim_in``).

    Weights are random orthogonal matrices (condition number 1; the first one an isometric
    embedding), so the map is invertible on its image and well conditioned; leaky ReLU
    (slope ``slope``) keeps every layer bijective. Returns a function on numpy arrays.
    """
    if dim_out < dim_in:
        raise ConfigError("dim_out must be >= dim_in for an injective mixing")
    rng = np.random.default_rng(seed)
    mats = []
    for layer in range(n_layers):
        q, _ = np.linalg.qr(rng.standard_normal((dim_out, dim_out)))
        mats.append(q[:, :dim_in] if layer == 0 else q)
    biases = [0.1 * rng.standard_normal(dim_out) for _ in range(n_layers)]

    def f(z):
        h = np.asarray(z, dtype=np.float64)
        for i, (w, b) in enumerate(zip(mats, biases)):
            h = h @ w.T + b
            if i < n_layers - 1:
                h = np.where(h > 0, h, slope * h)
        return h

    return f


def make_identifiability_data(n_samples=8000, *, n=2, m=2, dim_x=8, coupling=1.0, quartic=0.5,
                              noise_sd=0.0, diagonal=False, seed=0) -> PairedData:
    """iVAE-style data: ``(z, z')`` from a known coupled prior, each pushed through a random MLP.

    ``G11`` has entries ``±coupling`` (random signs, scaled by 1/sqrt(m)), ``G22 = -quartic``
    (times a random factor in [0.5, 1.5]). ``x = f(z)``, ``x' = f'(z')`` (+ Gaussian noise of s.d.
    ``noise_sd``), both standardised per feature. ``extra`` holds ``z``, ``zp``, ``g11``, ``g22``.

    ``diagonal=True`` (needs ``n == m``) couples each ``z_i`` to ``z'_i`` only: ``G11``, ``G22``
    diagonal (no 1/sqrt(m) scaling; off-diagonal ``G22 = -0.01 * quartic`` keeps the prior
    normalisable). The dense default spreads weak couplings over all pairs, which leaves the
    prior close to rotation invariant (the true axes score only ~0.04 nats/sample above
    random rotations at n = m = 3); pairwise couplings make each ``(z_i, z'_i)`` strongly
    non-Gaussian and the axes much better determined.
    """
    rng = np.random.default_rng(seed)
    if diagonal:
        if n != m:
            raise ConfigError("diagonal couplings need n == m")
        g11 = np.diag(coupling * rng.choice([-1.0, 1.0], size=n) * rng.uniform(0.5, 1.0, size=n))
        g22 = -quartic * np.where(np.eye(n, dtype=bool), rng.uniform(0.5, 1.5, size=(n, n)), 0.01)
    else:
        g11 = coupling * rng.choice([-1.0, 1.0], size=(n, m)) * rng.uniform(0.5, 1.0, size=(n, m)) / math.sqrt(m)
        g22 = -quartic * rng.uniform(0.5, 1.5, size=(n, m))
    z, zp = sample_coupled_prior(n_samples, g11, g22, seed=seed + 1)
    x1 = random_mixing(n, dim_x, seed=seed + 2)(z)
    x2 = random_mixing(m, dim_x, seed=seed + 3)(zp)
    if noise_sd > 0:
        x1 = x1 + noise_sd * rng.standard_normal(x1.shape)
        x2 = x2 + noise_sd * rng.standard_normal(x2.shape)
    x1 = (x1 - x1.mean(0)) / x1.std(0)
    x2 = (x2 - x2.mean(0)) / x2.std(0)
    return PairedData(x1, x2, {"z": z, "zp": zp, "g11": g11, "g22": g22})


def mean_corr_coef(true, learned, *, method: str = "pearson") -> float:
    """Mean correlation coefficient: Hungarian matching on |corr| between true and learned latents.

    ``true`` (N, k) and ``learned`` (N, l) with ``l >= k`` (extra learned dims stay unmatched).
    ``method="spearman"`` ranks first (invariant to monotone distortions).
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.stats import rankdata

    a = np.asarray(true, dtype=np.float64)
    b = np.asarray(learned, dtype=np.float64)
    if method == "spearman":
        a = np.apply_along_axis(rankdata, 0, a)
        b = np.apply_along_axis(rankdata, 0, b)
    a = (a - a.mean(0)) / (a.std(0) + 1e-12)
    b = (b - b.mean(0)) / (b.std(0) + 1e-12)
    c = np.abs(a.T @ b / len(a))
    rows, cols = linear_sum_assignment(-c)
    return float(c[rows, cols].mean())


def make_video_audio(n_samples=4000, *, shape=(32, 32), seed=0, frame_noise=0.02) -> PairedData:
    """Synthetic "video frame + USV syllable" pairs with a known coupling.

    A syllable is drawn with :func:`usvpipe.synth.sample_calls` and rendered as a 32x32
    spectrogram image (modality 2). The paired frame (modality 1) shows a Gaussian blob whose
    horizontal position follows the syllable's start frequency (pitch), whose radius follows
    its log duration and whose brightness follows its log FM depth; its vertical position is
    private to the video (independent of the call). ``extra`` holds the truth: ``coupled``
    (N, 3) = standardised (pitch, log duration, log FM depth), ``video_private`` (N,) and the
    call parameters ``calls`` (N, 7, in :data:`usvpipe.synth.PARAM_NAMES` order).
    """
    from .. import synth

    rng = np.random.default_rng(seed)
    calls = synth.sample_calls(n_samples, seed=int(rng.integers(2**31)))
    h, w = int(shape[0]), int(shape[1])
    audio = np.stack([synth.render_call_image(row, shape=(h, w)) for _, row in calls.iterrows()])
    pitch = calls["start_freq_hz"].to_numpy()
    logdur = np.log(calls["duration_s"].to_numpy())
    logfm = np.log(calls["fm_depth_hz"].to_numpy() + 50.0)
    coupled = np.stack([pitch, logdur, logfm], 1)
    coupled = (coupled - coupled.mean(0)) / coupled.std(0)
    private = rng.uniform(-1.0, 1.0, n_samples)
    # Map the standardised factors to blob geometry (clipped to stay inside the frame).
    cx = (0.5 + 0.3 * np.tanh(coupled[:, 0] / 1.5)) * (w - 1)
    cy = (0.5 + 0.3 * private) * (h - 1)
    radius = (0.09 + 0.04 * np.tanh(coupled[:, 1] / 1.5)) * w
    bright = 0.6 + 0.35 * np.tanh(coupled[:, 2] / 1.5)
    yy, xx = np.mgrid[0:h, 0:w]
    d2 = (xx[None] - cx[:, None, None]) ** 2 + (yy[None] - cy[:, None, None]) ** 2
    video = bright[:, None, None] * np.exp(-0.5 * d2 / radius[:, None, None] ** 2)
    video = np.clip(video + frame_noise * rng.standard_normal(video.shape), 0.0, 1.0)
    return PairedData(video.astype(np.float32), audio.astype(np.float32),
                      {"coupled": coupled, "video_private": private, "calls": calls.to_numpy()})


def make_digits_gaussians(radius: float = 2.0, *, sd: float = 1.0, copies: int = 4, seed=0) -> PairedData:
    """Handwritten digits 1-8 (sklearn's offline 8x8 set, scaled to [0, 1]) paired with 2-D points.

    Digit ``k`` is paired with a draw from the ``k``-th of 8 Gaussian modes (s.d. ``sd``) on a
    circle of ``radius``: small radii mean overlapping modes (low SNR in the 2-D modality).
    Each digit image is used ``copies`` times with fresh points. ``extra["label"]`` = digit.
    """
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    d = load_digits()
    keep = (d.target >= 1) & (d.target <= 8)
    imgs = (d.images[keep] / 16.0).astype(np.float32)
    labels = d.target[keep]
    imgs = np.tile(imgs, (copies, 1, 1))
    labels = np.tile(labels, copies)
    angle = 2 * np.pi * (labels - 1) / 8
    centres = radius * np.stack([np.cos(angle), np.sin(angle)], 1)
    pts = centres + sd * rng.standard_normal(centres.shape)
    perm = rng.permutation(len(labels))
    return PairedData(imgs[perm], pts[perm].astype(np.float32), {"label": labels[perm]})


def bar_video_frames(calls, duration_s: float, *, fps: float = 30.0, shape=(16, 32), lead_s: float = 0.05,
                     band_hz=(30_000.0, 110_000.0), width_px: float = 1.5) -> np.ndarray:
    """Synthetic behaviour video for a synthetic recording: a bar whose position is the call's pitch.

    ``calls`` is a table with ``onset_s`` and ``start_freq_hz`` (e.g. the truth returned by
    :func:`usvpipe.synth.synth_recording`). From ``lead_s`` before each call's onset until
    ``lead_s`` before the next one, the frame shows a vertical bar whose column is linear in the
    call's start frequency over ``band_hz``; before the first call the frame is dark. The lead
    (more than a frame interval plus the segmenter's onset error) makes the frame on screen at a
    detected onset show that call. Returns ``(n_frames, height, width)`` in [0, 1].
    """
    h, w = int(shape[0]), int(shape[1])
    n = int(math.ceil(duration_s * fps))
    onset = np.asarray(calls["onset_s"], dtype=np.float64)
    pitch = np.asarray(calls["start_freq_hz"], dtype=np.float64)
    order = np.argsort(onset)
    onset, pitch = onset[order], pitch[order]
    t = np.arange(n) / fps
    which = np.searchsorted(onset - lead_s, t, side="right") - 1  # last call announced by time t
    frac = np.clip((pitch - band_hz[0]) / (band_hz[1] - band_hz[0]), 0.0, 1.0)
    col = 2.0 + frac * (w - 5.0)
    xx = np.arange(w)[None, :]
    frames = np.zeros((n, h, w), dtype=np.float32)
    shown = which >= 0
    prof = np.exp(-0.5 * ((xx - col[which[shown]][:, None]) / width_px) ** 2)
    frames[shown] = np.repeat(prof[:, None, :], h, 1)
    return frames


def bar_position(frames) -> np.ndarray:
    """Column centroid of each frame ``(N, h, w)`` (the bar of :func:`bar_video_frames`), in pixels."""
    f = np.clip(np.asarray(frames, dtype=np.float64), 0.0, None)
    prof = f.reshape(len(f), -1, f.shape[-1]).sum(1)
    prof = np.clip(prof - np.median(prof, axis=1, keepdims=True), 0.0, None)
    return (prof * np.arange(f.shape[-1])).sum(1) / np.maximum(prof.sum(1), 1e-9)
