"""Does cross-generation follow the given modality? A held-out permutation check.

A POISE-VAE (or baseline) always *generates* something from one modality; the question a user
needs answered before reading a relation off those generations is whether they depend on the
input at all. On pairs the model never saw, each generated item ``g_i`` is compared with its own
partner ``x_i`` and with the other held-out partners ``x_j``:

* ``skill = 1 - mean_i d(g_i, x_i) / mean_{i != j} d(g_i, x_j)`` with ``d`` the mean squared
  difference: the share of the mismatched error that knowing the partner removes (0 when the
  generations ignore their input, 1 when they are exact);
* ``p``: the permutation p-value of the matched error among random re-pairings of the held-out
  set (``(1 + #{perm <= matched}) / (1 + n_perm)``).

When the held-out pairs come from two or more recordings, both compare a pair only with other
pairs *of its own recording*: a model that learnt only what differs between sessions (light,
gain, the animal) then does not pass as following its input.

Pure compute: the split, the statistic and the verdict. Training, generation and writing
``check.json`` are :func:`usvpipe.poise.api.check_cross_generation`'s.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

CHECK_FILE = "check.json"  # written by train_poise beside model.pt
#: A direction "follows its input" when its permutation p is below this.
SIGNIFICANCE = 0.01
#: Below this skill a significant direction is reported as weak: it follows its input, but
#: removes less than 5 % of the error of a random partner.
WEAK_SKILL = 0.05
#: Fewer held-out pairs than this give no check: with so few, a model that follows its input
#: only loosely would rarely reach p < SIGNIFICANCE (too little power to be worth a verdict).
MIN_HELDOUT = 20
#: Held-out pairs used at most (the distance matrix is n x n).
MAX_HELDOUT = 2000
N_PERMUTATIONS = 999
#: Relative tolerance for a re-pairing to count as "as good as" the true pairing: generations
#: that ignore their input give every re-pairing the same error up to float rounding.
TIE_RTOL = 1e-9


@dataclass(frozen=True)
class DirectionCheck:
    """One direction of cross-generation on held-out pairs (``target`` from ``given``)."""

    target: str  # "x1" or "x2": the generated modality
    given: str
    skill: float
    p_value: float
    n_pairs: int

    @property
    def follows(self) -> bool:
        return self.p_value < SIGNIFICANCE and self.skill > 0

    def line(self) -> str:
        verdict = ("follows its input" if self.follows and self.skill >= WEAK_SKILL else
                   "follows its input only weakly" if self.follows else
                   "does NOT follow its input")
        return (f"{self.target} <- {self.given}: skill {self.skill:.2f}, permutation p = {self.p_value:.3g} "
                f"on {self.n_pairs} held-out pairs: {verdict}")


@dataclass(frozen=True)
class CrossGenerationCheck:
    """Both directions of cross-generation, and how the held-out pairs were chosen.

    ``split`` is ``"recording"`` (whole recordings held out, when the pairs carry a
    ``recording`` array and their sizes allow it), ``"pairs"`` (random pairs) or ``"none"``
    (``heldout_fraction = 0``); ``directions`` is empty and ``reason`` says why when there was
    nothing, or too little, to check. ``null`` says which re-pairings the p-value is taken over.
    """

    split: str
    n_heldout: int
    directions: tuple = ()
    reason: str = ""
    # skill of each modality reconstructed from both (the reference a direction can approach)
    reconstruction: tuple = ()  # (("x1", skill), ("x2", skill))
    null: str = "across all held-out pairs"  # or "within recordings"
    n_heldout_total: int = 0  # before the MAX_HELDOUT cap (0 = same as n_heldout)
    # a POISE model trained without subset ELBOs: its one-modality posteriors were never trained,
    # so the first fix to name for a failing direction is --subset-elbos
    suggest_subset_elbos: bool = False

    @property
    def checked(self) -> bool:
        return bool(self.directions)

    @property
    def passed(self) -> bool:
        return self.checked and all(d.follows for d in self.directions)

    def lines(self) -> list[str]:
        if not self.checked:
            return [f"cross-generation unchecked: {self.reason}"]
        held = "whole recordings" if self.split == "recording" else "random pairs"
        of = f" (a sample of {self.n_heldout_total})" if self.n_heldout_total > self.n_heldout else ""
        out = [f"cross-generation on {self.n_heldout} held-out pairs{of} ({held}, not trained on; "
               f"re-paired {self.null}):"]
        out += ["  " + d.line() for d in self.directions]
        if self.reconstruction:
            out.append("  for reference, each reconstructed from both modalities: "
                       + ", ".join(f"{name} skill {skill:.2f}" for name, skill in self.reconstruction))
        return out

    def summary(self) -> str:
        """One phrase for a run's report line."""
        if not self.checked:
            return "cross-generation unchecked" + (" (see the warning)" if self.split != "none" else " (heldout_fraction = 0)")
        if self.passed:
            return "cross-generation follows its input both ways on held-out pairs"
        failed = sum(not d.follows for d in self.directions)
        return f"{failed} cross-generation direction(s) do not follow their input (see the warning)"

    def warnings(self) -> list[str]:
        """One line per direction that does not follow its input (empty when all do, and when
        the user turned the check off with ``heldout_fraction = 0``)."""
        if not self.checked:
            if self.split == "none":
                return []
            return [f"cross-generation was not checked ({self.reason}); do not read relations off generated items "
                    "(fix: more pairs, or a larger heldout_fraction)"]
        return [self._direction_warning(d) for d in self.directions if not d.follows]

    def warning_for(self, given: str) -> str:
        """The warning against generating from ``given`` ("x1" or "x2"); "" when that direction passed."""
        direction = next((d for d in self.directions if d.given == given), None)
        if direction is None:
            return (f"cross-generation from {given} was not checked on held-out pairs"
                    + (f" ({self.reason})" if self.reason else "")
                    + "; read relations off these items with care (fix: retrain with heldout_fraction > 0 on enough pairs)")
        return "" if direction.follows else self._direction_warning(direction)

    def _direction_warning(self, d: DirectionCheck) -> str:
        fix = ("train with --subset-elbos (subset_elbos = true), which trains the one-modality posteriors; "
               "check the pairing (sync offset, drift)" if self.suggest_subset_elbos else
               "check that the pairs are paired right (sync offset, drift), then train longer or on more pairs")
        return (f"{d.target} generated from {d.given} alone matches its own partner no better than a random "
                f"held-out partner (skill {d.skill:.2f}, p = {d.p_value:.3g}): either the modalities are unrelated "
                f"in these pairs or the model did not learn how; do not read a {d.given} -> {d.target} relation "
                f"off it (fix: {fix})")

    def to_dict(self) -> dict:
        return {"split": self.split, "n_heldout": self.n_heldout, "n_heldout_total": self.n_heldout_total or self.n_heldout,
                "null": self.null, "reason": self.reason, "passed": self.passed,
                "directions": [asdict(d) for d in self.directions], "reconstruction_skill": dict(self.reconstruction),
                "suggest_subset_elbos": self.suggest_subset_elbos}


