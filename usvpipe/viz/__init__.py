"""Latent-space pictures: 2-D embeddings, publication figures and an offline HTML explorer.

``run_umap`` is the whole stage (what ``usvpipe umap`` calls); the pieces are public
for notebooks:

- :func:`embed_latents` / :class:`UmapParams`: latents table -> ``emb_x, emb_y`` (UMAP or PCA);
- :func:`scatter_figure`, :func:`density_figure`, :func:`spectrogram_grid_figure`:
  matplotlib figures at journal column width with a fixed, colour-blind-safe
  group -> colour mapping (:func:`category_colors`);
- :func:`latent_path`, :func:`traversal_strip`: decode a straight path in latent space
  into a strip of spectrograms (any ``decode_fn``, e.g. ``usvpipe.vae.decode``).

matplotlib, umap-learn and PIL are imported only when a function needs them.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .._io import ensure_output_dir, write_csv_atomic, write_json_atomic
from .._version import __version__
from ..config import params_to_dict
from ..errors import InputFileError
from ._figures import (
    OKABE_ITO,
    TOL_MUTED,
    category_colors,
    density_figure,
    grid_examples,
    image_axes,
    is_categorical,
    latent_path,
    save_figure,
    scatter_figure,
    spectrogram_grid_figure,
    traversal_strip,
)
from ._projection import UmapParams, embed_latents, latent_columns, read_latents, validate_latents, warm_up

__all__ = [
    "UmapParams",
    "warm_up",
    "UmapRun",
    "embed_latents",
    "run_umap",
    "category_colors",
    "scatter_figure",
    "density_figure",
    "spectrogram_grid_figure",
    "latent_path",
    "traversal_strip",
    "centroid_traversals",
    "read_latents",
    "OKABE_ITO",
    "TOL_MUTED",
]

log = logging.getLogger(__name__)


@dataclass
class UmapRun:
    """What :func:`run_umap` wrote (paths) and how long it took.

    Attributes
    ----------
    out_dir : Path
    embedding : Path
        ``embedding.csv``: the latents' metadata columns + ``emb_x, emb_y, fitted``,
        same rows and order as the latents table.
    figures : dict of str -> list of Path
        ``"scatter_<column>"``, ``"density"``, ``"spectrogram_grid"`` (with a store),
        ``"traversal_<A>_to_<B>"`` (with a model), each in every requested format.
    explorer : Path or None
        ``explorer.html``.
    palette : Path
        ``palette.json``: the category -> colour mappings used by every figure.
    report : Path
        ``umap.json``: parameters, version, inputs, timings.
    n_syllables : int
    timings : dict
    """

    out_dir: Path
    embedding: Path
    figures: dict = field(default_factory=dict)
    explorer: Path | None = None
    palette: Path | None = None
    report: Path | None = None
    n_syllables: int = 0
    timings: dict = field(default_factory=dict)

    def paths(self) -> list[Path]:
        """Every file written."""
        out = [self.embedding, *(p for ps in self.figures.values() for p in ps)]
        out += [p for p in (self.explorer, self.palette, self.report) if p is not None]
        return out


def _store_rows(store, ids: np.ndarray, store_path) -> np.ndarray:
    """Positions in the store table of each latents id (all must be present)."""
    import pandas as pd

    pos = pd.Index(store.table["id"].astype(str)).get_indexer(ids.astype(str))
    missing = np.flatnonzero(pos < 0)
    if len(missing):
        raise InputFileError(
            store_path,
            f"{len(missing)} of {len(ids)} latents ids are not in this store (first: {ids[missing[0]]!r})",
            "pass the store the latents were encoded from",
        )
    return pos


def centroid_traversals(
    latents,
    decode_fn: Callable[[np.ndarray], np.ndarray],
    *,
    group_col: str = "group",
    n_steps: int = 8,
    axes_info=None,
) -> dict:
    """Traversal strips between the latent centroids of every pair of groups.

    Returns ``{"<A>_to_<B>": Figure}`` (a kHz axis on the first panel with ``axes_info``).
    """
    zcols = latent_columns(latents)
    groups = sorted(latents[group_col].astype(str).unique())
    cents = {g: latents.loc[latents[group_col].astype(str) == g, zcols].to_numpy(dtype=np.float64).mean(axis=0) for g in groups}
    figs = {}
    for i, a in enumerate(groups):
        for b in groups[i + 1 :]:
            path = latent_path(cents[a], cents[b], n_steps)
            labels = [a] + [""] * (n_steps - 2) + [b]
            figs[f"{a}_to_{b}"] = traversal_strip(decode_fn, path, labels=labels, title=f"centroid of {a} \u2192 centroid of {b}",
                                                  axes_info=axes_info)
    return figs


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "x"


def _category_palettes(emb, color_by: str) -> dict:
    """One colour mapping per categorical column (group, animal, ``color_by``), shared by every figure
    and the explorer."""
    palettes = {}
    for c in dict.fromkeys(("group", "animal", color_by)):
        if c in emb.columns and is_categorical(emb[c]):
            palettes[c] = category_colors(emb[c].astype(str))
    return palettes


def _output_names(run: UmapRun) -> dict:
    """The files a run wrote, by name (``umap.json``'s ``outputs``)."""
    return {
        "embedding": run.embedding.name,
        "figures": {k: [p.name for p in v] for k, v in run.figures.items()},
        "explorer": run.explorer.name if run.explorer else None,
        "palette": run.palette.name,
    }


def run_umap(
    latents,
    out_dir,
    params: UmapParams = UmapParams(),
    *,
    store=None,
    color_by: str = "group",
    decode_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    progress: bool = False,
    audio_root=None,
) -> UmapRun:
    """Embed a latents table and write the embedding, figures and the HTML explorer.

    Parameters
    ----------
    latents : path-like or pandas.DataFrame
        ``latents.csv`` from ``usvpipe encode`` (syllables.csv columns + ``z0..z{d-1}``).
    out_dir : path-like
        Created if needed. Receives ``embedding.csv``, ``scatter_<column>.{png,pdf}``
        (for ``color_by`` and, if present and different, ``group`` and ``animal``),
        ``density.*``, ``spectrogram_grid.*`` (with a store), ``explorer.html``,
        ``palette.json`` and ``umap.json``.
    params : UmapParams
    audio_root : path-like, optional
        The folder the latents' ``recording`` paths are relative to (the segmented input
        folder): up to ``params.max_audio_clips`` explorer points get a time-expanded clip of
        their syllable, cut from the recording.
    store : path-like or SyllableStore, optional
        The syllable store the latents were encoded from: enables spectrogram
        thumbnails in the explorer and the example-spectrogram grid figure. Latents
        rows are matched to store rows by ``id``.
    color_by : str
        Column to colour the main scatter by (categorical or continuous).
    decode_fn : callable, optional
        ``(n, d) latents -> (n, H, W)`` images; draws traversals between group centroids.
    progress : bool
        Log progress at INFO level.

    Returns
    -------
    UmapRun
    """
    t_start = time.perf_counter()
    frame, source, zcols = _validated_latents(latents, color_by)
    out_dir = ensure_output_dir(out_dir)
    # open the store early, so a wrong store fails before minutes of UMAP
    store_obj, store_rows = _open_matching_store(store, frame)
    emb = embed_latents(frame, params)
    timings = dict(emb.attrs.get("timings", {}))
    record = {
        "usvpipe_version": __version__,
        "stage": "umap",
        "params": params_to_dict(params),
        "color_by": color_by,
        "latents": source,
        "store": None if store_obj is None else str(store_obj.path),
        "n_syllables": int(len(frame)),
        "latent_dim": len(zcols),
    }
    embedding_path = write_csv_atomic(out_dir / "embedding.csv", emb, float_format="%.10g")  # keeps 0.1 ms onsets in hour-long files
    palettes = _category_palettes(emb, color_by)
    palette_path = write_json_atomic(out_dir / "palette.json", palettes)
    run = UmapRun(out_dir=out_dir, embedding=embedding_path, palette=palette_path, n_syllables=len(emb))
    description = json.dumps({k: record[k] for k in ("usvpipe_version", "params", "color_by")}, default=str)
    t0 = time.perf_counter()
    _write_figures(run, emb, frame, params, palettes, color_by, store_obj, store_rows, decode_fn, description)
    timings["figures_s"] = time.perf_counter() - t0
    if params.explorer:
        t0 = time.perf_counter()
        record["explorer"] = _write_explorer(run, emb, params, palettes, color_by, store_obj, store_rows, source,
                                             audio_root)
        timings["explorer_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_start
    run.timings = timings
    record["timings_s"] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in timings.items()}
    record["outputs"] = _output_names(run)
    run.report = write_json_atomic(out_dir / "umap.json", record)
    return run


def _validated_latents(latents, color_by: str):
    """``(frame, source, latent columns)`` of a latents table or path, checked (colour column included)."""
    import pandas as pd

    if isinstance(latents, pd.DataFrame):
        frame, source = latents, "latents DataFrame"
        validate_latents(frame, source=source)
    else:
        source = str(latents)
        frame = read_latents(latents)
    if color_by not in frame.columns:
        raise InputFileError(source, f"no column {color_by!r} to colour by (columns: {', '.join(c for c in frame.columns if not c.startswith('z'))})", "choose --color-by among those")
    return frame, source, latent_columns(frame)


def _open_matching_store(store, frame):
    """The syllable store and, for each latents row, its row in the store (``(None, None)`` without a store)."""
    if store is None:
        return None, None
    from ..store import SyllableStore, open_store

    store_obj = store if isinstance(store, SyllableStore) else open_store(store)
    return store_obj, _store_rows(store_obj, frame["id"].astype(str).to_numpy(), store_obj.path)


def _write_figures(run, emb, frame, params, palettes, color_by, store_obj, store_rows, decode_fn, description) -> None:
    """Scatter per colour column, group density, the spectrogram grid (with a store), centroid traversals."""
    out_dir, fmts, dpi = run.out_dir, params.figure_formats, params.dpi
    method_label = "UMAP" if params.method == "umap" else "PC"
    for c in dict.fromkeys((color_by, "group", "animal")):
        if c in emb.columns and emb[c].nunique() > 0:
            fig = scatter_figure(emb, c, colors=palettes.get(c), method_label=method_label, seed=params.seed or 0)
            run.figures[f"scatter_{_safe(c)}"] = save_figure(fig, out_dir / f"scatter_{_safe(c)}", fmts, dpi, description=description)
    if "group" in emb.columns:
        fig = density_figure(emb, "group", colors=palettes.get("group"), method_label=method_label)
        run.figures["density"] = save_figure(fig, out_dir / "density", fmts, dpi, description=description)
    if store_obj is not None:
        rows, centres = grid_examples(emb["emb_x"].to_numpy(), emb["emb_y"].to_numpy(), params.grid_cells)
        images = store_obj.read(store_rows[rows])
        fig = spectrogram_grid_figure(emb, images, rows, centres, cells=params.grid_cells, colors=palettes.get("group"),
                                      method_label=method_label, axes_info=image_axes(store_obj.params))
        run.figures["spectrogram_grid"] = save_figure(fig, out_dir / "spectrogram_grid", fmts, dpi, description=description)
    if decode_fn is not None and "group" in frame.columns and frame["group"].nunique() > 1:
        for name, fig in centroid_traversals(frame, decode_fn,
                                             axes_info=image_axes(store_obj.params) if store_obj is not None else None).items():
            key = f"traversal_{_safe(name)}"
            run.figures[key] = save_figure(fig, out_dir / key, fmts, dpi, description=description)


def _write_explorer(run, emb, params, palettes, color_by, store_obj, store_rows, source, audio_root=None) -> dict:
    """``explorer.html``: drawn points (subsampled), thumbnails stratified by group, time-expanded
    audio clips of up to ``params.max_audio_clips`` points; returns its summary."""
    from ._explorer import choose_thumbnail_rows, explorer_payload, make_thumbnails, write_explorer

    n = len(emb)
    rng = np.random.default_rng(params.seed)
    drawn = None if n <= params.max_drawn_points else rng.permutation(n)[: params.max_drawn_points]
    groups = emb["group"].astype(str).to_numpy() if "group" in emb else np.zeros(n, dtype=str)
    thumbs = {}
    if store_obj is not None and params.max_thumbnails > 0:
        candidates = np.arange(n) if drawn is None else np.sort(drawn)
        trows = choose_thumbnail_rows(groups, candidates, params.max_thumbnails, seed=params.seed)
        for s in range(0, len(trows), 2048):  # bounded memory: 2048 spectrograms at a time
            block = trows[s : s + 2048]
            for r, b64 in zip(block, make_thumbnails(store_obj.read(store_rows[block]), params.thumbnail_px)):
                thumbs[int(r)] = b64
    clips = {}
    if audio_root is not None and params.max_audio_clips > 0 and {"recording", "onset_s", "offset_s"} <= set(emb.columns):
        from ._audio import audio_clips

        pool = np.array(sorted(thumbs), dtype=int) if thumbs else (np.arange(n) if drawn is None else np.sort(drawn))
        crows = choose_thumbnail_rows(groups, pool, params.max_audio_clips, seed=params.seed)
        clips = audio_clips(emb, audio_root, crows, factor=params.time_expansion)
    title = f"{Path(source).name if source != 'latents DataFrame' else 'latents'}: {params.method.upper()} of {n} syllables"
    payload = explorer_payload(emb, color_by=color_by, colors=palettes, thumbnails=thumbs, drawn_rows=drawn,
                               thumbnail_px=params.thumbnail_px, title=title, params=params_to_dict(params),
                               image_axes=image_axes(store_obj.params) if store_obj is not None else None,
                               clips=clips, time_expansion=params.time_expansion)
    run.explorer = run.out_dir / "explorer.html"
    write_explorer(run.explorer, payload)
    return {"n_drawn": n if drawn is None else len(drawn), "n_thumbnails": len(thumbs), "n_audio_clips": len(clips),
            "bytes": run.explorer.stat().st_size}
