"""The explorer's page: HTML, CSS and script, with ``@@TITLE@@`` and ``@@DATA@@`` to fill in.

Kept apart from the payload code (``_explorer.py``) because it is one concern (what the browser
runs) and most of the lines. The same page works from ``file://`` (everything inline; a hundred
clips embedded) and served by ``usvpipe explore`` (``_explore_server.py``), which puts
``window.USVPIPE_SERVER = {clip, review, reviews}`` before the data: then every syllable is played
from ``/clip/<row>.wav`` and each review mark is saved into the run's ``review.csv``.
"""
from __future__ import annotations

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@@TITLE@@</title>
<link rel="icon" href="data:,">
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
#hover{min-height:120px}
.help{font-size:12px;margin:4px 0;padding:3px 5px;background:#eef3f8;border-radius:3px}
#thumb{width:160px;height:160px;image-rendering:pixelated;border:1px solid #ccc;background:#000;display:block;margin:4px 0}
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
  <div class="help" id="help">Hover a point; <b>click to pin, Esc to unpin</b>. Wheel: zoom, drag: pan, double-click: reset.</div>
  <fieldset id="fs-syllable"><legend>Syllable</legend><div id="hover"><div class="note">Hover a point to see its spectrogram.</div></div>
   <div id="audio-row"><button id="play" disabled>&#9654; play (p)</button> <label><input type="checkbox" id="play-on-click"> play on click</label> <div class="note" id="audio-note"></div></div>
   <audio id="player" preload="none"></audio></fieldset>
  <fieldset id="fs-review"><legend>Review</legend>
   <div><button id="rv-call" title="key c">call (c)</button> <button id="rv-noise" title="key n">noise (n)</button> <button id="rv-relabel" title="key r">relabel&hellip; (r)</button> <button id="rv-clear">clear</button></div>
   <div class="note" id="rv-state">click a point, then mark it</div>
   <div><button id="rv-export">export review.csv</button> <span class="note" id="rv-count">0 reviewed</span></div></fieldset>
  <fieldset><legend>Colour by</legend><select id="colorby"></select><div id="legend"></div></fieldset>
  <fieldset id="fs-group"><legend>Groups</legend><div class="list" id="groups"></div></fieldset>
  <fieldset id="fs-animal"><legend>Animals <button id="an-all">all</button> <button id="an-none">none</button></legend><div class="list" id="animals"></div></fieldset>
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
// margins leave room for the axes' ticks and names (left 56 px, bottom 34 px)
var ML = 56, MB = 34, MR = 12, MT = 12;
function resetView() { var s = Math.min((W - ML - MR) / S, (H - MB - MT) / S); view = { s: s, ox: ML + (W - ML - MR - s * S) / 2, oy: MB + (H - MB - MT - s * S) / 2 }; }
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
  // points big enough to hit when few (6 px below 2,000), small enough not to hide each other when many
  var nd = nVisibleDrawn, r = Math.max(1, Math.round(dpr * (nd < 2000 ? 6 : nd < 20000 ? 3.5 : nd < 60000 ? 2 : 1.5) * Math.min(3, Math.sqrt(view.s * S / Math.min(W, H)))));
  for (var k = 0; k < order.length; k++) {
    var i = order[k]; if (!visible(i)) continue;
    var px = Math.round((view.ox + D.x[i] * view.s) * dpr - r / 2), py = Math.round((H - (view.oy + D.y[i] * view.s)) * dpr - r / 2), col = pointColor[i];
    if (px + r < 0 || py + r < 0 || px >= w || py >= h) continue;
    for (var yy = Math.max(0, py); yy < Math.min(h, py + r); yy++) { var o = yy * w; for (var xx = Math.max(0, px); xx < Math.min(w, px + r); xx++) buf[o + xx] = col; }
  }
  ctx.putImageData(img, 0, 0);
  drawAxes();
  if (selected >= 0) {
    var p = toPx(selected);
    ctx.save(); ctx.scale(dpr, dpr); ctx.lineWidth = 2; ctx.strokeStyle = "#000"; ctx.beginPath(); ctx.arc(p[0], p[1], 7, 0, 2 * Math.PI); ctx.stroke();
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 1; ctx.beginPath(); ctx.arc(p[0], p[1], 8.5, 0, 2 * Math.PI); ctx.stroke(); ctx.restore();
  }
}