def check_from_dict(d: dict) -> CrossGenerationCheck:
    """The check as read back from ``check.json`` (:meth:`CrossGenerationCheck.to_dict`)."""
    return CrossGenerationCheck(
        d.get("split", "none"), int(d.get("n_heldout", 0)),
        tuple(DirectionCheck(**x) for x in d.get("directions", ())), d.get("reason", ""),
        tuple((d.get("reconstruction_skill") or {}).items()), d.get("null", "across all held-out pairs"),
        int(d.get("n_heldout_total", 0)), bool(d.get("suggest_subset_elbos", False)))


def _distances(generated, truth) -> np.ndarray:
    """Mean squared difference of every generated item with every partner, ``(n, n)``."""
    g = np.asarray(generated, dtype=np.float64).reshape(len(generated), -1)
    x = np.asarray(truth, dtype=np.float64).reshape(len(truth), -1)
    if g.shape != x.shape or len(g) < 2:
        raise ValueError(f"generated {g.shape} and truth {x.shape} must have one shape with >= 2 items")
    # |g - x|^2 expanded, so no n x n x d array is formed
    dist = ((g * g).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2.0 * g @ x.T) / g.shape[1]
    return np.maximum(dist, 0.0)


def _group_codes(groups, n: int) -> np.ndarray | None:
    """Integer code per item when the re-pairing should stay within groups, else None.

    Within-group re-pairing needs at least two groups (else it is the plain null) and a partner
    to swap with in every group (a group of one could only be paired with itself).
    """
    if groups is None:
        return None
    names, codes, counts = np.unique(np.asarray(groups).astype(str), return_inverse=True, return_counts=True)
    if len(codes) != n or len(names) < 2 or counts.min() < 2:
        return None
    return codes


def _skill(dist: np.ndarray, codes=None) -> float:
    n = len(dist)
    matched = np.trace(dist) / n
    off = ~np.eye(n, dtype=bool)
    if codes is not None:
        off &= codes[:, None] == codes[None, :]
    mismatched = dist[off].mean()
    # + 0.0: no "-0.00" for a skill that rounds to zero
    return round(float(1.0 - matched / mismatched), 4) + 0.0 if mismatched > 0 else 0.0


