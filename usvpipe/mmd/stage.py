"""The pipeline stage: a latents table -> validated design -> the animal-level test -> :class:`MMDResult`."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..artifacts import Latents
from ..errors import InputFileError
from ..groups import group_label
from .backends import _get_ops
from .bandwidth import _resolve_bandwidths, _scales
from .kernel_pass import _checked_kernel_pass
from .latent_health import apply_latent_health, explain_with_health, latent_health_of, latent_readout_of
from .params import MMDParams
from .pvalues import _label_matrix, _mc_error, _minp_aggregate, _pvalue_counts, _splits
from .result import MMDResult
from .statistics import _stats_from_S
from .two_sample import _primary_index, _syllable_test


def _names(groups) -> str:
    """Groups listed for a message; an empty group (rows without one) is named, not left blank."""
    return ", ".join(group_label(g) for g in groups)


def _as_latents(latents, features, text_columns) -> Latents:
    """A :class:`~usvpipe.artifacts.Latents` from a DataFrame or a ``latents.csv``/``.h5`` path (validated)."""
    import pandas as pd

    if isinstance(latents, Latents):
        return latents
    if isinstance(latents, pd.DataFrame):
        return Latents(latents, source="<DataFrame>", features=features)
    # the group/animal columns are text too: groups "1"/"" must not become 1.0/NaN
    return Latents.read(latents, features=features, text_columns=text_columns)


def mmd_test(latents, *, group_col: str = "group", a: Optional[str] = None, b: Optional[str] = None,
             params: MMDParams = MMDParams(), health="auto") -> MMDResult:
    """Kernel MMD test of group ``a`` vs group ``b`` on a latents table.

    Parameters
    ----------
    latents : pandas.DataFrame or path
        Latents table (``latents.csv``): metadata columns plus ``z0..z{d-1}``.
    group_col : str
        Column with the group labels.
    a, b : str, optional
        The two groups to compare; default: the two groups present (sorted).
    params : MMDParams
    health : "auto", dict or None
        The training health of the latents' model: ``"auto"`` reads it from the sidecar
        ``usvpipe encode`` wrote beside a latents file; a failed health marks the result
        ``interpretable=False`` (see :mod:`usvpipe.mmd.latent_health`). Only ``"auto"`` also reads the
        sidecar's acoustic read-out check into ``latent_readout``.

    Returns
    -------
    MMDResult

    Raises
    ------
    InputFileError
        Missing columns, fewer than two groups, unknown ``a``/``b``, NaNs, animals in
        both groups, or too few animals to reach ``params.alpha`` with the animal unit.
    """
    health_dict, complete = latent_health_of(latents) if health == "auto" else (health, True)
    result = _mmd_test(latents, group_col, a, b, params, health_dict, complete)
    if health == "auto":
        result.latent_readout = latent_readout_of(latents)
    return result


def _mmd_test(latents, group_col, a, b, params, health_dict, complete) -> MMDResult:
    design = _validate(latents, group_col, a, b, params)
    Zc = design.Z - design.Z.mean(axis=0)
    with explain_with_health(health_dict):  # identical latents of a collapsed model: say so first
        bandwidths, med = _resolve_bandwidths(Zc, params)
    primary = _primary_index(params, len(bandwidths))
    ops = _get_ops(params.backend, params.device)
    dtype = np.float32 if params.dtype == "float32" else np.float64
    need_syll = design.unit == "syllable" or params.syllable_view
    rng = design.rng
    W = _label_matrix(design.is_a, params.permutations, np.random.default_rng(rng.integers(2**63))) if need_syll else None
    res, dtype = _checked_kernel_pass(Zc, design.clusters, design.k, _scales(bandwidths, params.kernel), params.kernel,
                                      ops, W=W, dtype=dtype, block_size=params.block_size, notes=design.notes)
    syll = None
    if need_syll:  # the syllable unit: the primary test or the secondary view
        syll, syll_stats = _syllable_test(Zc, design.is_a, design.clusters, design.k, bandwidths,
                                          dataclasses.replace(params, weighting="syllable"), ops, None,
                                          pass_result=res, W=W)
    if design.unit == "animal":
        test = _animal_test(design, res, bandwidths, primary, params)
    else:
        test = _Outcome(p=syll.p_value, per_bw=syll.p_values_per_bandwidth, obs_stats=syll.statistics,
                        null=syll_stats[primary, 1:], n_perm=params.permutations, se=syll.p_value_mc_se,
                        ci=syll.p_value_ci95, min_p=1.0 / (params.permutations + 1), exact=False, n_splits=None)
        design.weighting = "syllable"
    _check_finite_outcome(design, test)
    syllable_view = None
    if syll is not None and design.unit == "animal":
        syllable_view = {
            "label": "secondary view: syllables permuted as if independent (anticonservative when animals differ)",
            "statistic": syll.statistics[primary], "p_value": syll.p_value, "n_permutations": syll.n_permutations,
            "p_value_mc_se": syll.p_value_mc_se, "weighting": "syllable",
        }
    pairwise, per_animal = _pairwise(res.S[primary], design.counts, design.cl_label, design.cl_group, design.a,
                                     design.b, params.statistic, design.has_animal)
    result = _result(design, test, params, bandwidths, primary, _bandwidth_rule(params, med), syllable_view,
                     pairwise, per_animal, backend=f"{ops.name}:{ops.device}:{params.dtype}")
    return apply_latent_health(result, health_dict, complete)


@dataclass
class _Design:
    """A validated comparison of groups ``a`` and ``b``: everything the test computes from.

    Rows are the syllables of the two groups (after any per-animal subsampling);
    ``clusters`` numbers the (group, animal) pairs, so clusters are always nested in
    groups (with no animal column, the two groups are the clusters).
    """

    source: str
    group_col: str
    a: str
    b: str
    features: list
    Z: np.ndarray  # (n, d) float64
    is_a: np.ndarray  # (n,) bool
    unit: str
    weighting: str
    has_animal: bool
    clusters: np.ndarray  # (n,) int
    cl_group: np.ndarray  # (k,) group of each cluster
    cl_label: list  # (k,) animal (or group) name of each cluster
    notes: list
    rng: np.random.Generator  # the seeded stream, continued by the permutations

    @property
    def k(self) -> int:
        return len(self.cl_label)

    @property
    def counts(self) -> np.ndarray:
        return np.bincount(self.clusters, minlength=self.k)

    @property
    def n_syllables(self) -> dict:
        return {self.a: int(self.is_a.sum()), self.b: int((~self.is_a).sum())}

    @property
    def n_animals(self) -> dict:
        if not self.has_animal:
            return {self.a: 1, self.b: 1}
        return {self.a: int((self.cl_group == self.a).sum()), self.b: int((self.cl_group == self.b).sum())}


@dataclass
class _Outcome:
    """The primary test's numbers (animal or syllable unit)."""

    p: float
    per_bw: list
    obs_stats: list
    null: np.ndarray
    n_perm: int
    se: float
    ci: tuple
    min_p: float
    exact: bool
    n_splits: Optional[int]


