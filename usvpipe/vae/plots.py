"""Training figures: loss curves and input-vs-reconstruction grids (matplotlib, Agg)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .._io import save_figure_atomic


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_losses(history, path) -> Path:
    """Train/validation negative ELBO per epoch (``history``: DataFrame of :func:`usvpipe.vae.train`)."""
    return save_figure_atomic(loss_figure(history), path, dpi=110)


def loss_figure(history):
    """The figure :func:`plot_losses` saves (an axis past epoch 1 when epoch 1 would flatten the rest)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    ep = history["epoch"].to_numpy()
    for ax, col, title in ((axes[0], "loss", "loss (−ELBO, nats/syllable)"), (axes[1], "kl", "KL term")):
        series = [history[f"train_{col}"].to_numpy(dtype=float)]
        ax.plot(ep, series[0], label="train", marker="o", ms=3)
        if f"val_{col}" in history and history[f"val_{col}"].notna().any():
            series.append(history[f"val_{col}"].to_numpy(dtype=float))
            ax.plot(ep, series[-1], label="validation", marker="o", ms=3)
        _zoom_past_first_epoch(ax, ep, series)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(frameon=False, loc="center right")
    fig.tight_layout()
    return fig


#: the first epoch "flattens the rest" when it lies this many times the later epochs' range away from them
FIRST_EPOCH_OUTLIER = 3.0


def first_epoch_flattens(series) -> bool:
    """Whether epoch 1's values lie so far from the later ones that a linear axis flattens every later change."""
    later = np.concatenate([np.asarray(s, dtype=float)[1:] for s in series])
    first = np.array([np.asarray(s, dtype=float)[0] for s in series if len(s)])
    later, first = later[np.isfinite(later)], first[np.isfinite(first)]
    if later.size < 2 or first.size == 0:
        return False
    lo, hi = later.min(), later.max()
    spread = max(hi - lo, 1e-12 * max(abs(hi), 1.0))
    return bool(np.any(first > hi + FIRST_EPOCH_OUTLIER * spread) or np.any(first < lo - FIRST_EPOCH_OUTLIER * spread))


def _readable(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1e4 else f"{x:.4g}"


def _zoom_past_first_epoch(ax, ep, series) -> None:
    """Scale the y axis to epochs 2+ when epoch 1 would flatten them, and say where epoch 1 went."""
    if not first_epoch_flattens(series):
        return
    later = np.concatenate([np.asarray(s, dtype=float)[1:] for s in series])
    later = later[np.isfinite(later)]
    lo, hi = later.min(), later.max()
    pad = 0.08 * max(hi - lo, 1e-9 * max(abs(hi), 1.0))
    ax.set_ylim(lo - pad, hi + pad)
    first = ", ".join(_readable(np.asarray(s, dtype=float)[0]) for s in series)
    ax.text(0.98, 0.97, f"epoch {int(ep[0])} off the scale ({first})", transform=ax.transAxes, ha="right", va="top",
            fontsize=8, color="#a33c00")


def plot_reconstructions(inputs: np.ndarray, recons: np.ndarray, path, *, title: str = "") -> Path:
    """Two rows: input spectrograms above their reconstructions (frequency up)."""
    plt = _pyplot()
    n = len(inputs)
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.6), squeeze=False)
    for i in range(n):
        for r, img in enumerate((inputs[i], recons[i])):
            ax = axes[r, i]
            ax.imshow(np.clip(img, 0, 1), origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("reconstruction")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure_atomic(fig, path, dpi=110)
