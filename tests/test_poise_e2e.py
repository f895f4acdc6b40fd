"""End to end from files: WAV + behaviour video -> segment -> poise pairs -> poise train -> cross-generation.

The video shows a bar whose column encodes the pitch of the call on screen; the WAV comes from
the synth API. If pairing picked the wrong frames (sync, frame times, matching), the bar would
not follow the syllable and the cross-generated bar position could not be predicted from audio.
"""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("av") is None, reason="PyAV (extra 'video') not installed")
torch.set_num_threads(1)


def test_video_and_wav_to_a_model_that_draws_the_bar_from_the_call(tmp_path):
    import soundfile as sf
    from click.testing import CliRunner

    from usvpipe.cli import main
    from usvpipe.poise import cross_generate, load_poise
    from usvpipe.poise.check import heldout_split
    from usvpipe.poise.data import bar_position, bar_video_frames, load_pairs
    from usvpipe.poise.video import write_video
    from usvpipe.synth import synth_recording

    duration = 60.0
    audio, truth = synth_recording(duration, 250_000, call_rate_hz=5.0, min_gap_s=0.08, seed=0, snr_db=25)
    rec = tmp_path / "data" / "g" / "a0"
    rec.mkdir(parents=True)
    sf.write(rec / "s0.wav", audio, 250_000)
    write_video(rec / "s0.mp4", bar_video_frames(truth, duration, fps=30), fps=30)
    (tmp_path / "usvpipe.toml").write_text("[syllables]\nshape = [32, 32]\n")
    runner = CliRunner()
    res = runner.invoke(main, ["segment", str(tmp_path / "data"), str(tmp_path / "store"),
                               "--config", str(tmp_path / "usvpipe.toml"), "--no-progress"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["poise", "pairs", str(tmp_path / "store"), str(tmp_path / "data"),
                               str(tmp_path / "pairs.npz"), "--size", "16", "32"])
    assert res.exit_code == 0, res.output
    pairs = load_pairs(tmp_path / "pairs.npz")
    assert len(pairs) > 0.9 * len(truth)
    # The frame at each detected onset shows that call's bar (pairing is right before training).
    pos = bar_position(pairs.x1)
    nearest = np.abs(pairs.extra["onset_s"][:, None] - truth["onset_s"].to_numpy()[None]).argmin(1)
    assert np.corrcoef(pos, truth["start_freq_hz"].to_numpy()[nearest])[0, 1] > 0.99

    # `poise train` holds out a fifth of the pairs (one recording here, so random pairs) and
    # checks cross-generation on them; the R^2 below is on the same held-out pairs.
    res = runner.invoke(main, ["poise", "train", str(tmp_path / "pairs.npz"), str(tmp_path / "model"),
                               "--latent-dim-1", "4", "--latent-dim-2", "4", "--hidden-units", "32",
                               "--epochs", "40", "--batch-size", "32", "--subset-elbos", "--heldout-fraction", "0.2"])
    assert res.exit_code == 0, res.output
    assert "held-out pairs (random pairs, not trained on; re-paired across all held-out pairs)" in res.output, res.output
    assert "x1 <- x2: skill" in res.output and "does NOT follow" not in res.output, res.output
    check = json.loads((tmp_path / "model" / "check.json").read_text())
    assert check["passed"] and check["split"] == "pairs", check
    _, test, _ = heldout_split(len(pairs), 0.2, seed=0, groups=pairs.extra["recording"])
    assert check["n_heldout"] == len(test)
    model = load_poise(tmp_path / "model" / "model.pt")
    torch.manual_seed(0)
    frames, _ = cross_generate(model, x2=pairs.x2[test], mean=True)  # video <- audio, held-out pairs
    got, want = bar_position(frames[:, 0]), pos[test]
    r2 = 1 - ((got - want) ** 2).sum() / ((want - want.mean()) ** 2).sum()
    # ~45 held-out pairs from ~225 training pairs: R^2 0.91 here; 0.39 with --recon-sweep forward
    # (the one-sided reconstruction sweep before issue 12, 0.38-0.42 over three settings then, on
    # the test's earlier split). scripts/poise_video_pairs.py (more recordings) measures the
    # R^2 >= 0.7 claim.
    assert r2 > 0.6, r2


def test_usvpipe_run_with_videos_pairs_and_trains_poise_and_skips_when_up_to_date(tmp_path):
    """The [poise] part of `usvpipe run`: [run] videos -> pairs -> POISE model; a recording
    without a video is reported and the others still pair; an unchanged re-run skips the stage."""
    import json

    import soundfile as sf
    from click.testing import CliRunner

    from usvpipe.cli import main
    from usvpipe.poise.data import bar_video_frames, load_pairs
    from usvpipe.poise.video import write_video
    from usvpipe.synth import synth_recording

    data = tmp_path / "data"
    for k, with_video in enumerate((True, True, False)):
        audio, truth = synth_recording(12.0, 250_000, call_rate_hz=5.0, min_gap_s=0.08, seed=k, snr_db=25)
        rec = data / "g" / f"a{k}"
        rec.mkdir(parents=True)
        sf.write(rec / "s.wav", audio, 250_000)
        if with_video:
            write_video(rec / "s.mp4", bar_video_frames(truth, 12.0, fps=30), fps=30)
    (tmp_path / "usvpipe.toml").write_text(
        '[run]\ninput = "data"\noutput = "out"\nvideos = "data"\nstages = ["segment", "poise"]\n'
        "[syllables]\nshape = [32, 32]\n[poise_pairs]\nsize = [16, 32]\n"
        "[poise]\nlatent_dim_1 = 2\nlatent_dim_2 = 2\nhidden_units = 16\nepochs = 2\nbatch_size = 32\n")
    runner = CliRunner()
    res = runner.invoke(main, ["run", str(tmp_path / "usvpipe.toml"), "--quiet"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "out" / "poise"
    pairs = load_pairs(out / "pairs.npz")
    assert pairs.x1.shape[1:] == (16, 32) and pairs.x2.shape[1:] == (32, 32)
    assert set(pairs.extra["recording"]) == {"g/a0/s.wav", "g/a1/s.wav"}  # a2 has no video
    assert "g/a2/s.wav" in (out / "pairs.errors.csv").read_text()
    assert (out / "model" / "model.pt").exists()
    stages = {s["name"]: s for s in json.loads((tmp_path / "out" / "run_manifest.json").read_text())["stages"]}
    assert stages["poise"]["status"] == "ran" and "1 recording(s) could not pair" in stages["poise"]["detail"]
    # ~12 s of calls per recording is too few pairs for the held-out check, and the run says so
    assert "cross-generation unchecked" in stages["poise"]["detail"], stages["poise"]["detail"]
    assert "at least 20 are needed" in json.loads((out / "model" / "check.json").read_text())["reason"]

    res = runner.invoke(main, ["run", str(tmp_path / "usvpipe.toml"), "--quiet"])
    assert res.exit_code == 0, res.output
    stages = {s["name"]: s for s in json.loads((tmp_path / "out" / "run_manifest.json").read_text())["stages"]}
    assert stages["poise"]["status"].startswith("skipped")


def test_poise_in_stages_without_videos_is_a_config_error():
    from usvpipe.errors import ConfigError
    from usvpipe.pipeline.config import RunParams

    with pytest.raises(ConfigError, match=r"\[run\]\.videos.*stages include poise"):
        RunParams(input="x", stages=("segment", "poise"))
    assert RunParams(input="x", videos="v").requests("poise") and not RunParams(input="x").requests("poise")
