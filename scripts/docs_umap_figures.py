#!/usr/bin/env python
"""Regenerate the pictures of `usvpipe umap` in docs/umap.md (docs/img/umap_*.png; the explorer screenshots come from scripts/docs_screenshots.py).

    OMP_NUM_THREADS=2 python scripts/docs_umap_figures.py [--out docs/img] [--n-per-animal 400]

Synthetic data, no VAE needed: calls drawn with ``usvpipe.synth.sample_calls`` (two
groups shifted by 0.5 SD, four animals each with an individual offset), their
spectrograms rendered with ``render_call_image`` into a syllable store, and a
"latent" vector per call = the standardised call parameters (log scale for the
positive ones). The traversal figure decodes latents with the known generative model
(inverse standardisation + ``render_call_image``), standing in for ``usvpipe.vae.decode``.
The explorer screenshots: scripts/docs_screenshots.py.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOG_PARAMS = ("duration_s", "fm_depth_hz", "fm_rate_hz")
SHAPE = (64, 64)
WINDOW_S = 0.12  # zoomed in a little compared with the store default, for legible thumbnails


def build(tmp: Path, n_per_animal: int, seed: int = 0):
    import pandas as pd

    from usvpipe.store import open_store, write_shard
    from usvpipe.synth import SHAPE_PARAMS, render_call_image, sample_calls

    rng = np.random.default_rng(seed)
    params = []
    for g_i, g in enumerate(("control", "deaf")):
        for a in range(4):
            offset = rng.normal(0, 0.3, len(SHAPE_PARAMS))
            calls = sample_calls(n_per_animal, group_shift=0.5 * g_i, animal_offset=offset, seed=int(rng.integers(1 << 31)))
            imgs = np.stack([render_call_image(c, SHAPE, noise=0.01, seed=i, window_s=WINDOW_S) for i, c in enumerate(calls.to_dict("records"))])
            on = np.sort(rng.uniform(0, 300, n_per_animal))
            rec = f"{g}/{g[0]}{a}/session1.wav"
            write_shard(tmp / "store", rec, imgs, on, on + calls["duration_s"].to_numpy(), animal=f"{g[0]}{a}", group=g)
            calls["recording"] = rec
            calls["onset_s"] = on
            params.append(calls)
    store = open_store(tmp / "store")
    table = store.table.copy()
    calls = pd.concat(params, ignore_index=True).sort_values(["recording", "onset_s"]).reset_index(drop=True)
    cols = list(SHAPE_PARAMS)
    raw = calls[cols].to_numpy(dtype=float).copy()
    for j, c in enumerate(cols):
        if c in LOG_PARAMS:
            raw[:, j] = np.log(np.maximum(raw[:, j], 1e-3))
    mu, sd = raw.mean(0), raw.std(0) + 1e-9
    z = (raw - mu) / sd
    for j in range(z.shape[1]):
        table[f"z{j}"] = z[:, j]
    table["duration_ms"] = 1000 * (table["offset_s"] - table["onset_s"])

    def decode(zs):
        v = zs * sd + mu
        out = []
        for row in v:
            d = dict(zip(cols, row))
            for c in LOG_PARAMS:
                d[c] = float(np.exp(d[c]))
            d["amplitude"] = 1.0
            full = {**calls.iloc[0].to_dict(), **d}
            out.append(render_call_image({k: full[k] for k in ("start_freq_hz", "end_freq_hz", "duration_s", "fm_depth_hz", "fm_rate_hz", "harmonic_ratio", "amplitude")}, SHAPE, window_s=WINDOW_S))
        return np.stack(out)

    return store, table, decode


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    ap.add_argument("--n-per-animal", type=int, default=400)
    ap.add_argument("--method", default="umap", choices=["umap", "pca"])
    args = ap.parse_args(argv)

    from PIL import Image

    from usvpipe.viz import UmapParams, run_umap

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store, table, decode = build(tmp, args.n_per_animal)
        run = run_umap(table, tmp / "out", UmapParams(method=args.method, figure_formats=("png",), dpi=150, max_thumbnails=2000),
                       store=store, color_by="duration_ms", decode_fn=decode)
        names = {"scatter_group": "umap_scatter_group.png", "scatter_duration_ms": "umap_scatter_duration.png",
                 "density": "umap_density.png", "spectrogram_grid": "umap_spectrogram_grid.png", "traversal_control_to_deaf": "umap_traversal.png"}
        for key, name in names.items():
            im = Image.open(run.figures[key][0])
            if run.figures[key][0].stat().st_size > 200_000:  # keep the guides' images small
                im = im.convert("RGB").quantize(colors=256)
            im.save(args.out / name, optimize=True)
        # the explorer's screenshot comes from scripts/docs_screenshots.py (the browser tests' driver)
        for p in sorted(args.out.glob("umap_*.png")) + sorted(args.out.glob("explorer*.png")):
            print(f"{p}: {p.stat().st_size / 1024:.0f} KB")
        print(f"explorer.html: {run.explorer.stat().st_size / 2**20:.1f} MB for {len(table)} points, timings {run.timings}")


if __name__ == "__main__":
    main()
