"""Explorer sound and review: time-expanded clips from the recording; review marks exported as CSV."""
from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from usvpipe.viz._audio import audio_clips, time_expanded_clip

ROOT = Path(__file__).resolve().parents[1]


def _tone_wav(path, *, sr=250_000, seconds=1.0, f_hz=60_000.0, call=(0.4, 0.45)):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.001 * np.random.default_rng(0).standard_normal(t.size)
    on = (t >= call[0]) & (t < call[1])
    x[on] += 0.5 * np.sin(2 * np.pi * f_hz * t[on])
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), sr, subtype="PCM_16")
    return path


def test_a_clip_is_the_call_slowed_down_so_its_frequency_is_audible(tmp_path):
    wav = _tone_wav(tmp_path / "g" / "a" / "r.wav")
    blob = time_expanded_clip(wav, 0.40, 0.45, factor=16, pad_s=0.01)
    y, sr = sf.read(io.BytesIO(blob))
    assert sr == 15625  # 250 kHz / 16
    assert len(y) / sr == pytest.approx(16 * 0.07, abs=0.01)  # 50 ms call + 2 x 10 ms, 16x longer
    # the 60 kHz call now peaks at 60 / 16 = 3.75 kHz
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    peak_hz = np.fft.rfftfreq(len(y), 1 / sr)[np.argmax(spec)]
    assert peak_hz == pytest.approx(3750, rel=0.02)


def test_clips_skip_recordings_that_are_gone(tmp_path):
    _tone_wav(tmp_path / "in" / "a.wav")
    table = pd.DataFrame({"recording": ["a.wav", "missing.wav"], "onset_s": [0.4, 0.1], "offset_s": [0.45, 0.2]})
    clips = audio_clips(table, tmp_path / "in", [0, 1])
    assert list(clips) == [0]
    assert base64.b64decode(clips[0])[:4] == b"RIFF"


def _explorer_with_sound(tmp_path):
    from usvpipe.viz import UmapParams, run_umap

    rows = []
    for k in range(6):
        rec = f"g{k % 2}/a{k}/r.wav"
        _tone_wav(tmp_path / "in" / rec, f_hz=50_000 + 5_000 * k)
        rows.append({"id": f"{rec}#0", "recording": rec, "animal": f"a{k}", "group": f"g{k % 2}", "onset_s": 0.4,
                     "offset_s": 0.45, "index": 0, "z0": float(k), "z1": float(k % 3), "z2": 0.1 * k})
    lat = tmp_path / "latents.csv"
    pd.DataFrame(rows).to_csv(lat, index=False)
    params = UmapParams(method="pca", figure_formats=("png",), max_audio_clips=4)
    return run_umap(lat, tmp_path / "umap", params, audio_root=tmp_path / "in")


def test_the_explorer_embeds_at_most_max_audio_clips(tmp_path):
    run = _explorer_with_sound(tmp_path)
    record = json.loads((tmp_path / "umap" / "umap.json").read_text())
    assert record["explorer"]["n_audio_clips"] == 4
    page = run.explorer.read_text()
    assert '"time_expansion":16' in page and "export review.csv" in page


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
                    reason="no chromium on PATH (apt-get install -y chromium to run this check)")
def test_in_headless_chromium_a_point_plays_and_its_review_is_exported(tmp_path):
    run = _explorer_with_sound(tmp_path)
    script = ROOT / "scripts" / "render_explorer.py"
    res = subprocess.run([sys.executable, str(script), str(run.explorer), "--select", "2", "--play",
                          "--review", "relabel:two-note"], capture_output=True, text=True, timeout=180)
    s = json.loads(res.stdout)
    assert res.returncode == 0 and s["page_errors"] == [], res.stdout + res.stderr
    assert s["played"] is not None and s["clip_ms"] == pytest.approx(16 * 70, rel=0.05)
    assert s["reviewed"] == 1
    lines = s["review_csv"].strip().splitlines()
    assert lines[0] == "id,recording,onset_s,offset_s,review,label"
    assert lines[1].startswith("g0/a2/r.wav#0,g0/a2/r.wav,0.4,0.45,relabel,two-note")


def test_usvpipe_evaluate_reads_the_review_csv_the_page_exports():
    from usvpipe.annotations import read_segments

    # the page's format (see reviewCsv in the explorer): the label column says call, noise or the new label
    text = ("id,recording,onset_s,offset_s,review,label\n"
            "r.wav#0,r.wav,0.4,0.45,call,call\nr.wav#1,r.wav,0.9,0.95,noise,noise\n")
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "review.csv"
        p.write_text(text)
        seg = read_segments(p)
    assert list(seg["onset_s"]) == [0.4, 0.9] and list(seg["label"]) == ["call", "noise"]
