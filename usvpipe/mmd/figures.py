"""MMD figures: null distribution, pairwise heatmap in dendrogram order, per-animal effect size.

Drawn from an :class:`~usvpipe.mmd.result.MMDResult` (read by attribute: ``null``, ``statistic``,
``pairwise``, ``per_animal``, …). ``result.py`` calls this module when it saves a result; this
module does not import ``result.py`` back, so the two stay one-way.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _save_figures(result, out: Path) -> dict:
    """Null distribution, pairwise heatmap with dendrogram ordering, per-animal effect size."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with plt.rc_context({"text.parse_math": False}):  # group/animal names are text, never math ("ctrl_$1_$")
        return _draw_figures(result, out, plt)


def _draw_figures(result, out: Path, plt) -> dict:
    from .._io import save_figure_atomic

    paths = {}
    a, b = result.groups

    # Null distribution with the observed value.
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.hist(result.null, bins=min(60, max(10, len(result.null) // 10)), color="0.65", edgecolor="white")
    ax.axvline(result.statistic, color="crimson", lw=2, label=f"observed {result.statistic:.3g}")
    kind = "all splits" if result.exact else f"{result.n_permutations} permutations"
    ax.set_xlabel(f"MMD² ({result.statistic_kind}, h = {result.primary_bandwidth:.3g})")
    ax.set_ylabel("count")
    title = f"{a} vs {b}: unit = {result.unit}, {kind}, p = {result.p_value:.3g}"
    if result.aggregated:
        # the histogram is one bandwidth's null; the test's p-value aggregates all of them
        at_h = result.p_values_per_bandwidth[list(result.bandwidths).index(result.primary_bandwidth)]
        title += (f" aggregated over {len(result.bandwidths)} bandwidths\n"
                  f"(histogram and p = {at_h:.3g} at this h alone)")
    ax.set_title(title, fontsize=9)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    paths["null_figure"] = save_figure_atomic(fig, out / "null_distribution.png", dpi=150)

    if result.pairwise is not None and len(result.pairwise) >= 2:
        from scipy.cluster import hierarchy
        from scipy.spatial.distance import squareform

        M = result.pairwise.to_numpy(dtype=float)
        D = np.sqrt(np.clip(np.nan_to_num(M, nan=np.nanmax(M) if np.isfinite(M).any() else 0.0), 0.0, None))
        D = (D + D.T) / 2
        np.fill_diagonal(D, 0.0)
        labels = list(result.pairwise.index)
        fig = plt.figure(figsize=(6.5, 6.8))
        ax_d = fig.add_axes([0.18, 0.78, 0.62, 0.17])
        ax_h = fig.add_axes([0.18, 0.12, 0.62, 0.64])
        ax_c = fig.add_axes([0.83, 0.12, 0.03, 0.64])
        if len(labels) >= 3:
            Lk = hierarchy.linkage(squareform(D, checks=False), method="average")
            dn = hierarchy.dendrogram(Lk, ax=ax_d, no_labels=True, color_threshold=0, above_threshold_color="0.3")
            order = dn["leaves"]
        else:
            order = list(range(len(labels)))
        ax_d.axis("off")
        Mo = M[np.ix_(order, order)]
        im = ax_h.imshow(Mo, cmap="viridis", aspect="auto", interpolation="nearest")
        group_of = {}
        if result.per_animal is not None:
            group_of = dict(zip(result.per_animal["animal"], result.per_animal["group"]))
        ticks = [f"{labels[i]} ({group_of[labels[i]]})" if labels[i] in group_of else str(labels[i]) for i in order]
        fs = 8 if len(labels) <= 30 else 5
        ax_h.set_xticks(range(len(order)))
        ax_h.set_yticks(range(len(order)))
        ax_h.set_xticklabels(ticks, rotation=90, fontsize=fs)
        ax_h.set_yticklabels(ticks, fontsize=fs)
        fig.colorbar(im, cax=ax_c, label="MMD²")
        fig.suptitle(f"pairwise MMD² between animals at h = {result.primary_bandwidth:.3g} (dendrogram order)",
                     fontsize=9)
        paths["heatmap_figure"] = save_figure_atomic(fig, out / "pairwise_heatmap.png", dpi=150, bbox_inches="tight")

    if result.per_animal is not None and len(result.per_animal):
        per = result.per_animal
        fig, ax = plt.subplots(figsize=(5.0, 3.8))
        for x0, grp, colour in ((0, a, "tab:blue"), (1, b, "tab:orange")):
            rows = per[per["group"] == grp]
            for _, r in rows.iterrows():
                ax.plot([x0 - 0.15, x0 + 0.15], [r["mmd2_own_group"], r["mmd2_other_group"]], "-o", color=colour,
                        alpha=0.7, ms=4)
        ax.set_xticks([0, 1])
        ax.set_xticklabels([f"{a} animals", f"{b} animals"])
        ax.set_ylabel("mean MMD² to animals of: own group (left) | other group (right)", fontsize=8)
        ax.set_title(f"per-animal effect size at h = {result.primary_bandwidth:.3g} (unit {result.unit}, "
                     f"p = {result.p_value:.3g})", fontsize=9)
        fig.tight_layout()
        paths["effect_figure"] = save_figure_atomic(fig, out / "effect_size.png", dpi=150)
    return paths
