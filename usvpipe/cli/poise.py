"""``usvpipe poise``: train a POISE-VAE on paired modalities, generate, traverse."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import ConfigError, InputFileError


def _params(config, section_overrides):
    from ..config import load_config, params_from_mapping
    from ..poise.params import PoiseParams

    mapping = load_config(config).get("poise", {}) if config else {}
    return params_from_mapping(PoiseParams, mapping, section="poise", **section_overrides)


@click.group("poise")
def poise():
    """POISE-VAE for paired modalities (e.g. video frames + USV syllables).

    `pairs` makes PAIRS from behaviour videos and a syllable store. PAIRS is a .npz with arrays x1 and x2 (pair i = x1[i], x2[i]; vectors or 2-D images in
    [0, 1]) or a folder with pairs.csv (columns x1,x2: paths of .npy/.png files).
    """


@poise.command("pairs")
@click.argument("store", type=click.Path(path_type=Path))
@click.argument("videos", type=click.Path(path_type=Path))
@click.argument("out_npz", type=click.Path(path_type=Path))
@click.option("--offset-s", type=float, default=None, help="Video time at audio time 0, seconds (default 0).")
@click.option("--drift-ppm", type=float, default=None, help="Video clock drift against the audio, ppm (default 0).")
@click.option("--sync", type=click.Path(path_type=Path), default=None, help="CSV recording,offset_s[,drift_ppm] per recording.")
@click.option("--anchor", type=click.Choice(["onset", "middle"]), default=None, help="Syllable time that picks the frame (default onset).")
@click.option("--frames", type=int, default=None, help="Frames per pair, laid side by side (default 1).")
@click.option("--frame-step", type=int, default=None, help="Frames between stacked frames (default 1).")
@click.option("--size", type=(int, int), default=None, metavar="H W", help="Frame size after resizing (default 32 32).")
@click.option("--roi", type=(int, int, int, int), default=None, metavar="X Y W H", help="Region of interest in pixels of the full frame.")
@click.option("--fps", type=float, default=None, help="Frame rate override for files that state none.")
@click.option("--video-metadata", type=click.Path(path_type=Path), default=None,
              help="CSV path,animal,group for the videos (default: the layout group/animal/file).")
@click.option("--audio", type=click.Path(path_type=Path), default=None,
              help="WAV folder of the store (default VIDEOS): videos shorter than their WAV are refused.")
@click.option("--config", type=click.Path(path_type=Path), default=None, help="usvpipe.toml with a [poise_pairs] section.")
def pairs_cmd(store, videos, out_npz, sync, video_metadata, audio, config, **opts):
    """Pair each syllable of STORE with the VIDEOS frame at its onset; writes OUT_NPZ (+ .csv).

    Videos (mp4/avi/mkv/mov, read with PyAV: pip install 'usvpipe[video]') are matched to
    recordings like WAVs: same relative path without suffix (g/a/s.mp4 <-> g/a/s.wav), or the
    same stem, animal and group (layout group/animal/file or --video-metadata). Recordings that
    cannot pair are listed (OUT_NPZ's .errors.csv); the others still pair.
    """
    from ..config import load_config, params_from_mapping
    from ..poise.pairs import make_pairs
    from ..poise.params import PairsParams

    mapping = load_config(config).get("poise_pairs", {}) if config else {}
    params = params_from_mapping(PairsParams, mapping, section="poise_pairs", **opts)
    run = make_pairs(store, videos, out_npz, params, video_metadata=video_metadata, audio=audio, sync=sync)
    for rec, path, reason in run.problems:
        click.echo(f"usvpipe: warning: {path or rec}: {reason}", err=True)
    n_rec = run.table["recording"].nunique()
    click.echo(f"paired {run.n_pairs} syllables from {n_rec} recording(s)"
               + (f"; {len(run.problems)} recording(s) could not pair (see {run.path.stem}.errors.csv)" if run.problems else ""))
    click.echo(f"pairs: {run.path}")


@poise.command("train")
@click.argument("pairs", type=click.Path(path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--model", type=click.Choice(["poise", "mvae", "mmvae", "vae"]), default=None, help="Model (default poise).")
@click.option("--latent-dim-1", type=int, default=None, help="Latent dims of modality 1 (default 8).")
@click.option("--latent-dim-2", type=int, default=None, help="Latent dims of modality 2 (default 8).")
@click.option("--hidden-units", type=int, default=None, help="Hidden layer width (default 256).")
@click.option("--epochs", type=int, default=None, help="Training epochs (default 30).")
@click.option("--batch-size", type=int, default=None, help="Pairs per step (default 128).")
@click.option("--learning-rate", type=float, default=None, help="Adam step size (default 1e-3).")
@click.option("--gibbs-sweeps", type=int, default=None, help="Burn-in Gibbs sweeps per step (default 5).")
@click.option("--gibbs-samples", type=int, default=None, help="Posterior chains per pair, >= 2 (default 4).")
@click.option("--obs-sd", type=float, default=None, help="Gaussian observation s.d. (default 0.1).")
@click.option("--kl-warmup-epochs", type=int, default=None, help="Linear KL annealing epochs (default 0).")
@click.option("--subset-elbos/--no-subset-elbos", default=None,
              help="POISE: also train the one-modality posteriors (helps cross-generation; default off).")
@click.option("--kl-weight", type=float, default=None, help="Weight of the KL term, beta (default 1).")
@click.option("--prior-init", type=click.Choice(["paired", "independent", "random"]), default=None,
              help="POISE prior start: nearly independent normals (default), z_i coupled with z'_i "
                   "(for identifiable latents, with --prior-warmup-epochs about half of --epochs), "
                   "or dense random couplings (as the lab's reference code).")
@click.option("--full-coupling/--no-full-coupling", default=None,
              help="POISE: all four blocks of G (also z.z'^2 and z^2.z', bounded); default off.")
@click.option("--recon-samples", type=click.Choice(["one", "all"]), default=None,
              help="POISE reconstruction from one chain sample (default) or averaged over every chain state.")
@click.option("--recon-sweep", type=click.Choice(["symmetric", "forward"]), default=None,
              help="POISE: decode each modality from the sweep half drawn last (symmetric, default) "
                   "or both from one z-then-z' sweep (forward, the behaviour before issue 12).")
@click.option("--modality-dropout", type=float, default=None,
              help="POISE: per-batch probability of masking each modality (0-0.5; default 0).")
@click.option("--prior-warmup-epochs", type=int, default=None,
              help="POISE: hold the prior at its start for this many epochs (default 0).")
@click.option("--heldout-fraction", type=float, default=None,
              help="Share of pairs (whole recordings when the pairs name them) kept out of training to check "
                   "that cross-generation follows its input (default 0.1; 0 = no check).")
@click.option("--seed", type=int, default=None, help="Random seed (default 0).")
@click.option("--config", type=click.Path(path_type=Path), default=None, help="usvpipe.toml with a [poise] section.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--resume", is_flag=True, help="Continue from OUT_DIR/model.pt.")
def train_cmd(pairs, out_dir, config, device, resume, **opts):
    """Train on PAIRS; writes OUT_DIR/model.pt (atomic, every epoch), history.csv and check.json.

    After training, cross-generation is checked on the held-out pairs (--heldout-fraction): a
    warning says when a modality generated from the other alone does not follow its input.
    """
    from ..poise.api import train_poise

    params = _params(config, opts)
    run = train_poise(pairs, out_dir, params, device=device, resume=resume, progress=True)
    last = run.history.iloc[-1]
    click.echo(f"trained {params.model} for {int(last['epoch'])} epochs: loss {last['loss']:.4g}")
    for line in run.check.lines():
        click.echo(line)
    for line in run.check.warnings():
        click.echo(f"usvpipe: warning: {line}", err=True)
    click.echo(f"model: {run.model_path}")


def _load(model_path, device):
    from ..poise.api import load_poise

    return load_poise(model_path, device=device)


def _pick(pairs, n, seed):
    import numpy as np

    from ..poise.data import load_pairs

    data = load_pairs(pairs)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(data), size=min(n, len(data)), replace=False)
    return data.x1[idx], data.x2[idx]


def _check_shapes(model, x1, x2, pairs):
    if tuple(x1.shape[1:]) != model.shape1 or tuple(x2.shape[1:]) != model.shape2:
        raise InputFileError(pairs, f"item shapes {x1.shape[1:]}, {x2.shape[1:]} differ from the model's "
                             f"{model.shape1}, {model.shape2}", "use the pairs the model was trained on")


def _cross_generation_caveat(model_path, *, given: str) -> str:
    """What the held-out check beside the model (``check.json``) says against generating from
    ``given`` ("x1" or "x2"); "" when that direction passed it."""
    from .. import _io
    from ..poise.check import CHECK_FILE, CrossGenerationCheck, check_from_dict

    path = Path(model_path).parent / CHECK_FILE
    try:
        check = check_from_dict(_io.read_json(path))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        # no file (trained before the check, or elsewhere) or an unreadable one
        check = CrossGenerationCheck("none", 0)
    caveat = check.warning_for(given)
    return f"{path}: {caveat}" if caveat else ""


@poise.command("generate")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("out_png", type=click.Path(path_type=Path))
@click.option("--mode", type=click.Choice(["cross", "joint"]), default="cross", show_default=True)
@click.option("--pairs", type=click.Path(path_type=Path), default=None, help="PAIRS to condition on (cross mode).")
@click.option("--from", "source", type=click.Choice(["1", "2"]), default="1", show_default=True,
              help="Which modality is given (cross mode); the other is generated.")
@click.option("-n", "--count", type=int, default=8, show_default=True, help="Items (columns) in the grid.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def generate_cmd(model_path, out_png, mode, pairs, source, count, seed, device):
    """Cross-generation (one modality -> the other) or joint generation (from the prior).

    Writes OUT_PNG (image grid) and OUT_PNG with suffix .npz (arrays x1, x2 generated).
    """
    import numpy as np
    import torch

    from .._io import atomic_path
    from ..poise.api import cross_generate, image_grid, joint_generate

    if count < 1:
        raise ConfigError("--count must be >= 1")
    model = _load(model_path, device)
    torch.manual_seed(seed)
    if mode == "joint":
        g1, g2 = joint_generate(model, count)
        rows, titles = [g1, g2], ["x1 (joint)", "x2 (joint)"]
    else:
        if pairs is None:
            raise ConfigError("cross generation needs --pairs PAIRS to condition on")
        x1, x2 = _pick(pairs, count, seed)
        _check_shapes(model, x1, x2, pairs)
        if source == "1":
            g1, g2 = cross_generate(model, x1=x1)
            rows, titles = [x1, x2, g2[:, 0]], ["x1 given", "x2 true", "x2 generated"]
        else:
            g1, g2 = cross_generate(model, x2=x2)
            rows, titles = [x2, x1, g1[:, 0]], ["x2 given", "x1 true", "x1 generated"]
        g1, g2 = g1[:, 0], g2[:, 0]
        caveat = _cross_generation_caveat(model_path, given=f"x{source}")
        if caveat:
            click.echo(f"usvpipe: warning: {caveat}", err=True)
    image_grid(rows, out_png, titles=titles)
    with atomic_path(Path(out_png).with_suffix(".npz"), suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, x1=g1, x2=g2)
    click.echo(f"wrote {out_png}")


@poise.command("traverse")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("out_png", type=click.Path(path_type=Path))
@click.option("--space", type=click.Choice(["1", "2"]), default="1", show_default=True, help="Latent space to walk in.")
@click.option("--dims", default="all", show_default=True, help="Comma-separated latent coordinates, or 'all'.")
@click.option("--span", type=float, default=3.0, show_default=True, help="Walk from -span to +span around the start.")
@click.option("--steps", type=int, default=9, show_default=True)
@click.option("--pairs", type=click.Path(path_type=Path), default=None, help="Start from the posterior mean of the first pair.")
@click.option("--device", default="cpu", show_default=True)
def traverse_cmd(model_path, out_png, space, dims, span, steps, pairs, device):
    """Straight line in one latent space decoded in both modalities (two rows per coordinate)."""
    from ..poise.api import _latent_dim, image_grid, traverse

    model = _load(model_path, device)
    space = int(space)
    d = _latent_dim(model, space)
    try:
        coords = list(range(d)) if dims == "all" else [int(s) for s in dims.split(",")]
    except ValueError:
        raise ConfigError(f"--dims must be 'all' or comma-separated integers, got {dims!r}") from None
    if any(not 0 <= c < d for c in coords):
        raise ConfigError(f"--dims must be in [0, {d}) for latent space {space}")
    if steps < 2:
        raise ConfigError("--steps must be >= 2")
    kw = {}
    if pairs is not None:
        x1, x2 = _pick(pairs, 1, 0)
        _check_shapes(model, x1, x2, pairs)
        kw = {"x1": x1, "x2": x2}
    rows, titles = [], []
    for c in coords:
        _, _, g1, g2 = traverse(model, space=space, dim=c, span=span, steps=steps, **kw)
        rows += [g1, g2]
        titles += [f"z{space}[{c}] -> x1", f"z{space}[{c}] -> x2"]
    image_grid(rows, out_png, titles=titles)
    click.echo(f"wrote {out_png}")
