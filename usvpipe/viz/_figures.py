"""Static, publication-ready figures of a 2-D embedding (matplotlib, imported lazily).

Sizes are for a journal column (3.5 in wide) with fonts >= 7 pt; the multi-panel density
figure spans two columns (up to 7.2 in). Colours come from one fixed mapping per
column (:func:`category_colors`), so a group has the same colour in every figure and in
the HTML explorer.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from .._io import save_figure_atomic

#: Okabe & Ito (2008) colour-blind-safe palette (black moved last; it is the default
#: text colour, so it is the least informative point colour).
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
#: Paul Tol's "muted" palette, used when a column has 9-10 categories.
TOL_MUTED = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499", "#DDDDDD")
COLUMN_WIDTH_IN = 3.5
DOUBLE_COLUMN_IN = 7.2

_RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "pdf.fonttype": 42,  # editable text in Illustrator/Inkscape
    "svg.fonttype": "none",
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "text.parse_math": False,  # labels are data (a group "ctrl_$1_$"), never math text
}


def _sort_key(v):
    s = str(v)
    return (0, float(s), s) if _is_number(s) else (1, 0.0, s)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _golden_hues(n: int) -> tuple[str, ...]:
    """``n`` categorical colours beyond the fixed palettes: hues a golden angle apart (neighbouring
    labels never get neighbouring hues), alternating two lightness levels."""
    import colorsys

    out = []
    for i in range(n):
        h = (i * 0.381966) % 1.0
        light, sat = (0.42, 0.75) if i % 2 == 0 else (0.62, 0.55)
        r, g, b = colorsys.hls_to_rgb(h, light, sat)
        out.append("#%02x%02x%02x" % (round(r * 255), round(g * 255), round(b * 255)))
    return tuple(out)


#: 17 distinct categorical colours: Tol's muted palette, then Okabe–Ito (black last)
WIDE_PALETTE = TOL_MUTED + OKABE_ITO[:-1]


def category_colors(values: Sequence) -> dict[str, str]:
    """Fixed category -> hex colour mapping.

    Categories are sorted (numerically when they look like numbers) and assigned the
    Okabe–Ito palette in order (<= 8 categories), Tol's muted palette (<= 10), both
    together (<= 17, :data:`WIDE_PALETTE`) or, beyond that, categorical hues a golden angle
    apart in two lightness levels (never a sequential colour map: neighbouring animals must
    not look alike). Past about 10 colours no palette is safe for every colour-vision
    deficiency, so figures with many animals also label them. The same set of labels always
    gets the same colours, whichever figure or explorer draws them.
    """
    cats = sorted({str(v) for v in values}, key=_sort_key)
    n = len(cats)
    if n <= len(OKABE_ITO):
        pal = OKABE_ITO
    elif n <= len(TOL_MUTED):
        pal = TOL_MUTED
    elif n <= len(WIDE_PALETTE):
        pal = WIDE_PALETTE
    else:
        pal = _golden_hues(n)
    return {c: pal[i] for i, c in enumerate(cats)}


def is_categorical(series) -> bool:
    """Treat text, bool and integer columns with few distinct values as categories."""
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return True
    return pd.api.types.is_integer_dtype(series) and series.nunique() <= 12


@contextlib.contextmanager
def _style():
    import matplotlib.pyplot as plt  # headless machines fall back to Agg by themselves

    with plt.rc_context(_RC):
        yield plt


def save_figure(fig, stem: Path, formats: Sequence[str], dpi: int = 300, *, description: str = "") -> list[Path]:
    """Save ``fig`` as ``stem.<fmt>`` for each format, atomically; closes the figure.

    ``description`` (e.g. the parameters and version) is stored in the file's metadata.
    """
    import matplotlib.pyplot as plt

    from .._version import __version__

    software = f"usvpipe {__version__}"
    metadata = {
        "png": {"Software": software, "Description": description},
        "pdf": {"Creator": software, "Subject": description},
        "svg": {"Creator": software, "Description": description},
    }

    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        save_figure_atomic(fig, path, close=False, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.02,
                           metadata=metadata.get(fmt))
        paths.append(path)
    plt.close(fig)
    return paths


def _point_size(n: int) -> float:
    # area in pt^2: visible for a few hundred points, not a blob for a million
    return float(np.clip(120.0 / np.sqrt(max(n, 1)), 0.1, 8.0))


def _shuffled(n: int, seed=0) -> np.ndarray:
    # random drawing order so no group is systematically painted on top
    return np.random.default_rng(seed).permutation(n)


def _axes_off(ax, method_label: str):
    ax.set_xlabel(f"{method_label} 1")
    ax.set_ylabel(f"{method_label} 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="box")


def scatter_figure(
    emb,
    color_by: str = "group",
    *,
    colors: Mapping[str, str] | None = None,
    method_label: str = "UMAP",
    width_in: float = COLUMN_WIDTH_IN,
    seed=0,
):
    """Embedding scatter coloured by a categorical or continuous column.

    Parameters
    ----------
    emb : pandas.DataFrame
        Output of :func:`embed_latents` (``emb_x``, ``emb_y`` + metadata).
    color_by : str
        Column to colour by; categorical columns get a legend with the fixed colours,
        numeric ones a viridis colour bar.
    colors : mapping, optional
        Category -> colour (default :func:`category_colors` of the column).

    Returns
    -------
    matplotlib.figure.Figure
    """
    with _style() as plt:
        x = emb["emb_x"].to_numpy()
        y = emb["emb_y"].to_numpy()
        order = _shuffled(len(emb), seed)
        fig, ax = plt.subplots(figsize=(width_in, width_in * 0.9), layout="constrained")
        s = _point_size(len(emb))
        col = emb[color_by]
        if is_categorical(col):
            labels = col.astype(str).to_numpy()
            cmap = dict(colors) if colors else category_colors(labels)
            c = np.array([cmap.get(v, "#888888") for v in labels])
            ax.scatter(x[order], y[order], c=c[order], s=s, linewidths=0, alpha=0.7, rasterized=True)
            cats = [k for k in cmap if k in set(labels)]
            if len(cats) <= 20:
                handles = [plt.Line2D([], [], ls="", marker="o", ms=4, color=cmap[k], label=k) for k in cats]
                ncol = 1 if len(cats) <= 6 else 2
                ax.legend(handles=handles, title=color_by, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5), ncol=ncol, handletextpad=0.2, columnspacing=0.6)
            else:  # a legend of dozens of entries is unreadable at column width
                ax.set_title(f"coloured by {color_by} ({len(cats)} values)")
        else:
            vals = col.to_numpy(dtype=float)
            sc = ax.scatter(x[order], y[order], c=vals[order], s=s, linewidths=0, alpha=0.8, cmap="viridis", rasterized=True)
            cb = fig.colorbar(sc, ax=ax, shrink=0.8, pad=0.02)
            cb.set_label(color_by)
            cb.ax.tick_params(labelsize=7)
        _axes_off(ax, method_label)
    return fig


def _density(x, y, extent, bins: int, sigma_bins: float | None):
    from scipy.ndimage import gaussian_filter

    h, _, _ = np.histogram2d(x, y, bins=bins, range=[extent[:2], extent[2:]])
    if sigma_bins is None:
        # Scott's rule in 2-D (bandwidth = sd * n^(-1/6)), a little narrower so
        # multimodal groups keep their modes; in histogram bins
        rel_sd = 0.5 * (np.std(x) / (extent[1] - extent[0]) + np.std(y) / (extent[3] - extent[2]))
        sigma_bins = float(np.clip(0.7 * bins * rel_sd * max(len(x), 1) ** (-1 / 6), 1.0, bins / 10))
    h = gaussian_filter(h.T, sigma_bins)
    total = h.sum()
    return h / total if total > 0 else h


def _hdr_levels(d: np.ndarray, masses=(0.9, 0.7, 0.5, 0.3, 0.1)):
    # density thresholds enclosing the given probability masses (highest-density regions)
    flat = np.sort(d.ravel())[::-1]
    cum = np.cumsum(flat)
    levels = sorted({float(flat[min(np.searchsorted(cum, m * cum[-1]), len(flat) - 1)]) for m in masses})
    return [lv for lv in levels if lv > 0]


def density_figure(
    emb,
    group_col: str = "group",
    *,
    colors: Mapping[str, str] | None = None,
    method_label: str = "UMAP",
    bins: int = 200,
    sigma_bins: float | None = None,
):
    """One density panel per group plus an overlay panel, on shared axes.

    Densities are 2-D histograms smoothed with a Gaussian (fast for millions of points;
    ``sigma_bins=None`` picks the width per group from Scott's rule);
    contours enclose 10/30/50/70/90 % of each group's syllables, so groups of different
    sizes are comparable. The last panel overlays every group's 50 % and 90 % contours
    (the "how much do the groups overlap" view).
    """
    with _style() as plt:
        from matplotlib.colors import LinearSegmentedColormap, to_rgb

        x = emb["emb_x"].to_numpy()
        y = emb["emb_y"].to_numpy()
        pad_x = 0.05 * (np.ptp(x) or 1.0)
        pad_y = 0.05 * (np.ptp(y) or 1.0)
        extent = (x.min() - pad_x, x.max() + pad_x, y.min() - pad_y, y.max() + pad_y)
        labels = emb[group_col].astype(str).to_numpy()
        cmap = dict(colors) if colors else category_colors(labels)
        groups = [g for g in cmap if g in set(labels)]
        n_panels = len(groups) + (1 if len(groups) > 1 else 0)
        panel_in = min(DOUBLE_COLUMN_IN / n_panels, 2.4)
        fig, axes = plt.subplots(1, n_panels, figsize=(panel_in * n_panels, panel_in + 0.35), sharex=True, sharey=True, layout="constrained", squeeze=False)
        axes = axes[0]
        dens = {}
        for ax, g in zip(axes, groups):
            sel = labels == g
            d = _density(x[sel], y[sel], extent, bins, sigma_bins)
            dens[g] = d
            rgb = to_rgb(cmap[g])
            cm = LinearSegmentedColormap.from_list(g, [(1, 1, 1), rgb])
            ax.imshow(d, origin="lower", extent=extent, cmap=cm, aspect="auto", interpolation="bilinear", rasterized=True)
            levels = _hdr_levels(d)
            if len(levels) >= 1:
                ax.contour(d, levels=levels, extent=extent, colors=[rgb], linewidths=0.5, origin="lower")
            ax.set_title(f"{g} (n={int(sel.sum())})")
        if n_panels > len(groups):
            ax = axes[-1]
            handles = []
            for g in groups:
                d = dens[g]
                lv = _hdr_levels(d, masses=(0.9, 0.5))
                if lv:
                    ax.contourf(d, levels=[lv[0], d.max() * 1.001], extent=extent, colors=[cmap[g]], alpha=0.25, origin="lower")
                    ax.contour(d, levels=lv, extent=extent, colors=[cmap[g]], linewidths=0.8, origin="lower")
                handles.append(plt.Line2D([], [], color=cmap[g], lw=1.5, label=g))
            ax.set_title("overlay (50 %, 90 % contours)")
            ax.legend(handles=handles, frameon=False, loc="best")
        for ax in axes:
            ax.set_xlim(extent[:2])
            ax.set_ylim(extent[2:])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"{method_label} 1")
        axes[0].set_ylabel(f"{method_label} 2")
    return fig


def grid_examples(x: np.ndarray, y: np.ndarray, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Pick one example per occupied grid cell: the point nearest the cell's centre.

    Returns ``(row indices, cell centres (k, 2))``; cells with fewer than 3 points are
    skipped (outliers would otherwise dominate the picture).
    """
    x0, x1 = float(x.min()), float(x.max())
    y0, y1 = float(y.min()), float(y.max())
    wx = (x1 - x0) / cells or 1.0
    wy = (y1 - y0) / cells or 1.0
    ix = np.clip(((x - x0) / wx).astype(int), 0, cells - 1)
    iy = np.clip(((y - y0) / wy).astype(int), 0, cells - 1)
    cell = iy * cells + ix
    cx = x0 + (ix + 0.5) * wx
    cy = y0 + (iy + 0.5) * wy
    dist = ((x - cx) / wx) ** 2 + ((y - cy) / wy) ** 2
    order = np.lexsort((dist, cell))  # by cell, then by distance to its centre
    first = order[np.r_[True, cell[order][1:] != cell[order][:-1]]]
    counts = np.bincount(cell, minlength=cells * cells)
    keep = first[counts[cell[first]] >= 3]
    centres = np.column_stack([cx[keep], cy[keep]])
    return keep, centres


def image_axes(store_params: Mapping | None) -> dict | None:
    """What a syllable image's axes mean, from a store manifest's ``params``.

    Returns ``{"freq_khz": [lo, hi], "max_dur_ms": float, "time_stretch": bool}`` (rows span
    ``lo``..``hi`` kHz linearly, bottom to top; a syllable of duration d is shown over
    ``sqrt(d * max_dur)`` when time-stretched and shorter than ``max_dur``, else ``max_dur``),
    or None when the parameters are not known.
    """
    try:
        sp, sy = store_params["spectrogram"], store_params["syllables"]
        lo = float(sy.get("min_freq_hz") or sp["min_freq_hz"])
        hi = float(sy.get("max_freq_hz") or sp["max_freq_hz"])
        return {"freq_khz": [lo / 1e3, hi / 1e3], "max_dur_ms": float(sy["max_dur_s"]) * 1e3,
                "time_stretch": bool(sy.get("time_stretch", True))}
    except (KeyError, TypeError, ValueError):
        return None


def image_span_ms(duration_s, axes: Mapping) -> np.ndarray:
    """Time span (ms) that each syllable's image covers (see :func:`image_axes`)."""
    d_ms = np.asarray(duration_s, dtype=float) * 1e3
    m = axes["max_dur_ms"]
    if axes.get("time_stretch"):
        return np.where(d_ms < m, np.sqrt(np.maximum(d_ms, 0.0) * m), m)
    return np.full_like(d_ms, m)


def _image_key(ax, img, axes: Mapping, span_ms: float | None):
    """An inset with one example image and its axes in kHz and ms (the scale of every thumbnail)."""
    lo, hi = axes["freq_khz"]
    span = float(span_ms) if span_ms is not None and np.isfinite(span_ms) else axes["max_dur_ms"]
    key = ax.inset_axes([1.04, 0.0, 0.24, 0.24], zorder=5)  # outside the plot: covers no example
    key.imshow(img, origin="lower", extent=(0, span, lo, hi), cmap="magma", vmin=0, vmax=1, aspect="auto",
               interpolation="nearest")
    key.set_yticks([lo, hi], [f"{lo:.0f}", f"{hi:.0f} kHz"], fontsize=6)
    key.set_xticks([0, span], ["0", f"{span:.0f} ms"], fontsize=6)
    key.tick_params(length=2, pad=1)
    key.set_title("axes of a\nthumbnail", fontsize=6, pad=2)
    if axes.get("time_stretch"):
        key.set_xlabel("width ∝ √(call duration)", fontsize=6, labelpad=1)


def spectrogram_grid_figure(
    emb,
    images: np.ndarray,
    rows: np.ndarray,
    centres: np.ndarray,
    *,
    cells: int,
    colors: Mapping[str, str] | None = None,
    group_col: str = "group",
    method_label: str = "UMAP",
    width_in: float = COLUMN_WIDTH_IN,
    axes_info: Mapping | None = None,
):
    """Example syllable spectrograms drawn at their place in the embedding.

    ``images[i]`` (frequency increasing with row) is the spectrogram of ``emb`` row
    ``rows[i]``, drawn in the grid cell centred at ``centres[i]`` over a faint scatter
    of all points; the frame colour is the syllable's group. With ``axes_info``
    (:func:`image_axes`), an inset key gives one example's frequency (kHz) and time (ms) axes.
    """
    with _style() as plt:
        x = emb["emb_x"].to_numpy()
        y = emb["emb_y"].to_numpy()
        fig, ax = plt.subplots(figsize=(width_in, width_in), layout="constrained")
        labels = emb[group_col].astype(str).to_numpy() if group_col in emb else np.full(len(emb), "")
        cmap = dict(colors) if colors else category_colors(labels)
        ax.scatter(x, y, s=_point_size(len(x)) * 0.5, c="0.8", linewidths=0, rasterized=True)
        wx = (x.max() - x.min()) / cells or 1.0
        wy = (y.max() - y.min()) / cells or 1.0
        for img, r, (cx, cy) in zip(images, rows, centres):
            ext = (cx - 0.45 * wx, cx + 0.45 * wx, cy - 0.45 * wy, cy + 0.45 * wy)
            ax.imshow(img, origin="lower", extent=ext, cmap="magma", vmin=0, vmax=1, aspect="auto", interpolation="nearest", zorder=2)
            ax.add_patch(plt.Rectangle((ext[0], ext[2]), ext[1] - ext[0], ext[3] - ext[2], fill=False, lw=0.8, ec=cmap.get(labels[r], "k"), zorder=3))
        ax.set_xlim(x.min() - 0.5 * wx, x.max() + 0.5 * wx)
        ax.set_ylim(y.min() - 0.5 * wy, y.max() + 0.5 * wy)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{method_label} 1")
        ax.set_ylabel(f"{method_label} 2")
        if axes_info is not None and len(images):
            span = None
            if "onset_s" in emb and "offset_s" in emb:
                d = float(emb["offset_s"].iloc[rows[0]] - emb["onset_s"].iloc[rows[0]])
                span = float(image_span_ms([d], axes_info)[0])
            _image_key(ax, images[0], axes_info, span)
        present = [g for g in cmap if g in set(labels[rows])]
        if present and len(present) <= 8:
            handles = [plt.Line2D([], [], ls="", marker="s", mfc="none", ms=5, mec=cmap[g], label=g) for g in present]
            ax.legend(handles=handles, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=min(len(present), 4), title=group_col)
    return fig


# --------------------------------------------------------------------- traversals
def latent_path(z_start, z_end, n_steps: int = 8) -> np.ndarray:
    """Evenly spaced points on the straight line from ``z_start`` to ``z_end`` (both included).

    Returns ``(n_steps, d)`` float32.
    """
    a = np.asarray(z_start, dtype=np.float64).reshape(-1)
    b = np.asarray(z_end, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"z_start and z_end differ in dimension ({a.size} vs {b.size})")
    if n_steps < 2:
        raise ValueError("n_steps must be >= 2")
    t = np.linspace(0.0, 1.0, n_steps)[:, None]
    return ((1 - t) * a + t * b).astype(np.float32)


def traversal_strip(
    decode_fn: Callable[[np.ndarray], np.ndarray],
    z_path,
    *,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    panel_in: float = 0.6,
    cmap: str = "magma",
    axes_info: Mapping | None = None,
):
    """Decode a path in latent space and draw it as a strip of spectrograms.

    Parameters
    ----------
    decode_fn : callable
        Maps ``(n, d)`` latents to ``(n, H, W)`` images in [0, 1] (frequency increasing
        with row), e.g. ``lambda z: usvpipe.vae.decode(model, z)``.
    z_path : array_like, ``(n, d)``
        Latent points, e.g. from :func:`latent_path`.
    labels : sequence of str, optional
        Caption under each panel (default: the step index; first/last may name endpoints).
    title : str, optional
    axes_info : mapping, optional
        :func:`image_axes` of the store: the first panel then gets a frequency axis in kHz.
        (Decoded images have no duration, so the time axis is only "up to max_dur ms".)

    Returns
    -------
    matplotlib.figure.Figure
    """
    z_path = np.asarray(z_path, dtype=np.float32)
    if z_path.ndim != 2:
        raise ValueError(f"z_path must be (n, d), got shape {z_path.shape}")
    images = np.asarray(decode_fn(z_path), dtype=np.float32)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3 or len(images) != len(z_path):
        raise ValueError(f"decode_fn must return (n, H, W) images, got shape {images.shape}")
    n = len(images)
    with _style() as plt:
        fig, axes = plt.subplots(1, n, figsize=(max(panel_in * n, 1.5), panel_in + (0.45 if title else 0.3)), squeeze=False, layout="constrained")
        for i, ax in enumerate(axes[0]):
            ax.imshow(images[i], origin="lower", cmap=cmap, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0 and axes_info is not None:
                lo, hi = axes_info["freq_khz"]
                h = images[i].shape[0]
                ax.set_yticks([-0.5, h - 0.5], [f"{lo:.0f}", f"{hi:.0f} kHz"], fontsize=6)
                ax.tick_params(axis="y", length=2, pad=1)
            ax.set_xlabel(labels[i] if labels is not None else str(i), fontsize=7)
        if title:
            fig.suptitle(title, fontsize=8)
    return fig
