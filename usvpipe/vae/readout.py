"""Do the latents carry the acoustic measures an analyst reads? Checked on every encoded store.

The training health (:mod:`usvpipe.vae.health`) says whether the latents describe the
images at all. It does not say whether they carry what a USV analyst reads first: a VAE can
reconstruct the background of four recording set-ups well and still place calls of
different pitch side by side. Every store already has the classical measures of each
syllable (``syllables.csv``: duration, frequencies), so ``encode`` checks the latents
against them:

- the 5-fold cross-validated R² of each measure from the latents, with a ridge regression
  and with a 10-nearest-neighbour regression on the raw latents (UMAP and the kernel MMD are
  local, nonlinear and Euclidean, so a measure laid out along a curve counts;
  benchmarks/vae-readout-and-atypical.md has the figures on the real recordings of
  ``../shared/data``). With syllables from at least
  5 recordings the folds hold out whole recordings: a group comparison is between animals, so
  what counts is what the latents say about recordings they were not fitted on; with random
  folds a representation that only tells the recordings apart scores high (on the real
  recordings, PCA's neighbours read mean frequency at R² 0.61 with random folds and 0.18 with
  held-out recordings);
- the same for a PCA of the same images with as many components, the linear summary the
  VAE should beat.

A measure that the latents carry clearly less of than the PCA (best of the two read-outs,
by more than ``READOUT_TOLERANCE``) gets a warning that travels to the MMD result and the
report: a group difference in that latent space may not be about that measure.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: The measures checked (``syllables.csv`` columns): what the latents issue reads out.
READOUT_MEASURES = ("duration_s", "mean_freq_hz", "max_freq_hz")
#: Syllables sampled for the check, so that its cost (a PCA and 5-fold regressions) is bounded
#: whatever the store's size.
MAX_READOUT_SYLLABLES = 4096
#: Fewer syllables than this give no check: 5 folds of a handful of points say nothing.
MIN_READOUT_SYLLABLES = 40
#: How far (in R²) the latents' best read-out may fall below the PCA's before a warning. On
#: 170 real syllables one training seed moves a read-out by about 0.05-0.1
#: (benchmarks/vae-readout-and-atypical.md, benchmarks/vae-pitch-axis.md), so
#: a smaller gap is not evidence that the latents carry less.
READOUT_TOLERANCE = 0.1
FOLDS = 5
#: Fewest recordings for folds that hold out whole recordings (one recording per fold at least).
MIN_RECORDINGS_TO_HOLD_OUT = FOLDS
NEIGHBOURS = 10
#: Ridge penalties searched by the inner cross-validation (features standardised first).
RIDGE_ALPHAS = np.logspace(-3, 3, 13)


@dataclass(frozen=True)
class MeasureReadout:
    """Cross-validated R² of one measure from the latents and from PCA of the same images."""

    measure: str
    latent_ridge_r2: float
    latent_knn_r2: float
    pca_ridge_r2: float
    pca_knn_r2: float
    n_syllables: int
    #: "recording": folds hold out whole recordings; "random": syllables shuffled into folds
    folds: str = "random"

    @property
    def latent_best(self) -> float:
        return max(self.latent_ridge_r2, self.latent_knn_r2)

    @property
    def pca_best(self) -> float:
        return max(self.pca_ridge_r2, self.pca_knn_r2)

    @property
    def weaker_than_pca(self) -> bool:
        return self.latent_best < self.pca_best - READOUT_TOLERANCE

    def to_dict(self) -> dict:
        return dict(asdict(self), weaker_than_pca=self.weaker_than_pca)

    @classmethod
    def from_dict(cls, data) -> "MeasureReadout | None":
        """The row a sidecar or ``report.json`` stored (``None`` when it is not one)."""
        if isinstance(data, cls):
            return data
        try:
            return cls(measure=str(data["measure"]), n_syllables=int(data["n_syllables"]),
                       folds=str(data.get("folds", "random")),
                       **{k: float(data[k]) for k in ("latent_ridge_r2", "latent_knn_r2", "pca_ridge_r2", "pca_knn_r2")})
        except (KeyError, TypeError, ValueError):
            return None


def recordings_held_out(rows) -> bool:
    """Whether every stored read-out row was scored with whole recordings held out."""
    rows = readouts_from(rows)
    return bool(rows) and all(r.folds == "recording" for r in rows)


def folds_phrase(rows) -> str:
    """How the read-out's folds were made, for a table's caption ("5-fold, recordings held out")."""
    return "5-fold, recordings held out" if recordings_held_out(rows) else "5-fold"


def readouts_from(rows) -> list[MeasureReadout]:
    """The valid :class:`MeasureReadout` rows of a stored list (anything else is skipped)."""
    out = [MeasureReadout.from_dict(r) for r in rows] if isinstance(rows, (list, tuple)) else []
    return [r for r in out if r is not None]


def cv_r2(features: np.ndarray, target: np.ndarray, *, neighbours: int = 0, seed: int = 0, groups=None) -> float:
    """5-fold cross-validated R² of a ridge regression (``neighbours=0``; standardised features,
    alpha by inner CV over :data:`RIDGE_ALPHAS`) or of a distance-weighted k-nearest-neighbour
    regression on the features as they are: UMAP and the kernel MMD measure raw Euclidean
    distances, and standardising would blow nearly dead dimensions up to full weight.

    With ``groups`` (e.g. each syllable's recording) the folds keep every group whole
    (``GroupKFold``, at most 5 folds): the read-out is then scored on recordings it never
    saw, and cannot lean on what tells recordings apart.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = (KNeighborsRegressor(neighbours, weights="distance") if neighbours
             else make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS)))
    if groups is None:
        pred = cross_val_predict(model, features, target, cv=KFold(FOLDS, shuffle=True, random_state=seed))
    else:
        pred = cross_val_predict(model, features, target, cv=_group_folds(groups), groups=groups)
    ss_tot = float(((target - target.mean()) ** 2).sum())
    return float(1.0 - ((target - pred) ** 2).sum() / ss_tot) if ss_tot > 0 else float("nan")


