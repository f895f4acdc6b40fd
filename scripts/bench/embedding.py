#!/usr/bin/env python
"""Benchmark `usvpipe umap`: projection time at 100k syllables, 1M estimate, explorer size.

    OMP_NUM_THREADS=2 python scripts/bench/embedding.py                 # 100k x 32-d (several minutes)
    OMP_NUM_THREADS=2 python scripts/bench/embedding.py --n 20000 --quick

Synthetic latents: a mixture of 12 Gaussian clusters in 32-d (two groups with shifted
cluster weights). Measured in one run, after a small warm-up that pays numba's JIT:

1. ``umap-learn`` fitted on all n rows (the baseline: what a user does by hand);
2. usvpipe with ``fit_subsample=F`` (fit on F rows, ``transform`` the rest) -> ratio vs 1;
3. PCA (usvpipe) vs scikit-learn's PCA (peer) -> ratio;
4. the explorer (file size, write time) and the static figures at n points;
5. an *estimate* for 1M rows: fit time at F rows + (1M - F) / measured transform rate.

``--skip-full`` skips (1) when the machine is busy. Prints one line per measurement and
a JSON summary at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def make_latents(n: int, dim: int, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    k = 12
    centres = rng.normal(scale=3.0, size=(k, dim))
    group = rng.integers(0, 2, n)
    # groups share clusters but use them with different weights ("highly overlapping")
    w = np.stack([rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))])
    comp = (rng.random(n)[:, None] > np.cumsum(w[group], axis=1)).sum(axis=1)
    z = centres[np.minimum(comp, k - 1)] + rng.normal(size=(n, dim))
    animals = np.array([f"m{i}" for i in range(8)])[group * 4 + rng.integers(0, 4, n)]
    frame = pd.DataFrame({
        "id": [f"r{i // 1000}#{i % 1000}" for i in range(n)],
        "recording": [f"r{i // 1000}" for i in range(n)],
        "animal": animals,
        "group": np.where(group == 1, "B", "A"),
        "onset_s": rng.uniform(0, 600, n).round(4),
        "offset_s": 0.0,
    })
    frame["offset_s"] = frame["onset_s"] + 0.05
    for j in range(dim):
        frame[f"z{j}"] = z[:, j].astype(np.float32)
    return frame


CPU = {}


def timed(fn, key=None):
    """Wall time of fn(); its process CPU time is kept in CPU[key] (the machine is shared:
    CPU time / wall time shows how much of the cores we actually got)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    if key:
        CPU[key] = round(time.process_time() - c, 1)
    return out, time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--fit-subsample", type=int, default=20_000, help="F for the subsample measurement")
    ap.add_argument("--skip-full", action="store_true", help="skip the full umap-learn fit (slowest part)")
    ap.add_argument("--quick", action="store_true", help="skip figures/explorer")
    ap.add_argument("--skip-umap", action="store_true", help="only PCA, figures and explorer (minutes less)")
    ap.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args = ap.parse_args(argv)

    import umap
    from sklearn.decomposition import PCA

    from usvpipe.viz import UmapParams, embed_latents, run_umap
    from usvpipe.viz._projection import embed_array

    warnings.filterwarnings("ignore")
    res = {"n": args.n, "dim": args.dim, "fit_subsample": args.fit_subsample, "threads": os.environ.get("OMP_NUM_THREADS"), "cpus": os.cpu_count()}
    frame = make_latents(args.n, args.dim)
    z = frame[[f"z{j}" for j in range(args.dim)]].to_numpy(np.float32)

    if not args.skip_umap:
        # warm-up: numba JIT of fit and transform (once per environment thanks to numba's cache)
        _, t = timed(lambda: embed_latents(frame.iloc[:600], UmapParams(fit_subsample=400)))
        res["jit_warmup_s"] = round(t, 1)
        print(f"warm-up (numba JIT/cache load, 600 rows): {t:.1f} s", flush=True)

    # PCA: ours vs scikit-learn
    _, t_table = timed(lambda: embed_latents(frame, UmapParams(method="pca")))
    _, t_ours = timed(lambda: embed_array(z, UmapParams(method="pca")))
    _, t_sk = timed(lambda: PCA(n_components=2, svd_solver="full").fit_transform(z))
    res.update(pca_s=round(t_ours, 3), pca_with_table_s=round(t_table, 3), sklearn_pca_s=round(t_sk, 3))
    print(f"PCA {args.n}: usvpipe {t_ours:.3f} s (array; {t_table:.2f} s with table checks), sklearn {t_sk:.3f} s -> sklearn/usvpipe {t_sk / t_ours:.2f}x", flush=True)

    if not args.skip_umap:
        # usvpipe UMAP on a subsample + transform
        # transform in batches so the steady rate (batches after the first, which also
        # compiles pynndescent's search for this index) can be told from the one-off cost
        batch = max(1000, (args.n - args.fit_subsample) // 4)
        emb, t_sub = timed(lambda: embed_latents(frame, UmapParams(fit_subsample=args.fit_subsample, transform_batch=batch)), "subsample")
        tm = emb.attrs["timings"]
        tb = tm.get("transform_batches", [])
        steady = tb[1:] or tb
        rate = sum(b[0] for b in steady) / max(sum(b[1] for b in steady), 1e-9) if steady else float("nan")
        cpu_rate = sum(b[0] for b in steady) / max(sum(b[2] for b in steady), 1e-9) if steady else float("nan")
        res["transform_batches"] = tb
        res.update(sub_total_s=round(t_sub, 1), sub_fit_s=round(tm["fit_s"], 1), sub_fit_cpu_s=round(tm["fit_cpu_s"], 1), sub_transform_s=round(tm["transform_s"], 1),
                   transform_rows_per_s=round(rate), transform_rows_per_cpu_s=round(cpu_rate))
        print(f"UMAP fit {tm['n_fit']} + transform {args.n - tm['n_fit']}: {t_sub:.1f} s (fit {tm['fit_s']:.1f} s = {tm['fit_cpu_s']:.1f} CPU s, transform {tm['transform_s']:.1f} s; "
              f"steady rate after the first batch {rate:.0f} rows/s wall, {cpu_rate:.0f} rows/CPU s)", flush=True)

    if not args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            run, t = timed(lambda: run_umap(frame, tmp, UmapParams(method="pca", figure_formats=("png", "pdf"))))
            size = run.explorer.stat().st_size
            res.update(run_pca_total_s=round(t, 1), figures_s=round(run.timings["figures_s"], 1), explorer_s=round(run.timings["explorer_s"], 1),
                       explorer_mb_no_thumbs=round(size / 2**20, 2), figure_kb={p.name: round(p.stat().st_size / 1024) for ps in run.figures.values() for p in ps})
            print(f"run_umap (PCA) at {args.n}: {t:.1f} s total, figures {run.timings['figures_s']:.1f} s, explorer {run.timings['explorer_s']:.1f} s, explorer.html {size / 2**20:.1f} MB (no thumbnails)", flush=True)
            # peer: the same scatter as a bokeh file (inline resources, hover tooltips with
            # the same metadata, colours by group), the alternative we decided against
            try:
                from bokeh.models import ColumnDataSource, HoverTool
                from bokeh.plotting import figure, output_file, save
                from bokeh.resources import INLINE

                def bokeh_file():
                    emb = pd_read(run.embedding)
                    pal = {"A": "#0072B2", "B": "#D55E00"}
                    src = ColumnDataSource({"x": emb["emb_x"], "y": emb["emb_y"], "id": emb["id"], "group": emb["group"], "animal": emb["animal"],
                                            "onset_s": emb["onset_s"], "color": emb["group"].map(pal)})
                    p = figure(width=900, height=800, output_backend="webgl")
                    p.scatter("x", "y", color="color", size=2, source=src)
                    p.add_tools(HoverTool(tooltips=[("id", "@id"), ("group", "@group"), ("animal", "@animal"), ("onset", "@onset_s")]))
                    out = Path(tmp) / "bokeh.html"
                    output_file(out, mode="inline")
                    save(p, resources=INLINE)
                    return out

                import pandas as pd

                pd_read = lambda p: pd.read_csv(p, dtype={"id": str, "group": str, "animal": str})  # noqa: E731
                bk, t_bk = timed(bokeh_file)
                bsize = bk.stat().st_size
                res.update(bokeh_mb=round(bsize / 2**20, 2), bokeh_s=round(t_bk, 1), bokeh_vs_explorer_size=round(bsize / size, 2))
                print(f"peer bokeh (inline, webgl, hover) at {args.n}: {bsize / 2**20:.1f} MB in {t_bk:.1f} s -> {bsize / size:.2f}x the explorer's size (without thumbnails)", flush=True)
            except ImportError:
                print("bokeh not installed: peer comparison skipped")
        # thumbnails: size per thumbnail of typical synthetic syllables
        try:
            from usvpipe.synth import render_call_image, sample_calls
            from usvpipe.viz._explorer import make_thumbnails

            calls = sample_calls(500, seed=1)
            imgs = np.stack([render_call_image(c, (128, 128), noise=0.05, seed=i) for i, c in enumerate(calls.to_dict("records"))])
            thumbs, t = timed(lambda: make_thumbnails(imgs, 64))
            per = np.mean([len(s) for s in thumbs])
            res.update(thumb_bytes_mean=round(per), thumb_ms=round(1000 * t / len(thumbs), 2))
            print(f"thumbnails 64x64: {per / 1024:.2f} KB each (base64), {1000 * t / len(thumbs):.2f} ms each -> 5000 thumbnails add {5000 * per / 2**20:.1f} MB", flush=True)
            # the explorer at n points with 5000 thumbnails, rendered in headless Chromium
            from usvpipe.viz._explorer import choose_thumbnail_rows, explorer_payload, write_explorer

            big = sample_calls(5000, seed=2).to_dict("records")
            imgs = np.stack([render_call_image(c, (128, 128), noise=0.05, seed=i) for i, c in enumerate(big)])
            emb = embed_latents(frame, UmapParams(method="pca"))
            rows = choose_thumbnail_rows(emb["group"].to_numpy(), np.arange(len(emb)), 5000)
            thumbs = dict(zip(rows.tolist(), make_thumbnails(imgs[: len(rows)], 64)))
            with tempfile.TemporaryDirectory() as tmp:
                page = Path(tmp) / "explorer.html"
                write_explorer(page, explorer_payload(emb, color_by="group", colors={}, thumbnails=thumbs, drawn_rows=None, thumbnail_px=64, title="bench", params={}))
                res["explorer_mb_with_thumbs"] = round(page.stat().st_size / 2**20, 1)
                print(f"explorer.html at {args.n} points + {len(thumbs)} thumbnails: {page.stat().st_size / 2**20:.1f} MB", flush=True)
                sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
                from render_explorer import check, find_browser

                if find_browser():
                    s = check(page, select=int(rows[0]), budget_ms=20000, timeout_s=300)
                    res.update(chromium_ok=s["ok"], chromium_parse_index_ms=s["parse_and_index_ms"], chromium_redraw_ms=s["redraw_ms"])
                    print(f"headless Chromium: ok={s['ok']}, parse+index {s['parse_and_index_ms']} ms, full redraw {s['redraw_ms']} ms (errors: {s['page_errors'] + s['console_errors']})", flush=True)
        except ImportError:
            pass
    if args.skip_umap:
        pass
    elif not args.skip_full:
        red = umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=0)
        _, t_full = timed(lambda: red.fit_transform(z), "full")
        res.update(full_fit_s=round(t_full, 1), speedup_subsample_vs_full=round(t_full / t_sub, 2), speedup_subsample_vs_full_cpu=round(CPU["full"] / CPU["subsample"], 2))
        print(f"baseline umap-learn fit on all {args.n}: {t_full:.1f} s wall, {CPU['full']:.1f} CPU s -> usvpipe subsample+transform / full fit speed ratio: "
              f"{t_full / t_sub:.2f}x wall, {CPU['full'] / CPU['subsample']:.2f}x CPU", flush=True)
        fit_rate_s = t_full  # fit time at n rows, used for the 1M estimate below
        n_fit_ref = args.n
    else:
        fit_rate_s, n_fit_ref = tm["fit_s"], tm["n_fit"]

    if not args.skip_umap:
        estimate_1m(res, fit_rate_s, n_fit_ref, rate)
        fit_cpu = CPU.get("full", tm["fit_cpu_s"])
        estimate_1m(res, fit_cpu, n_fit_ref, cpu_rate, label="CPU")
    res["cpu_s"] = CPU
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


def estimate_1m(res, fit_rate_s, n_fit_ref, rate, label="wall"):
    from usvpipe.viz import UmapParams

    # 1M estimate with the default fit_subsample (100k): fit(100k) + 900k / transform rate.
    # UMAP's fit grows ~ n log n (nearest-neighbour descent + fixed epochs): scale the measured fit.
    n_default = UmapParams().fit_subsample
    fit_100k = fit_rate_s * (n_default * np.log(n_default)) / (n_fit_ref * np.log(n_fit_ref))
    est_1m = fit_100k + (1_000_000 - n_default) / rate
    res.update({f"estimate_1m_{label}_s": round(est_1m), f"estimate_fit_100k_{label}_s": round(fit_100k)})
    print(f"ESTIMATE 1M rows (fit 100k + transform 900k), {label} time: ~{est_1m / 60:.1f} min (fit ~{fit_100k:.0f} s, transform ~{(1_000_000 - n_default) / rate:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
