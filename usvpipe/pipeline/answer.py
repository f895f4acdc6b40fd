"""The report's answer in words: the sentence, an effect size with an interval, and the warnings.

Pure functions of the MMD stage's result dict (``report.json``), its per-animal tables and
the classical measures, so the report reads the same whether the test ran now or in an
earlier run. Fields the lead's training-health work adds (``latent_health``,
``interpretable``, ``do_not_interpret``, ``second_opinion``) are read with ``.get`` and render
nothing when absent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Optional

import numpy as np

#: a group with more than this ratio of animals (or syllables) to the other is "unbalanced"
UNBALANCED_RATIO = 1.5
#: animals with fewer syllables than this barely inform their animal's distribution
FEW_SYLLABLES = 10
#: a design whose smallest attainable p exceeds this is "small": even a large difference
#: cannot give strong evidence (p = 0.01 is the demo's planted-difference target)
SMALL_DESIGN_P = 0.01
#: bootstrap draws of the effect-size interval (percentiles of 2000 draws move < 2 % of the width)
BOOTSTRAP_DRAWS = 2000


@dataclass
class Effect:
    """Effect size of the latent-space comparison: MMD² between the groups' mean animal embeddings."""

    value: float
    ci95: tuple
    method: str  # a sentence with {value}, {lo}, {hi} placeholders


@dataclass
class Answer:
    sentence: str
    decision: str  # "differ", "no evidence", "not interpretable", "not tested"
    effect: Optional[Effect] = None
    warnings: list = field(default_factory=list)  # (severity, text): severity "stop" | "warn" | "note"


def _fmt_int(n) -> str:
    try:
        return f"{int(n):,}"
    except (TypeError, ValueError):
        return "?"


def _fmt(x, digits: int = 3) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "?"
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"