// ---- axes: the embedding's own coordinates (no unit), ticks at round values ------------------
function niceStep(span, n) { var raw = span / n, p = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10)), m = raw / p; return p * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10); }
function axisTicks(lo, hi) { var step = niceStep(hi - lo, 5), out = []; for (var v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v); return out; }
function drawAxes() {
  var xs = (D.xrange[1] - D.xrange[0]) || 1, ys = (D.yrange[1] - D.yrange[0]) || 1;
  function xPx(v) { return view.ox + (v - D.xrange[0]) / xs * S * view.s; }
  function yPx(v) { return H - (view.oy + (v - D.yrange[0]) / ys * S * view.s); }
  var name = /pca/i.test(D.params.method || "") ? "PC" : "UMAP";
  ctx.save(); ctx.scale(dpr, dpr);
  ctx.fillStyle = "rgba(255,255,255,0.9)"; ctx.fillRect(0, H - MB + 4, W, MB); ctx.fillRect(0, 0, ML - 4, H);
  ctx.strokeStyle = "#999"; ctx.fillStyle = "#555"; ctx.lineWidth = 1; ctx.font = "11px system-ui,sans-serif";
  ctx.beginPath(); ctx.moveTo(ML - 4, 0); ctx.lineTo(ML - 4, H - MB + 4); ctx.lineTo(W, H - MB + 4); ctx.stroke();
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  var x0 = D.xrange[0] + (ML - 4 - view.ox) / view.s / S * xs, x1 = D.xrange[0] + (W - view.ox) / view.s / S * xs;
  axisTicks(x0, x1).forEach(function (v) { var q = xPx(v); ctx.beginPath(); ctx.moveTo(q, H - MB + 4); ctx.lineTo(q, H - MB + 8); ctx.stroke(); ctx.fillText(+v.toPrecision(3), q, H - MB + 9); });
  ctx.fillText(name + " 1 (no unit)", (ML + W) / 2, H - 13);
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  var y0 = D.yrange[0] + (MB - 4 - view.oy) / view.s / S * ys, y1 = D.yrange[0] + (H - view.oy) / view.s / S * ys;
  axisTicks(y0, y1).forEach(function (v) { var q = yPx(v); ctx.beginPath(); ctx.moveTo(ML - 8, q); ctx.lineTo(ML - 4, q); ctx.stroke(); ctx.fillText(+v.toPrecision(3), ML - 10, q); });
  ctx.translate(10, (H - MB) / 2); ctx.rotate(-Math.PI / 2); ctx.textAlign = "center"; ctx.fillText(name + " 2", 0, 0);
  ctx.restore();
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
  if (t >= 0 || other >= 0) html += "<canvas id='thumb' width='160' height='160'></canvas>";
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
// Offline, up to a hundred clips are embedded and a point without one plays the nearest that has one;
// served by `usvpipe explore`, every syllable's own clip is cut on request from /clip/<row>.wav.
var SRV = window.USVPIPE_SERVER || null;
var SERVED_CLIPS = !!(SRV && SRV.clip && D.onset_s);
var clipOf = new Int32Array(N).fill(-1);
for (var c = 0; c < D.clip_rows.length; c++) clipOf[D.clip_rows[c]] = c;
var playBtn = document.getElementById("play"), audioNote = document.getElementById("audio-note");
var player = document.getElementById("player");
if (SERVED_CLIPS) { audioNote.textContent = "every syllable can be heard, " + D.time_expansion + "\u00d7 slower (cut from its recording)"; }
else if (!D.clips.length) { audioNote.textContent = "no sound in this file (needs the recordings when the explorer is made; or open it with `usvpipe explore`)"; }
else { audioNote.textContent = D.clips.length + " points can be heard, " + D.time_expansion + "\u00d7 slower (`usvpipe explore` plays every one)"; }
function clipFor(i) {
  // this point's clip, else the nearest point's that has one
  if (i < 0) return -1;
  if (SERVED_CLIPS || clipOf[i] >= 0) return i;
  if (!D.clips.length) return -1;
  var best = -1, bd = Infinity;
  for (var c = 0; c < D.clip_rows.length; c++) {
    var r = D.clip_rows[c], dx = D.x[r] - D.x[i], dy = D.y[r] - D.y[i], d = dx * dx + dy * dy;
    if (d < bd && visible(r)) { bd = d; best = r; }
  }
  return best;
}
function clipSrc(r) { return SERVED_CLIPS ? SRV.clip + r + ".wav" : "data:audio/wav;base64," + D.clips[clipOf[r]]; }
var st0 = document.getElementById("js-status");
player.addEventListener("loadedmetadata", function () { st0.dataset.clipms = (1000 * player.duration).toFixed(0); });
player.addEventListener("error", function () { if (player.getAttribute("src")) window.__errors.push("clip " + player.getAttribute("src").slice(0, 40) + " failed to load"); });
function play(i) {
  var r = clipFor(i); if (r < 0) return;
  player.pause(); st0.dataset.clipms = "";
  player.src = clipSrc(r);
  var p = player.play(); if (p && p.catch) p.catch(function (e) { if (e && e.name !== "AbortError") audioNote.textContent = "the browser refused to play: " + e; });
  st0.dataset.played = idOf(r); st0.dataset.playedrow = String(r);
}
playBtn.addEventListener("click", function () { play(selected); });
function updatePlay(i) {
  var r = clipFor(i);
  playBtn.disabled = r < 0;
  playBtn.textContent = "\u25b6 play (p)" + (r >= 0 ? " " + D.time_expansion + "\u00d7 slower" + (r !== i ? ", nearest with sound" : "") : "");
}

// ---- review: mark detections call / noise / relabel, export a CSV --------------------------
var STORE_KEY = "usvpipe-review:" + D.title + ":" + N;
var reviews = {};
try { reviews = JSON.parse(localStorage.getItem(STORE_KEY) || "{}"); } catch (e) { reviews = {}; }
if (SRV && SRV.reviews) { Object.keys(SRV.reviews).forEach(function (id) { reviews[id] = SRV.reviews[id]; }); }  // the run's review.csv wins
function saveReviews() {
  try { localStorage.setItem(STORE_KEY, JSON.stringify(reviews)); } catch (e) { /* file:// may forbid storage */ }
  var n = Object.keys(reviews).length;
  document.getElementById("rv-count").textContent = n + " reviewed" + (SRV && SRV.review ? " (saving\u2026)" : "");
  var st = document.getElementById("js-status");
  st.dataset.reviewed = String(n); st.dataset.reviewcsv = reviewCsv();
  if (SRV && SRV.review) saveToRun(reviewCsv(), n);
}
var saveSeq = 0;
function saveToRun(csv, n) {
  // served: every mark is written into the run folder's review.csv at once (the server checks each id)
  var seq = ++saveSeq, st = document.getElementById("js-status");
  fetch(SRV.review, { method: "POST", headers: { "Content-Type": "text/csv" }, body: csv }).then(function (r) {
    return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.status); return j; });
  }).then(function (j) {
    if (seq !== saveSeq) return;
    document.getElementById("rv-count").textContent = n + " reviewed, saved to " + j.path;
    st.dataset.saved = String(j.n);
  }).catch(function (e) { document.getElementById("rv-count").textContent = n + " reviewed; NOT saved: " + e.message; st.dataset.saved = "error"; });
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
window.usvpipeReviewCsv = reviewCsv;
document.getElementById("rv-count").textContent = Object.keys(reviews).length + " reviewed" + (SRV && SRV.review ? " (each mark is saved to " + SRV.review_path + ")" : "");  // for headless checks and the console
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
  else if (ev.key === "Escape") { pinned = -1; document.getElementById("js-status").dataset.pinned = "-1"; }
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
  return nearest(grid, dx, dy, 12 / view.s);  // within 12 px of the pointer
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
  var i = pick(ev); pinned = i; document.getElementById("js-status").dataset.pinned = String(i); if (i < 0) return;
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
// where row i is drawn, in the window's CSS pixels (for browser tests and screenshot scripts to click it)
window.usvpipePointPx = function (i) { var p = toPx(i), b = cv.getBoundingClientRect(); return [b.left + p[0], b.top + p[1]]; };
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
