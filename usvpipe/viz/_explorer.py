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
    return _TEMPLATE.replace("@@TITLE@@", title).replace("@@DATA@@", blob)


def write_explorer(path, payload: dict) -> None:
    from .._io import write_text_atomic

    write_text_atomic(path, render_html(payload))


_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@@TITLE@@</title>
<script>
// Collect script errors first, so headless checks can read them from the DOM.
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message || e)); });
window.addEventListener("unhandledrejection", function (e) { window.__errors.push("unhandled rejection: " + e.reason); });
(function () { var ce = console.error; console.error = function () { window.__errors.push(Array.prototype.join.call(arguments, " ")); ce.apply(console, arguments); }; })();
</script>
<style>
html,body{margin:0;height:100%;font:13px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#222}
#app{display:flex;height:100%}
#plot{flex:1;position:relative;min-width:200px;background:#fff}
#cv{position:absolute;left:0;top:0;width:100%;height:100%;cursor:crosshair}
#side{width:300px;overflow:auto;border-left:1px solid #ddd;padding:8px 10px;box-sizing:border-box;background:#fafafa}
h1{font-size:14px;margin:2px 0 6px}
fieldset{border:1px solid #ddd;margin:6px 0;padding:4px 6px}
legend{font-weight:600}
.list{max-height:140px;overflow:auto}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:middle}
#hover{min-height:250px}
#thumb{width:192px;height:192px;image-rendering:pixelated;border:1px solid #ccc;background:#000;display:block;margin:4px 0}
table.meta td{padding:0 6px 0 0;vertical-align:top}
table.meta td:first-child{color:#666}
.note{color:#666;font-size:12px}
button{font-size:12px;padding:1px 6px}
</style></head>
<body>
<div id="app">
 <div id="plot"><canvas id="cv"></canvas></div>
 <div id="side">
  <h1 id="title"></h1>
  <div class="note" id="counts"></div>
  <fieldset><legend>Colour by</legend><select id="colorby"></select><div id="legend"></div></fieldset>
  <fieldset id="fs-group"><legend>Groups</legend><div class="list" id="groups"></div></fieldset>
  <fieldset id="fs-animal"><legend>Animals <button id="an-all">all</button> <button id="an-none">none</button></legend><div class="list" id="animals"></div></fieldset>
  <fieldset><legend>Syllable</legend><div id="hover"><div class="note">Hover a point. Wheel: zoom, drag: pan, double-click: reset.</div></div>
   <div id="audio-row"><button id="play" disabled>&#9654; play</button> <label><input type="checkbox" id="play-on-click"> play on click</label> <span class="note" id="audio-note"></span></div></fieldset>
  <fieldset id="fs-review"><legend>Review</legend>
   <div><button id="rv-call" title="key c">call (c)</button> <button id="rv-noise" title="key n">noise (n)</button> <button id="rv-relabel" title="key r">relabel&hellip; (r)</button> <button id="rv-clear">clear</button></div>
   <div class="note" id="rv-state">click a point, then mark it</div>
   <div><button id="rv-export">export review.csv</button> <span class="note" id="rv-count">0 reviewed</span></div></fieldset>
  <div class="note" id="about"></div>
 </div>
</div>
<div id="js-status" data-status="loading" data-errors="" style="display:none"></div>
<script type="application/json" id="usvpipe-data">@@DATA@@</script>
<script>
"use strict";
(function () {
var T_START = performance.now();
var D = JSON.parse(document.getElementById("usvpipe-data").textContent);
var N = D.n, S = 65535;
var cv = document.getElementById("cv"), ctx = cv.getContext("2d");
var plot = document.getElementById("plot");
document.getElementById("title").textContent = D.title;
document.getElementById("about").textContent = "usvpipe " + D.version + " \u00b7 " + (D.params.method || "") + " \u00b7 " + N + " syllables, " + D.thumbs.length + " with spectrogram thumbnails";

// ---- ids, thumbnails, draw order -------------------------------------------------
function idOf(i) {
  if (D.id_rule === "recording#index") return D.cats.recording.levels[D.cats.recording.codes[i]] + "#" + D.index[i];
  return D.ids[i];
}
var thumbOf = new Int32Array(N).fill(-1);
for (var t = 0; t < D.thumb_rows.length; t++) thumbOf[D.thumb_rows[t]] = t;
function mulberry32(a) { return function () { a |= 0; a = a + 0x6D2B79F5 | 0; var t = Math.imul(a ^ a >>> 15, 1 | a); t = t + Math.imul(t ^ t >>> 7, 61 | t) ^ t; return ((t ^ t >>> 14) >>> 0) / 4294967296; }; }
var order;
if (D.drawn) { order = Int32Array.from(D.drawn); }
else { order = new Int32Array(N); for (var i = 0; i < N; i++) order[i] = i; var rnd = mulberry32(12345); for (var i = N - 1; i > 0; i--) { var j = Math.floor(rnd() * (i + 1)); var tmp = order[i]; order[i] = order[j]; order[j] = tmp; } }

// ---- filters --------------------------------------------------------------------
var catNames = Object.keys(D.cats);
var enabled = {};
catNames.forEach(function (c) { enabled[c] = new Uint8Array(D.cats[c].levels.length).fill(1); });
function visible(i) {
  if (D.cats.group && !enabled.group[D.cats.group.codes[i]]) return false;
  if (D.cats.animal && !enabled.animal[D.cats.animal.codes[i]]) return false;
  return true;
}
function checkboxes(col, el) {
  if (!D.cats[col]) { document.getElementById("fs-" + col).style.display = "none"; return; }
  var C = D.cats[col], counts = new Int32Array(C.levels.length);
  for (var i = 0; i < N; i++) counts[C.codes[i]]++;
  C.levels.forEach(function (lv, k) {
    var lab = document.createElement("label"); lab.style.display = "block";
    var cb = document.createElement("input"); cb.type = "checkbox"; cb.checked = true; cb.dataset.k = k;
    cb.addEventListener("change", function () { enabled[col][k] = cb.checked ? 1 : 0; refilter(); });
    var sw = document.createElement("span"); sw.className = "sw"; sw.style.background = C.colors[k];
    lab.appendChild(cb); lab.appendChild(sw); lab.appendChild(document.createTextNode(lv + " (" + counts[k] + ")"));
    el.appendChild(lab);
  });
}
checkboxes("group", document.getElementById("groups"));
checkboxes("animal", document.getElementById("animals"));
function setAll(col, v) { if (!D.cats[col]) return; enabled[col].fill(v); document.querySelectorAll("#animals input").forEach(function (cb) { cb.checked = !!v; }); refilter(); }
document.getElementById("an-all").onclick = function () { setAll("animal", 1); };
document.getElementById("an-none").onclick = function () { setAll("animal", 0); };

// ---- colours ---------------------------------------------------------------------
var sel = document.getElementById("colorby");
catNames.concat(Object.keys(D.nums)).forEach(function (c) { var o = document.createElement("option"); o.value = c; o.textContent = c; sel.appendChild(o); });
sel.value = D.color_by in D.cats || D.color_by in D.nums ? D.color_by : catNames[0];
function hexToU32(h) { var r = parseInt(h.substr(1, 2), 16), g = parseInt(h.substr(3, 2), 16), b = parseInt(h.substr(5, 2), 16); return (255 << 24 | b << 16 | g << 8 | r) >>> 0; }
var VIR = [[68,1,84],[72,40,120],[62,74,137],[49,104,142],[38,130,142],[31,158,137],[53,183,121],[110,206,88],[181,222,43],[253,231,37]];
var pointColor = new Uint32Array(N);
function recolor() {
  var c = sel.value;
  if (D.cats[c]) {
    var pal = D.cats[c].colors.map(hexToU32), codes = D.cats[c].codes;
    for (var i = 0; i < N; i++) pointColor[i] = pal[codes[i]];
  } else {
    var v = D.nums[c], lo = Infinity, hi = -Infinity;
    for (var i = 0; i < N; i++) if (v[i] !== null) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i]; }
    for (var i = 0; i < N; i++) {
      if (v[i] === null) { pointColor[i] = hexToU32("#bbbbbb"); continue; }
      var f = hi > lo ? (v[i] - lo) / (hi - lo) * 9 : 0, k = Math.min(8, Math.floor(f)), w = f - k, a = VIR[k], b = VIR[k + 1];
      pointColor[i] = (255 << 24 | Math.round(a[2] + w * (b[2] - a[2])) << 16 | Math.round(a[1] + w * (b[1] - a[1])) << 8 | Math.round(a[0] + w * (b[0] - a[0]))) >>> 0;
    }
  }
}
function legend() {
  var c = sel.value, el = document.getElementById("legend"), h = "";
  if (D.cats[c]) {
    var C = D.cats[c], k = Math.min(C.levels.length, 12);
    for (var j = 0; j < k; j++) h += "<span style='white-space:nowrap;margin-right:8px'><span class='sw' style='background:" + C.colors[j] + "'></span>" + esc(C.levels[j]) + "</span> ";
    if (C.levels.length > k) h += "<span class='note'>+" + (C.levels.length - k) + " more</span>";
  } else {
    var v = D.nums[c].filter(function (a) { return a !== null; }), lo = Math.min.apply(null, v.slice(0, 1e5)), hi = Math.max.apply(null, v.slice(0, 1e5));
    for (var i = 0; i < v.length; i += 1e5) { lo = Math.min(lo, Math.min.apply(null, v.slice(i, i + 1e5))); hi = Math.max(hi, Math.max.apply(null, v.slice(i, i + 1e5))); }
    h = "<div style='height:10px;margin-top:4px;background:linear-gradient(to right," + VIR.map(function (a) { return "rgb(" + a.join(",") + ")"; }).join(",") + ")'></div>" +
        "<div class='note' style='display:flex;justify-content:space-between'><span>" + lo.toPrecision(3) + "</span><span>" + hi.toPrecision(3) + "</span></div>";
  }
  el.innerHTML = h;
}
sel.addEventListener("change", function () { recolor(); legend(); draw(); });

// ---- view transform (data units are 0..65535 on both axes, y up) ------------------
var W = 0, H = 0, dpr = 1, view = null;
function resetView() { var m = 12; var s = Math.min((W - 2 * m) / S, (H - 2 * m) / S); view = { s: s, ox: (W - s * S) / 2, oy: (H - s * S) / 2 }; }
function toPx(i) { return [view.ox + D.x[i] * view.s, H - (view.oy + D.y[i] * view.s)]; }
function resize() {
  dpr = window.devicePixelRatio || 1; W = plot.clientWidth; H = plot.clientHeight;
  cv.width = Math.max(1, Math.round(W * dpr)); cv.height = Math.max(1, Math.round(H * dpr));
  if (!view) resetView(); draw();
}

// ---- uniform grid for hit tests over the drawn, visible points --------------------
var G = 128, cellStart, cellItems, nVisibleDrawn = 0, nVisible = 0;
function buildGrid(rows) {
  var counts = new Int32Array(G * G + 1), cell = new Int32Array(rows.length);
  for (var k = 0; k < rows.length; k++) { var i = rows[k]; var c = Math.min(G - 1, D.x[i] * G / (S + 1) | 0) + G * Math.min(G - 1, D.y[i] * G / (S + 1) | 0); cell[k] = c; counts[c + 1]++; }
  for (var c = 0; c < G * G; c++) counts[c + 1] += counts[c];
  var items = new Int32Array(rows.length), fill = counts.slice(0, G * G);
  for (var k = 0; k < rows.length; k++) items[fill[cell[k]]++] = rows[k];
  return { start: counts, items: items };
}
var grid, thumbGrid;
function nearest(g, dx, dy, maxD) {
  // dx, dy in data units; search the rings of cells that can hold a point within maxD
  var cx = Math.floor(dx * G / (S + 1)), cy = Math.floor(dy * G / (S + 1)), r = Math.ceil(maxD * G / (S + 1)) + 1;
  var best = -1, bd = maxD * maxD;
  for (var yy = Math.max(0, cy - r); yy <= Math.min(G - 1, cy + r); yy++)
    for (var xx = Math.max(0, cx - r); xx <= Math.min(G - 1, cx + r); xx++) {
      var c = xx + G * yy;
      for (var k = g.start[c]; k < g.start[c + 1]; k++) { var i = g.items[k], ex = D.x[i] - dx, ey = D.y[i] - dy, d = ex * ex + ey * ey; if (d < bd) { bd = d; best = i; } }
    }
  return best;
}
function refilter() {
  var rows = [], n = 0;
  for (var k = 0; k < order.length; k++) if (visible(order[k])) rows.push(order[k]);
  for (var i = 0; i < N; i++) if (visible(i)) n++;
  nVisibleDrawn = rows.length; nVisible = n;
  grid = buildGrid(rows);
  var trows = []; for (var t = 0; t < D.thumb_rows.length; t++) if (visible(D.thumb_rows[t])) trows.push(D.thumb_rows[t]);
  thumbGrid = buildGrid(trows);
  document.getElementById("counts").textContent = nVisible + " of " + N + " syllables selected; " + nVisibleDrawn + " drawn" + (order.length < N ? " (random subsample of " + order.length + ")" : "");
  draw();
}

// ---- drawing: write pixels directly, in random order ------------------------------
var selected = -1;
function draw() {
  if (!view || !grid) return;
  var w = cv.width, h = cv.height, img = ctx.createImageData(w, h), buf = new Uint32Array(img.data.buffer);
  buf.fill(0xffffffff);
  var nd = nVisibleDrawn, r = Math.max(1, Math.round(dpr * (nd < 20000 ? 3 : nd < 60000 ? 2 : 1.5) * Math.min(3, Math.sqrt(view.s * S / Math.min(W, H)))));
  for (var k = 0; k < order.length; k++) {
    var i = order[k]; if (!visible(i)) continue;
    var px = Math.round((view.ox + D.x[i] * view.s) * dpr - r / 2), py = Math.round((H - (view.oy + D.y[i] * view.s)) * dpr - r / 2), col = pointColor[i];
    if (px + r < 0 || py + r < 0 || px >= w || py >= h) continue;
    for (var yy = Math.max(0, py); yy < Math.min(h, py + r); yy++) { var o = yy * w; for (var xx = Math.max(0, px); xx < Math.min(w, px + r); xx++) buf[o + xx] = col; }
  }
  ctx.putImageData(img, 0, 0);
  if (selected >= 0) {
    var p = toPx(selected);
    ctx.save(); ctx.scale(dpr, dpr); ctx.lineWidth = 2; ctx.strokeStyle = "#000"; ctx.beginPath(); ctx.arc(p[0], p[1], 7, 0, 2 * Math.PI); ctx.stroke();
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 1; ctx.beginPath(); ctx.arc(p[0], p[1], 8.5, 0, 2 * Math.PI); ctx.stroke(); ctx.restore();
  }
}

// ---- hover panel --------------------------------------------------------------------
var LUT = D.lut;
function showThumb(canvas, t) {
  var im = new Image();
  im.onload = function () {
    var px = D.thumb_px, off = document.createElement("canvas"); off.width = px; off.height = px;
    var c2 = off.getContext("2d"); c2.drawImage(im, 0, 0);
    var d = c2.getImageData(0, 0, px, px), a = d.data;
    for (var q = 0; q < a.length; q += 4) { var v = a[q]; a[q] = LUT[3 * v]; a[q + 1] = LUT[3 * v + 1]; a[q + 2] = LUT[3 * v + 2]; a[q + 3] = 255; }
    c2.putImageData(d, 0, 0);
    var c3 = canvas.getContext("2d"); c3.imageSmoothingEnabled = false; c3.drawImage(off, 0, 0, canvas.width, canvas.height);
    document.getElementById("js-status").dataset.thumb = "shown";
  };
  im.onerror = function () { window.__errors.push("thumbnail " + t + " failed to decode"); };
  im.src = (D.thumbs[t].charAt(0) === "/" ? "data:image/jpeg;base64," : "data:image/png;base64,") + D.thumbs[t];
}
function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; }); }
function cat(c, i) { return D.cats[c] ? D.cats[c].levels[D.cats[c].codes[i]] : ""; }
function show(i) {
  var el = document.getElementById("hover");
  if (i < 0) return;
  var rows = [["id", idOf(i)], ["recording", cat("recording", i)], ["animal", cat("animal", i)], ["group", cat("group", i)]];
  if (D.onset_s && D.onset_s[i] !== null && D.offset_s[i] !== null) rows.push(["time", D.onset_s[i].toFixed(3) + "\u2013" + D.offset_s[i].toFixed(3) + " s (" + Math.round(1000 * (D.offset_s[i] - D.onset_s[i])) + " ms)"]);
  if (D.color_by && D.nums[D.color_by]) rows.push([D.color_by, D.nums[D.color_by][i]]);
  if (D.color_by && D.cats[D.color_by] && ["group", "animal", "recording"].indexOf(D.color_by) < 0) rows.push([D.color_by, cat(D.color_by, i)]);
  rows.push(["row", i]);
  var html = "", t = thumbOf[i], other = -1;
  if (t < 0 && D.thumbs.length) { other = nearest(thumbGrid, D.x[i], D.y[i], S * 2); }
  if (t >= 0 || other >= 0) html += "<canvas id='thumb' width='192' height='192'></canvas>";
  if ((t >= 0 || other >= 0) && D.image_axes) html += "<div class='note' id='thumb-axes'>" + esc(axesText(t >= 0 ? i : other)) + "</div>";
  if (t < 0 && other >= 0) html += "<div class='note'>no thumbnail for this point; nearest with one: " + esc(idOf(other)) + "</div>";
  if (t < 0 && other < 0) html += "<div class='note'>no spectrogram thumbnails in this file</div>";
  html += "<table class='meta'>" + rows.map(function (r) { return "<tr><td>" + esc(r[0]) + "</td><td>" + esc(r[1]) + "</td></tr>"; }).join("") + "</table>";
  el.innerHTML = html;
  if (t >= 0) showThumb(document.getElementById("thumb"), t);
  else if (other >= 0) showThumb(document.getElementById("thumb"), thumbOf[other]);
  document.getElementById("js-status").dataset.selected = String(i);
  updatePlay(i); showReview(i);
}
// ---- sound: time-expanded clips cut from the recordings --------------------------------
var clipOf = new Int32Array(N).fill(-1);
for (var c = 0; c < D.clip_rows.length; c++) clipOf[D.clip_rows[c]] = c;
var playBtn = document.getElementById("play"), audioNote = document.getElementById("audio-note"), player = null;
if (!D.clips.length) { audioNote.textContent = "no sound in this file (needs the recordings when the explorer is made)"; }
else { audioNote.textContent = D.clips.length + " points can be heard, " + D.time_expansion + "\u00d7 slower"; }
function clipFor(i) {
  // this point's clip, else the nearest point's that has one
  if (i < 0) return -1;
  if (clipOf[i] >= 0) return i;
  if (!D.clips.length) return -1;
  var best = -1, bd = Infinity;
  for (var c = 0; c < D.clip_rows.length; c++) {
    var r = D.clip_rows[c], dx = D.x[r] - D.x[i], dy = D.y[r] - D.y[i], d = dx * dx + dy * dy;
    if (d < bd && visible(r)) { bd = d; best = r; }
  }
  return best;
}
function play(i) {
  var r = clipFor(i); if (r < 0) return;
  if (player) { player.pause(); }
  player = new Audio("data:audio/wav;base64," + D.clips[clipOf[r]]);
  var st = document.getElementById("js-status");
  player.addEventListener("loadedmetadata", function () { st.dataset.clipms = (1000 * player.duration).toFixed(0); });
  player.addEventListener("error", function () { window.__errors.push("clip of " + idOf(r) + " failed to decode"); });
  var p = player.play(); if (p && p.catch) p.catch(function (e) { audioNote.textContent = "the browser refused to play: " + e; });
  document.getElementById("js-status").dataset.played = idOf(r);
}
playBtn.addEventListener("click", function () { play(selected); });
function updatePlay(i) {
  var r = clipFor(i);
  playBtn.disabled = r < 0;
  playBtn.textContent = "\u25b6 play" + (r >= 0 ? " (" + D.time_expansion + "\u00d7 slower" + (r !== i ? ", nearest with sound" : "") + ")" : "");
}

