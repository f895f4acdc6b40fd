"""Tests of the latent-space pictures stage (usvpipe.viz, `usvpipe umap`).

Most tests use PCA (instant); one small UMAP test covers fit-on-subsample + transform
(its first call JIT-compiles numba code, ~10-30 s once per process).
"""
from __future__ import annotations

import dataclasses

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from usvpipe.errors import InputFileError, UsvpipeError
from usvpipe.store import open_store, write_shard
from usvpipe.viz import (
    OKABE_ITO,
    TOL_MUTED,
    UmapParams,
    category_colors,
    embed_latents,
    latent_path,
    run_umap,
    traversal_strip,
)

ROOT = Path(__file__).resolve().parents[1]
SPEC = (24, 24)
GROUPS = ("ctrl", "ko")


def _images(rng, rows_bright, n):
    imgs = (rng.random((n, *SPEC)) * 0.15).astype(np.float32)
    for k, r in enumerate(rows_bright):
        imgs[k, r : r + 2, :] = 1.0  # a flat "call" at a per-syllable frequency row
    return imgs


def make_store_and_latents(tmp_path, *, n_per_rec=30, animals=3, dim=4, seed=0):
    """Store (2 groups x `animals` animals, one recording each) + matching latents table.

    Latents are shuffled relative to the store order so the id mapping is exercised.
    """
    rng = np.random.default_rng(seed)
    store = tmp_path / "store"
    for g_i, g in enumerate(GROUPS):
        for a in range(animals):
            rows = rng.integers(0, SPEC[0] - 2, n_per_rec)
            on = np.sort(rng.uniform(0, 60, n_per_rec))
            write_shard(store, f"{g}/m{a}/day1.wav", _images(rng, rows, n_per_rec), on, on + rng.uniform(0.01, 0.1, n_per_rec),
                        animal=f"{g}-m{a}", group=g, columns={"score": rng.random(n_per_rec)})
    table = open_store(store).table.copy()
    z = rng.normal(size=(len(table), dim))
    z[:, 0] += np.where(table["group"] == "ko", 4.0, 0.0)  # groups well separated along z0
    for j in range(dim):
        table[f"z{j}"] = z[:, j]
    table = table.sample(frac=1.0, random_state=1).reset_index(drop=True)
    path = tmp_path / "latents.csv"
    table.to_csv(path, index=False)
    return store, path, table


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_store_and_latents(tmp_path_factory.mktemp("viz"))


@pytest.fixture(scope="module")
def pca_run(data, tmp_path_factory):
    store, latents, _ = data
    out = tmp_path_factory.mktemp("out")
    return run_umap(latents, out, UmapParams(method="pca", dpi=80), store=store)


def explorer_data(html_path) -> dict:
    text = Path(html_path).read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="usvpipe-data">(.*?)</script>', text, re.S)
    assert m, "explorer has no embedded data"
    return json.loads(m.group(1).replace("<\\/", "</"))


def explorer_ids(d) -> list[str]:
    if d["id_rule"] == "recording#index":
        rec = d["cats"]["recording"]
        return [f"{rec['levels'][c]}#{i}" for c, i in zip(rec["codes"], d["index"])]
    return d["ids"]


# ------------------------------------------------------------------ projection
def test_pca_embedding_aligns_and_matches_principal_axes(data):
    _, latents, table = data
    emb = embed_latents(latents, UmapParams(method="pca"))
    assert list(emb["id"]) == list(table["id"])  # same rows, same order
    assert [c for c in emb.columns if c.startswith("z")] == []
    assert {"recording", "animal", "group", "onset_s", "shard", "index", "score"} <= set(emb.columns)
    assert emb["fitted"].all()
    z = table[[f"z{j}" for j in range(4)]].to_numpy()
    zc = z - z.mean(axis=0)
    _, _, vt = np.linalg.svd(zc, full_matrices=False)
    ref = zc @ vt[:2].T
    got = emb[["emb_x", "emb_y"]].to_numpy()
    for k in range(2):  # equal up to the sign of each axis
        assert min(np.abs(got[:, k] - ref[:, k]).max(), np.abs(got[:, k] + ref[:, k]).max()) < 1e-4


def test_pca_fit_subsample_transforms_the_rest(data):
    _, _, table = data
    emb = embed_latents(table, UmapParams(method="pca", fit_subsample=50, seed=3))
    assert emb["fitted"].sum() == 50 and len(emb) == len(table)
    assert np.isfinite(emb[["emb_x", "emb_y"]].to_numpy()).all()
    # the first axis still separates the groups (it is fitted on a subsample of both)
    x = emb["emb_x"].to_numpy()
    ko = (emb["group"] == "ko").to_numpy()
    assert abs(x[ko].mean() - x[~ko].mean()) > 3 * max(x[ko].std(), x[~ko].std()) / 2