def _validate(latents, group_col: str, a, b, params: MMDParams) -> _Design:
    """Read the latents table and check it into a :class:`_Design` (every input error raised here)."""
    table = _as_latents(latents, params.features, (group_col, params.animal_col))
    frame, source, feats = table.frame, table.source, table.columns
    if group_col not in frame.columns:
        raise InputFileError(source, f"no group column {group_col!r} (columns: {', '.join(map(str, frame.columns[:12]))})",
                             "pass --group-col with the column that holds the groups")
    groups_all = frame[group_col].fillna("").astype(str)  # a missing group is the group "", not NaN
    a, b = _choose_groups(sorted(groups_all.unique()), a, b, source, group_col)
    sub = frame.loc[groups_all.isin([a, b])].reset_index(drop=True)
    g = sub[group_col].fillna("").astype(str).to_numpy()
    Z = sub[feats].to_numpy(dtype=np.float64)  # numeric and finite: checked by Latents
    has_animal = params.animal_col in sub.columns
    if not has_animal and params.unit != "syllable":
        # A typo (--animal-col mouse) or a table without animals must not quietly switch to
        # the syllable unit, which rejects a true null most of the time with nested data.
        raise InputFileError(source, f"no animal column {params.animal_col!r} (columns: "
                             f"{', '.join(map(str, frame.columns[:12]))})",
                             "pass --animal-col with the column naming the animal (or recording), or --unit "
                             "syllable to treat syllables as independent (anticonservative when animals differ)")
    unit = params.unit if params.unit != "auto" else "animal"
    weighting = params.weighting if params.weighting != "auto" else ("animal" if unit == "animal" else "syllable")
    notes = [note] if (note := _not_compared_note(groups_all, a, b, frame.get(params.animal_col))) else []
    if unit == "syllable":
        notes.append("unit: syllable, as asked for: syllables are treated as independent, which overstates "
                     "significance when animals differ individually"
                     + ("" if has_animal else f" (the table has no animal column {params.animal_col!r})"))
    if unit == "syllable" and weighting == "animal":
        # weights tied to animals are not exchangeable when single syllables are permuted
        notes.append("weighting 'animal' needs the animal unit; the syllable unit weights every syllable equally")
        weighting = "syllable"
    rng = np.random.default_rng(params.seed)
    if has_animal:
        animals = sub[params.animal_col].fillna("").astype(str).to_numpy()
        Z, g, clusters, cl_group, cl_label = _animal_clusters(Z, g, animals, a, b, unit, params, rng, notes, source)
    else:
        clusters = (g == b).astype(int)
        cl_group = np.array([a, b])
        cl_label = [a, b]
    design = _Design(source, group_col, a, b, feats, Z, g == a, unit, weighting, has_animal, clusters, cl_group,
                     cl_label, notes, rng)
    _check_design(design, params)
    return design