def group_effect(pairwise, per_animal, a: str, b: str, *, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> Optional[Effect]:
    """MMD² between the two groups' mean animal embeddings, with a 95 % bootstrap interval over animals.

    With D the animal × animal MMD² matrix (each entry estimates ‖μᵢ − μⱼ‖² between two animals'
    kernel mean embeddings), the squared distance between the groups' averages of animal
    embeddings is ``mean_{i∈A, j∈B} D − ½ mean_{i,i'∈A} D − ½ mean_{j,j'∈B} D`` (within-group means
    over kA² and kB² pairs, the diagonal being 0). Resampling animals with replacement within
    each group and recomputing gives the percentile interval; it describes the spread over
    animals, not a test (the permutation p-value is the test). The value is close to, not
    identical with, the test's animal-weighted MMD² (0.006 % apart on the demo, 0.03 % in
    the test suite: the two estimators weight the within-animal terms differently).
    """
    if pairwise is None or per_animal is None or len(per_animal) == 0:
        return None
    labels = [str(x) for x in pairwise.index]
    D = pairwise.to_numpy(dtype=float)
    pos = {lab: i for i, lab in enumerate(labels)}
    groups = dict(zip(per_animal["animal"].astype(str), per_animal["group"].astype(str)))
    ia = np.array([pos[x] for x, g in groups.items() if g == a and x in pos], dtype=int)
    ib = np.array([pos[x] for x, g in groups.items() if g == b and x in pos], dtype=int)
    if ia.size < 2 or ib.size < 2 or not np.isfinite(D[np.ix_(np.r_[ia, ib], np.r_[ia, ib])]).all():
        return None

    def stat(sa, sb):
        return float(D[np.ix_(sa, sb)].mean() - 0.5 * D[np.ix_(sa, sa)].mean() - 0.5 * D[np.ix_(sb, sb)].mean())

    value = stat(ia, ib)
    rng = np.random.default_rng(seed)
    boots = np.array([stat(rng.choice(ia, ia.size), rng.choice(ib, ib.size)) for _ in range(draws)])
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return Effect(value, (float(lo), float(hi)),
                  "MMD² between the groups' mean animal embeddings = {value}, 95 % interval {lo} to {hi} "
                  f"(percentile bootstrap resampling animals within groups, {draws} draws)")


def _design_text(mmd: Mapping) -> str:
    unit = mmd.get("unit", "")
    n_perm = mmd.get("n_permutations")
    if unit == "animal":
        if mmd.get("exact"):
            return f"animal-level permutation over all {_fmt_int(mmd.get('n_splits') or n_perm)} splits"
        return (f"animal-level permutation, {_fmt_int(n_perm)} random splits of {_fmt_int(mmd.get('n_splits'))}")
    return f"syllable-level permutation ({_fmt_int(n_perm)} permutations; syllables treated as independent)"


def aggregated(mmd) -> bool:
    """Whether the test (an MMDResult or its ``report.json``) aggregated several bandwidths (MMDAgg): its
    p-value is then not the MMD²'s alone."""
    return len(_mmd_field(mmd, "bandwidths") or []) > 1


def primary_bandwidth_name(mmd) -> str:
    """Which of an aggregated test's bandwidths the reported MMD² is at (an MMDResult or its ``report.json``):
    the median one unless ``agg_exponents`` left out 2**0 (then the middle one, as
    :func:`usvpipe.mmd.two_sample._primary_index`)."""
    exponents = (_mmd_field(mmd, "params") or {}).get("agg_exponents")
    return "median" if exponents is None or 0 in exponents else "middle"


def _statistic_text(mmd: Mapping) -> str:
    """"MMD² = …, p = …", saying for an aggregated test which bandwidth the MMD² is at and what the p-value is."""
    stat, p = _fmt(mmd.get("statistic"), 4), _fmt(mmd.get("p_value"))
    if not aggregated(mmd):
        return f"MMD² = {stat}, p = {p}"
    return (f"MMD² = {stat} at the {primary_bandwidth_name(mmd)} bandwidth, p = {p} aggregated over "
            f"{len(mmd['bandwidths'])} bandwidths (MMDAgg)")


def _groups_text(mmd: Mapping) -> tuple[str, str, str, str]:
    a, b = (list(mmd.get("groups") or []) + [None, None])[:2]
    na, ns = mmd.get("n_animals") or {}, mmd.get("n_syllables") or {}

    def one(g):
        return f"{g} ({_fmt_int(na.get(g))} animals, {_fmt_int(ns.get(g))} syllables)"

    return str(a), str(b), one(a), one(b)


def answer(mmd: Optional[Mapping], *, effect: Optional[Effect] = None, measures: Optional[Mapping] = None,
           per_animal=None, failed_stages=(), segment_failures=()) -> Answer:
    """The sentence and warnings of the report's answer box (see the module docstring)."""
    warnings: list = []
    for name, why in failed_stages:
        warnings.append(("stop", f"stage {name} failed: {why}"))
    if segment_failures:
        warnings.append(("warn", f"{len(segment_failures)} recording(s) failed to segment and are not analysed "
                                 "(listed under 'Recordings that failed')"))
    if mmd is None:
        sentence = "No group comparison of the latent space was run"
        sentence += " (the mmd stage failed; see the warnings)." if any(n == "mmd" for n, _ in failed_stages) else \
            " (add the mmd stage and two groups to the config to get one)."
        _measure_warnings(measures, warnings)
        return Answer(sentence, "not tested", None, warnings)
    a, b, ta, tb = _groups_text(mmd)
    alpha = mmd.get("alpha", 0.05)
    stats = f"{_statistic_text(mmd)}, {_design_text(mmd)}, α = {_fmt(alpha)}"
    interpretable = mmd.get("interpretable", True) is not False
    health = mmd.get("latent_health") or {}
    if not interpretable or health.get("passed") is False:
        msg = mmd.get("do_not_interpret") or ("latents not informative — do not interpret"
                                              + (f" (fix: {health.get('fix')})" if health.get("fix") else ""))
        warnings.append(("stop", msg))
        sentence = (f"No answer from the latent space: {msg}. For the record, {ta} vs {tb}: {stats}; "
                    "this p-value does not say whether the groups vocalise differently.")
        decision = "not interpretable"
    elif mmd.get("reject"):
        sentence = f"{ta} and {tb} differ: {stats}."
        decision = "differ"
    else:
        sentence = f"No evidence that {ta} and {tb} differ: {stats}"
        kk = mmd.get("n_animals") or {}
        if mmd.get("unit") == "animal" and mmd.get("min_attainable_p") is not None:
            sentence += (f"; with {_fmt_int(kk.get(a))} vs {_fmt_int(kk.get(b))} animals the smallest attainable p "
                         f"is {_fmt(mmd.get('min_attainable_p'))}")
        sentence += ". (No evidence of a difference is not evidence of no difference.)"
        decision = "no evidence"
    _design_warnings(mmd, a, b, warnings, per_animal)
    if interpretable and health.get("passed") is not False:
        from ..vae.readout import readout_warning

        weak = readout_warning(mmd.get("latent_readout"))
        if weak:
            warnings.append(("warn", weak))
    _measure_warnings(measures, warnings)
    for note in mmd.get("notes") or []:
        warnings.append(("note", str(note)))
    return Answer(sentence, decision, effect, warnings)


def _design_warnings(mmd: Mapping, a: str, b: str, warnings: list, per_animal) -> None:
    na, ns = mmd.get("n_animals") or {}, mmd.get("n_syllables") or {}
    alpha = mmd.get("alpha", 0.05)
    if mmd.get("unit") == "syllable":
        warnings.append(("warn", "the primary test treats syllables as independent (unit = syllable): when animals "
                                 "differ individually its p-value is too small; use the animal unit when animals are known"))
    try:
        ka, kb = int(na.get(a)), int(na.get(b))
        if max(ka, kb) > UNBALANCED_RATIO * min(ka, kb):
            warnings.append(("warn", f"unbalanced groups: {ka} vs {kb} animals"))
    except (TypeError, ValueError):
        pass
    try:
        sa, sb = int(ns.get(a)), int(ns.get(b))
        if max(sa, sb) > 2 * min(sa, sb):
            warnings.append(("warn", f"unbalanced syllable counts: {sa:,} vs {sb:,} syllables (the animal-weighted "
                                     "test counts every animal equally; check that the quieter group was recorded as long)"))
    except (TypeError, ValueError):
        pass
    min_p = mmd.get("min_attainable_p")
    if mmd.get("unit") == "animal" and min_p is not None and float(min_p) > SMALL_DESIGN_P:
        warnings.append(("warn", f"small design: the smallest p this design can produce is {_fmt(min_p)} "
                                 f"(α = {_fmt(alpha)}); add animals for stronger evidence"))
    sv = mmd.get("syllable_view") or {}
    if sv and mmd.get("unit") == "animal" and sv.get("p_value") is not None and p_le(sv.get("p_value"), alpha) \
            and not mmd.get("reject"):
        warnings.append(("note", f"the syllable-level view gives p = {_fmt(sv['p_value'])}, but it treats syllables as "
                                 "independent; the animal-level answer above is the one to report"))
    if per_animal is not None and "n_syllables" in getattr(per_animal, "columns", []):
        few = per_animal.loc[per_animal["n_syllables"] < FEW_SYLLABLES, "animal"].astype(str).tolist()
        if few:
            warnings.append(("warn", f"{len(few)} animal(s) with fewer than {FEW_SYLLABLES} syllables "
                                     f"({', '.join(few[:6])}{'…' if len(few) > 6 else ''}): their distributions are poorly known"))


def p_le(p, alpha) -> bool:
    try:
        return float(p) <= float(alpha)
    except (TypeError, ValueError):
        return False


def _measure_warnings(measures: Optional[Mapping], warnings: list) -> None:
    for note in (measures or {}).get("notes") or []:
        warnings.append(("note", f"classical measures: {note}"))


def second_opinion_rows(mmd: Optional[Mapping]) -> list[dict]:
    """Rows of 'does the difference hold across representations' (empty without ``second_opinion``)."""
    rows = []
    for r in (mmd or {}).get("second_opinion") or []:
        if not isinstance(r, Mapping):
            continue
        if r.get("skipped") or r.get("p_value") is None:  # not tested: neither agrees nor disagrees
            rows.append({"representation": str(r.get("representation", "?")), "statistic": "", "p": "", "unit": "",
                         "decision": "not tested" + (f" ({r['skipped']})" if r.get("skipped") else ""),
                         "features": "", "tested": False})
            continue
        rows.append({"representation": str(r.get("representation", "?")), "statistic": _fmt(r.get("statistic"), 4),
                     "p": _fmt(r.get("p_value")), "unit": str(r.get("unit", "")),
                     "decision": "differ" if r.get("reject") else "no evidence",
                     "features": _fmt_int(r.get("n_features")), "tested": True})
    return rows


def readout_rows(mmd: Optional[Mapping]) -> list[dict]:
    """The latents' acoustic read-out beside PCA's, formatted for the report's table."""
    from ..vae.readout import readouts_from

    return [{"measure": r.measure, "latents": f"{r.latent_ridge_r2:.2f} / {r.latent_knn_r2:.2f}",
             "pca": f"{r.pca_ridge_r2:.2f} / {r.pca_knn_r2:.2f}",
             "verdict": "latents carry less" if r.weaker_than_pca else "", "syllables": _fmt_int(r.n_syllables)}
            for r in readouts_from((mmd or {}).get("latent_readout"))]


#: an R² gap from which the VAE is "worse than" PCA rather than "no better than" it (R² is read to two decimals)
CLEARLY_WORSE = 0.02


def pca_comparison(health: Optional[Mapping]) -> str:
    """"worse than" / "no better than" when the VAE's reconstruction R² is below PCA's of the same dimension, else ""."""
    try:
        gap = float(health["pca_r2"]) - float(health["recon_r2"])
    except (KeyError, TypeError, ValueError):
        return ""
    return "" if not gap > 0 else "worse than" if gap >= CLEARLY_WORSE else "no better than"


def health_line(mmd: Optional[Mapping]) -> str:
    """One line on the VAE's training health (empty without ``latent_health``)."""
    h = (mmd or {}).get("latent_health")
    if not h:
        return ""
    verdict = "passed" if h.get("passed") else "FAILED"
    parts = [f"VAE health check {verdict}"]
    if h.get("active_units") is not None:
        parts.append(f"{h.get('active_units')} of {h.get('latent_dim', '?')} latent units active")
    if h.get("recon_r2") is not None:
        how = pca_comparison(h)
        parts.append(f"{'held-out ' if h.get('held_out') else ''}reconstruction R² {_fmt(h.get('recon_r2'))} "
                     f"(PCA of the same dimension: {_fmt(h.get('pca_r2'))}"
                     + (f"; the VAE reconstructs {how} PCA)" if how else ")"))
    if h.get("n_syllables") is not None:
        parts.append(f"{_fmt_int(h.get('n_syllables'))} syllables")
    line = "; ".join(parts)
    if not h.get("passed"):
        line += f". {h.get('reason', '')}" + (f" Fix: {h['fix']}" if h.get("fix") else "")
    return line


def _mmd_field(res, name, default=None):
    if isinstance(res, Mapping):
        return res.get(name, default)
    return getattr(res, name, default)


def describe_mmd(res) -> str:
    """One line for a log or ``usvpipe info``: the statistic, the p-value and the unit of an MMD result
    (an :class:`~usvpipe.mmd.MMDResult` or its ``report.json``); ``""`` when it has no numbers."""
    stat = _mmd_field(res, "statistic")
    pval = _mmd_field(res, "p_value")
    unit = _mmd_field(res, "unit", "")
    how = f"; p aggregated over {len(_mmd_field(res, 'bandwidths'))} bandwidths" if aggregated(res) else ""
    try:
        return f"MMD²={float(stat):.4g}, p={float(pval):.4g} (unit: {unit}{how})"
    except (TypeError, ValueError):
        return ""
