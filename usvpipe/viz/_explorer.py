"""A self-contained, offline HTML explorer of an embedding (no server, no CDN, no bokeh).

One file: a ``<canvas>`` page whose script and data are inline. Every point's
coordinates and metadata are embedded as JSON (so every point can be filtered and
queried); the page *draws* at most ``max_drawn_points`` of them (a random subsample, in
random order so no group hides another) and hit-tests with a uniform grid, so hovering
stays instant at 100 000+ points. Spectrogram thumbnails (``thumbnail_px`` square,
8-bit greyscale PNG or JPEG, whichever is smaller, colour-mapped in the browser) are embedded for up to
``max_thumbnails`` points chosen at random within each group in proportion to its
size; hovering any other point shows its metadata and the nearest point that has a
thumbnail.

The page can be opened pre-selected with ``explorer.html#row=<i>`` or
``#id=<syllable id>``, optionally followed by ``&color=<column>`` (used for
screenshots and links from a paper's supplement).
Script errors are collected into ``<div id="js-status" data-errors="...">`` so
headless checks can read them from the DOM.
"""
from __future__ import annotations

import base64
import io
import json
from typing import Mapping

import numpy as np

from .._version import __version__
from ._explorer_page import TEMPLATE

COORD_SCALE = 65535  # coordinates are quantised to uint16 in the page: sub-pixel at any screen size


def _encode(img: np.ndarray, fmt: str, **kw) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img, mode="L").save(buf, format=fmt, optimize=True, **kw)
    return buf.getvalue()


def make_thumbnails(images: np.ndarray, px: int, *, levels: int = 32, jpeg_quality: int = 80) -> list[str]:
    """Base64 greyscale thumbnails of ``(n, H, W)`` [0, 1] spectrograms, ``px`` x ``px``.

    Rows are flipped so low frequencies are at the bottom of the picture. Each is a PNG
    quantised to ``levels`` grey levels (lossless-looking, tiny for clean spectrograms)
    or, when that is larger, a JPEG of ``jpeg_quality`` (noisy backgrounds compress
    2-3x better that way). The page tells them apart by their base64 signature.
    """
    from PIL import Image

    out = []
    step = 255.0 / (levels - 1)
    for img in images:
        a = np.clip(np.asarray(img, dtype=np.float32), 0, 1)[::-1]
        im = np.asarray(Image.fromarray(np.rint(a * 255).astype(np.uint8), mode="L").resize((px, px), Image.BOX))
        blob = _encode((np.rint(im / step) * step).clip(0, 255).astype(np.uint8), "PNG")
        if len(blob) > 1024:
            jpg = _encode(np.ascontiguousarray(im), "JPEG", quality=jpeg_quality)
            blob = jpg if len(jpg) < len(blob) else blob
        out.append(base64.b64encode(blob).decode("ascii"))
    return out


def choose_thumbnail_rows(groups: np.ndarray, candidates: np.ndarray, k: int, seed=0) -> np.ndarray:
    """Up to ``k`` rows among ``candidates``, random within each group, proportional to group size.

    Every non-empty group gets at least one row (when ``k`` >= number of groups).
    """
    if k <= 0 or len(candidates) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(candidates) <= k:
        return np.sort(candidates)
    rng = np.random.default_rng(seed)
    g = groups[candidates]
    uniq, inv, counts = np.unique(g, return_inverse=True, return_counts=True)
    quota = np.maximum(np.floor(k * counts / counts.sum()).astype(int), 1 if k >= len(uniq) else 0)
    quota = np.minimum(quota, counts)
    # hand out the rounding remainder to the largest groups
    rest = k - quota.sum()
    for j in np.argsort(-counts):
        if rest <= 0:
            break
        add = min(rest, counts[j] - quota[j])
        quota[j] += add
        rest -= add
    chosen = [rng.choice(candidates[inv == j], size=quota[j], replace=False) for j in range(len(uniq)) if quota[j] > 0]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def _codes(series) -> tuple[list[str], list[int]]:
    from ._figures import _sort_key

    vals = series.astype(str).to_numpy()
    levels = sorted(set(vals), key=_sort_key)
    index = {v: i for i, v in enumerate(levels)}
    return levels, [index[v] for v in vals]


def _floats(series, decimals: int = 4) -> list:
    import pandas as pd

    v = np.round(pd.to_numeric(series, errors="coerce").to_numpy(dtype=float), decimals)
    return [float(a) if np.isfinite(a) else None for a in v]