def _not_compared_note(groups, a: str, b: str, animals) -> str:
    """The groups present but left out of the comparison, near-duplicates of ``a``/``b`` named as such.

    A group ``"A "`` or ``"a"`` beside ``"A"`` (a typo in the metadata) or an empty group took its
    animals out of the test without a word.
    """
    import unicodedata

    def key(name: str) -> str:
        return unicodedata.normalize("NFC", name).strip().casefold()

    left = sorted(set(groups) - {a, b})
    if not left:
        return ""
    parts = []
    for g in left:
        rows = groups == g
        n_animals = animals[rows].astype(str).nunique() if animals is not None else None
        size = f"{int(rows.sum())} syllables" + (f", {n_animals} animal(s)" if n_animals is not None else "")
        twin = next((t for t in (a, b) if key(t) == key(g)), None)
        why = (f"; differs from {t!r} only in spaces or case" if (t := twin) is not None
               else "; an empty group name" if g == "" else "")
        parts.append(f"{g!r} ({size}{why})")
    return (f"group(s) present but not compared: {', '.join(parts)} (fix: correct the group names in the metadata "
            "and re-segment if they belong to a compared group)")


def _choose_groups(present: list, a, b, source: str, group_col: str) -> tuple[str, str]:
    """The two groups to compare: ``a``/``b`` as given, or completed from the groups present."""
    if len(present) < 2:
        names = ", ".join(repr(g) for g in present) or "none"
        raise InputFileError(source, f"column {group_col!r} has fewer than 2 groups ({names})",
                             "the MMD test compares two groups: give each recording its group with the folder "
                             "layout group/animal/*.wav or a metadata CSV path,animal,group, then re-segment")
    if a is None and b is None:
        if len(present) > 2:
            raise InputFileError(source, f"column {group_col!r} has {len(present)} groups ({_names(present[:8])})",
                                 "choose two with --a and --b")
        a, b = present
    elif a is None or b is None:
        given = a if a is not None else b
        rest = [g for g in present if g != str(given)]
        if len(rest) != 1:
            raise InputFileError(source, "only one of --a/--b given and the other group is ambiguous", "pass both --a and --b")
        a, b = (str(given), rest[0]) if a is not None else (rest[0], str(given))
    a, b = str(a), str(b)
    for g in (a, b):
        if g not in present:
            raise InputFileError(source, f"group {g!r} not found in column {group_col!r} (groups: {_names(present[:12])})",
                                 "pick --a/--b from the listed groups")
    if a == b:
        raise InputFileError(source, f"--a and --b are the same group ({a!r})", "compare two different groups")
    return a, b


