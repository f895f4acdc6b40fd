"""Where does a trained model's pitch axis hold? The run's own axis check, re-made, and the same fit by pitch band.

For each training output folder (``usvpipe train OUT_DIR``, e.g. the ``vae_seed*`` folders that
``scripts/vae_real_benchmark.py --work W`` leaves), this prints

- the axis check as the current code makes it at the end of a run: on the run's held-out
  syllables (its split and check rows re-drawn from the parameters in ``train.json``), pooled and
  per held-out recording (:func:`usvpipe.vae.axis_check.measure_axes`);
- the same fit on all the store's syllables (in-sample for most of them), split into terciles
  of the measured ``mean_freq_hz``: does z0 respond to a move alike at every pitch?

    python scripts/vae_axis_diagnostics.py W/store W/vae_seed0 W/vae_seed1 ...

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
    ap.add_argument("runs", type=Path, nargs="+", help="training output folders (model.pt, train.json)")
    args = ap.parse_args(argv)

    import torch

    from usvpipe.store import open_store
    from usvpipe.vae.axis_check import MAX_AXIS_CHECK_SYLLABLES, measure_axes
    from usvpipe.vae.data import split_rows
    from usvpipe.vae.encoding import load_model
    from usvpipe.vae.training import end_of_run_check_rows

    torch.set_num_threads(1)
    store = open_store(args.store)
    table = store.table
    recordings = table["recording"].astype(str).to_numpy()
    mean_freq = table["mean_freq_hz"].to_numpy()
    images = torch.from_numpy(store.read(np.arange(len(table)))).float()[:, None]
    band = np.digitize(mean_freq, np.quantile(mean_freq, np.arange(1, BANDS) / BANDS))
    for run in args.runs:
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
