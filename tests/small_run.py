"""A small run folder with real sound, for the explorer server and browser tests (seconds, no VAE).

Two groups of four animals, six tone calls per animal in a 1 s, 250 kHz recording; the latents
are random with group B shifted, so the MMD stage finds a difference. The explorer is made by
the umap stage's own code (PCA, a few clips embedded); the report by ``run_pipeline``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

SR = 250_000
CALLS = 6


def tone_recording(path: Path, onsets, durations, f_hz: float) -> Path:
    t = np.arange(SR) / SR
    x = 0.001 * np.random.default_rng(len(str(path))).standard_normal(t.size)
    for on, dur in zip(onsets, durations):
        sel = (t >= on) & (t < on + dur)
        x[sel] += 0.5 * np.sin(2 * np.pi * f_hz * t[sel])
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), SR, subtype="PCM_16")
    return path


def make_small_run(root: Path, *, max_audio_clips: int = 4) -> Path:
    """``root/in`` (recordings) and ``root/run`` (latents, umap/explorer.html, mmd, report.html); returns the run."""
    from usvpipe.pipeline import config_from_mapping, run_pipeline
    from usvpipe.viz import UmapParams, run_umap

    root = Path(root)
    inp, out = root / "in", root / "run"
    rng = np.random.default_rng(0)
    rows = []
    for g, shift in (("A", 0.0), ("B", 1.5)):
        for k in range(4):
            rec = f"{g}/{g}{k}/r.wav"
            onsets = 0.1 + 0.14 * np.arange(CALLS)
            durs = 0.02 + 0.004 * np.arange(CALLS)
            tone_recording(inp / rec, onsets, durs, 50_000 + 4_000 * k)
            z = rng.normal(size=(CALLS, 4)) + shift
            for i in range(CALLS):
                rows.append({"id": f"{rec}#{i}", "recording": rec, "animal": f"{g}{k}", "group": g, "index": i,
                             "onset_s": round(float(onsets[i]), 4), "offset_s": round(float(onsets[i] + durs[i]), 4),
                             **{f"z{j}": float(z[i, j]) for j in range(4)}})
    out.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(out / "latents.csv", index=False)
    run_umap(out / "latents.csv", out / "umap", UmapParams(method="pca", figure_formats=("png",),
                                                           max_audio_clips=max_audio_clips), audio_root=inp)
    cfg = config_from_mapping({"run": {"input": str(inp), "output": str(out), "stages": ["mmd"], "group_a": "A",
                                       "group_b": "B"}})
    run_pipeline(cfg, progress=False, quiet=True)
    return out