def test_umap_small_with_subsample_separates_groups():
    rng = np.random.default_rng(0)
    n = 150
    g = np.repeat(["a", "b"], n // 2)
    z = rng.normal(size=(n, 5)) + np.where(g == "b", 6.0, 0.0)[:, None]
    frame = pd.DataFrame({"id": [f"s{i}" for i in range(n)], "group": g, **{f"z{j}": z[:, j] for j in range(5)}})
    emb = embed_latents(frame, UmapParams(n_neighbors=10, fit_subsample=100, seed=0))
    assert emb["fitted"].sum() == 100
    xy = emb[["emb_x", "emb_y"]].to_numpy()
    assert np.isfinite(xy).all()
    # 1-nearest-neighbour group agreement in 2-D (also for the transformed points)
    d = ((xy[:, None] - xy[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    agree = (g[d.argmin(1)] == g)
    assert agree.mean() > 0.95 and agree[~emb["fitted"].to_numpy()].mean() > 0.9


def test_small_fully_fitted_umap_uses_exact_neighbours_and_keeps_the_structure():
    from usvpipe.viz._projection import embed_array, exact_knn

    rng = np.random.default_rng(1)
    g = np.repeat([0, 1, 2], 40)
    z = rng.normal(size=(120, 6)) + 5.0 * np.eye(6)[g]
    idx, dist, _ = exact_knn(z, 10, "euclidean")
    brute = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))
    assert (idx[:, 0] == np.arange(120)).all()  # each point is its own first neighbour, as umap-learn expects
    assert np.allclose(dist, np.sort(brute, axis=1)[:, :10], atol=1e-5)
    xy, fitted, timings = embed_array(z, UmapParams(n_neighbors=10, seed=0))
    assert timings["exact_knn"] and fitted.all()
    d = ((xy[:, None] - xy[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (g[d.argmin(1)] == g).mean() > 0.95
    # with points left to transform, umap-learn's own search index is needed
    assert not embed_array(z, UmapParams(n_neighbors=10, seed=0, fit_subsample=80))[2]["exact_knn"]


def test_warm_up_compiles_the_signatures_a_run_needs():
    """What scripts/_venv.sh runs after installing: a later run of another size compiles nothing new."""
    from umap import layouts, umap_

    from usvpipe.viz import warm_up
    from usvpipe.viz._projection import embed_array

    assert warm_up(n=120, d=8) > 0
    kernels = [layouts._nb_optimize_layout_euclidean_single_epoch, umap_.smooth_knn_dist]
    compiled = [len(k.signatures) for k in kernels]
    assert all(compiled)
    embed_array(np.random.default_rng(5).normal(size=(90, 5)), UmapParams(n_neighbors=10, seed=0))
    assert [len(k.signatures) for k in kernels] == compiled


def test_a_fresh_process_loads_umaps_layout_kernels_from_disk():
    """umap-learn does not cache its layout optimiser itself; cache_umap_kernels makes numba keep it."""
    import subprocess
    import sys

    from usvpipe.viz._projection import embed_array

    embed_array(np.random.default_rng(5).normal(size=(90, 5)), UmapParams(n_neighbors=10, seed=0))  # writes the cache
    child = (
        "import numpy as np\n"
        "from umap import layouts\n"
        "from usvpipe.viz._projection import UmapParams, cache_umap_kernels, embed_array\n"
        "embed_array(np.random.default_rng(6).normal(size=(80, 5)), UmapParams(n_neighbors=10, seed=0))\n"
        "k = layouts._nb_optimize_layout_euclidean_single_epoch\n"
        "print(type(k._cache).__name__, sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values()),"
        " cache_umap_kernels())\n"
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=300, check=True)
    kind, hits, misses, again = out.stdout.split()[-4:]
    assert kind == "FunctionCache" and int(hits) >= 1 and int(misses) == 0, out.stdout
    assert again == "0"  # a second call does nothing


def test_params_validation():
    with pytest.raises(UsvpipeError, match="method"):
        UmapParams(method="tsne")
    with pytest.raises(UsvpipeError, match="n_neighbors"):
        UmapParams(n_neighbors=1)
    with pytest.raises(UsvpipeError, match="figure_formats"):
        UmapParams(figure_formats=("jpg",))


# ------------------------------------------------------------------ run_umap outputs
def test_run_writes_every_output(pca_run, data):
    _, _, table = data
    run = pca_run
    for p in run.paths():
        assert p.is_file() and p.stat().st_size > 0, p
    for key in ("scatter_group", "scatter_animal", "density", "spectrogram_grid"):
        assert [p.suffix for p in run.figures[key]] == [".png", ".pdf"]
        assert run.figures[key][0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert run.figures[key][1].read_bytes()[:5] == b"%PDF-"
    emb = pd.read_csv(run.embedding, dtype={"id": str})
    assert list(emb["id"]) == list(table["id"])
    report = json.loads(run.report.read_text())
    assert report["params"]["method"] == "pca" and report["usvpipe_version"]
    assert report["n_syllables"] == len(table)
    assert not list(run.out_dir.glob(".tmp-*"))  # atomic writes left no temporaries


def test_palette_is_fixed_and_shared(pca_run):
    pal = json.loads(pca_run.palette.read_text())
    assert pal["group"] == {"ctrl": OKABE_ITO[0], "ko": OKABE_ITO[1]}
    d = explorer_data(pca_run.explorer)
    assert dict(zip(d["cats"]["group"]["levels"], d["cats"]["group"]["colors"])) == pal["group"]
    assert dict(zip(d["cats"]["animal"]["levels"], d["cats"]["animal"]["colors"])) == pal["animal"]


def test_category_colors_do_not_depend_on_order():
    assert category_colors(["b", "a", "b"]) == category_colors(["a", "b"]) == {"a": OKABE_ITO[0], "b": OKABE_ITO[1]}
    assert category_colors(["10", "9", "2"]) == {"2": OKABE_ITO[0], "9": OKABE_ITO[1], "10": OKABE_ITO[2]}
    assert list(category_colors([f"m{i}" for i in range(10)]).values()) == list(TOL_MUTED)
    assert len(set(category_colors(range(30)).values())) == 30


def test_explorer_embeds_every_point_and_hovered_spectrograms(pca_run, data):
    store, _, table = data
    d = explorer_data(pca_run.explorer)
    n = len(table)
    assert d["n"] == n and len(d["x"]) == n and len(d["y"]) == n
    assert explorer_ids(d) == list(table["id"])
    groups = [d["cats"]["group"]["levels"][c] for c in d["cats"]["group"]["codes"]]
    assert groups == list(table["group"])
    assert np.allclose(d["onset_s"], table["onset_s"], atol=1e-4)
    # coordinates are the embedding's, quantised
    emb = pd.read_csv(pca_run.embedding)
    x = np.asarray(d["x"]) / 65535 * (d["xrange"][1] - d["xrange"][0]) + d["xrange"][0]
    assert np.abs(x - emb["emb_x"]).max() <= 2e-5 * (d["xrange"][1] - d["xrange"][0]) + 1e-9
    # every point has a thumbnail here (n < max_thumbnails), and it is *its* spectrogram
    assert sorted(d["thumb_rows"]) == list(range(n))
    from PIL import Image

    st = open_store(store)
    pos = pd.Index(st.table["id"]).get_indexer(table["id"])
    for t in (0, n // 2, n - 1):
        row = d["thumb_rows"][t]
        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(d["thumbs"][t]))), dtype=float) / 255
        assert img.shape == (64, 64)
        spec = st.read([pos[row]])[0][::-1]  # thumbnails are stored low frequency at the bottom
        bright_row = spec.mean(axis=1).argmax()
        assert abs(img.mean(axis=1).argmax() * SPEC[0] / 64 - bright_row) <= 1.5


def test_thumbnails_and_drawing_are_bounded(data, tmp_path):
    store, latents, table = data
    run = run_umap(latents, tmp_path, UmapParams(method="pca", max_thumbnails=9, max_drawn_points=100, figure_formats=("png",), dpi=60), store=store)
    d = explorer_data(run.explorer)
    assert d["n"] == len(table) and len(d["x"]) == len(table)  # all points stay queryable
    assert len(d["drawn"]) == 100 and len(set(d["drawn"])) == 100
    assert len(d["thumbs"]) == 9 and set(d["thumb_rows"]) <= set(d["drawn"])
    thumb_groups = {table["group"][r] for r in d["thumb_rows"]}
    assert thumb_groups == set(GROUPS)  # stratified: every group has examples


def test_continuous_color_and_no_store(data, tmp_path):
    _, latents, _ = data
    run = run_umap(latents, tmp_path, UmapParams(method="pca", figure_formats=("svg",), dpi=60), color_by="score")
    assert "scatter_score" in run.figures and run.figures["scatter_score"][0].suffix == ".svg"
    assert "spectrogram_grid" not in run.figures
    d = explorer_data(run.explorer)
    assert d["thumbs"] == [] and len(d["nums"]["score"]) == d["n"]


def test_minimal_table_free_ids_and_missing_times(tmp_path):
    rng = np.random.default_rng(2)
    n = 60
    frame = pd.DataFrame({"id": [f"call-{i}" for i in range(n)], "group": rng.choice(["x", "y</script>"], n),
                          "animal": [f"a{i % 25}" for i in range(n)], "onset_s": rng.uniform(0, 9, n)})
    frame["offset_s"] = frame["onset_s"] + 0.02
    frame.loc[4, "onset_s"] = np.nan  # metadata gaps must not break the page's JSON
    for j in range(3):
        frame[f"z{j}"] = rng.normal(size=n)
    run = run_umap(frame, tmp_path, UmapParams(method="pca", figure_formats=("png",), dpi=60), color_by="animal")
    d = explorer_data(run.explorer)
    assert d["id_rule"] is None and d["ids"] == list(frame["id"]) and d["onset_s"][4] is None
    assert d["cats"]["group"]["levels"] == ["x", "y</script>"]  # labels cannot end the page's script
    import matplotlib.pyplot as plt
    from usvpipe.viz import scatter_figure

    emb = pd.read_csv(run.embedding)
    fig = scatter_figure(emb, "animal")  # 25 animals: no unreadable legend, a title instead
    assert fig.axes[0].get_legend() is None and "25 values" in fig.axes[0].get_title()
    plt.close(fig)


def test_read_latents_keeps_labels_that_look_like_missing_values(tmp_path):
    from usvpipe.viz import read_latents

    frame = pd.DataFrame({"id": ["a", "b", "c"], "group": ["NA", "WT", "NA"], "animal": ["None", "m1", "None"],
                          "onset_s": [0.1, np.nan, 0.3], "z0": [0.0, 1.0, 2.0]})
    frame.to_csv(tmp_path / "latents.csv", index=False)
    got = read_latents(tmp_path / "latents.csv")
    assert list(got.group) == ["NA", "WT", "NA"] and list(got.animal) == ["None", "m1", "None"]
    assert np.isnan(got.onset_s[1])


def test_store_must_match_latents(data, tmp_path):
    store, _, table = data
    bad = table.copy()
    bad.loc[3, "id"] = "nope#0"
    with pytest.raises(InputFileError, match=r"store.*not in this store"):
        run_umap(bad, tmp_path / "o", UmapParams(method="pca"), store=store)


# ------------------------------------------------------------------ traversals
def test_latent_path_and_traversal_strip():
    a, b = np.zeros(3), np.array([1.0, 2.0, 4.0])
    p = latent_path(a, b, 5)
    assert p.shape == (5, 3) and np.allclose(p[0], a) and np.allclose(p[-1], b) and np.allclose(p[2], b / 2)
    seen = []

    def decode(z):
        seen.append(z.copy())
        return np.tile(z[:, :1, None], (1, 6, 7)) / 4.0

    fig = traversal_strip(decode, p, labels=list("abcde"), title="t")
    assert len(fig.axes) == 5 and np.array_equal(seen[0], p)
    assert [ax.get_xlabel() for ax in fig.axes] == list("abcde")
    with pytest.raises(ValueError, match="decode_fn"):
        traversal_strip(lambda z: np.zeros((1, 2, 2)), p)


def test_run_with_decoder_draws_centroid_traversals(data, tmp_path):
    _, latents, _ = data
    calls = []

    def decode(z):
        calls.append(len(z))
        return np.zeros((len(z), 8, 8), dtype=np.float32) + z[:, :1, None]

    run = run_umap(latents, tmp_path, UmapParams(method="pca", explorer=False, figure_formats=("png",), dpi=60), decode_fn=decode)
    assert "traversal_ctrl_to_ko" in run.figures and calls == [8]
    assert run.explorer is None and not (tmp_path / "explorer.html").exists()


# ------------------------------------------------------------------ CLI
def _cli(args):
    from click.testing import CliRunner

    from usvpipe.cli import main

    return CliRunner().invoke(main, args)


def test_cli_pca_with_config(data, tmp_path):
    store, latents, table = data
    cfg = tmp_path / "usvpipe.toml"
    cfg.write_text('[umap]\nmethod = "pca"\nmax_thumbnails = 7\nfigure_formats = ["png"]\ndpi = 60\n')
    out = tmp_path / "out"
    res = _cli(["umap", str(latents), str(out), "--store", str(store), "--config", str(cfg), "--color-by", "animal"])
    assert res.exit_code == 0, res.output
    assert (out / "embedding.csv").is_file() and (out / "scatter_animal.png").is_file() and not (out / "density.pdf").exists()
    d = explorer_data(out / "explorer.html")
    assert len(d["thumbs"]) == 7 and d["color_by"] == "animal"
    assert json.loads((out / "umap.json").read_text())["params"]["method"] == "pca"


def test_cli_model_draws_centroid_traversals(data, tmp_path):
    """--model with a real (1-epoch, tiny) VAE checkpoint from usvpipe.vae."""
    pytest.importorskip("torch")
    vae = pytest.importorskip("usvpipe.vae")
    store, latents, _ = data
    params = vae.TrainParams(epochs=1, latent_dim=4, channels=(4, 8), hidden=(16,), batch_size=64, min_steps=0)
    model = vae.train(store, tmp_path / "vae", params, device="cpu", progress=False).model_path
    out = tmp_path / "out"
    res = _cli(["umap", str(latents), str(out), "--method", "pca", "--format", "png", "--no-explorer", "--model", str(model)])
    assert res.exit_code == 0, res.output
    from PIL import Image

    strip = Image.open(out / "traversal_ctrl_to_ko.png")
    assert strip.width > 3 * strip.height  # a strip of 8 decoded spectrograms

    # the train OUT_DIR works too; a model of another latent size is one clear line
    res = _cli(["umap", str(latents), str(tmp_path / "out2"), "--method", "pca", "--format", "png", "--no-explorer",
                "--model", str(model.parent)])
    assert res.exit_code == 0, res.output
    other = vae.train(store, tmp_path / "vae3", dataclasses.replace(params, latent_dim=3), device="cpu", progress=False)
    res = _cli(["umap", str(latents), str(tmp_path / "out3"), "--method", "pca", "--model", str(other.model_path)])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert "4-d latents" in res.output and "3-d latent space" in res.output and "fix:" in res.output


@pytest.mark.parametrize(
    "breakit, message",
    [
        (lambda t: t.drop(columns=["z0", "z1", "z2", "z3"]), "no latent columns"),
        (lambda t: t.drop(columns=["id"]), "missing column"),
        (lambda t: t.drop(columns=["z1"]), "not z0"),
        (lambda t: t.assign(z2=np.where(np.arange(len(t)) == 5, np.nan, t["z2"])), "NaN"),
    ],
)
def test_cli_rejects_bad_latents(data, tmp_path, breakit, message):
    _, _, table = data
    bad = tmp_path / "bad_latents.csv"
    breakit(table.copy()).to_csv(bad, index=False)
    before = bad.read_bytes()
    res = _cli(["umap", str(bad), str(tmp_path / "out"), "--method", "pca"])
    assert res.exit_code != 0
    err = res.output.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and message in err, err
    assert bad.read_bytes() == before  # input untouched
    assert not (tmp_path / "out" / "embedding.csv").exists()


def test_cli_rejects_unknown_color_column(data, tmp_path):
    _, latents, _ = data
    res = _cli(["umap", str(latents), str(tmp_path / "o"), "--method", "pca", "--color-by", "nope"])
    assert res.exit_code != 0 and "nope" in res.output and str(latents) in res.output


# ------------------------------------------------------------------ headless browser
needs_chromium = pytest.mark.skipif(
    not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
    reason="no chromium on PATH (apt-get install -y chromium to run this check)",
)


@needs_chromium
def test_explorer_renders_without_errors_in_headless_chromium(pca_run, tmp_path):
    script = ROOT / "scripts" / "render_explorer.py"
    shot = tmp_path / "shot.png"
    res = subprocess.run([sys.executable, str(script), str(pca_run.explorer), "--screenshot", str(shot), "--select", "7", "--require-thumbnail"],
                         capture_output=True, text=True, timeout=180)
    summary = json.loads(res.stdout)
    assert res.returncode == 0, res.stdout + res.stderr
    assert summary["status"] == "ready" and summary["page_errors"] == [] and summary["thumbnail_shown"]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the checker is not blind: a page that throws is reported
    broken = tmp_path / "broken.html"
    broken.write_text(pca_run.explorer.read_text().replace('"use strict";', '"use strict"; null.boom;', 1))
    res = subprocess.run([sys.executable, str(script), str(broken)], capture_output=True, text=True, timeout=180)
    summary = json.loads(res.stdout)
    assert res.returncode == 1 and summary["status"] != "ready" and summary["page_errors"]
