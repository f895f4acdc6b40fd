"""Vocal world: repertoires, planted group differences, determinism, clips, written truth, CLI, params."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from click.testing import CliRunner

from usvpipe.errors import ConfigError
from usvpipe.synth import (WorldParams, known_calls_world, render_call_clip, render_recording, render_window,
                           simulate_world, write_world)
from usvpipe.synth.calls import main_contour

SR = 250_000


def _tables(**kw):
    base = dict(animals_per_group=3, syllables_per_animal=60, noise=(), seed=2)
    base.update(kw)
    return simulate_world(WorldParams(**base))


def test_the_same_seed_gives_the_same_world_and_audio_and_another_seed_does_not():
    a, b = _tables(noise=("clicks", "reverb", "gain")), _tables(noise=("clicks", "reverb", "gain"))
    pd.testing.assert_frame_equal(a.calls, b.calls)
    pd.testing.assert_frame_equal(a.noise_events, b.noise_events)
    rec = a.recordings.recording[0]
    np.testing.assert_array_equal(render_recording(a, rec)[0], render_recording(b, rec)[0])
    assert not a.calls.mean_freq_hz.equals(_tables(seed=3).calls.mean_freq_hz)


def test_a_call_clip_is_the_same_span_of_the_whole_recording():
    world = _tables(noise=("clicks", "scratches", "reverb", "hum", "gain"))
    rec = world.recordings.iloc[1]
    audio, calls, _ = render_recording(world, rec.recording)
    for syllable in calls.index[[0, 5, -1]]:
        row = world.calls.loc[syllable]
        clip = render_call_clip(world, syllable, margin_s=0.03)
        start = max(0, int(round((row.onset_s - 0.03) * SR)))
        np.testing.assert_allclose(clip, audio[start:start + len(clip)], atol=1e-6)
        assert len(clip) == int(round((row.offset_s + 0.03) * SR)) - start


def test_calls_are_laid_out_in_order_without_overlap_inside_the_recording():
    world = _tables()
    for rec in world.recordings.itertuples():
        calls = world.calls[world.calls.recording == rec.recording]
        assert (calls.onset_s.to_numpy()[1:] - calls.offset_s.to_numpy()[:-1] >= world.params.min_gap_s - 1e-6).all()
        assert calls.offset_s.max() < rec.duration_s and calls.onset_s.min() > 0
        np.testing.assert_allclose(calls.offset_s - calls.onset_s, calls.duration_s, atol=1e-9)


def test_truth_onsets_are_where_the_audio_has_the_call():
    from usvpipe.synth import known_calls_recording

    world = known_calls_world(("flat", "chevron", "step"), noise=None, snr_db=20, calls_per_type=3, seed=1)
    rec = world.recordings.iloc[0]
    audio = render_window(world, rec.recording, 0, int(rec.n_samples))
    wave, calls, noise = known_calls_recording(("flat", "chevron", "step"), snr_db=20, calls_per_type=3, seed=1)
    np.testing.assert_allclose(wave, audio, atol=1e-6)
    assert calls.call_type.tolist() == ["flat", "chevron", "step"] * 3 and noise.empty
    from usvpipe.synth.noise import background
    call_only = audio - background(int(rec.seed), 0, int(rec.n_samples))
    active = np.abs(call_only) > 1e-9
    inside = np.zeros(len(audio), bool)
    for c in world.calls.itertuples():
        inside[int(round(c.onset_s * SR)):int(round(c.offset_s * SR))] = True
    assert not (active & ~inside).any() and active[inside].mean() > 0.99


def test_animals_of_one_group_differ_in_usage_and_pitch():
    world = _tables(animals_per_group=4)
    a = world.animals[world.animals.group == "A"]
    assert a.pitch_offset_hz.std() > 200 and a.filter(like="usage_").std().max() > 0.01
    np.testing.assert_allclose(a.filter(like="usage_").sum(axis=1), 1.0)


def test_a_usage_difference_is_planted_as_asked():
    from usvpipe.synth import group_usages

    size = 0.08
    params = WorldParams(animals_per_group=20, syllables_per_animal=1500, noise=(), seed=4, usage_concentration=2000.0,
                         difference="usage", difference_size=size)
    reference, shifted = group_usages(params)
    kinds = list(params.call_types)
    moved = shifted - reference
    assert moved[kinds.index("upsweep")] == pytest.approx(-size) and moved[kinds.index("step")] == pytest.approx(size)
    assert np.count_nonzero(np.abs(moved) > 1e-12) == 2
    world = simulate_world(params)
    share = pd.crosstab(world.calls.animal, world.calls.call_type, normalize="index")
    group = world.animals.set_index("animal").group.reindex(share.index)
    for kind, sign in (("upsweep", -1), ("step", 1), ("flat", 0)):
        a, b = share[kind][group == "A"], share[kind][group == "B"]
        se = np.sqrt(a.var() / len(a) + b.var() / len(b))
        assert se < 0.005 and abs((b.mean() - a.mean()) - sign * size) < 4 * se, (kind, b.mean() - a.mean(), se)


def test_a_usage_move_larger_than_the_usage_is_refused():
    with pytest.raises(ConfigError, match="at most"):
        _tables(difference="usage", difference_size=0.5)


def test_pitch_and_duration_differences_move_only_their_parameter():
    ref = _tables()
    pitch = _tables(difference="pitch", difference_size=3.0)
    longer = _tables(difference="duration", difference_size=20.0)
    b = ref.calls.group == "B"
    np.testing.assert_allclose(pitch.calls.mean_freq_hz[b] - ref.calls.mean_freq_hz[b], 3000.0)
    np.testing.assert_allclose(pitch.calls.mean_freq_hz[~b], ref.calls.mean_freq_hz[~b])
    ratio = longer.calls.duration_s[b] / ref.calls.duration_s[b]
    assert abs(ratio.median() - 1.2) < 0.01 and (ratio.sub(1.2).abs() < 0.02).all()
    np.testing.assert_allclose(longer.calls.mean_freq_hz, ref.calls.mean_freq_hz)


def test_a_shape_difference_keeps_pitch_and_duration_matched():
    ref = _tables(syllables_per_animal=200)
    shaped = _tables(syllables_per_animal=200, difference="shape", difference_size=0.5)
    b = (ref.calls.group == "B").to_numpy()
    pd.testing.assert_series_equal(shaped.calls.duration_s, ref.calls.duration_s)
    # mean frequency measured as the time average of each rendered contour, not read from the parameter
    u = (np.arange(4000) + 0.5) / 4000
    mean_ref = np.array([main_contour(r, u).mean() for _, r in ref.calls[b].iterrows()])
    mean_shaped = np.array([main_contour(r, u).mean() for _, r in shaped.calls[b].iterrows()])
    assert np.abs(mean_shaped - mean_ref).max() < 60  # Hz; the contour grid's jump rounding
    moving = (ref.calls.fm_hz[b] + ref.calls.jump_hz[b]) > 0
    ratio = shaped.calls.bandwidth_hz[b][moving] / ref.calls.bandwidth_hz[b][moving]
    assert ratio.median() == pytest.approx(1.5, abs=0.02)
    pd.testing.assert_frame_equal(shaped.calls[~b], ref.calls[~b])


def test_a_shape_difference_keeps_the_rendered_peak_frequency_matched():
    ref = known_calls_world(("chevron", "step", "complex"), noise=None, snr_db=30, calls_per_type=2, seed=3)
    calls = ref.calls.copy()
    calls["fm_hz"] *= 1.5
    calls["jump_hz"] *= 1.5

    def mean_peak(world, table):
        out = []
        for _, row in table.iterrows():
            clip = render_window(world, row.recording, int(round(row.onset_s * SR)), int(round(row.duration_s * SR)))
            frames = np.lib.stride_tricks.sliding_window_view(clip, 256)[::64] * np.hanning(256)
            peak = np.fft.rfftfreq(256, 1 / SR)[np.argmax(np.abs(np.fft.rfft(frames, axis=1)), axis=1)]
            out.append(peak.mean())
        return np.array(out)

    from dataclasses import replace
    from usvpipe.synth.world import _finish_calls
    shaped = replace(ref, calls=_finish_calls(calls))
    assert np.abs(mean_peak(shaped, shaped.calls) - mean_peak(ref, ref.calls)).max() < 1_500


def test_write_world_writes_wavs_and_truth_tables_that_agree(tmp_path):
    world = _tables(animals_per_group=1, syllables_per_animal=20, noise=("clicks", "hum"))
    meta = write_world(world, tmp_path / "w")
    out = tmp_path / "w"
    calls = pd.read_csv(out / "truth_calls.csv")
    noise = pd.read_csv(out / "truth_noise.csv")
    assert len(calls) == len(world.calls) and set(noise.kind) <= {"clicks", "hum"}
    assert list(calls.columns[:7]) == ["syllable", "recording", "group", "animal", "call_index", "onset_s", "offset_s"]
    for row in meta.itertuples():
        info = sf.info(out / row.path)
        assert info.samplerate == SR and info.frames == int(world.recordings.set_index("recording").n_samples[row.path])
        assert (calls.recording == row.path).sum() == 20
    assert not list(out.rglob(".tmp-*"))


def test_params_are_validated_with_one_line_errors():
    with pytest.raises(ConfigError, match="call_types"):
        WorldParams(call_types=("flat", "warble"))
    with pytest.raises(ConfigError, match="noise"):
        WorldParams(noise=("thunder",))
    with pytest.raises(ConfigError, match="snr_db"):
        WorldParams(snr_db=(30, 5))
    with pytest.raises(ConfigError, match="difference"):
        WorldParams(difference="loudness")
    with pytest.raises(ConfigError, match="no call"):
        WorldParams(syllables_per_animal=1, recordings_per_animal=2)


def test_cli_vocal_world_writes_truth_and_rejects_bad_options(tmp_path):
    from usvpipe.cli import main

    out = tmp_path / "v"
    res = CliRunner().invoke(main, ["synth", str(out), "--world", "vocal", "--animals-per-group", "1",
                                    "--syllables-per-animal", "10", "--call-types", "flat,step", "--noise", "none",
                                    "--snr-db", "10", "--difference", "pitch:2", "--seed", "1"])
    assert res.exit_code == 0, res.output
    calls = pd.read_csv(out / "truth_calls.csv")
    assert set(calls.call_type) <= {"flat", "step"} and (calls.snr_db == 10).all()
    assert not (out / "truth_noise.csv").read_text().strip().count("\n")
    res = CliRunner().invoke(main, ["synth", str(tmp_path / "x"), "--world", "vocal", "--difference", "loud:1"])
    assert res.exit_code != 0 and "difference" in res.output and "usage:0.1" in res.output
    res = CliRunner().invoke(main, ["synth", str(tmp_path / "y"), "--call-types", "flat"])
    assert res.exit_code != 0 and "--world vocal" in res.output
    cfg = tmp_path / "u.toml"
    cfg.write_text('[synth]\nanimals_per_group = 1\nsyllables_per_animal = 5\nnoise = ["hum"]\n')
    res = CliRunner().invoke(main, ["synth", str(tmp_path / "z"), "--world", "vocal", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "z" / "truth_calls.csv")) == 10
