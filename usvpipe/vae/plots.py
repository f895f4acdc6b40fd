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
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    ep = history["epoch"].to_numpy()
    for ax, col, title in ((axes[0], "loss", "loss (−ELBO, nats/syllable)"), (axes[1], "kl", "KL term")):
        ax.plot(ep, history[f"train_{col}"], label="train", marker="o", ms=3)
        if f"val_{col}" in history and history[f"val_{col}"].notna().any():
            ax.plot(ep, history[f"val_{col}"], label="validation", marker="o", ms=3)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(frameon=False)
    fig.tight_layout()
    return save_figure_atomic(fig, path, dpi=110)


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
