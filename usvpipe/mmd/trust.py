"""Can the group answer be trusted? A second opinion from other representations.

An MMD test on latents is only as meaningful as the latents: a collapsed VAE maps every
syllable to nearly the same point, and a permutation test on those points still prints a
p-value. Two checks travel with every result:

- **latent health** (:mod:`usvpipe.mmd.latent_health`, applied by :func:`~usvpipe.mmd.stage.mmd_test`
  itself): the training health that ``usvpipe train`` measured, read from the latents' sidecar.
- **second opinion** (this module, which calls the stage): the same animal-level test on
  representations that need no trained model — the classical acoustic measures of every syllable (standardised duration,
  frequencies, bandwidth, amplitude) and a PCA of the syllable images with as many
  components as the latents have dimensions. A group difference that holds across
  representations is more than an artefact of one model.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import UsvpipeError
from .stage import mmd_test

#: The classical measures (``syllables.csv`` score columns) tested as a second opinion, and the
#: bandwidth derived from two of them. Standardised over the compared syllables before the test.
CLASSICAL_MEASURES = ("duration_s", "mean_freq_hz", "min_freq_hz", "max_freq_hz", "mean_amplitude", "peak_amplitude")


def classical_features(frame):
    """The classical measures of ``frame`` as standardised columns ``m_<measure>`` (+ ``m_bandwidth_hz``).

    Returns ``(table, names)``: ``frame`` with the new columns, and their names; measures that
    are absent or constant are left out (a constant column carries no difference).
    """
    cols = {}
    for name in CLASSICAL_MEASURES:
        if name in frame.columns:
            cols[name] = frame[name].to_numpy(dtype=float)
    if "max_freq_hz" in cols and "min_freq_hz" in cols:
        cols["bandwidth_hz"] = cols["max_freq_hz"] - cols["min_freq_hz"]
    out, names = {}, []
    for name, v in cols.items():
        sd = np.nanstd(v)
        if not np.isfinite(sd) or sd == 0 or not np.isfinite(v).all():
            continue
        out[f"m_{name}"] = (v - v.mean()) / sd
        names.append(f"m_{name}")
    return frame.assign(**out), names


def pca_features(frame, store, n_components: int):
    """``frame`` plus ``pc0 …`` from a PCA of the store's syllable images (rows matched by ``id``)."""
    from sklearn.decomposition import PCA

    from ..store import open_store

    st = open_store(store)
    ids = st.table["id"].astype(str).to_numpy()
    pos = {v: i for i, v in enumerate(ids)}
    try:
        rows = np.array([pos[str(v)] for v in frame["id"]], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"syllable {exc.args[0]} of the latents table is not in the store {store}") from None
    images = st.read(rows).reshape(len(rows), -1)
    k = int(min(n_components, len(rows) - 1, images.shape[1]))
    scores = PCA(n_components=k, random_state=0).fit_transform(images)
    return frame.assign(**{f"pc{i}": scores[:, i] for i in range(k)}), [f"pc{i}" for i in range(k)]


def second_opinion(frame, primary, *, group_col: str, params, store=None) -> list[dict]:
    """The primary test repeated on the classical measures and (with ``store``) PCA of the images.

    ``primary`` is the :class:`MMDResult` on the latents; its row comes first. Each
    representation that cannot be tested (columns absent, store unreadable) gets a row with a
    ``skipped`` reason instead of a number. Syllable-level views are not repeated.
    """
    a, b = primary.groups
    rows = [_row("VAE latents", primary, len(primary.features))]
    if not hasattr(frame, "columns"):
        from ..artifacts import Latents

        frame = Latents.read(frame, text_columns=(group_col, params.animal_col)).frame
    quiet = dataclasses.replace(params, syllable_view=False)
    candidates = [("classical measures", lambda: classical_features(frame))]
    if store is not None:
        candidates.append(("PCA of the images", lambda: pca_features(frame, store, len(primary.features))))
    for name, make in candidates:
        try:
            table, cols = make()
            if not cols:
                rows.append({"representation": name, "skipped": "no such columns in the latents table"})
                continue
            res = mmd_test(table, group_col=group_col, a=a, b=b,
                           params=dataclasses.replace(quiet, features=",".join(cols)), health=None)
        except (UsvpipeError, ValueError, OSError) as exc:
            rows.append({"representation": name, "skipped": str(exc).splitlines()[0]})
            continue
        rows.append(_row(name, res, len(cols)))
    return rows


def _row(name: str, res, n_features: int) -> dict:
    return {"representation": name, "statistic": float(res.statistic), "p_value": float(res.p_value),
            "unit": res.unit, "reject": bool(res.reject), "n_features": int(n_features),
            "min_attainable_p": float(res.min_attainable_p)}


def agreement(rows: list[dict]) -> str:
    """One sentence: does the decision hold across the representations that were tested?"""
    tested = [r for r in rows if "p_value" in r]
    if len(tested) < 2:
        return ""
    rejects = [r["representation"] for r in tested if r["reject"]]
    if len(rejects) == len(tested):
        return "the groups differ in every representation tested"
    if not rejects:
        return "no representation tested shows a difference"
    return f"only {', '.join(rejects)} show{'s' if len(rejects) == 1 else ''} a difference: the answer depends on the representation"
