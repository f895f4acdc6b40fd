"""Figures: power against planted effect size (one panel per kind), and power against animals per group."""
from __future__ import annotations

from pathlib import Path

#: kind -> x-axis label of its panel
AXIS = {"pitch": "pitch shift (kHz)", "duration": "duration change (%)",
        "usage": "use of one latent cluster (% points)"}


def _errorbar(ax, points, scale: float = 1.0):
    xs = [p.size * scale for p in points]
    ax.errorbar(xs, [p.power for p in points], yerr=[1.96 * p.se for p in points], marker="o", ms=4, lw=1.2,
                capsize=2, color="#0072B2")


def sensitivity_figure(sens, path) -> Path:
    """One panel per latent kind: power (± 1.96 Monte Carlo s.e.) at each planted size, the target and the MDE."""
    from matplotlib.figure import Figure

    from .._io import save_figure_atomic

    kinds = list(sens.latent)
    fig = Figure(figsize=(3.6 * len(kinds), 3.2))
    for i, m in enumerate(kinds):
        ax = fig.add_subplot(1, len(kinds), i + 1)
        _errorbar(ax, m.points)
        ax.axhline(m.target, color="0.5", lw=0.8, ls="--")
        ax.axhline(sens.alpha, color="0.7", lw=0.8, ls=":")
        if m.value is not None:
            ax.axvline(m.value, color="crimson", lw=1)
            ax.set_title(f"MDE {m.value:.3g} {m.unit}", fontsize=9)
        else:
            ax.set_title(f"not reached ({m.largest_tried.power:.0%} at {m.largest_tried.size:.3g})", fontsize=9)
        ax.set_xlabel(AXIS.get(m.kind, m.kind), fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        if i == 0:
            ax.set_ylabel(f"power at α = {sens.alpha:g}")
    fig.suptitle(f"What this design detects ({', '.join(f'{n} {g}' for g, n in sens.n_animals.items())} animals; "
                 "planted effects, pseudo-groups of the same animals)", fontsize=9)
    fig.tight_layout()
    return save_figure_atomic(fig, path, close=False, dpi=150)


def curve_figure(curve, path) -> Path:
    """Power (± 1.96 Monte Carlo s.e.) against animals per group, with the target."""
    from matplotlib.figure import Figure

    from .._io import save_figure_atomic

    fig = Figure(figsize=(5.0, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    _errorbar(ax, curve.points)
    ax.axhline(curve.target, color="0.5", lw=0.8, ls="--")
    need = curve.animals_needed
    if need is not None:
        ax.axvline(need, color="crimson", lw=1)
    ax.set_xlabel("animals per group")
    ax.set_ylabel(f"power at α = {curve.alpha:g}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{curve.kind} {curve.effect:.3g} {curve.unit}: " + (f"{need} animals per group reach {curve.target:.0%}"
                 if need is not None else f"{curve.target:.0%} not reached"), fontsize=9)
    fig.tight_layout()
    return save_figure_atomic(fig, path, close=False, dpi=150)