def _animal_clusters(Z, g, animals, a, b, unit, params, rng, notes, source):
    """Subsample per animal (``max_per_animal``, seeded) and number the (group, animal) clusters."""
    import pandas as pd

    both = sorted(set(animals[g == a]) & set(animals[g == b]))
    if both and unit == "animal":
        raise InputFileError(source, f"animal(s) {', '.join(both[:5])} appear in both groups {a!r} and {b!r}",
                             "animals must be nested in groups for --unit animal; fix the metadata or use --unit syllable")
    if params.max_per_animal is not None:
        keep = []
        for an in pd.unique(animals):
            idx = np.flatnonzero(animals == an)
            if idx.size > params.max_per_animal:
                idx = np.sort(rng.choice(idx, params.max_per_animal, replace=False))
            keep.append(idx)
        keep = np.sort(np.concatenate(keep))
        if keep.size < len(g):
            notes.append(f"subsampled to at most {params.max_per_animal} syllables per animal ({keep.size} of {len(g)} kept)")
        Z, g, animals = Z[keep], g[keep], animals[keep]
    # clusters = (group, animal) pairs so that clusters are always nested in groups
    cluster_names = pd.unique(pd.Series([f"{x}\x00{y}" for x, y in zip(g, animals)]))
    code = {c: i for i, c in enumerate(cluster_names)}
    clusters = np.array([code[f"{x}\x00{y}"] for x, y in zip(g, animals)])
    cl_group = np.array([c.split("\x00")[0] for c in cluster_names])
    cl_label = [c.split("\x00")[1] for c in cluster_names]
    return Z, g, clusters, cl_group, cl_label


def _check_design(design: _Design, params: MMDParams) -> None:
    """Enough syllables per group, and enough animals for the animal-level test to reach ``alpha``."""
    n, kk = design.n_syllables, design.n_animals
    a, b = design.a, design.b
    if min(n.values()) < 2:
        raise InputFileError(design.source, f"group {a if n[a] < 2 else b!r} has fewer than 2 syllables", "need at least 2 per group")
    if design.unit != "animal":
        return
    kA, kB = kk[a], kk[b]
    n_splits = math.comb(design.k, kA)
    symmetric = kA == kB
    min_p_exact = (2 if symmetric else 1) / n_splits
    if n_splits <= params.max_exact_splits and min_p_exact > params.alpha:
        raise InputFileError(
            design.source,
            f"only {kA} vs {kB} animals: the animal-level permutation test has {n_splits} splits"
            + (" (label swap gives the same statistic)" if symmetric else "")
            + f", so the smallest attainable p-value is {min_p_exact:.3g} > alpha {params.alpha}",
            "add animals, raise --alpha, or use --unit syllable (treats syllables as independent: anticonservative)")


def _animal_test(design: _Design, res, bandwidths, primary: int, params: MMDParams) -> _Outcome:
    """Whole animals permuted between the groups: every split enumerated, or Monte Carlo draws."""
    kA, kB = design.n_animals[design.a], design.n_animals[design.b]
    alpha_obs = (design.cl_group == design.a).astype(float)
    split_mat, exact, obs_idx, n_splits = _splits(design.k, kA, params, alpha_obs, design.rng)
    stats = np.stack([_stats_from_S(res.S[l], design.counts, split_mat, design.weighting, params.statistic)
                      for l in range(len(bandwidths))])  # (L, M)
    rtol = 1e-10
    order = np.r_[obs_idx, np.delete(np.arange(stats.shape[1]), obs_idx)]
    stats = stats[:, order]
    M = stats.shape[1]
    obs_stats = [float(s) for s in stats[:, 0]]
    if len(bandwidths) == 1:
        cnt = _pvalue_counts(stats[0, 1:], stats[0, 0], rtol)
        p = (1 + cnt) / M
        per_bw = [p]
    else:
        minp, per_bw = _minp_aggregate(stats, rtol)
        p = int(np.sum(minp <= minp[0] + 1e-12)) / M
        per_bw = [float(v) for v in per_bw]
    null = stats[primary] if exact else stats[primary, 1:]
    n_perm = M if exact else M - 1
    se, ci = ((0.0, (p, p)) if exact else _mc_error(p, n_perm))
    min_p = ((2 if kA == kB else 1) / n_splits) if exact else 1.0 / (n_perm + 1)
    return _Outcome(p, per_bw, obs_stats, null, n_perm, se, ci, min_p, exact, n_splits)


