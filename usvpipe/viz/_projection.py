"""Latents table -> 2-D embedding (UMAP or PCA): parameters, validation, projection.

Pure compute in the middle (:func:`embed_array`), table checks at the edge
(:func:`read_latents`, :func:`latent_columns`). umap-learn is imported lazily: it pulls
in numba, whose first call JIT-compiles for tens of seconds.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..artifacts import Latents
from ..artifacts import latent_columns as _latent_columns
from ..constraints import Interval, OneOf, check_params, config_error
from ..errors import InputFileError, UsvpipeError

METHODS = ("umap", "pca")
#: names of the embedding columns written next to the latents' metadata columns
EMBED_COLUMNS = ("emb_x", "emb_y")


@dataclass(frozen=True)
class UmapParams:
    """Parameters of ``usvpipe umap`` (TOML section ``[umap]``).

    Projection
    ----------
    method : {"umap", "pca"}
        ``"umap"`` (default; non-linear, preserves local neighbourhoods) or ``"pca"``
        (linear, deterministic, seconds even for millions of syllables).
    n_neighbors : int
        UMAP neighbourhood size (15, umap-learn's default): larger keeps more global
        structure, smaller separates fine clusters.
    min_dist : float
        UMAP minimum distance between embedded points (0.1): smaller packs clusters tighter.
    metric : str
        Distance between latent vectors (``"euclidean"``; any umap-learn metric).
    seed : int or None
        Random seed (0) for the subsample, UMAP's initialisation and optimisation and
        the explorer's thumbnail choice. ``None`` (or a negative value, e.g. ``-1`` in
        TOML or on the command line) lets umap-learn run multi-threaded, not reproducibly.
    fit_subsample : int
        Fit UMAP on at most this many syllables (100 000, drawn at random) and embed the
        rest with ``transform``, so time and memory stay bounded for millions of syllables.
        0 means fit on everything.
    transform_batch : int
        Rows per ``transform`` call for the syllables outside the fit subsample (100 000).

    Figures and explorer
    --------------------
    figure_formats : tuple of str
        Formats of the static figures (``("png", "pdf")``; ``"svg"`` also works). Point
        clouds are rasterised inside vector files so they stay small.
    dpi : int
        Resolution of PNG figures (300).
    grid_cells : int
        Cells per side of the example-spectrogram grid (8).
    max_thumbnails : int
        Points of the HTML explorer that carry a spectrogram thumbnail (5 000, a random
        subsample stratified by group); the others show their metadata and the nearest
        thumbnail. 0 disables thumbnails.
    thumbnail_px : int
        Side of a thumbnail in pixels (64).
    max_drawn_points : int
        Points the explorer draws (200 000, a random subsample); all points stay in the file.
    explorer : bool
        Write ``explorer.html`` (True).
    max_audio_clips : int
        Points of the explorer that can be heard (100, among those with a thumbnail): each
        clip is cut from its recording, so this needs the recordings (``usvpipe run`` passes
        its input folder); about 33 kB per 100 ms call. 0 disables sound.
    time_expansion : int
        Slow-down of the clips (16: 30–110 kHz plays at 1.9–6.9 kHz; 10–20 suits mouse USVs).
    """

    method: str = "umap"
    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "euclidean"
    seed: int | None = 0
    fit_subsample: int = 100_000
    transform_batch: int = 100_000
    figure_formats: tuple[str, ...] = ("png", "pdf")
    dpi: int = 300
    grid_cells: int = 8
    max_thumbnails: int = 5_000
    thumbnail_px: int = 64
    max_drawn_points: int = 200_000
    explorer: bool = True
    max_audio_clips: int = 100
    time_expansion: int = 16

    _constraints = {
        "method": [OneOf(*METHODS)],
        "n_neighbors": [Interval(int, 2, None)],
        "min_dist": [Interval(float, 0, None)],
        "fit_subsample": [Interval(int, 0, None)],
        "transform_batch": [Interval(int, 1, None)],
        "dpi": [Interval(int, 50, None)],
        "grid_cells": [Interval(int, 2, None)],
        "thumbnail_px": [Interval(int, 8, None)],
        "max_thumbnails": [Interval(int, 0, None)],
        "max_audio_clips": [Interval(int, 0, None)],
        "time_expansion": [Interval(int, 2, 64)],
        "max_drawn_points": [Interval(int, 1, None)],
    }

    def __post_init__(self):
        if self.seed is not None and self.seed < 0:
            # TOML and the CLI have no "None": a negative seed means unseeded
            object.__setattr__(self, "seed", None)
        check_params(self, "umap")
        bad = [f for f in self.figure_formats if f not in ("png", "pdf", "svg")]
        if bad:
            raise config_error("umap", "figure_formats", f"unsupported {', '.join(bad)}", "use png, pdf and/or svg")


def latent_columns(frame, *, source="latents") -> list[str]:
    """The ``z0..z{d-1}`` columns of a latents table, in numeric order.

    Raises
    ------
    InputFileError
        If there are none, or they are not contiguous from ``z0``.
    """
    return _latent_columns(frame, source=source)


def validate_latents(frame, *, source="latents", required=("id",)) -> list[str]:
    """Check a latents table; return its latent column names.

    Raises :class:`InputFileError` (naming ``source``) on missing columns, an empty table,
    duplicate ids, NaN/inf or non-numeric latents (the last three: :class:`~usvpipe.artifacts.Latents`).
    """
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputFileError(source, f"missing column(s) {', '.join(missing)}", "pass the latents table written by `usvpipe encode`")
    zcols = Latents(frame, source=source).columns
    if len(frame) == 0:
        raise InputFileError(source, "no rows", "encode a store with at least one syllable")
    return zcols


def read_latents(path):
    """Read and validate a latents table (``.csv``, or ``.h5`` as written by ``usvpipe encode``).

    Returns a DataFrame (text columns as str).
    """
    frame = Latents.read(path).frame
    validate_latents(frame, source=path)
    return frame


def _fit_indices(n: int, params: UmapParams) -> np.ndarray:
    if params.fit_subsample == 0 or n <= params.fit_subsample:
        return np.arange(n)
    rng = np.random.default_rng(params.seed)
    return np.sort(rng.choice(n, size=params.fit_subsample, replace=False))


#: Below this many syllables, all fitted, the neighbour graph is computed exactly with
#: scikit-learn and handed to UMAP (``precomputed_knn``). umap-learn also searches exactly
#: below 4096 points, but through numba kernels that a fresh process compiles first: a fresh
#: process's fit of 481 x 32 takes 8.6 s instead of 14.3 s, with the same layout quality
#: (trustworthiness at k = 15: 0.9090 vs 0.9104; scripts/bench/cpu_overheads.py; on the demo's
#: own latents 0.9946 vs 0.9944).
EXACT_KNN_BELOW = 4096
#: Metrics whose neighbours scikit-learn computes with the meaning umap-learn gives them.
EXACT_KNN_METRICS = ("euclidean", "manhattan", "chebyshev", "cosine")


def exact_knn(z: np.ndarray, n_neighbors: int, metric: str) -> tuple[np.ndarray, np.ndarray, None]:
    """``(indices, distances, None)`` of each row's ``n_neighbors`` nearest rows, itself first."""
    from sklearn.neighbors import NearestNeighbors

    dist, idx = NearestNeighbors(n_neighbors=n_neighbors, metric=metric).fit(z).kneighbors(z)
    return idx.astype(np.int32), dist.astype(np.float32), None


