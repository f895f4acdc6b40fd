"""Classical acoustic measures per animal and per group, each tested between two groups.

What DeepSqueak, MUPET and VocalMat users read first: how many calls, how often, how long,
at which frequencies, how loud. They come from the syllable store's score columns
(``syllables.csv``: ``duration_s``, ``mean_freq_hz``, ``min_freq_hz``, ``max_freq_hz``,
``mean_amplitude``, ``peak_amplitude``) and the recordings' durations (WAV headers).

Statistical stance (as for the latent-space test, ``usvpipe.mmd``): the *animal* is the
unit. Each measure is first summarised per animal (the mean over its syllables; the
count and rate over all its recordings), then the groups' per-animal means are compared
with a permutation test that moves whole animals between the groups (every split
enumerated when there are at most ``max_exact_splits``; the split machinery is
``usvpipe.mmd.pvalues``). The statistic is the absolute difference of the group means of
per-animal values, so a label swap of a balanced design gives the same value and the
smallest attainable p is 2 / C(k, kA). The measures are correlated, so the family-wise
error is controlled with Holm's step-down correction (valid under any dependence).

Effect sizes: the difference of group means (B − A, in the measure's unit) with a 95 %
percentile bootstrap interval that resamples animals within each group, and Hedges' g
(the difference over the pooled per-animal standard deviation, small-sample corrected).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from . import _io
from ._csv import read_csv
from .artifacts import TEXT_COLUMNS
from .errors import InputFileError
# the measure table and the group names live in leaf modules that the figure (viz/measures.py) shares;
# re-exported here, where they were first published
from .groups import NO_GROUP_LABEL, group_label  # noqa: F401
from .measure_catalog import LABELS, MEASURES  # noqa: F401

#: bootstrap draws for the effect-size intervals: the 2.5/97.5 % quantiles of 2000 draws
#: move by < 2 % of the interval's width between seeds
BOOTSTRAP_DRAWS = 2000


def recording_durations(recordings, root) -> dict[str, float]:
    """Duration in seconds of each recording (store identifier relative to ``root``), from the WAV header.

    Recordings whose file is missing or unreadable are left out (their animal's rate is then NaN).
    """
    import soundfile as sf

    from .audio import soundfile_source

    out = {}
    for rec in recordings:
        path = Path(root) / str(rec)
        try:
            info = sf.info(soundfile_source(path))
        except (RuntimeError, OSError, TypeError):
            continue
        if info.samplerate > 0:
            out[str(rec)] = info.frames / info.samplerate
    return out


def per_animal_measures(syllables, durations_s: Optional[Mapping[str, float]] = None, *,
                        recordings: Optional[Mapping[str, Mapping]] = None, animal_col: str = "animal",
                        group_col: str = "group"):
    """One row per (group, animal): the measures of :data:`MEASURES`, ``n_recordings`` and ``recorded_min``.

    Parameters
    ----------
    syllables : pandas.DataFrame
        ``syllables.csv`` of a store (needs ``recording``, the animal and group columns
        and the score columns).
    durations_s : mapping recording -> seconds, optional
        Recording durations; without them ``calls_per_min`` is NaN.
    recordings : mapping recording -> {"animal", "group"}, optional
        Every recording of the store (its manifest's ``recordings``), so that an animal
        recorded but silent counts with 0 calls instead of disappearing.
    """
    import pandas as pd

    missing = [c for c in ("recording", animal_col, group_col) if c not in syllables.columns]
    if missing:
        raise ValueError(f"syllables table lacks column(s) {', '.join(missing)}")
    syl = syllables.copy()
    for c in (animal_col, group_col):  # a missing animal or group is "", as in the store's manifest
        syl[c] = syl[c].astype(object).where(syl[c].notna(), "").astype(str)
    for name, _, src, scale in MEASURES:
        if src is not None:
            syl[name] = pd.to_numeric(syl[src], errors="coerce") * scale if src in syl.columns else np.nan
    if {"max_freq_hz", "min_freq_hz"} <= set(syl.columns):
        syl["bandwidth_khz"] = (syl["max_freq_hz"] - syl["min_freq_hz"]) * 1e-3
    else:
        syl["bandwidth_khz"] = np.nan
    recs = {str(r): (str(m.get("animal", "")), str(m.get("group", ""))) for r, m in (recordings or {}).items()}
    for r, a, g in syl[["recording", animal_col, group_col]].drop_duplicates().itertuples(index=False):
        recs.setdefault(str(r), (a, g))
    keys = sorted({v for v in recs.values()})
    rows = []
    per_syllable = [m[0] for m in MEASURES if m[0] not in ("calls", "calls_per_min")]
    for animal, group in keys:
        sel = syl[(syl[animal_col] == animal) & (syl[group_col] == group)]
        its_recs = [r for r, v in recs.items() if v == (animal, group)]
        dur = [durations_s.get(r) for r in its_recs] if durations_s is not None else [None]
        minutes = sum(dur) / 60.0 if dur and all(d is not None for d in dur) else float("nan")
        row = {group_col: group, animal_col: animal, "n_recordings": len(its_recs), "recorded_min": minutes,
               "calls": int(len(sel)), "calls_per_min": len(sel) / minutes if minutes > 0 else float("nan")}
        for name in per_syllable:
            v = sel[name].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            row[name] = float(v.mean()) if v.size else float("nan")
        rows.append(row)
    cols = [group_col, animal_col, "n_recordings", "recorded_min"] + [m[0] for m in MEASURES]
    return pd.DataFrame(rows, columns=cols)


def per_group_summary(per_animal, *, group_col: str = "group"):
    """Per group and measure: animals, mean, sd, median, min, max of the per-animal values."""
    import pandas as pd

    rows = []
    for g, sub in per_animal.groupby(group_col, sort=True):
        for name, label, _, _ in MEASURES:
            v = sub[name].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            rows.append({group_col: g, "measure": name, "label": label, "n_animals": int(v.size),
                         "mean": float(v.mean()) if v.size else np.nan,
                         "sd": float(v.std(ddof=1)) if v.size > 1 else np.nan,
                         "median": float(np.median(v)) if v.size else np.nan,
                         "min": float(v.min()) if v.size else np.nan, "max": float(v.max()) if v.size else np.nan})
    return pd.DataFrame(rows)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control under any dependence); NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adj
    return out


def hedges_g(x, y) -> float:
    """(mean(y) − mean(x)) / pooled sd, times the small-sample correction 1 − 3 / (4 (n−2) − 1)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    nx, ny = x.size, y.size
    if nx < 2 or ny < 2:
        return float("nan")
    sp = math.sqrt(((nx - 1) * x.var(ddof=1) + (ny - 1) * y.var(ddof=1)) / (nx + ny - 2))
    if sp == 0:
        return float("nan")
    return float((y.mean() - x.mean()) / sp * (1 - 3 / (4 * (nx + ny) - 9)))


def bootstrap_difference_ci(x, y, *, draws: int = BOOTSTRAP_DRAWS, seed: int = 0, level: float = 0.95) -> tuple:
    """Percentile bootstrap interval of mean(y) − mean(x), resampling animals within each group."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 2 or y.size < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    bx = x[rng.integers(0, x.size, (draws, x.size))].mean(axis=1)
    by = y[rng.integers(0, y.size, (draws, y.size))].mean(axis=1)
    lo, hi = np.quantile(by - bx, [(1 - level) / 2, (1 + level) / 2])
    return (float(lo), float(hi))


def animal_permutation_p(x, y, *, max_exact_splits: int = 20000, permutations: int = 9999, seed: int = 0) -> dict:
    """Permutation p-value of |mean(x) − mean(y)| with animals as the unit (exact when the splits are few).

    Returns ``{"p_value", "exact", "n_splits", "n_permutations", "min_attainable_p"}``.
    """
    from .mmd.params import MMDParams
    from .mmd.pvalues import _splits

    x, y = np.asarray(x, float), np.asarray(y, float)
    k, kA = x.size + y.size, x.size
    nan = {"p_value": float("nan"), "exact": False, "n_splits": math.comb(k, kA) if k else 0,
           "n_permutations": 0, "min_attainable_p": float("nan")}
    if x.size < 1 or y.size < 1:
        return nan
    v = np.r_[x, y]
    obs = np.r_[np.ones(kA), np.zeros(y.size)]
    params = MMDParams(max_exact_splits=max_exact_splits, permutations=permutations, seed=seed)
    mat, exact, obs_idx, n_splits = _splits(k, kA, params, obs, np.random.default_rng(seed))
    stats = np.abs(mat @ v / kA - (1 - mat) @ v / y.size)
    t_obs = stats[obs_idx]
    tol = 1e-10 * max(float(np.max(np.abs(stats))), 1e-300)
    if exact:
        p = float(np.sum(stats >= t_obs - tol)) / stats.size
        symmetric = kA == y.size
        min_p = (2 if symmetric else 1) / n_splits
        n_perm = stats.size
    else:
        null = np.delete(stats, obs_idx)
        p = (1.0 + float(np.sum(null >= t_obs - tol))) / (null.size + 1)
        min_p = 1.0 / (null.size + 1)
        n_perm = null.size
    return {"p_value": p, "exact": bool(exact), "n_splits": int(n_splits), "n_permutations": int(n_perm),
            "min_attainable_p": float(min_p)}


def compare_measures(per_animal, a: str, b: str, *, group_col: str = "group", alpha: float = 0.05,
                     max_exact_splits: int = 20000, permutations: int = 9999, seed: int = 0):
    """One row per measure: group means, difference (b − a) with its bootstrap interval, Hedges' g,
    the animal-level permutation p, Holm's adjusted p and the decision at ``alpha``."""
    import pandas as pd

    rows = []
    for name, label, _, _ in MEASURES:
        x = per_animal.loc[per_animal[group_col].astype(str) == a, name].to_numpy(dtype=float)
        y = per_animal.loc[per_animal[group_col].astype(str) == b, name].to_numpy(dtype=float)
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        test = animal_permutation_p(x, y, max_exact_splits=max_exact_splits, permutations=permutations, seed=seed)
        lo, hi = bootstrap_difference_ci(x, y, seed=seed)
        rows.append({"measure": name, "label": label, f"n_animals_{a}": x.size, f"n_animals_{b}": y.size,
                     f"mean_{a}": float(x.mean()) if x.size else np.nan, f"mean_{b}": float(y.mean()) if y.size else np.nan,
                     "difference": float(y.mean() - x.mean()) if x.size and y.size else np.nan,
                     "ci95_low": lo, "ci95_high": hi, "hedges_g": hedges_g(x, y), **test})
    out = pd.DataFrame(rows)
    out["p_holm"] = holm(out["p_value"])
    out["reject"] = out["p_holm"] <= alpha
    return out


@dataclass
class MeasuresResult:
    """What :func:`measures_stage` wrote and found."""

    per_animal: object
    per_group: object
    tests: object
    groups: tuple
    alpha: float
    notes: list = field(default_factory=list)
    paths: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        tests = None if self.tests is None else self.tests.replace({np.nan: None}).to_dict(orient="records")
        return {"groups": list(self.groups), "alpha": self.alpha, "notes": list(self.notes), "tests": tests,
                "correction": "holm", "unit": "animal",
                "files": {k: Path(v).name for k, v in self.paths.items()}}


def measures_stage(store_dir, out_dir, *, input_root=None, group_col: str = "group", animal_col: str = "animal",
                   a: Optional[str] = None, b: Optional[str] = None, alpha: float = 0.05, seed: int = 0,
                   figure: bool = True) -> MeasuresResult:
    """Read a store, write ``measures_per_animal.csv``, ``measures_per_group.csv``, ``measures_tests.csv``,
    ``measures.json`` and ``measures.png`` into ``out_dir``.

    ``input_root`` is the folder the store's recording identifiers are relative to (the
    ``[run].input`` folder); without it, or when a WAV is gone, rates are NaN and a note says so.
    With fewer or more than two groups (and no ``a``/``b``), no test is made.
    """
    import pandas as pd

    store_dir = Path(store_dir)
    table = store_dir / "syllables.csv"
    try:
        # identifiers as text, so animal "1" is not the float 1.0 when some rows lack it
        # and "NA"/"None" as names, not gaps (the one reader, usvpipe._csv)
        syl = read_csv(table, text_columns=(*TEXT_COLUMNS, animal_col, group_col))
    except FileNotFoundError:
        raise InputFileError(table, "no syllables table", "run `usvpipe segment` into this store first") from None
    manifest = {}
    try:
        manifest = _io.read_json(store_dir / "manifest.json")
    except (OSError, ValueError):
        pass
    recordings = manifest.get("recordings", {}) or {}
    notes = []
    durations = None
    if input_root is not None:
        recs = sorted(set(map(str, recordings)) | set(syl.get("recording", pd.Series(dtype=str)).astype(str)))
        durations = recording_durations(recs, input_root)
        lost = [r for r in recs if r not in durations]
        if lost:
            notes.append(f"{len(lost)} recording(s) not readable under {input_root} (e.g. {lost[0]}): "
                         "their animals' calls per minute are not computed")
    else:
        notes.append("recording durations unknown (no input folder): calls per minute not computed")
    per_animal = per_animal_measures(syl, durations, recordings=recordings, animal_col=animal_col, group_col=group_col)
    per_group = per_group_summary(per_animal, group_col=group_col)
    groups = sorted(per_animal[group_col].astype(str).unique())
    tests = None
    if a is None and b is None and len(groups) == 2:
        a, b = groups
    if a is not None and b is not None and {a, b} <= set(groups) and a != b:
        tests = compare_measures(per_animal, a, b, group_col=group_col, alpha=alpha, seed=seed)
        min_p = float(np.nanmin(tests["min_attainable_p"])) if tests["min_attainable_p"].notna().any() else float("nan")
        if np.isfinite(min_p) and min_p * len(tests) > alpha:
            notes.append(f"with {int(tests.iloc[0][f'n_animals_{a}'])} vs {int(tests.iloc[0][f'n_animals_{b}'])} animals "
                         f"the smallest attainable p is {min_p:.3g}; after Holm's correction over {len(tests)} measures "
                         f"no measure can reach α = {alpha}")
    elif len(groups) != 2:
        names = ", ".join(group_label(g) for g in groups[:8])
        notes.append(f"{len(groups)} group(s) in the store ({names}): measures are summarised per group, not tested "
                     "(a test compares two groups: pass --a and --b, or [run].group_a/group_b)")
    out = _io.ensure_output_dir(out_dir)
    res = MeasuresResult(per_animal, per_group, tests, (a, b) if tests is not None else tuple(groups), alpha, notes)
    res.paths["per_animal"] = _io.write_csv_atomic(out / "measures_per_animal.csv", per_animal, index=False)
    res.paths["per_group"] = _io.write_csv_atomic(out / "measures_per_group.csv", per_group, index=False)
    if tests is not None:
        res.paths["tests"] = _io.write_csv_atomic(out / "measures_tests.csv", tests, index=False)
    if figure and len(per_animal):
        from .viz.measures import measures_figure

        res.paths["figure"] = measures_figure(per_animal, tests, out / "measures.png", group_col=group_col)
    res.paths["json"] = out / "measures.json"
    _io.write_json_atomic(out / "measures.json", res.to_dict())
    return res