def matched_skill(generated, truth, *, groups=None) -> float:
    """``1 - matched / mismatched`` error of ``generated[i]`` against ``truth[i]`` (see the module docstring)."""
    dist = _distances(generated, truth)
    return _skill(dist, _group_codes(groups, len(dist)))


def _repairings(n: int, n_permutations: int, rng, codes=None) -> np.ndarray:
    """``(n_permutations, n)`` random re-pairings; with ``codes``, each item stays in its group."""
    if codes is None:
        return np.argsort(rng.random((n_permutations, n)), axis=1)
    # Sorting by code + a uniform in [0, 1) orders the items group by group, randomly within
    # each; the j-th item of the stable group order is re-paired with the j-th of that order.
    grouped = np.argsort(codes, kind="stable")
    shuffled = np.argsort(codes[None, :] + rng.random((n_permutations, n)), axis=1)
    perms = np.empty((n_permutations, n), dtype=int)
    perms[:, grouped] = shuffled
    return perms


def permutation_skill(generated, truth, *, groups=None, n_permutations: int = N_PERMUTATIONS,
                      seed=0) -> tuple[float, float]:
    """``(skill, p)`` of ``generated[i]`` against its own ``truth[i]`` vs random re-pairings.

    ``generated`` and ``truth``: arrays of the same shape ``(n, ...)``, ``n >= 2``; ``groups``
    (n,): re-pair only within groups (e.g. recordings; ignored unless there are two or more,
    each of at least two items).
    """
    dist = _distances(generated, truth)
    n = len(dist)
    codes = _group_codes(groups, n)
    matched = np.trace(dist) / n
    perms = _repairings(n, n_permutations, np.random.default_rng(seed), codes)
    null = dist[np.arange(n)[None, :], perms].mean(1)
    ties = null <= matched * (1 + TIE_RTOL)
    return _skill(dist, codes), (1 + int(ties.sum())) / (1 + n_permutations)


def check_directions(gen1, x1, gen2, x2, *, split: str, groups=None, recon=None, n_heldout_total: int = 0,
                     suggest_subset_elbos: bool = False, n_permutations: int = N_PERMUTATIONS,
                     seed=0) -> CrossGenerationCheck:
    """The check from items generated on held-out pairs: ``gen1`` (x1 from x2 alone), ``gen2`` (x2
    from x1 alone); ``groups``: each pair's recording (re-paired within them when there are
    several); ``recon`` = ``(x1 from both, x2 from both)`` for the reference line, optional."""
    within = _group_codes(groups, len(x1)) is not None
    out = []
    for target, given, gen, truth in (("x2", "x1", gen2, x2), ("x1", "x2", gen1, x1)):
        skill, p = permutation_skill(gen, truth, groups=groups, n_permutations=n_permutations, seed=seed)
        out.append(DirectionCheck(target, given, skill, round(p, 4), len(truth)))
    reference = () if recon is None else tuple((name, matched_skill(r, x, groups=groups))
                                               for name, r, x in (("x1", recon[0], x1), ("x2", recon[1], x2)))
    return CrossGenerationCheck(split, len(x1), tuple(out), reconstruction=reference,
                                null="within recordings" if within else "across all held-out pairs",
                                n_heldout_total=n_heldout_total, suggest_subset_elbos=suggest_subset_elbos)


def heldout_split(n: int, fraction: float, *, seed=0, groups=None) -> tuple[np.ndarray, np.ndarray, str]:
    """``(train indices, held-out indices, split kind)`` holding out about ``fraction`` of ``n`` pairs.

    With ``groups`` (e.g. each pair's recording) of at least two distinct values, whole groups
    are held out (taken in a seeded random order, skipping any that would push the held-out
    share past twice ``fraction``) until at least ``fraction`` of the pairs are; one group is
    always left to train on. When no such set of groups exists (e.g. two recordings, one
    holding most pairs), random pairs are held out instead, so training keeps its data. At least
    one pair is always left to train on.
    """
    rng = np.random.default_rng(seed)
    if fraction <= 0 or n < 2:
        return np.arange(n), np.arange(0), "none"
    if groups is not None:
        groups = np.asarray(groups).astype(str)
        names, counts = np.unique(groups, return_counts=True)
        if len(names) >= 2:
            held, size = [], 0
            for i in rng.permutation(len(names)):
                if size >= fraction * n:
                    break
                if size + counts[i] <= 2 * fraction * n and len(held) < len(names) - 1:
                    held.append(names[i])
                    size += counts[i]
            if size >= fraction * n:
                mask = np.isin(groups, held)
                return np.flatnonzero(~mask), np.flatnonzero(mask), "recording"
    k = min(n - 1, max(1, int(round(fraction * n))))
    order = rng.permutation(n)
    return np.sort(order[k:]), np.sort(order[:k]), "pairs"