def embed_array(z: np.ndarray, params: UmapParams = UmapParams(), *, progress=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Project ``(n, d)`` latents to ``(n, 2)``.

    Returns ``(embedding float32 (n, 2), fitted bool (n,), timings dict)``; ``fitted``
    marks the rows the projection was fitted on (the others were transformed).
    """
    z = np.ascontiguousarray(z, dtype=np.float32)
    n, d = z.shape
    fit_idx = _fit_indices(n, params)
    fitted = np.zeros(n, dtype=bool)
    fitted[fit_idx] = True
    out = np.empty((n, 2), dtype=np.float32)
    timings = {"n": n, "n_fit": int(len(fit_idx)), "fit_s": 0.0, "transform_s": 0.0}
    if params.method == "pca":
        _embed_pca(z, fit_idx, out, params, timings)
    else:
        _embed_umap(z, fit_idx, fitted, out, params, timings, progress)
    return out, fitted, timings


#: Packages whose numba kernels :func:`cache_umap_kernels` lets numba keep on disk.
KERNEL_PACKAGES = ("umap", "pynndescent")


def cache_umap_kernels() -> int:
    """Turn on numba's on-disk cache for every umap-learn and pynndescent kernel not already cached.

    umap-learn caches only some of its kernels (0.5.12: 227 of 514 dispatchers, the layout
    optimiser not among them), so every fresh process compiled the rest again: the first
    fit of 483 x 32 latents took 7.6-9.2 s, the second 0.8 s. With this, the first fit of a
    process after the one that wrote the cache took 0.8 s (2-core machine). numba keys each
    entry on the kernel's source file, so a new umap-learn recompiles instead of loading
    stale code. Call it before a fit; a kernel already on the cache is left alone, so a later
    call only reaches modules imported since. Returns how many kernels it turned caching on for.
    """
    import sys

    from numba.core.dispatcher import Dispatcher

    seen, count = set(), 0
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in KERNEL_PACKAGES:
            continue
        for kernel in list(vars(module).values()):
            if not isinstance(kernel, Dispatcher) or id(kernel) in seen:
                continue
            seen.add(id(kernel))
            if type(kernel._cache).__name__ == "NullCache":
                try:
                    kernel.enable_caching()
                    count += 1
                except Exception:  # a kernel numba cannot cache stays compiled per process, as before
                    pass
    return count


def umap_compiled(places=None) -> bool:
    """Whether numba's disk cache already holds UMAP's layout optimiser (compiled by :func:`warm_up` at install,
    or by an earlier run), so a run will not spend its first minute compiling. Looks at the files only (in
    ``places``; by default umap's ``__pycache__`` and ``$NUMBA_CACHE_DIR``): no import of umap or numba."""
    if places is None:
        import importlib.util
        import os

        spec = importlib.util.find_spec("umap")
        if spec is None or not spec.submodule_search_locations:
            return False
        places = [Path(p) / "__pycache__" for p in spec.submodule_search_locations]
        if os.environ.get("NUMBA_CACHE_DIR"):
            places.append(Path(os.environ["NUMBA_CACHE_DIR"]))
    for place in map(Path, places):
        try:
            if any(place.rglob("layouts._optimize_layout_euclidean_single_epoch*.nbi")):
                return True
        except OSError:
            continue
    return False


def warm_up(n: int = 300, d: int = 32) -> float:
    """Fit UMAP once on a small random table so numba compiles umap-learn's kernels and caches
    them on disk; returns the seconds it took.

    The first UMAP fit in a fresh environment spends most of its time compiling: the demo's
    UMAP stage took 21.2 s on a fresh install and 7.9 s on the next run (2-core machine), and
    with every kernel on numba's disk cache (:func:`cache_umap_kernels`) 3.1 s.
    ``scripts/_venv.sh`` calls this once after installing, so that cost is paid at install
    time, announced, instead of inside a user's first run. The table goes through
    :func:`embed_array`, the path every run takes (float32, exact neighbours below
    :data:`EXACT_KNN_BELOW` rows), so the compiled signatures are the ones a run needs.
    """
    t0 = time.perf_counter()
    embed_array(np.random.default_rng(0).normal(size=(n, d)))
    return time.perf_counter() - t0


def _embed_pca(z, fit_idx, out, params: UmapParams, timings: dict) -> None:
    """Exact PCA via the d x d covariance: O(n d^2), no randomness, any n; fills ``out``."""
    t0 = time.perf_counter()
    mean = z[fit_idx].astype(np.float64).mean(axis=0)
    zc = z[fit_idx].astype(np.float64) - mean
    cov = zc.T @ zc / max(len(fit_idx) - 1, 1)
    evals, evecs = np.linalg.eigh(cov)
    comps = evecs[:, ::-1][:, :2]
    if comps.shape[1] < 2:  # d == 1: second axis is zero
        comps = np.pad(comps, ((0, 0), (0, 2 - comps.shape[1])))
    # deterministic sign: largest-magnitude loading positive
    signs = np.sign(comps[np.abs(comps).argmax(axis=0), range(2)])
    comps = comps * np.where(signs == 0, 1, signs)
    timings["fit_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    mean32, comps32 = mean.astype(np.float32), comps.astype(np.float32)  # float32: half the memory traffic
    for s in range(0, len(z), params.transform_batch):
        out[s : s + params.transform_batch] = (z[s : s + params.transform_batch] - mean32) @ comps32
    timings["transform_s"] = time.perf_counter() - t1
    timings["explained_variance_ratio"] = [float(v) for v in (evals[::-1][:2] / max(evals.sum(), 1e-300))]


def _embed_umap(z, fit_idx, fitted, out, params: UmapParams, timings: dict, progress) -> None:
    """UMAP fitted on ``fit_idx``, the other rows transformed in batches; fills ``out``."""
    n = len(z)
    t0, c0 = time.perf_counter(), time.process_time()  # fit_s includes importing umap-learn, as before
    if n < 4:
        raise UsvpipeError("[umap].method", f"UMAP needs at least 4 syllables, got {n}", "use --method pca")
    try:
        import umap
    except ImportError:  # pragma: no cover - umap-learn is a hard dependency
        raise UsvpipeError("[umap].method", "umap-learn is not installed", "pip install umap-learn, or use --method pca") from None
    import warnings

    cache_umap_kernels()

    n_neighbors = min(params.n_neighbors, len(fit_idx) - 1)
    knn = None
    if len(fit_idx) == n and n < EXACT_KNN_BELOW and params.metric in EXACT_KNN_METRICS:
        knn = exact_knn(z, n_neighbors, params.metric)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=n_neighbors,
        min_dist=params.min_dist,
        metric=params.metric,
        random_state=params.seed,
        # tiny tables: the spectral initialisation fails on < n_neighbors points
        init="spectral" if len(fit_idx) > n_neighbors + 2 else "random",
        **({"precomputed_knn": knn} if knn is not None else {}),
    )
    timings["exact_knn"] = knn is not None
    with warnings.catch_warnings():
        # "n_jobs overridden to 1 by setting random_state" is the documented trade-off of a seed
        warnings.filterwarnings("ignore", message=".*n_jobs.*")
        # a kernel numba cannot keep on disk (cache_umap_kernels) is compiled per process, as before
        warnings.filterwarnings("ignore", message=".*[Cc]annot cache compiled function.*")
        warnings.filterwarnings("ignore", message=".*gradient function is not yet implemented.*")
        # with precomputed neighbours there is no search index; nothing is transformed then
        warnings.filterwarnings("ignore", message=".*precomputed_knn.*")
        out[fit_idx] = reducer.fit_transform(z[fit_idx])
        timings["fit_s"] = time.perf_counter() - t0
        timings["fit_cpu_s"] = time.process_time() - c0
        rest = np.flatnonzero(~fitted)
        t1 = time.perf_counter()
        batches = []
        for s in range(0, len(rest), params.transform_batch):
            rows = rest[s : s + params.transform_batch]
            tb, cb = time.perf_counter(), time.process_time()
            out[rows] = reducer.transform(z[rows])
            # (rows, wall s, CPU s); the first batch also pays pynndescent's per-index
            # search compilation. CPU time shows contention on shared machines.
            batches.append((len(rows), round(time.perf_counter() - tb, 3), round(time.process_time() - cb, 3)))
            if progress is not None:
                progress(len(rows))
        timings["transform_s"] = time.perf_counter() - t1
        timings["transform_batches"] = batches


def embed_latents(latents, params: UmapParams = UmapParams()):
    """2-D embedding of a latents table.

    Parameters
    ----------
    latents : pandas.DataFrame or path-like
        Latents table (``syllables.csv`` columns + ``z0..z{d-1}``) or its CSV path.
    params : UmapParams

    Returns
    -------
    pandas.DataFrame
        The latents' metadata columns (every non-``z`` column, same rows, same order)
        plus ``emb_x``, ``emb_y`` and ``fitted`` (True for rows the projection was fitted
        on, False for rows embedded with ``transform``). ``attrs["timings"]`` holds the
        fit/transform seconds.

    Examples
    --------
    >>> emb = embed_latents("out/latents.csv", UmapParams(method="pca"))  # doctest: +SKIP
    >>> emb[["id", "group", "emb_x", "emb_y"]].head()  # doctest: +SKIP
    """
    import pandas as pd

    if isinstance(latents, pd.DataFrame):
        frame = latents
        zcols = validate_latents(frame, source="latents DataFrame")
    else:
        frame = read_latents(latents)
        zcols = latent_columns(frame)
    emb, fitted, timings = embed_array(frame[zcols].to_numpy(dtype=np.float32), params)
    meta = frame[[c for c in frame.columns if c not in set(zcols)]].reset_index(drop=True).copy()
    clash = [c for c in (*EMBED_COLUMNS, "fitted") if c in meta.columns]
    if clash:
        meta = meta.drop(columns=clash)
    meta[EMBED_COLUMNS[0]] = emb[:, 0]
    meta[EMBED_COLUMNS[1]] = emb[:, 1]
    meta["fitted"] = fitted
    meta.attrs["timings"] = timings
    return meta
