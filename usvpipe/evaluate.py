"""Score predicted syllable segments against reference annotations.

Two matching rules, both one-to-one (a prediction matches at most one reference
syllable and vice versa):

**Event level** (the rule of the amvoc benchmark): a prediction and a reference
syllable can be matched when they overlap in time by a positive amount (a zero-length
interval counts when it lies within the other one, ends included). Among all
overlapping pairs, matches are chosen greedily by **largest overlap first**; ties are
broken by the earlier prediction, then the earlier reference (both in the order given),
so the result is deterministic.

**Boundary level**: a pair can be matched when the onset *and* the offset each differ
by at most ``tolerance_s`` (plus 1e-9 s of floating-point slack, so a 10.0 ms difference
in a CSV still counts at 10 ms). Greedy by smallest ``|Δonset| + |Δoffset|`` first, same
tie-break.

Precision = matches / predictions, recall = matches / references, F1 their harmonic
mean. With no predictions precision is 1 if there are no references either (nothing
to find, nothing wrong), else 0; likewise for recall with no references. Pooling over
recordings (:func:`pool_scores`) sums the counts, it does not average the ratios.

Candidate pairs are found with sorting and ``searchsorted`` (O((n + m) log m) plus the
number of candidate pairs), so tables of 10^5 syllables score in well under a second.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from .errors import ConfigError

__all__ = ["SegmentationScores", "evaluate_segments", "match_events", "match_boundaries", "pool_scores",
           "pair_by_name", "annotation_files", "score_table", "wilson_interval", "reviewed_precision"]

_EPS_S = 1e-9


@dataclass(frozen=True)
class SegmentationScores:
    """Event- and boundary-level precision/recall/F1 of one comparison (or pooled).

    ``n_event_matches`` / ``n_boundary_matches`` are the true-positive counts, from which
    the ratios follow; ``tolerance_s`` is the boundary tolerance used.
    """

    event_precision: float
    event_recall: float
    event_f1: float
    boundary_precision: float
    boundary_recall: float
    boundary_f1: float
    n_pred: int
    n_true: int
    tolerance_s: float
    n_event_matches: int = 0
    n_boundary_matches: int = 0

    @classmethod
    def from_counts(cls, n_pred: int, n_true: int, n_event: int, n_boundary: int, tolerance_s: float):
        ep, er, ef = _prf(n_event, n_pred, n_true)
        bp, br, bf = _prf(n_boundary, n_pred, n_true)
        return cls(ep, er, ef, bp, br, bf, int(n_pred), int(n_true), float(tolerance_s), int(n_event), int(n_boundary))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _prf(tp: int, n_pred: int, n_true: int):
    p = tp / n_pred if n_pred else (1.0 if n_true == 0 else 0.0)
    r = tp / n_true if n_true else (1.0 if n_pred == 0 else 0.0)
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return float(p), float(r), float(f)


def _as_intervals(x, what: str) -> np.ndarray:
    """DataFrame with onset_s/offset_s, (n, 2) array or annotation file -> float (n, 2)."""
    if isinstance(x, (str, Path)):
        from .annotations import read_segments

        x = read_segments(x)
    if isinstance(x, pd.DataFrame):
        if not {"onset_s", "offset_s"} <= set(x.columns):
            raise ConfigError(f"{what}: table needs onset_s and offset_s columns, has {', '.join(map(str, x.columns))}")
        if "recording" in x.columns and x["recording"].nunique() > 1:
            # Times from different recordings are not comparable; pooling them would match
            # syllables across files.
            raise ConfigError(f"{what}: table holds {x['recording'].nunique()} recordings; score each recording "
                              "separately (usvpipe.evaluate.score_table or `usvpipe evaluate`)")
        arr = x[["onset_s", "offset_s"]].to_numpy(dtype=float)
    else:
        arr = np.asarray(x, dtype=float)
        if arr.size == 0:
            arr = arr.reshape(0, 2)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ConfigError(f"{what}: expected an (n, 2) array of onset/offset seconds, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{what}: onset/offset contain NaN or inf")
    if np.any(arr[:, 1] < arr[:, 0]):
        i = int(np.argmax(arr[:, 1] < arr[:, 0]))
        raise ConfigError(f"{what}: row {i} has offset {arr[i, 1]} before onset {arr[i, 0]}")
    return arr


def _ranges_to_pairs(lo: np.ndarray, hi: np.ndarray):
    """All (i, j) with lo[i] <= j < hi[i], vectorised."""
    counts = np.maximum(hi - lo, 0)
    total = int(counts.sum())
    pi = np.repeat(np.arange(len(lo)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    pj = np.repeat(lo, counts) + (np.arange(total) - starts)
    return pi, pj


def _greedy(pi: np.ndarray, tj: np.ndarray, key: np.ndarray, n_pred: int, n_true: int):
    """One-to-one greedy selection of pairs in ascending ``key`` (ties: pred, then truth index)."""
    order = np.lexsort((tj, pi, key))
    used_p = np.zeros(n_pred, bool)
    used_t = np.zeros(n_true, bool)
    out_p, out_t = [], []
    for i, j in zip(pi[order].tolist(), tj[order].tolist()):
        if not used_p[i] and not used_t[j]:
            used_p[i] = used_t[j] = True
            out_p.append(i)
            out_t.append(j)
    return np.asarray(out_p, dtype=np.int64), np.asarray(out_t, dtype=np.int64)


def match_events(pred, truth):
    """Event-level one-to-one matching (overlap rule, largest overlap first).

    Returns
    -------
    pred_idx, truth_idx : numpy.ndarray of int
        Row indices (positions) of the matched pairs.
    """
    p = _as_intervals(pred, "pred")
    t = _as_intervals(truth, "truth")
    if len(p) == 0 or len(t) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(t[:, 0], kind="stable")
    t_on, t_off = t[order, 0], t[order, 1]
    # Reference syllables may overlap each other, so offsets are not sorted: the running
    # maximum of offsets is, and bounds the first candidate from below.
    run_max_off = np.maximum.accumulate(t_off)
    lo = np.searchsorted(run_max_off, p[:, 0], side="left")
    hi = np.searchsorted(t_on, p[:, 1], side="right")
    pi, sj = _ranges_to_pairs(lo, hi)
    ov = np.minimum(p[pi, 1], t_off[sj]) - np.maximum(p[pi, 0], t_on[sj])
    point = (p[pi, 1] == p[pi, 0]) | (t_off[sj] == t_on[sj])
    ok = (ov > 0) | ((ov == 0) & point)
    pi, tj, ov = pi[ok], order[sj[ok]], ov[ok]
    return _greedy(pi, tj, -ov, len(p), len(t))


def match_boundaries(pred, truth, tolerance_s: float = 0.010):
    """Boundary-level one-to-one matching: |Δonset| and |Δoffset| both <= ``tolerance_s``.

    Returns
    -------
    pred_idx, truth_idx : numpy.ndarray of int
    """
    if not tolerance_s >= 0:
        raise ConfigError(f"tolerance_s must be >= 0, got {tolerance_s}")
    p = _as_intervals(pred, "pred")
    t = _as_intervals(truth, "truth")
    if len(p) == 0 or len(t) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    tol = tolerance_s + _EPS_S
    order = np.argsort(t[:, 0], kind="stable")
    t_on, t_off = t[order, 0], t[order, 1]
    lo = np.searchsorted(t_on, p[:, 0] - tol, side="left")
    hi = np.searchsorted(t_on, p[:, 0] + tol, side="right")
    pi, sj = _ranges_to_pairs(lo, hi)
    d_on = np.abs(p[pi, 0] - t_on[sj])
    d_off = np.abs(p[pi, 1] - t_off[sj])
    ok = (d_on <= tol) & (d_off <= tol)
    return _greedy(pi[ok], order[sj[ok]], (d_on + d_off)[ok], len(p), len(t))


def evaluate_segments(pred, truth, *, tolerance_s: float = 0.010) -> SegmentationScores:
    """Precision, recall and F1 of predicted segments at event and boundary level.

    Parameters
    ----------
    pred, truth : pandas.DataFrame, (n, 2) array or path
        Onset/offset seconds of one recording (DataFrames need ``onset_s``/``offset_s``;
        a path is read with :func:`usvpipe.annotations.read_segments`).
    tolerance_s : float
        Boundary tolerance (default 10 ms).

    Returns
    -------
    SegmentationScores

    Examples
    --------
    >>> s = evaluate_segments([[0.10, 0.20], [0.50, 0.52]], [[0.105, 0.21], [0.8, 0.9]])
    >>> s.event_f1, s.boundary_f1
    (0.5, 0.5)
    """
    p = _as_intervals(pred, "pred")
    t = _as_intervals(truth, "truth")
    ev, _ = match_events(p, t)
    bd, _ = match_boundaries(p, t, tolerance_s)
    return SegmentationScores.from_counts(len(p), len(t), len(ev), len(bd), tolerance_s)


def pool_scores(scores: Iterable[SegmentationScores]) -> SegmentationScores:
    """Pool several comparisons (e.g. one per recording) by summing their counts."""
    scores = list(scores)
    if not scores:
        return SegmentationScores.from_counts(0, 0, 0, 0, 0.010)
    tols = {s.tolerance_s for s in scores}
    if len(tols) != 1:
        raise ConfigError(f"cannot pool scores computed with different tolerances {sorted(tols)}")
    return SegmentationScores.from_counts(
        sum(s.n_pred for s in scores), sum(s.n_true for s in scores),
        sum(s.n_event_matches for s in scores), sum(s.n_boundary_matches for s in scores), tols.pop(),
    )


# --------------------------------------------------------------------------------------
# Many recordings: pairing prediction files with annotation files, and a score table.
# --------------------------------------------------------------------------------------
_SEPARATORS = "_-. "
#: Files in a folder that are never annotation tables.
_NOT_ANNOTATIONS = {"metadata.csv", "errors.csv", "syllables.csv", "segments.csv", "latents.csv", "manifest.json"}


def _base(name: str) -> str:
    """File name without any extension(s): ``rec_1.truth.csv`` -> ``rec_1``."""
    return Path(name).name.split(".")[0]


def _strip_common(bases: list[str]) -> list[str]:
    """Remove the prefix/suffix that all names share, cut at a separator (``gt_1`` -> ``1``)."""
    if len(bases) < 2:
        return list(bases)
    import os

    pre = os.path.commonprefix(bases)
    cut = max((pre.rfind(c) for c in _SEPARATORS), default=-1)
    pre_len = cut + 1 if cut >= 0 else 0
    rest = [b[pre_len:] for b in bases]
    suf = os.path.commonprefix([r[::-1] for r in rest])[::-1]
    cut = min((i for i, c in enumerate(suf) if c in _SEPARATORS), default=None)
    suf_len = len(suf) - cut if cut is not None else 0
    keys = [r[: len(r) - suf_len] if suf_len else r for r in rest]
    return keys if all(keys) and len(set(keys)) == len(keys) else list(bases)


def pair_by_name(preds: dict, truths: dict) -> tuple[list[tuple[str, object, object]], list[str], list[str]]:
    """Pair two ``{name: item}`` collections by recording name.

    Names are matched exactly (without extensions) first; the rest by the part that
    differs between files of the same collection (``deepsqueak_1`` ~ ``gt_1`` ~ ``rec_1``:
    the shared prefix ``deepsqueak_``/``gt_``/``rec_`` is dropped, cut at a separator).

    Returns
    -------
    pairs : list of (key, pred_item, truth_item)
    unmatched_pred, unmatched_truth : list of str
    """
    pb = {_base(k): k for k in preds}
    tb = {_base(k): k for k in truths}
    for names, where in ((pb, preds), (tb, truths)):
        if len(names) != len(where):
            raise ConfigError("several files share a name (ignoring folders/extensions); pair them with --pairs")
    pairs = [(b, preds[pb[b]], truths[tb[b]]) for b in sorted(set(pb) & set(tb))]
    rest_p = sorted(set(pb) - set(tb))
    rest_t = sorted(set(tb) - set(pb))
    if rest_p and rest_t:
        if len(rest_p) == 1 and len(rest_t) == 1 and not pairs:
            kp, kt = rest_p, rest_t  # one file each: nothing to disambiguate
        else:
            kp, kt = _strip_common(rest_p), _strip_common(rest_t)
        mp, mt = dict(zip(kp, rest_p)), dict(zip(kt, rest_t))
        for k in sorted(set(mp) & set(mt), key=_natural):
            pairs.append((k, preds[pb[mp[k]]], truths[tb[mt[k]]]))
        rest_p = sorted(mp[k] for k in set(mp) - set(mt))
        rest_t = sorted(mt[k] for k in set(mt) - set(mp))
    pairs.sort(key=lambda x: _natural(x[0]))
    return pairs, [pb[b] for b in rest_p], [tb[b] for b in rest_t]


def _natural(s: str):
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def annotation_files(folder, pattern: str | None = None) -> list[Path]:
    """Annotation tables under ``folder`` (recursive): ``pattern`` or ``*.csv``/``*.txt``/``*.tsv``."""
    folder = Path(folder)
    patterns = [pattern] if pattern else ["*.csv", "*.txt", "*.tsv"]
    found = {p for pat in patterns for p in folder.rglob(pat) if p.is_file()}
    return sorted((p for p in found if p.name not in _NOT_ANNOTATIONS and not p.name.startswith(".")),
                  key=lambda p: _natural(str(p)))


def score_table(pairs, *, tolerances_s=(0.005, 0.010)) -> pd.DataFrame:
    """Score many (key, pred, truth) pairs; one row per pair plus a pooled ``TOTAL`` row.

    Parameters
    ----------
    pairs : iterable of (key, pred, truth)
        ``pred``/``truth`` as accepted by :func:`evaluate_segments` (tables or paths).
    tolerances_s : sequence of float
        Boundary tolerances (one set of boundary columns each).

    Returns
    -------
    pandas.DataFrame
        Columns ``key, n_pred, n_true, event_precision, event_recall, event_f1,
        n_event_matches`` and, per tolerance, ``boundary_precision@<ms>ms``,
        ``boundary_recall@..``, ``boundary_f1@..``, ``n_boundary_matches@..``; the last row (``key == "TOTAL"``) pools the counts.
    """
    tolerances_s = [float(t) for t in tolerances_s]
    if not tolerances_s:
        raise ConfigError("give at least one boundary tolerance")
    per_tol = {t: [] for t in tolerances_s}
    keys = []
    for key, pred, truth in pairs:
        p, t = _as_intervals(pred, f"{key} (pred)"), _as_intervals(truth, f"{key} (truth)")
        keys.append(str(key))
        for tol in tolerances_s:
            per_tol[tol].append(evaluate_segments(p, t, tolerance_s=tol))
    keys.append("TOTAL")
    for tol in tolerances_s:
        pooled = pool_scores(per_tol[tol]) if per_tol[tol] else SegmentationScores.from_counts(0, 0, 0, 0, tol)
        per_tol[tol].append(pooled)
    first = per_tol[tolerances_s[0]]
    table = pd.DataFrame({
        "key": keys,
        "n_pred": [s.n_pred for s in first],
        "n_true": [s.n_true for s in first],
        "event_precision": [s.event_precision for s in first],
        "event_recall": [s.event_recall for s in first],
        "event_f1": [s.event_f1 for s in first],
        "n_event_matches": [s.n_event_matches for s in first],
    })
    for tol in tolerances_s:
        ms = f"{tol * 1000:g}ms"
        table[f"boundary_precision@{ms}"] = [s.boundary_precision for s in per_tol[tol]]
        table[f"boundary_recall@{ms}"] = [s.boundary_recall for s in per_tol[tol]]
        table[f"boundary_f1@{ms}"] = [s.boundary_f1 for s in per_tol[tol]]
        table[f"n_boundary_matches@{ms}"] = [s.n_boundary_matches for s in per_tol[tol]]
    return table


# --- reviewed precision: the explorer's review.csv as ground truth for the detections -------

#: Two-sided 95 % normal quantile, for :func:`wilson_interval`.
Z_95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``k / n`` (``(nan, nan)`` when ``n == 0``).

    Chosen over the normal (Wald) interval because reviews are small samples and precision
    sits near 1, where the Wald interval collapses to zero width or leaves [0, 1]; the Wilson
    interval keeps close to its nominal coverage there (Brown, Cai & DasGupta 2001).
    """
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def reviewed_precision(review: pd.DataFrame, *, z: float = Z_95) -> pd.DataFrame:
    """Precision of the detector from reviewed detections, per recording and pooled.

    ``review`` is a table from :func:`usvpipe.annotations.read_review` (several files may be
    concatenated: a detection reviewed twice counts once, with its last verdict; detections
    are the same when their ``id`` is, or, without ids, their recording and times). ``call``
    and ``relabel`` are true detections, ``noise`` false ones. Only the reviewed detections
    count: the precision of the whole output is estimated by it when the reviewed ones are a
    fair sample of it (e.g. points clicked at random, not the odd-looking ones).

    Returns columns ``recording, n_reviewed, n_call, n_relabel, n_noise, precision,
    ci_low, ci_high`` (Wilson interval at ``z``), one row per recording and a last ``TOTAL``.
    """
    r = review.copy()
    key = np.where(r["id"].astype(str) != "", r["id"].astype(str),
                   r["recording"].astype(str) + "@" + r["onset_s"].map("{:.6f}".format) + "-" + r["offset_s"].map("{:.6f}".format))
    r = r.assign(_key=key).drop_duplicates("_key", keep="last")
    rows = []
    groups = [(str(rec), g) for rec, g in r.groupby("recording", sort=True)] + [("TOTAL", r)]
    for name, g in groups:
        counts = {v: int((g["review"] == v).sum()) for v in ("call", "relabel", "noise")}
        n = sum(counts.values())
        k = counts["call"] + counts["relabel"]
        lo, hi = wilson_interval(k, n, z)
        rows.append({"recording": name, "n_reviewed": n, "n_call": counts["call"], "n_relabel": counts["relabel"],
                     "n_noise": counts["noise"], "precision": k / n if n else float("nan"), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)