def _magma_lut() -> list[int]:
    from matplotlib import colormaps

    rgb = (colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(int)
    return rgb.ravel().tolist()


def _quantise(v: np.ndarray) -> tuple[list, list]:
    """Coordinates as integers 0..COORD_SCALE over their range, and that range ``[lo, hi]``."""
    lo, hi = float(v.min()), float(v.max())
    span = hi - lo or 1.0
    return np.rint((v - lo) / span * COORD_SCALE).astype(int).tolist(), [lo, hi]


def _category_columns(emb, color_by: str, colors: Mapping[str, Mapping[str, str]]) -> dict:
    """``{column: {levels, codes, colors}}`` for group, animal, recording and a categorical ``color_by``."""
    from ._figures import category_colors, is_categorical

    cat_cols = [c for c in ("group", "animal", "recording") if c in emb.columns]
    if color_by not in cat_cols and color_by in emb.columns and is_categorical(emb[color_by]):
        cat_cols.append(color_by)
    cats = {}
    for c in cat_cols:
        levels, codes = _codes(emb[c])
        cmap = colors.get(c)
        if cmap is None:
            cmap = category_colors(levels)
        cats[c] = {"levels": levels, "codes": codes, "colors": [cmap.get(v, "#888888") for v in levels]}
    return cats


def _numeric_column(emb, color_by: str, cats: dict) -> dict:
    """``{color_by: values}`` when colouring by a numeric column (5 significant digits, None for NaN), else ``{}``."""
    import pandas as pd

    if color_by not in emb.columns or color_by in cats:
        return {}
    v = pd.to_numeric(emb[color_by], errors="coerce").to_numpy(dtype=float)
    return {color_by: [None if not np.isfinite(a) else float(f"{a:.5g}") for a in v]}  # JSON has no NaN


def _syllable_ids(emb) -> tuple[np.ndarray, str | None]:
    """The points' ids, and ``"recording#index"`` when the page can rebuild them from those columns."""
    ids = emb["id"].astype(str).to_numpy() if "id" in emb.columns else np.arange(len(emb)).astype(str)
    # ids written by the store are "<recording>#<index>": rebuild them in the page instead of storing them twice
    if "recording" in emb.columns and "index" in emb.columns:
        rebuilt = emb["recording"].astype(str).to_numpy().astype(object) + "#" + emb["index"].astype(str).to_numpy().astype(object)
        if np.array_equal(rebuilt.astype(str), ids):
            return ids, "recording#index"
    return ids, None


def explorer_payload(
    emb,
    *,
    color_by: str,
    colors: Mapping[str, Mapping[str, str]],
    thumbnails: Mapping[int, str],
    drawn_rows: np.ndarray | None,
    thumbnail_px: int,
    title: str,
    params: Mapping,
    image_axes: Mapping | None = None,
    clips: Mapping[int, str] | None = None,
    time_expansion: int = 16,
) -> dict:
    """The JSON object the page reads (all points; see the module docstring)."""
    qx, rx = _quantise(emb["emb_x"].to_numpy(dtype=np.float64))
    qy, ry = _quantise(emb["emb_y"].to_numpy(dtype=np.float64))
    cats = _category_columns(emb, color_by, colors)
    nums = _numeric_column(emb, color_by, cats)
    ids, id_rule = _syllable_ids(emb)
    times = "onset_s" in emb and "offset_s" in emb
    return {
        "format": "usvpipe-explorer",
        "version": __version__,
        "title": title,
        "n": len(emb),
        "x": qx,
        "y": qy,
        "xrange": rx,
        "yrange": ry,
        "cats": cats,
        "nums": nums,
        "color_by": color_by,
        "id_rule": id_rule,
        "ids": None if id_rule else ids.tolist(),
        "index": emb["index"].astype(int).tolist() if id_rule else None,
        "onset_s": _floats(emb["onset_s"]) if times else None,
        "offset_s": _floats(emb["offset_s"]) if times else None,
        "drawn": None if drawn_rows is None else np.asarray(drawn_rows, dtype=int).tolist(),
        "thumb_rows": [int(r) for r in thumbnails],
        "thumbs": list(thumbnails.values()),
        "thumb_px": thumbnail_px,
        "lut": _magma_lut(),
        "image_axes": dict(image_axes) if image_axes else None,
        "clip_rows": [int(r) for r in (clips or {})],
        "clips": list((clips or {}).values()),
        "time_expansion": int(time_expansion),
        "params": dict(params),
    }


def render_html(payload: dict) -> str:
    """The explorer page with ``payload`` embedded (safe against ``</script>``, ``<!--`` in labels)."""
    # Every "<" (and ">", "&") becomes a JSON escape: "</script>" would end the element and
    # "<!--" would put the HTML parser in its script-data-escaped state, where a later
    # "<script" swallows the page's own script. These characters occur only inside JSON
    # strings, so \u003c etc. decode to the same text.
    blob = (json.dumps(payload, separators=(",", ":"), allow_nan=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    title = str(payload.get("title", "usvpipe explorer")).replace("&", "&amp;").replace("<", "&lt;")
    return TEMPLATE.replace("@@TITLE@@", title).replace("@@DATA@@", blob)


def write_explorer(path, payload: dict) -> None:
    from .._io import write_text_atomic

    write_text_atomic(path, render_html(payload))