def _check_finite_outcome(design: _Design, t: _Outcome) -> None:
    """Never decide on NaN: a NaN statistic is counted as more extreme than every permutation."""
    from ..errors import UsvpipeError

    if not (np.isfinite(t.obs_stats).all() and np.isfinite(np.asarray(t.null, dtype=float)).all()
            and math.isfinite(t.p)):
        raise UsvpipeError(design.source, "the MMD statistic or its permutation null is not finite",
                           "check the latents for extreme values; standardise them or re-train the model")


def _bandwidth_rule(params: MMDParams, med: float) -> str:
    if params.bandwidth == "agg":
        return (f"agg (MMDAgg: median heuristic {med:.6g} x 2^e for e in {list(params.agg_exponents)}, "
                "min-p level correction)")
    if params.bandwidth == "median":
        return "median heuristic"
    return "fixed"


def _result(design: _Design, t: _Outcome, params: MMDParams, bandwidths, primary, rule, syllable_view,
            pairwise, per_animal, *, backend: str) -> MMDResult:
    from .._version import __version__
    from ..config import params_to_dict

    statistic = t.obs_stats[primary]
    null = t.null
    sd = float(np.std(null)) if len(null) > 1 else float("nan")
    z = (statistic - float(np.mean(null))) / sd if sd > 0 else float("nan")
    a, b = design.a, design.b
    return MMDResult(
        statistic=float(statistic), p_value=float(t.p), reject=bool(t.p <= params.alpha), alpha=params.alpha,
        unit=design.unit, weighting=design.weighting, statistic_kind=params.statistic, kernel=params.kernel,
        bandwidths=[float(h) for h in bandwidths], primary_bandwidth=float(bandwidths[primary]), bandwidth_rule=rule,
        statistics_per_bandwidth=[float(s) for s in t.obs_stats], p_values_per_bandwidth=[float(v) for v in t.per_bw],
        exact=bool(t.exact), n_permutations=int(t.n_perm), n_splits=t.n_splits, min_attainable_p=float(t.min_p),
        p_value_mc_se=float(t.se), p_value_ci95=tuple(float(c) for c in t.ci), z_score=float(z),
        null=np.asarray(null), groups=(a, b), group_col=design.group_col, n_syllables=design.n_syllables,
        n_animals=design.n_animals, features=design.features, pairwise=pairwise, per_animal=per_animal,
        syllable_view=syllable_view, params=params_to_dict(params), source=design.source, backend=backend,
        version=__version__, notes=design.notes)


def _nanmean(values) -> float:
    """Mean of the finite values; NaN (silently) when there are none (animals with < 2 syllables)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def _pairwise(S, counts, labels, cl_group, a, b, statistic, has_animal):
    """MMD² between every pair of clusters (animals) from the block sums, plus a per-animal summary."""
    import pandas as pd

    k = len(labels)
    n = counts.astype(float)
    diag = np.diag(S)
    if statistic == "unbiased":
        with np.errstate(divide="ignore", invalid="ignore"):
            within = np.where(n >= 2, diag / (n * (n - 1)), np.nan)
    else:
        within = (diag + n) / (n * n)
    M = within[:, None] + within[None, :] - 2.0 * S / np.outer(n, n)
    np.fill_diagonal(M, 0.0)
    pairwise = pd.DataFrame(M, index=labels, columns=labels)
    if not has_animal:
        return pairwise, None
    rows = []
    for i in range(k):
        own = [j for j in range(k) if j != i and cl_group[j] == cl_group[i]]
        other = [j for j in range(k) if cl_group[j] != cl_group[i]]
        rows.append({"animal": str(labels[i]), "group": str(cl_group[i]), "n_syllables": int(counts[i]),
                     "mmd2_own_group": _nanmean(M[i, own]), "mmd2_other_group": _nanmean(M[i, other])})
    per = pd.DataFrame(rows)
    per["difference"] = per["mmd2_other_group"] - per["mmd2_own_group"]
    return pairwise, per
