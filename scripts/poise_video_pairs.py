#!/usr/bin/env python
"""From files to a cross-generating model: synthetic WAVs + behaviour videos through the CLI stages.

For each of ``--recordings`` synthetic recordings (``usvpipe.synth.synth_recording``) it writes the
WAV and an mp4 (PyAV) in which a bar's column encodes the start frequency (pitch) of the call on
screen, laid out as ``data/g/a<r>/s<r>.{wav,mp4}``; then runs ``usvpipe segment``, ``usvpipe poise
pairs`` and ``usvpipe poise train`` (per model) on 80 % of the pairs, and scores cross-generation on
the other 20 %:

* ``video<-audio R2``: the bar position (column centroid) of frames generated from the syllable
  alone vs the real frame's bar;
* ``audio<-video R2``: the pitch read (ridge regression fitted on the real training spectrograms)
  from spectrograms generated from the frame alone vs the true start frequency of the call;
* ``ceiling``: the same read-outs on the real held-out images (ridge from the spectrogram to the
  bar; the spectrogram read-out on real spectrograms).

Models: POISE with subset ELBOs (``poise``; ``poise+forward`` adds ``--recon-sweep forward``, the
reconstruction sweep used before issue 12; ``poise+full`` adds ``--full-coupling``)
(``--subset-elbos``, the setting docs/poise.md recommends for cross-generation) and the MMVAE / MVAE
baselines on the same pairs, networks and epochs; the ratio POISE / baseline is printed next to each,
and the load average next to the times.

    OMP_NUM_THREADS=1 python scripts/poise_video_pairs.py            # ~10 min on a quiet core
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def r2(pred, true) -> float:
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    return float(1 - ((pred - true) ** 2).sum() / ((true - true.mean()) ** 2).sum())


def make_files(root: Path, recordings: int, duration_s: float, fps: int, seed: int):
    import soundfile as sf

    from usvpipe.poise.data import bar_video_frames
    from usvpipe.poise.video import write_video
    from usvpipe.synth import synth_recording

    truths = {}
    for r in range(recordings):
        audio, truth = synth_recording(duration_s, 250_000, call_rate_hz=5.0, min_gap_s=0.08,
                                       seed=seed * 1000 + r, snr_db=25)
        folder = root / "g" / f"a{r}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"s{r}.wav", audio, 250_000)
        write_video(folder / f"s{r}.mp4", bar_video_frames(truth, duration_s, fps=fps), fps=fps)
        truths[f"g/a{r}/s{r}.wav"] = truth
    return truths


def run_cli(args):
    from click.testing import CliRunner

    from usvpipe.cli import main

    res = CliRunner().invoke(main, [str(a) for a in args])
    if res.exit_code != 0:
        raise SystemExit(f"usvpipe {' '.join(map(str, args[:2]))} failed:\n{res.output}")
    return res.output


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recordings", type=int, default=4)
    ap.add_argument("--duration-s", type=float, default=90.0)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--models", nargs="+", default=["poise", "mmvae", "mvae"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default="", help="working folder (default: a temporary one)")
    args = ap.parse_args(argv)

    import torch
    from sklearn.linear_model import RidgeCV

    torch.set_num_threads(args.threads)
    from usvpipe.poise import cross_generate, load_poise
    from usvpipe.poise.data import PairedData, bar_position, load_pairs, save_pairs

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="poise_video_pairs_"))
    t0 = time.perf_counter()
    truths = make_files(work / "data", args.recordings, args.duration_s, args.fps, args.seed)
    (work / "usvpipe.toml").write_text("[syllables]\nshape = [32, 32]\n")
    run_cli(["segment", work / "data", work / "store", "--config", work / "usvpipe.toml", "--no-progress"])
    run_cli(["poise", "pairs", work / "store", work / "data", work / "pairs.npz", "--size", 16, 32])
    prep_s = time.perf_counter() - t0
    pairs = load_pairs(work / "pairs.npz")
    # True pitch of each syllable: the synthetic call with the nearest onset in its recording.
    pitch = np.empty(len(pairs))
    for rec, truth in truths.items():
        sel = pairs.extra["recording"] == rec
        on = truth["onset_s"].to_numpy()
        pitch[sel] = truth["start_freq_hz"].to_numpy()[np.abs(pairs.extra["onset_s"][sel][:, None] - on[None]).argmin(1)]
    n_calls = sum(len(t) for t in truths.values())
    bar = bar_position(pairs.x1)
    print(f"{len(pairs)} pairs from {n_calls} synthetic calls in {args.recordings} recordings; "
          f"bar vs pitch r = {np.corrcoef(bar, pitch)[0, 1]:.4f}; files + segment + pairs {prep_s:.0f} s "
          f"(load {os.getloadavg()[0]:.2f})", flush=True)
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(pairs))
    train, test = perm[: int(0.8 * len(perm))], perm[int(0.8 * len(perm)):]
    save_pairs(work / "train.npz", PairedData(pairs.x1[train], pairs.x2[train]))
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    read_pitch = RidgeCV(alphas=np.logspace(-2, 3, 12)).fit(flat(pairs.x2[train]), pitch[train])
    read_bar = RidgeCV(alphas=np.logspace(-2, 3, 12)).fit(flat(pairs.x2[train]), bar[train])
    ceiling = {"video<-audio": r2(read_bar.predict(flat(pairs.x2[test])), bar[test]),
               "audio<-video": r2(read_pitch.predict(flat(pairs.x2[test])), pitch[test])}
    print(json.dumps({"model": "ceiling (ridge on real images)", **{k: round(v, 3) for k, v in ceiling.items()}}), flush=True)
    rows = []
    for name in args.models:
        out = work / f"model-{name}"
        # --heldout-fraction 0: the script holds out its own 20 % (scored below), as when the
        # documented numbers were measured; the CLI's own check would take another 10 %.
        opts = ["--latent-dim-1", 4, "--latent-dim-2", 4, "--hidden-units", 64, "--epochs", args.epochs,
                "--batch-size", 64, "--seed", args.seed, "--heldout-fraction", 0]
        kind, *variants = name.split("+")
        opts += ["--subset-elbos"] if kind == "poise" else ["--model", kind]
        for v in variants:  # e.g. poise+forward: the reconstruction sweep used before issue 12
            opts += {"forward": ["--recon-sweep", "forward"], "symmetric": ["--recon-sweep", "symmetric"],
                     "full": ["--full-coupling"]}[v]
        t1 = time.perf_counter()
        run_cli(["poise", "train", work / "train.npz", out, *opts])
        train_s = time.perf_counter() - t1
        model = load_poise(out / "model.pt")
        torch.manual_seed(0)
        frames, _ = cross_generate(model, x2=pairs.x2[test], mean=True)
        _, specs = cross_generate(model, x1=pairs.x1[test], mean=True)
        row = {"model": name, "video<-audio": round(r2(bar_position(frames[:, 0]), bar[test]), 3),
               "audio<-video": round(r2(read_pitch.predict(flat(specs[:, 0])), pitch[test]), 3),
               "train_s": round(train_s, 1), "load1": round(os.getloadavg()[0], 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    base = {r["model"]: r for r in rows}
    if "poise" in base:
        for other in [m for m in base if m != "poise"]:
            print(f"POISE / {other}: video<-audio {base['poise']['video<-audio'] / max(base[other]['video<-audio'], 1e-9):.2f}x, "
                  f"audio<-video {base['poise']['audio<-video'] / max(base[other]['audio<-video'], 1e-9):.2f}x, "
                  f"training time {base['poise']['train_s'] / base[other]['train_s']:.2f}x")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
