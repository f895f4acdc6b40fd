"""Figure of the classical measures: per-animal points over per-group distributions, one panel per measure."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..groups import group_label
from ..measure_catalog import MEASURES
from ._figures import DOUBLE_COLUMN_IN, _style, category_colors, save_figure


def _p_text(row) -> str:
    if row is None:
        return ""
    p, ph = row.get("p_value"), row.get("p_holm")
    if p is None or not np.isfinite(p):
        return "not tested"
    return f"p = {p:.3g}, Holm {ph:.3g}"


def measures_figure(per_animal, tests, path, *, group_col: str = "group", dpi: int = 200) -> Path:
    """Write ``path`` (PNG): for every measure, a box of the per-animal values of each group with the
    animals as jittered points; the panel title names the measure and its unit, the subtitle the
    animal-level permutation p and Holm's adjusted p. Returns the path."""
    groups = sorted(per_animal[group_col].astype(str).unique())
    colors = category_colors(groups)
    by_measure = {} if tests is None else {r["measure"]: r for r in tests.to_dict(orient="records")}
    n = len(MEASURES)
    ncol = 3
    nrow = -(-n // ncol)
    with _style() as plt:
        fig, axes = plt.subplots(nrow, ncol, figsize=(DOUBLE_COLUMN_IN, 1.9 * nrow), layout="constrained", squeeze=False)
        rng = np.random.default_rng(0)
        for ax, (name, label, _, _) in zip(axes.ravel(), MEASURES):
            data = [per_animal.loc[per_animal[group_col].astype(str) == g, name].to_numpy(dtype=float) for g in groups]
            data = [d[np.isfinite(d)] for d in data]
            if any(d.size for d in data):
                bp = ax.boxplot([d if d.size else [np.nan] for d in data], widths=0.55, showfliers=False,
                                patch_artist=True, medianprops={"color": "0.2", "lw": 1.0})
                for patch, g in zip(bp["boxes"], groups):
                    patch.set_facecolor(colors[g])
                    patch.set_alpha(0.25)
                    patch.set_edgecolor(colors[g])
                for i, (d, g) in enumerate(zip(data, groups), start=1):
                    ax.scatter(i + rng.uniform(-0.15, 0.15, d.size), d, s=12, color=colors[g], edgecolor="white",
                               linewidths=0.4, zorder=3)
            else:
                ax.text(0.5, 0.5, "not available", transform=ax.transAxes, ha="center", va="center", color="0.4")
            ax.set_xticks(range(1, len(groups) + 1), [group_label(g) for g in groups])
            ax.set_title(f"{label}\n{_p_text(by_measure.get(name))}", fontsize=7)
            ax.tick_params(axis="x", length=0)
        for ax in axes.ravel()[n:]:
            ax.set_visible(False)
        fig.suptitle("Classical measures per animal (points) and per group (boxes: quartiles, whiskers 1.5 IQR)",
                     fontsize=8)
    path = Path(path)
    save_figure(fig, path.with_suffix(""), ["png"], dpi=dpi, description="usvpipe classical measures")
    return path
