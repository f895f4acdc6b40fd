"""Where does a trained model's pitch axis hold? The run's own axis check, re-made, and the same fit by pitch band.

For each training output folder (``usvpipe train OUT_DIR``, e.g. the ``vae_seed*`` folders that
``scripts/vae_real_benchmark.py --work W`` leaves), this prints

- the axis check as the current code makes it at the end of a run: on the run's held-out
  syllables (its split and check rows re-drawn from the parameters in ``train.json``), pooled and
  per held-out recording (:func:`usvpipe.vae.axis_check.measure_axes`);
- the same fit on all the store's syllables (in-sample for most of them), split into terciles
  of the measured ``mean_freq_hz``: does z0 respond to a move alike at every pitch?

    python scripts/vae_axis_diagnostics.py W/store W/vae_seed0 W/vae_seed1 ...

With ``--latents W/latents_seed*.csv`` (``usvpipe encode``'s tables) it also prints what z0's
*value* says of the measured mean frequency: its linear r² and rank ρ², the kHz per unit of z0
within each tercile of z0 (the nominal scale is 10 on a 30–110 kHz image), r within the top
tercile without the recordings named by ``--leave-out`` (substrings), and per source (the first
two parts of the recording path) the mean z0 beside the mean frequency; with ``--leave-out``
also z0's r² without those recordings. For a model trained with ``axis_encoder = "locate"`` it
prints how sharp the locating soft arg-max is.

    python scripts/vae_axis_diagnostics.py W/store --latents W/latents_seed0.csv W/latents_seed5.csv --leave-out deermouse

It trains nothing and changes nothing; the numbers it prints for the real store are in
docs/vae.md ("The default re-run in a fresh environment, and what the axis check reads").
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Pitch bands: terciles of the store's measured mean frequency.
BANDS = 3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("store", type=Path, help="the syllable store the models were trained on")
    ap.add_argument("runs", type=Path, nargs="*", help="training output folders (model.pt, train.json)")
    ap.add_argument("--latents", type=Path, nargs="+", default=[], help="latents tables to describe z0's value in")
    ap.add_argument("--leave-out", nargs="*", default=[], metavar="SUBSTRING",
                    help="recordings left out of the top-tercile correlation (e.g. another species)")
    args = ap.parse_args(argv)
    for path in args.latents:
        describe_z0_values(path, args.leave_out)
    if not args.runs:
        return 0

    import torch

    from usvpipe.store import open_store
    from usvpipe.vae.axis_check import MAX_AXIS_CHECK_SYLLABLES, measure_axes
    from usvpipe.vae.data import split_rows
    from usvpipe.vae.encoding import load_model
    from usvpipe.vae.samples import end_of_run_check_rows

    torch.set_num_threads(1)
    store = open_store(args.store)
    table = store.table
    recordings = table["recording"].astype(str).to_numpy()
    mean_freq = table["mean_freq_hz"].to_numpy()
    images = torch.from_numpy(store.read(np.arange(len(table)))).float()[:, None]
    band = np.digitize(mean_freq, np.quantile(mean_freq, np.arange(1, BANDS) / BANDS))
    for run in args.runs:
        if not (run / "train.json").is_file() or not (run / "model.pt").is_file():
            raise SystemExit(f"{run}: no train.json and model.pt (fix: pass a finished `usvpipe train` output folder)")
        params = json.loads((run / "train.json").read_text())["params"]
        if params.get("latent_axes", "off") == "off":
            print(f"{run.name}: trained without latent axes (nothing to check)")
            continue
        axes = tuple(params["latent_axes"].split("+"))
        model = load_model(run / "model.pt")
        moves = dict(axis_shift=params["axis_shift"], axis_stretch=params["axis_stretch"])
        train_rows, val_rows, _ = split_rows(table, by=params["split_by"], val_fraction=params["val_fraction"],
                                             seed=params["seed"])
        rows = end_of_run_check_rows(train_rows, val_rows, MAX_AXIS_CHECK_SYLLABLES, params["seed"])  # the run's own
        for check in measure_axes(model, [images[rows]], axes, recordings=recordings[rows], **moves):
            print(f"{run.name}: {check.summary()}")
        fits = []
        for b in range(BANDS):
            mine = band == b
            pitch = measure_axes(model, [images[mine]], ("pitch",), **moves)[0]
            fits.append(f"{mean_freq[mine].min() / 1e3:.0f}–{mean_freq[mine].max() / 1e3:.0f} kHz (n={mine.sum()}): "
                        f"slope {pitch.slope:.2f}, R² {pitch.r2:.2f}")
        print(f"  all {len(table)} syllables by mean-frequency band: " + "; ".join(fits))
        if getattr(model, "located_axes", ()) and getattr(model, "pitch_locator", "detector") == "detector":
            describe_locator(model, images)
    return 0


def describe_locator(model, images) -> None:
    """How sharp a locating encoder's soft arg-max is (``axis_encoder = "locate"``), printed: the
    effective number of rows it weighs (the exponential of the weights' entropy), the range of its
    logits, and how its location follows the images' power-weighted mean row."""
    import torch

    with torch.no_grad():
        x = model.prepare(images / 255.0 if images.max() > 1 else images)
        logits = model.locator(x).float().mean(-1)[:, 0]
        weights = torch.softmax(logits, -1).numpy()
        profile = x.mean(-1)[:, 0].numpy()
    rows = np.arange(weights.shape[1]) - (weights.shape[1] - 1) / 2
    effective = np.exp(-(weights * np.log(weights + 1e-12)).sum(1))
    spread = (logits.max(1).values - logits.min(1).values).numpy()
    centroid = (profile * rows).sum(1) / profile.sum(1)
    print(f"  locator: effective rows median {np.median(effective):.1f} of {weights.shape[1]}, logit range median "
          f"{np.median(spread):.2f}; r with the images' power-weighted mean row "
          f"{np.corrcoef((weights * rows).sum(1), centroid)[0, 1]:.2f}")


def describe_z0_values(path: Path, leave_out) -> None:
    """What the value of z0 in a latents table says of the measured mean frequency (printed)."""
    import pandas as pd
    from scipy.stats import spearmanr

    table = pd.read_csv(path)
    z0, freq = table["z0"].to_numpy(), table["mean_freq_hz"].to_numpy()
    tercile = np.digitize(z0, np.quantile(z0, [1 / 3, 2 / 3]))
    per_unit = [np.polyfit(z0[tercile == k], freq[tercile == k], 1)[0] / 1e3 for k in range(3)]
    kept = ~table["recording"].astype(str).str.contains("|".join(leave_out)).to_numpy() if leave_out else True
    top = (tercile == 2) & kept
    print(f"{path.name}: z0 vs mean frequency r² {np.corrcoef(z0, freq)[0, 1] ** 2:.2f}, rank ρ² "
          f"{spearmanr(z0, freq).correlation ** 2:.2f}; kHz per unit of z0 by z0 tercile "
          + " / ".join(f"{v:.1f}" for v in per_unit)
          + f"; r in the top tercile{' without ' + ', '.join(leave_out) if leave_out else ''} "
          f"{np.corrcoef(z0[top], freq[top])[0, 1]:.2f}"
          + (f"; r² without {', '.join(leave_out)} {np.corrcoef(z0[kept], freq[kept])[0, 1] ** 2:.2f}"
             if leave_out else ""))
    source = table["recording"].astype(str).str.split("/").str[:2].str.join("/")
    per_source = table.assign(source=source).groupby("source").agg(
        n=("z0", "size"), z0=("z0", "mean"), z0_sd=("z0", "std"), mean_freq_khz=("mean_freq_hz", lambda v: v.mean() / 1e3))
    print(per_source.sort_values("z0").round(2).to_string())


if __name__ == "__main__":
    raise SystemExit(main())