// ---- review: mark detections call / noise / relabel, export a CSV --------------------------
var STORE_KEY = "usvpipe-review:" + D.title + ":" + N;
var reviews = {};
try { reviews = JSON.parse(localStorage.getItem(STORE_KEY) || "{}"); } catch (e) { reviews = {}; }
function saveReviews() {
  try { localStorage.setItem(STORE_KEY, JSON.stringify(reviews)); } catch (e) { /* file:// may forbid storage */ }
  var n = Object.keys(reviews).length;
  document.getElementById("rv-count").textContent = n + " reviewed";
  var st = document.getElementById("js-status");
  st.dataset.reviewed = String(n); st.dataset.reviewcsv = reviewCsv();
}
function mark(kind, given) {
  if (selected < 0) return;
  var label = kind;  // the label column: "call", "noise" or the new label
  if (kind === "relabel") { label = given !== undefined ? given : window.prompt("new label for " + idOf(selected), ""); if (label === null) return; }
  if (kind === "clear") delete reviews[idOf(selected)]; else reviews[idOf(selected)] = { row: selected, review: kind, label: label };
  saveReviews(); showReview(selected);
}
function showReview(i) {
  var r = i >= 0 ? reviews[idOf(i)] : null;
  document.getElementById("rv-state").textContent = i < 0 ? "click a point, then mark it" :
    (r ? idOf(i) + ": " + r.review + (r.label ? " (" + r.label + ")" : "") : idOf(i) + ": not reviewed");
}
function csvCell(v) {
  v = String(v === null || v === undefined ? "" : v);
  // a text cell Excel would run as a formula gets an apostrophe (usvpipe._csv.neutralise_cell)
  if (/^'*[=+\-@\t\r]/.test(v) && !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v)) v = "'" + v;
  return /[",\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v; }
function reviewCsv() {
  var lines = ["id,recording,onset_s,offset_s,review,label"];
  Object.keys(reviews).sort().forEach(function (id) {
    var r = reviews[id], i = r.row;
    lines.push([id, cat("recording", i), D.onset_s ? D.onset_s[i] : "", D.offset_s ? D.offset_s[i] : "", r.review, r.label].map(csvCell).join(","));
  });
  return lines.join("\n") + "\n";
}
window.usvpipeReviewCsv = reviewCsv;  // for headless checks and the console
document.getElementById("rv-call").addEventListener("click", function () { mark("call"); });
document.getElementById("rv-noise").addEventListener("click", function () { mark("noise"); });
document.getElementById("rv-relabel").addEventListener("click", function () { mark("relabel"); });
document.getElementById("rv-clear").addEventListener("click", function () { mark("clear"); });
document.getElementById("rv-export").addEventListener("click", function () {
  var a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([reviewCsv()], { type: "text/csv" }));
  a.download = "review.csv"; document.body.appendChild(a); a.click(); a.remove();
});
window.addEventListener("keydown", function (ev) {
  if (ev.target && (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT")) return;
  if (ev.key === "c") mark("call"); else if (ev.key === "n") mark("noise"); else if (ev.key === "r") mark("relabel");
  else if (ev.key === "p" || ev.key === " ") { play(selected); ev.preventDefault(); }
  else if (ev.key === "Escape") { pinned = -1; }
});

function axesText(i) {
  // what the thumbnail's axes mean: frequency bottom to top, and the time span it covers
  var A = D.image_axes, span = A.max_dur_ms;
  if (A.time_stretch && D.onset_s && D.onset_s[i] !== null && D.offset_s[i] !== null) {
    var d = 1000 * (D.offset_s[i] - D.onset_s[i]);
    if (d < A.max_dur_ms) span = Math.sqrt(Math.max(d, 0) * A.max_dur_ms);
  }
  return "spectrogram: " + A.freq_khz[0].toFixed(0) + "\u2013" + A.freq_khz[1].toFixed(0) + " kHz bottom to top, " +
    span.toFixed(0) + " ms wide" + (A.time_stretch ? " (time-stretched: width \u221d \u221aduration)" : "");
}
function pick(ev) {
  var rect = cv.getBoundingClientRect(), mx = ev.clientX - rect.left, my = ev.clientY - rect.top;
  var dx = (mx - view.ox) / view.s, dy = (H - my - view.oy) / view.s;
  return nearest(grid, dx, dy, 10 / view.s);
}
var drag = null;
cv.addEventListener("mousemove", function (ev) {
  if (drag) { view.ox = drag.ox + ev.clientX - drag.x; view.oy = drag.oy - (ev.clientY - drag.y); draw(); return; }
  if (pinned >= 0) return;  // a clicked point stays selected (for listening and review) until Escape
  var i = pick(ev); if (i >= 0 && i !== selected) { selected = i; show(i); draw(); }
});
cv.addEventListener("mousedown", function (ev) { drag = { x: ev.clientX, y: ev.clientY, ox: view.ox, oy: view.oy }; });
window.addEventListener("mouseup", function () { drag = null; });
cv.addEventListener("dblclick", function () { resetView(); draw(); });
var pinned = -1;
cv.addEventListener("click", function (ev) {
  var i = pick(ev); pinned = i; if (i < 0) return;
  selected = i; show(i); draw();
  if (document.getElementById("play-on-click").checked) play(i);
});
cv.addEventListener("wheel", function (ev) {
  ev.preventDefault();
  var rect = cv.getBoundingClientRect(), mx = ev.clientX - rect.left, my = H - (ev.clientY - rect.top), f = Math.exp(-ev.deltaY * 0.0015);
  view.ox = mx - (mx - view.ox) * f; view.oy = my - (my - view.oy) * f; view.s *= f; draw();
}, { passive: false });
window.addEventListener("resize", resize);

// ---- start; optional pre-selection from the URL (#row=123 or #id=rec#4) -------------
recolor(); legend(); refilter(); resize();
function fromHash() {
  // "#row=12", "#id=<syllable id>", optionally "&color=<column>", "&review=call|noise|relabel:<label>", "&play=1"
  var i = -1, review = null, doPlay = false;
  location.hash.slice(1).split("&").forEach(function (part) {
    var eq = part.indexOf("="), key = part.slice(0, eq), val = decodeURIComponent(part.slice(eq + 1));
    if (key === "row") i = parseInt(val, 10);
    else if (key === "id") { for (var k = 0; k < N; k++) if (idOf(k) === val) { i = k; break; } }
    else if (key === "color" && (D.cats[val] || D.nums[val])) { sel.value = val; recolor(); legend(); draw(); }
    else if (key === "review") review = val;
    else if (key === "play") doPlay = val === "1";
  });
  if (i >= 0 && i < N) {
    selected = i; pinned = i; show(i); draw();
    if (review) { var k = review.split(":"); mark(k[0], k.length > 1 ? k.slice(1).join(":") : undefined); }
    if (doPlay) play(i);
  }
}
fromHash(); window.addEventListener("hashchange", fromHash);
var st = document.getElementById("js-status"); st.dataset.status = "ready"; st.dataset.n = String(N);
var t0 = performance.now(); draw(); st.dataset.drawms = (performance.now() - t0).toFixed(1);  // one full redraw, for benchmarks
st.dataset.loadms = (t0 - T_START).toFixed(1);
})();
</script>
<script>
// Publish the collected errors (runs even if the main script threw).
(function () { var st = document.getElementById("js-status"); function pub() { st.dataset.errors = window.__errors.join(" | "); st.dataset.nerrors = String(window.__errors.length); } pub(); setInterval(pub, 200); })();
</script>
</body></html>
"""
