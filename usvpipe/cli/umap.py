"""``usvpipe umap``: latents -> 2-D embedding, figures and an offline HTML explorer."""
from __future__ import annotations

import importlib

import click

from ..config import load_config, params_from_mapping
from ..errors import UsvpipeError


@click.command("umap")
@click.argument("latents", type=click.Path(dir_okay=False, path_type=str))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--color-by", default="group", show_default=True, help="Column to colour the scatter by (categorical or numeric).")
@click.option("--store", "store", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Syllable store the latents came from: adds spectrogram thumbnails and the example grid.")
@click.option("--method", type=click.Choice(["umap", "pca"]), default=None, help="Projection [default: umap; pca is fast and linear].")
@click.option("--n-neighbors", type=int, default=None, help="UMAP neighbourhood size [default: 15].")
@click.option("--min-dist", type=float, default=None, help="UMAP minimum distance [default: 0.1].")
@click.option("--metric", default=None, help="Latent distance metric [default: euclidean].")
@click.option("--seed", type=int, default=None, help="Random seed; -1 = unseeded, multi-threaded UMAP [default: 0].")
@click.option("--fit-subsample", type=int, default=None,
              help="Fit on at most N random syllables, transform the rest; 0 = all [default: 100000].")
@click.option("--max-thumbnails", type=int, default=None, help="Explorer points with a spectrogram thumbnail [default: 5000].")
@click.option("--format", "formats", multiple=True, type=click.Choice(["png", "pdf", "svg"]),
              help="Figure format(s); repeat for several [default: png + pdf].")
@click.option("--no-explorer", is_flag=True, help="Skip explorer.html.")
@click.option("--model", "model_path", type=click.Path(exists=True, path_type=str), default=None,
              help="VAE (model.pt or the train OUT_DIR) that made LATENTS: also draw decoded traversals between group centroids.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="usvpipe.toml; its [umap] section sets defaults, options override it.")
def umap(latents, out_dir, color_by, store, method, n_neighbors, min_dist, metric, seed, fit_subsample,
         max_thumbnails, formats, no_explorer, model_path, config_path):
    """Project LATENTS (latents.csv from `usvpipe encode`) to 2-D and draw it into OUT_DIR.

    Writes embedding.csv (the latents' metadata columns + emb_x, emb_y, fitted; same rows,
    same order), scatter/density figures (PNG + PDF, column width, colour-blind-safe,
    one fixed colour per group), spectrogram_grid.* (with --store), explorer.html (one
    offline file: hover a point to see its spectrogram) and umap.json (parameters,
    version, timings).

    The first UMAP call in a fresh environment spends ~10-60 s compiling numba code.
    """
    from ..viz import UmapParams, run_umap

    section = load_config(config_path).get("umap", {}) if config_path else {}
    params = params_from_mapping(
        UmapParams, section, section="umap",
        method=method, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric, seed=seed,
        fit_subsample=fit_subsample, max_thumbnails=max_thumbnails,
        figure_formats=tuple(formats) if formats else None, explorer=False if no_explorer else None,
    )
    decode_fn = None
    if model_path is not None:
        try:
            vae = importlib.import_module("usvpipe.vae")
        except ImportError:
            vae = None
        if vae is None or not hasattr(vae, "load_model") or not hasattr(vae, "decode"):
            raise UsvpipeError("--model needs the VAE stage (usvpipe.vae with load_model/decode), which is not available in this install")
        model = vae.load_model(model_path, device="cpu")
        import pandas as pd

        header = pd.read_csv(latents, nrows=0).columns if str(latents).endswith(".csv") else []
        n_z = sum(1 for c in header if c.startswith("z") and c[1:].isdigit())
        if n_z and n_z != model.latent_dim:
            raise UsvpipeError(
                latents, f"{n_z}-d latents, but {model_path} has a {model.latent_dim}-d latent space",
                "pass the --model that encoded these latents"
            )

        def decode_fn(z):
            return vae.decode(model, z)

    run = run_umap(latents, out_dir, params, store=store, color_by=color_by, decode_fn=decode_fn)
    t = run.timings
    click.echo(
        f"{params.method}: {run.n_syllables} syllables embedded in {t.get('fit_s', 0) + t.get('transform_s', 0):.1f} s "
        f"(fit on {t.get('n_fit', run.n_syllables)}); total {t.get('total_s', 0):.1f} s"
    )
    for p in run.paths():
        click.echo(f"  {p}")