def _group_folds(groups):
    """Folds that keep every group whole: at most :data:`FOLDS`, one group per fold at least."""
    from sklearn.model_selection import GroupKFold

    return GroupKFold(min(FOLDS, len(np.unique(groups))))


def _holdout_groups(groups):
    """``groups`` if folds that keep each group whole are usable, else ``None`` (random folds).

    Usable: at least :data:`MIN_RECORDINGS_TO_HOLD_OUT` groups, and every fold leaves at least
    ``2 * NEIGHBOURS`` training syllables (one recording holding nearly all the syllables would
    leave the neighbours nothing to learn from when it is held out).
    """
    if groups is None or len(np.unique(groups)) < MIN_RECORDINGS_TO_HOLD_OUT:
        return None
    folds = _group_folds(groups).split(groups, groups=groups)
    return groups if all(len(train) >= 2 * NEIGHBOURS for train, _ in folds) else None


def measure_readout(z: np.ndarray, measures, images: np.ndarray, *, groups=None) -> list[MeasureReadout]:
    """Read-outs of :data:`READOUT_MEASURES` from latents ``z`` ``(n, k)`` and from a ``k``-component PCA
    of ``images`` ``(n, ...)`` (the same syllables, as the network sees them).

    ``measures`` is a DataFrame with the measure columns, row-aligned with ``z``. ``groups``
    (e.g. each syllable's recording), when it has at least :data:`MIN_RECORDINGS_TO_HOLD_OUT`
    distinct values among a measure's syllables and no group holds nearly all of them, makes
    the folds hold out whole groups. Each measure
    is read out on the syllables where it is finite; a measure that is absent, not numeric,
    constant or finite on fewer than :data:`MIN_READOUT_SYLLABLES` syllables is skipped, and
    latents that are not all finite give an empty list (nothing to read out from).
    """
    import pandas as pd
    from sklearn.decomposition import PCA

    n = len(z)
    if n < MIN_READOUT_SYLLABLES or not np.isfinite(z).all():
        return []
    flat = images.reshape(n, -1).astype(np.float32)
    k = int(min(z.shape[1], n - 1, flat.shape[1]))
    pca = PCA(n_components=k, svd_solver="randomized" if k < min(flat.shape) // 2 else "full",
              random_state=0).fit_transform(flat)
    out = []
    for name in READOUT_MEASURES:
        if name not in measures.columns:
            continue
        y = pd.to_numeric(measures[name], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(y)
        if ok.sum() < MIN_READOUT_SYLLABLES or np.std(y[ok]) == 0:
            continue
        y, zz, pp = y[ok], z[ok], pca[ok]
        g = _holdout_groups(None if groups is None else np.asarray(groups)[ok])
        out.append(MeasureReadout(
            measure=name, latent_ridge_r2=cv_r2(zz, y, groups=g),
            latent_knn_r2=cv_r2(zz, y, neighbours=NEIGHBOURS, groups=g),
            pca_ridge_r2=cv_r2(pp, y, groups=g), pca_knn_r2=cv_r2(pp, y, neighbours=NEIGHBOURS, groups=g),
            n_syllables=int(ok.sum()), folds="random" if g is None else "recording"))
    return out


def describe_readout(rows) -> str:
    """One line: each measure's better read-out from the latents beside the PCA's ("" without rows)."""
    rows = readouts_from(rows)
    if not rows:
        return ""
    held_out = ", recordings held out" if recordings_held_out(rows) else ""
    return (f"read-out R² (latents vs PCA{held_out}): " + ", ".join(f"{r.measure} {r.latent_best:.2f} vs {r.pca_best:.2f}"
                                                        for r in rows)
            + ("; LATENTS CARRY LESS: see the report" if any(r.weaker_than_pca for r in rows) else ""))


def readout_warning(rows) -> str:
    """One sentence naming the measures the latents carry clearly less of than PCA ("" if none).

    ``rows`` are :class:`MeasureReadout` or their ``to_dict()`` (as stored in a sidecar).
    """
    weak = [f"{r.measure} (R² {r.latent_best:.2f} vs {r.pca_best:.2f})" for r in readouts_from(rows) if r.weaker_than_pca]
    if not weak:
        return ""
    return ("the latents carry less of " + ", ".join(weak) + " than a PCA of the same images: a difference "
            "in this latent space may not be about these measures (fix: more syllables or steps; compare the "
            "groups on the classical measures, `usvpipe mmd --second-opinion` or the report's second-opinion table)")
