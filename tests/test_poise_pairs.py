"""``usvpipe poise pairs``: videos matched to recordings, frames at syllable onsets, bad input."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import write_call_store  # noqa: E402
from usvpipe.errors import InputFileError, UsvpipeError  # noqa: E402
from usvpipe.poise.pairs import make_pairs  # noqa: E402
from usvpipe.poise.params import PairsParams  # noqa: E402
from usvpipe.poise.video import read_frames, video_info, write_video  # noqa: E402

FPS = 25
needs_av = pytest.mark.skipif(importlib.util.find_spec("av") is None, reason="PyAV (extra 'video') not installed")


def test_usvpipe_imports_without_pyav_and_says_which_extra():
    code = ("import sys; sys.modules['av'] = None\n"
            "import usvpipe, usvpipe.poise, usvpipe.poise.pairs, usvpipe.cli.poise\n"
            "from usvpipe.errors import UsvpipeError\n"
            "from usvpipe.poise.video import video_info\n"
            "try:\n    video_info('x.mp4')\nexcept UsvpipeError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "usvpipe[video]" in out


def _index_video(path, seconds=4.0, shape=(16, 16)):
    """A video whose frame k shows k in base 16: grey (k % 16) / 15 left, (k // 16) / 15 right."""
    n = int(seconds * FPS)
    k = np.arange(n)[:, None, None]
    half = shape[1] // 2
    frames = np.empty((n, *shape))
    frames[:, :, :half] = (k % 16) / 15
    frames[:, :, half:] = (k // 16) / 15
    write_video(path, frames, fps=FPS)
    return n


def _frame_index(img, n=None):
    w = img.shape[1]
    lo = int(round(float(img[:, : w // 2 - 1].mean()) * 15))
    hi = int(round(float(img[:, w // 2 + 1:].mean()) * 15))
    return 16 * hi + lo


@needs_av
def test_read_frames_returns_the_frame_on_screen(tmp_path):
    n = _index_video(tmp_path / "v.mp4")
    info = video_info(tmp_path / "v.mp4")
    assert info.fps == FPS and abs(info.duration_s - n / FPS) < 1e-6 and (info.width, info.height) == (16, 16)
    t = np.array([0.0, 0.039, 0.04, 1.0, 2.519, 3.99])
    got = read_frames(tmp_path / "v.mp4", t, size=(8, 8))
    assert [_frame_index(g, n) for g in got] == [int(x * FPS + 1e-9) for x in t]
    with pytest.raises(InputFileError, match="video ends at"):
        read_frames(tmp_path / "v.mp4", [4.2])
    with pytest.raises(InputFileError, match="before the video starts"):
        read_frames(tmp_path / "v.mp4", [-0.1])


@needs_av
def test_pairs_follow_the_layout_and_sync_and_report_bad_recordings(tmp_path):
    store = write_call_store(tmp_path / "store", 4, 6)
    vids = tmp_path / "videos"
    (vids / "g" / "a0").mkdir(parents=True)
    (vids / "g" / "a2").mkdir(parents=True)
    (vids / "g" / "a3").mkdir(parents=True)
    n = _index_video(vids / "g" / "a0" / "rec0.mp4", seconds=8.0)
    # rec1: no video; rec2: corrupt file; rec3: a video that ends before its calls do
    (vids / "g" / "a2" / "rec2.mp4").write_bytes(b"\x00not a video" * 100)
    _index_video(vids / "g" / "a3" / "rec3.mp4", seconds=0.1)
    params = PairsParams(offset_s=0.5, drift_ppm=20_000, size=(8, 8), frames=2, frame_step=3)
    run = make_pairs(store, vids, tmp_path / "pairs.npz", params)
    probs = {rec: reason for rec, _, reason in run.problems}
    assert set(probs) == {"g/a1/rec1.wav", "g/a2/rec2.wav", "g/a3/rec3.wav"}
    assert "no video" in probs["g/a1/rec1.wav"] and "not a readable video" in probs["g/a2/rec2.wav"]
    assert "video ends at" in probs["g/a3/rec3.wav"]
    with np.load(tmp_path / "pairs.npz") as z:
        x1, x2, rec, onset, ft = z["x1"], z["x2"], z["recording"], z["onset_s"], z["frame_time_s"]
    assert x1.shape == (6, 8, 16) and x2.shape == (6, 32, 32) and set(rec) == {"g/a0/rec0.wav"}
    np.testing.assert_allclose(ft, 0.5 + onset * 1.02)
    for img, t in zip(x1, ft):
        k = int(t * FPS + 1e-9)
        assert _frame_index(img[:, :8], n) == k and _frame_index(img[:, 8:], n) == k + 3
    prov = pd.read_csv(tmp_path / "pairs.csv")
    assert list(prov.columns[:3]) == ["recording", "syllable_id", "animal"] and len(prov) == 6
    assert len(pd.read_csv(tmp_path / "pairs.errors.csv")) == 3
    # The pairs file is PAIRS for `poise train`.
    from usvpipe.poise.data import load_pairs

    assert len(load_pairs(tmp_path / "pairs.npz")) == 6


@needs_av
def test_per_recording_sync_roi_and_metadata_matching(tmp_path):
    store = write_call_store(tmp_path / "store", 2, 4)
    vids = tmp_path / "flat"
    vids.mkdir()
    _index_video(vids / "rec0.mp4", seconds=8.0, shape=(16, 24))
    _index_video(vids / "rec1.mp4", seconds=8.0)
    meta = tmp_path / "videos.csv"
    meta.write_text("path,animal,group\nflat/rec0.mp4,a0,g\nflat/rec1.mp4,a1,g\n")
    sync = tmp_path / "sync.csv"
    sync.write_text("recording,offset_s,drift_ppm\ng/a0/rec0.wav,1.25,\n")
    run = make_pairs(store, vids, None, PairsParams(size=(4, 4), roi=(2, 2, 8, 8)), video_metadata=meta, sync=sync)
    assert run.problems == [] and run.n_pairs == 8
    t = run.table
    r0 = t[t["recording"] == "g/a0/rec0.wav"]
    np.testing.assert_allclose(r0["frame_time_s"], 1.25 + r0["onset_s"])
    r1 = t[t["recording"] == "g/a1/rec1.wav"]
    np.testing.assert_allclose(r1["frame_time_s"], r1["onset_s"])
    # Without the metadata CSV the flat folder matches nothing: a one-line error, nothing written.
    with pytest.raises(UsvpipeError, match="no recording could be paired"):
        make_pairs(store, vids, tmp_path / "p.npz", PairsParams())
    assert not (tmp_path / "p.npz").exists()


@needs_av
def test_video_shorter_than_its_wav_and_unknown_frame_rate(tmp_path, monkeypatch):
    import soundfile as sf

    store = write_call_store(tmp_path / "store", 2, 3)
    root = tmp_path / "data"
    for r in range(2):
        (root / "g" / f"a{r}").mkdir(parents=True)
        sf.write(root / "g" / f"a{r}" / f"rec{r}.wav", np.zeros(250_000 * 6, np.float32), 250_000)
    _index_video(root / "g" / "a0" / "rec0.mp4", seconds=6.0)
    _index_video(root / "g" / "a1" / "rec1.mp4", seconds=3.0)  # calls end < 3 s, but the WAV is 6 s
    run = make_pairs(store, root, None, PairsParams(size=(4, 4)))
    assert [p[0] for p in run.problems] == ["g/a1/rec1.wav"]
    assert "shorter than its audio" in run.problems[0][2] and "rec1.mp4" in run.problems[0][1]
    from usvpipe.poise import video

    monkeypatch.setattr(video, "_stream_rate", lambda stream: None)
    with pytest.raises(InputFileError, match="unknown frame rate.*--fps"):
        video_info(root / "g" / "a0" / "rec0.mp4")
    assert video_info(root / "g" / "a0" / "rec0.mp4", fps=25).fps == 25


@needs_av
def test_cli_pairs_warns_per_recording_and_exits_on_nothing(tmp_path):
    from click.testing import CliRunner

    from usvpipe.cli import main

    store = write_call_store(tmp_path / "store", 2, 3)
    vids = tmp_path / "v"
    (vids / "g" / "a0").mkdir(parents=True)
    _index_video(vids / "g" / "a0" / "rec0.mp4", seconds=5.0)
    runner = CliRunner()
    res = runner.invoke(main, ["poise", "pairs", str(store), str(vids), str(tmp_path / "p.npz"), "--size", "8", "8",
                               "--offset-s", "0.1"])
    assert res.exit_code == 0, res.output
    assert "paired 3 syllables from 1 recording" in res.output and "g/a1/rec1.wav: no video" in res.output
    res = runner.invoke(main, ["poise", "pairs", str(store), str(tmp_path / "nothing"), str(tmp_path / "q.npz")])
    assert res.exit_code == 2 and "usvpipe: error:" in res.output and "nothing" in res.output
    res = runner.invoke(main, ["poise", "pairs", str(store), str(vids), str(tmp_path / "q.npz"), "--frames", "0"])
    assert res.exit_code == 2 and "frames" in res.output
