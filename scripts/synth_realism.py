"""How real does the vocal world look? Synthetic against real, side by side, after the same segmentation.

Measured, not tuned: the vocal world's parameters come from published statistics
(usvpipe/synth/calls.py); this script only *reports* how its syllables compare with the
real recordings in ../shared/data (amvoc 1, 2, 3, 6 + unlabelled amvoc_small2 and
vocalpy_BM003; the deer-mouse file and the pre-cut VoICE syllables are left out: another
species, and clips without a noise floor to segment against).

Both sides go through the same path: 16-bit WAV on disk -> default SegmentParams /
SpectrogramParams segmentation -> the segmenter's score columns (duration, mean/min/max
frequency) -> default SyllableParams images. Printed:

1. quantiles (5/25/50/75/95 %) of duration, mean/min/max frequency, bandwidth and the
   largest frequency jump between adjacent image columns, real | synthetic | synthetic truth;
2. a classifier two-sample test: 5-fold cross-validated AUC of telling real from synthetic
   syllables (logistic regression and a small random forest on 32x32 images; logistic on
   the measures), with an A/A control (two synthetic worlds of different seeds), where
   0.5 means indistinguishable.

Usage::

    PYTHONPATH=. python scripts/synth_realism.py [--data ../shared/data] [--syllables 180] [--seed 0] [--noise none]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from usvpipe.segmentation.detection import segment_with_trace  # noqa: E402
from usvpipe.segmentation.images import syllable_images  # noqa: E402
from usvpipe.segmentation.params import SegmentParams, SyllableParams  # noqa: E402
from usvpipe.segmentation.sources import ArraySource  # noqa: E402
from usvpipe.segmentation.spectrogram import SpectrogramParams  # noqa: E402
from usvpipe.synth import WorldParams, simulate_world, write_world  # noqa: E402

REAL = ("amvoc/1/rec_1.wav", "amvoc/2/rec_2.wav", "amvoc/3/rec_3.wav", "amvoc/6/rec_6.wav",
        "unlabelled/amvoc_small2.wav", "unlabelled/vocalpy_BM003.wav")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MEASURE_COLUMNS = ("duration_ms", "mean_freq_khz", "min_freq_khz", "max_freq_khz", "bandwidth_khz", "max_jump_khz")


def largest_jump_khz(images: np.ndarray, band_hz=(30_000.0, 110_000.0), floor: float = 0.3) -> np.ndarray:
    """Largest change of the peak row between adjacent image columns where the column is lit (kHz)."""
    h = images.shape[1]
    khz_per_row = (band_hz[1] - band_hz[0]) / 1000.0 / (h - 1)
    out = np.zeros(len(images))
    for i, img in enumerate(images):
        lit = img.max(axis=0) > floor
        peak = np.argmax(img, axis=0).astype(float)
        both = lit[1:] & lit[:-1]
        out[i] = float(np.max(np.abs(np.diff(peak))[both])) * khz_per_row if both.any() else 0.0
    return out


def syllables_of(path: Path):
    """(measures table, images) of one WAV after the default segmentation."""
    import soundfile as sf

    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    source = ArraySource(audio[:, 0])
    sp = SpectrogramParams()
    segments, trace = segment_with_trace(source, sr, SegmentParams(), sp, keep_trace=True)
    if len(segments) == 0:
        return pd.DataFrame(columns=list(MEASURE_COLUMNS)), np.zeros((0, 128, 128), np.float32)
    images = syllable_images(source, segments, trace, sp, SyllableParams())
    table = pd.DataFrame({
        "duration_ms": segments["duration_s"].to_numpy() * 1e3,
        "mean_freq_khz": segments["mean_freq_hz"].to_numpy() / 1e3,
        "min_freq_khz": segments["min_freq_hz"].to_numpy() / 1e3,
        "max_freq_khz": segments["max_freq_hz"].to_numpy() / 1e3,
    })
    table["bandwidth_khz"] = table.max_freq_khz - table.min_freq_khz
    table["max_jump_khz"] = largest_jump_khz(images)
    return table, images


def collect(paths):
    tables, images = [], []
    for p in paths:
        t, im = syllables_of(p)
        tables.append(t)
        images.append(im)
    return pd.concat(tables, ignore_index=True), np.concatenate(images)


def synthetic(n_syllables: int, seed: int, out: Path, noise=None):
    """A default vocal world of about ``n_syllables`` (6 animals), written as WAVs and segmented."""
    extra = {} if noise is None else {"noise": noise}
    world = simulate_world(WorldParams(animals_per_group=3, syllables_per_animal=max(1, n_syllables // 6), seed=seed,
                                       **extra))
    meta = write_world(world, out)
    table, images = collect([out / p for p in meta.path])
    return world, table, images


def synthetic_sweep(n_syllables: int, seed: int, out: Path):
    """The sweep world (``make_dataset``) at about ``n_syllables``, written, segmented; truth from its tables."""
    from usvpipe.synth import make_dataset

    meta = make_dataset(out, groups=("A", "B"), animals_per_group=3, duration_s=n_syllables / 6 / 1.5, seed=seed,
                        group_shift=0.0)
    truth = pd.concat([pd.read_csv(Path(p).with_suffix(".truth.csv")) for p in meta.path], ignore_index=True)
    table, images = collect([Path(p) for p in meta.path])
    return truth, table, images


def sweep_truth_measures(truth: pd.DataFrame) -> pd.DataFrame:
    lo = truth[["start_freq_hz", "end_freq_hz"]].min(axis=1) - truth.fm_depth_hz
    hi = truth[["start_freq_hz", "end_freq_hz"]].max(axis=1) + truth.fm_depth_hz
    return pd.DataFrame({"duration_ms": truth.duration_s * 1e3,
                         "mean_freq_khz": (truth.start_freq_hz + truth.end_freq_hz) / 2e3,
                         "min_freq_khz": lo / 1e3, "max_freq_khz": hi / 1e3, "bandwidth_khz": (hi - lo) / 1e3,
                         "max_jump_khz": 0.0 * lo})


def quantile_table(real: pd.DataFrame, synth: pd.DataFrame, truth: pd.DataFrame) -> str:
    lines = ["| measure | quantile | real | synthetic (segmented) | synthetic (truth) |", "|---|---|---|---|---|"]
    for col in MEASURE_COLUMNS:
        for q in QUANTILES:
            t = truth[col].quantile(q) if col in truth else float("nan")
            lines.append(f"| {col} | {int(q * 100)} % | {real[col].quantile(q):.1f} | {synth[col].quantile(q):.1f} | "
                         f"{t:.1f} |")
    return "\n".join(lines)


def truth_measures(c: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"duration_ms": c.duration_s * 1e3, "mean_freq_khz": c.mean_freq_hz / 1e3,
                         "min_freq_khz": c.min_freq_hz / 1e3, "max_freq_khz": c.max_freq_hz / 1e3,
                         "bandwidth_khz": c.bandwidth_hz / 1e3, "max_jump_khz": c.jump_hz / 1e3})


def cv_auc(x_a: np.ndarray, x_b: np.ndarray, model: str, seed: int = 0) -> float:
    """5-fold cross-validated AUC of telling the rows of ``x_a`` from those of ``x_b``."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([x_a, x_b]).reshape(len(x_a) + len(x_b), -1)
    y = np.concatenate([np.zeros(len(x_a)), np.ones(len(x_b))])
    if model == "logistic":
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    else:
        clf = RandomForestClassifier(n_estimators=200, min_samples_leaf=2, random_state=seed, n_jobs=1)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    p = cross_val_predict(clf, x, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, p))


def small(images: np.ndarray, size: int = 32) -> np.ndarray:
    """Block means down to ``size x size`` (the two-sample test wants few features for ~200 rows)."""
    n, h, w = images.shape
    return images.reshape(n, size, h // size, size, w // size).mean(axis=(2, 4))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--syllables", type=int, default=180, help="size of each synthetic world (about the real count)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--world", choices=("vocal", "sweep"), default="vocal", help="which synthetic world to compare")
    ap.add_argument("--noise", default=None, help="noise classes of the synthetic worlds (default: all; 'none')")
    args = ap.parse_args(argv)
    noise = None if args.noise is None else tuple(n for n in args.noise.split(",") if n and n != "none")
    data = Path(args.data)
    missing = [p for p in REAL if not (data / p).is_file()]
    if missing:
        sys.exit(f"{data}: missing {', '.join(missing)} (fix: pass --data pointing at the shared recordings)")
    t0 = time.time()
    real, real_img = collect([data / p for p in REAL])
    with tempfile.TemporaryDirectory() as tmp:
        if args.world == "vocal":
            world, synth, synth_img = synthetic(args.syllables, args.seed, Path(tmp) / "a", noise)
            _, synth2, synth2_img = synthetic(args.syllables, args.seed + 1, Path(tmp) / "b", noise)
            truth = truth_measures(world.calls)
        else:
            sweep, synth, synth_img = synthetic_sweep(args.syllables, args.seed, Path(tmp) / "a")
            _, synth2, synth2_img = synthetic_sweep(args.syllables, args.seed + 1, Path(tmp) / "b")
            truth = sweep_truth_measures(sweep)
    print(f"real: {len(real)} syllables from {len(REAL)} files; {args.world} world: {len(synth)} segmented "
          f"({len(truth)} calls drawn), A/A control world: {len(synth2)} segmented\n")
    print(quantile_table(real, synth, truth))
    print("\n| two-sample test (5-fold AUC; 0.5 = indistinguishable) | real vs synthetic | synthetic vs synthetic (A/A) |")
    print("|---|---|---|")
    for label, model, a, b, c in (
            ("logistic regression, 32x32 images", "logistic", small(real_img), small(synth_img), small(synth2_img)),
            ("random forest, 32x32 images", "forest", small(real_img), small(synth_img), small(synth2_img)),
            ("logistic regression, 6 measures", "logistic", real[list(MEASURE_COLUMNS)].to_numpy(),
             synth[list(MEASURE_COLUMNS)].to_numpy(), synth2[list(MEASURE_COLUMNS)].to_numpy())):
        print(f"| {label} | {cv_auc(a, b, model, args.seed):.3f} | {cv_auc(c, b, model, args.seed):.3f} |")
    print(f"\nwall {time.time() - t0:.0f} s, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
