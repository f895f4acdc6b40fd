"""Synthetic calls: parameter distributions, waveforms, images, SNR, truth and datasets."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from click.testing import CliRunner

from usvpipe import synth
from usvpipe.errors import ConfigError
from usvpipe.synth import CallParams, render_call_image, sample_calls, synth_recording, synthesize_call

SR = 250_000


def _band_power(x, sr, lo, hi):
    """Power of x restricted to [lo, hi] Hz (FFT mask; Parseval)."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / sr)
    spec[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spec, len(x))


# ---------------------------------------------------------------- parameters
def test_call_params_validation():
    with pytest.raises(ConfigError):
        CallParams(50e3, 60e3, 0.0)
    with pytest.raises(ConfigError):
        CallParams(50e3, 60e3, 0.01, harmonic_ratio=1.5)
    with pytest.raises(ConfigError):
        CallParams(50e3, float("nan"), 0.01)


def test_sample_calls_deterministic_and_in_range():
    a = sample_calls(3000, seed=7)
    pd.testing.assert_frame_equal(a, sample_calls(3000, seed=7))
    assert not a.equals(sample_calls(3000, seed=8))
    assert list(a.columns) == list(synth.PARAM_NAMES)
    lo = np.minimum(a.start_freq_hz, a.end_freq_hz) - a.fm_depth_hz
    hi = np.maximum(a.start_freq_hz, a.end_freq_hz) + a.fm_depth_hz
    assert lo.min() >= 30e3 - 1e-6 and hi.max() <= 110e3 + 1e-6
    assert a.duration_s.between(0.005, 0.200).all()
    assert a.harmonic_ratio.between(0, 1).all()
    # Log-normal-ish durations: right-skewed, most calls tens of ms.
    assert a.duration_s.mean() > a.duration_s.median()
    assert 0.02 < a.duration_s.median() < 0.08


def test_group_shift_moves_means_by_sds():
    n = 20000
    base = sample_calls(n, seed=1)
    shifted = sample_calls(n, group_shift=1.0, seed=2)
    # start frequency latent sd is 12 kHz: one SD shift ~ +12 kHz (less a little clipping).
    d_start = shifted.start_freq_hz.mean() - base.start_freq_hz.mean()
    assert 9e3 < d_start < 13e3
    d_logdur = np.log(shifted.duration_s).mean() - np.log(base.duration_s).mean()
    assert 0.45 < d_logdur < 0.65  # log-duration sd is 0.6
    # Amplitude is a nuisance parameter and is not shifted.
    assert abs(shifted.amplitude.mean() - base.amplitude.mean()) < 0.02
    # Per-parameter shift via a mapping.
    only_rate = sample_calls(n, group_shift={"fm_rate_hz": 1.0}, seed=2)
    assert abs(only_rate.start_freq_hz.mean() - base.start_freq_hz.mean()) < 500
    assert np.log(only_rate.fm_rate_hz).mean() - np.log(base.fm_rate_hz).mean() > 0.3
    with pytest.raises(ConfigError):
        sample_calls(10, group_shift={"pitch": 1.0})


def test_animal_offset_makes_individuals_differ():
    a1 = sample_calls(5000, seed=1, animal_offset=np.random.default_rng(0).normal(0, 0.5, 6))
    a2 = sample_calls(5000, seed=1, animal_offset=np.random.default_rng(1).normal(0, 0.5, 6))
    assert not np.allclose(a1.start_freq_hz.mean(), a2.start_freq_hz.mean(), rtol=0.01)


# ---------------------------------------------------------------- one call
def test_synthesize_call_frequency_and_smooth_edges():
    call = CallParams(70e3, 70e3, 0.05, harmonic_ratio=0.0, amplitude=0.8)
    y = synthesize_call(call, SR)
    assert y.dtype == np.float32 and len(y) == round(0.05 * SR)
    spec = np.abs(np.fft.rfft(y))
    f = np.fft.rfftfreq(len(y), 1 / SR)
    assert abs(f[np.argmax(spec)] - 70e3) < 100
    assert abs(y[0]) < 1e-3 and abs(y[-1]) < 1e-3  # raised-cosine ramps: no clicks
    assert 0.75 < np.abs(y).max() <= 0.8 + 1e-6


def test_waveform_follows_the_contour_the_image_draws():
    # STFT peak frequency of the waveform must track the contour (sweep + FM) that
    # render_call_image draws: checks the analytic phase integral.
    from scipy import signal

    call = CallParams(50e3, 90e3, 0.1, fm_depth_hz=4e3, fm_rate_hz=30.0)
    y = synthesize_call(call, SR)
    f, t, z = signal.stft(y, fs=SR, nperseg=256, noverlap=192, boundary=None, padded=False)
    inner = (t > 0.005) & (t < 0.095)
    peak = f[np.argmax(np.abs(z[:, inner]), axis=0)]
    expected = synth._contour(call, t[inner])
    assert np.max(np.abs(peak - expected)) < 1.5 * (f[1] - f[0])
    img = render_call_image(call, shape=(161, 200), window_s=0.1)  # 500 Hz rows, 0.5 ms columns
    cols = np.round(t[inner] / 0.1 * 200 - 0.5).astype(int)
    rows = np.argmax(img[:, cols], axis=0)
    np.testing.assert_allclose(30e3 + rows * 500.0, expected, atol=600)


def test_harmonic_present_below_and_dropped_above_nyquist():
    call = CallParams(80e3, 80e3, 0.05, harmonic_ratio=0.5)
    hi = synthesize_call(call, 500_000)
    spec = np.abs(np.fft.rfft(hi))
    f = np.fft.rfftfreq(len(hi), 1 / 500_000)
    h = spec[np.abs(f - 160e3) < 500].max() / spec[np.abs(f - 80e3) < 500].max()
    assert 0.4 < h < 0.6
    lo = synthesize_call(call, SR)  # 160 kHz > Nyquist: dropped, no alias at 250-160 = 90 kHz
    spec = np.abs(np.fft.rfft(lo))
    f = np.fft.rfftfreq(len(lo), 1 / SR)
    assert spec[np.abs(f - 90e3) < 2e3].max() < 0.01 * spec.max()
    with pytest.raises(ConfigError, match="Nyquist"):
        synthesize_call(CallParams(100e3, 100e3, 0.01), 192_000)


def test_render_call_image():
    call = CallParams(70e3, 70e3, 0.05, harmonic_ratio=0.0)
    img = render_call_image(call)
    assert img.shape == (128, 128) and img.dtype == np.float32
    assert img.min() >= 0 and img.max() <= 1 and img.max() > 0.9
    # Row r is min + r * (max - min) / (H - 1): 70 kHz -> row 63.5.
    assert np.argmax(img[:, 64]) in (63, 64)
    # 50 ms call centred in a 200 ms window: the outer columns are empty.
    assert img[:, :40].max() == 0 and img[:, -40:].max() == 0 and img[:, 50:78].max() > 0.9
    # A 40 kHz call's 2nd harmonic (80 kHz) is in band and drawn; rows follow frequency.
    low = render_call_image(CallParams(40e3, 40e3, 0.05, harmonic_ratio=0.3), shape=(64, 32))
    assert low.shape == (64, 32)
    col = low[:, 16]
    assert np.argmax(col) == round((40e3 - 30e3) / 80e3 * 63)
    assert col[round((80e3 - 30e3) / 80e3 * 63)] > 0.3
    # Rows/frequency orientation: an upsweep rises with column index.
    up = render_call_image(CallParams(40e3, 100e3, 0.15))
    assert np.argmax(up[:, 30]) < np.argmax(up[:, 64]) < np.argmax(up[:, 98])
    # Noise is seeded; rows of a DataFrame work as calls.
    row = sample_calls(1, seed=0).iloc[0]
    np.testing.assert_array_equal(render_call_image(row, noise=0.1, seed=3), render_call_image(row, noise=0.1, seed=3))
    assert render_call_image(row, noise=0.1, seed=3).min() > 0


def test_render_call_images_stack():
    calls = sample_calls(5, seed=2)
    stack = synth.render_call_images(calls, (32, 48), noise=0.05, seed=1)
    assert stack.shape == (5, 32, 48) and stack.dtype == np.float32
    np.testing.assert_array_equal(stack, synth.render_call_images(calls, (32, 48), noise=0.05, seed=1))
    clean = synth.render_call_images(calls, (32, 48))
    np.testing.assert_array_equal(clean[3], render_call_image(calls.iloc[3], (32, 48)))


# ---------------------------------------------------------------- recordings
def test_synth_recording_deterministic_and_truth_layout():
    a, ta = synth_recording(4.0, seed=11, call_rate_hz=4.0)
    b, tb = synth_recording(4.0, seed=11, call_rate_hz=4.0)
    np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(ta, tb)
    c, _ = synth_recording(4.0, seed=12, call_rate_hz=4.0)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and len(a) == 4 * SR
    assert len(ta) >= 5
    assert list(ta.columns[:2]) == ["onset_s", "offset_s"] and set(synth.PARAM_NAMES) <= set(ta.columns)
    gaps = ta.onset_s.to_numpy()[1:] - ta.offset_s.to_numpy()[:-1]
    assert gaps.min() >= 0.020 - 1e-9
    np.testing.assert_allclose(ta.offset_s - ta.onset_s, ta.duration_s, atol=1e-12)
    assert ta.onset_s.min() >= 0.05 - 1e-9 and ta.offset_s.max() <= 4.0 - 0.05 + 1e-9
    # Sample-aligned truth.
    np.testing.assert_allclose(ta.onset_s * SR, np.round(ta.onset_s * SR), atol=1e-6)


def _call_mask(truth, n, pad_s=0.0):
    mask = np.zeros(n, bool)
    for on, off in zip(truth.onset_s, truth.offset_s):
        mask[max(0, int(round((on - pad_s) * SR))): int(round((off + pad_s) * SR))] = True
    return mask


@pytest.mark.parametrize("snr_db", [0.0, 15.0])
def test_snr_is_achieved(snr_db):
    audio, truth = synth_recording(6.0, seed=3, snr_db=snr_db, call_rate_hz=3.0)
    x = audio.astype(np.float64)
    gaps = ~_call_mask(truth, len(x), pad_s=0.002)
    in_band = _band_power(x, SR, 30e3, 110e3)
    p_noise_band = np.mean(in_band[gaps] ** 2)
    # All call energy is above 25 kHz (harmonics above Nyquist are dropped), so the
    # high-passed audio inside a call = call + high-passed noise (independent).
    hp = _band_power(x, SR, 25e3, SR / 2)
    p_hp_noise = np.mean(hp[gaps] ** 2)
    p_calls = []
    for on, off in zip(truth.onset_s, truth.offset_s):
        seg = hp[int(round(on * SR)): int(round(off * SR))]
        p_calls.append(np.mean(seg**2) - p_hp_noise)
    measured = 10 * np.log10(np.mean(p_calls) / p_noise_band)
    expected = 10 * np.log10(np.mean(10 ** (truth.snr_db.to_numpy() / 10)))
    assert abs(measured - expected) < 0.5
    np.testing.assert_allclose(truth.snr_db, snr_db + 20 * np.log10(truth.amplitude))
    # Low-frequency room noise is there (default +10 dB over the in-band noise).
    lf = _band_power(x, SR, 50, 20e3)
    assert 10 * np.log10(np.mean(lf[gaps] ** 2) / p_noise_band) == pytest.approx(10.0, abs=1.0)


def test_truth_onsets_are_where_the_energy_is():
    audio, truth = synth_recording(3.0, seed=5, snr_db=40.0, call_rate_hz=4.0)
    hp = _band_power(audio.astype(np.float64), SR, 25e3, SR / 2)
    frame = 50  # 0.2 ms frames
    power = (hp[: len(hp) // frame * frame].reshape(-1, frame) ** 2).mean(axis=1)
    t = (np.arange(len(power)) + 0.5) * frame / SR
    noise = np.median(power[~_call_mask(truth, len(hp), 0.002)[::frame][: len(power)]])
    loud = power > 10 * noise
    for on, off in zip(truth.onset_s, truth.offset_s):
        near = (t > on - 0.015) & (t < off + 0.015)
        idx = np.flatnonzero(loud & near)
        assert abs(t[idx[0]] - on) < 0.001 and abs(t[idx[-1]] - off) < 0.001
        inside = (t > on + 0.003) & (t < off - 0.003)
        assert loud[inside].all()


def test_synth_recording_bad_params():
    with pytest.raises(ConfigError, match="sample_rate_hz"):
        synth_recording(1.0, 192_000)
    with pytest.raises(ConfigError):
        synth_recording(0.0)


# ---------------------------------------------------------------- datasets + CLI
def _dataset(out, seed=0):
    return synth.make_dataset(out, groups=("ctl", "ko"), animals_per_group=2, duration_s=1.0, seed=seed)


def test_make_dataset_layout_and_determinism(tmp_path):
    meta = _dataset(tmp_path / "d1")
    assert list(meta.columns) == ["path", "animal", "group"] and len(meta) == 4
    on_disk = pd.read_csv(tmp_path / "d1" / "metadata.csv")
    assert on_disk[["animal", "group"]].equals(meta[["animal", "group"]])
    assert on_disk.animal.nunique() == 4 and set(on_disk.group) == {"ctl", "ko"}
    from usvpipe.annotations import read_segments

    for rel in on_disk.path:
        wav = tmp_path / "d1" / rel
        assert rel.count("/") == 2 and wav.exists()
        info = sf.info(wav)
        assert info.samplerate == SR and info.subtype == "PCM_16" and info.channels == 1
        truth = read_segments(wav.with_suffix(".truth.csv"))
        assert (truth.offset_s <= info.duration).all()
    manifest = json.loads((tmp_path / "d1" / "synth.json").read_text())
    assert "usvpipe_version" in manifest and manifest["params"]["group_shift"] == 1.0
    _dataset(tmp_path / "d2")
    for rel in on_disk.path:
        for suffix in (".wav", ".truth.csv"):
            f = (tmp_path / "d1" / rel).with_suffix(suffix)
            assert f.read_bytes() == (tmp_path / "d2" / rel).with_suffix(suffix).read_bytes()
    assert not list((tmp_path / "d1").rglob(".tmp-*"))


def test_balanced_assignment_bounds_every_offset_and_keeps_each_animals_calls(tmp_path):
    # seed 0's 6 + 6 animals, drawn in order, differ by ~2 standard errors in one offset
    kw = dict(groups=("A", "B"), animals_per_group=6, duration_s=0.3, seed=0)
    plain = synth.make_dataset(tmp_path / "plain", **kw)
    balanced = synth.make_dataset(tmp_path / "bal", **kw, balance_se=1.0)
    plain_json = json.loads((tmp_path / "plain" / "synth.json").read_text())
    bal_json = json.loads((tmp_path / "bal" / "synth.json").read_text())
    assert plain_json["offset_imbalance_se"] > 1.5 and bal_json["offset_imbalance_se"] <= 1.0
    assert bal_json["params"]["balance_se"] == 1.0 and bal_json["assignment"].startswith("rerandomised")

    def offsets(manifest, group):
        return np.array([[a["offset_sd"][k] for k in synth.SHAPE_PARAMS] for a in manifest["animals"] if a["group"] == group])

    # the bound holds, recomputed from the recorded offsets
    se = 0.3 * np.sqrt(2 / 6)
    assert np.abs(offsets(bal_json, "A").mean(0) - offsets(bal_json, "B").mean(0)).max() / se <= 1.0 + 1e-9
    # the same twelve animals, only regrouped: each balanced animal's offset and audio is one of the plain ones
    plain_rows = {tuple(np.round(r, 12)) for g in "AB" for r in offsets(plain_json, g)}
    assert {tuple(np.round(r, 12)) for g in "AB" for r in offsets(bal_json, g)} == plain_rows
    plain_audio = {sf.read(p)[0].tobytes() for p in plain.path if "/A/" in p}  # group A: no shift in either
    bal_a = [sf.read(p)[0].tobytes() for p in balanced.path if "/A/" in p]
    assert sum(a in plain_audio for a in bal_a) >= 1  # animals that stayed in A sound exactly as before
    # deterministic, and the identity order is kept when it is balanced already
    synth.make_dataset(tmp_path / "bal2", **kw, balance_se=1.0)
    assert json.loads((tmp_path / "bal2" / "synth.json").read_text())["animals"] == bal_json["animals"]
    loose = synth.make_dataset(tmp_path / "loose", **kw, balance_se=5.0)
    assert loose.animal.tolist() == plain.animal.tolist()
    assert json.loads((tmp_path / "loose" / "synth.json").read_text())["animals"] == plain_json["animals"]


def test_balance_se_is_validated(tmp_path):
    with pytest.raises(ConfigError, match="balance_se"):
        synth.make_dataset(tmp_path / "x", groups=("A",), animals_per_group=2, duration_s=0.2, balance_se=1.0)
    with pytest.raises(ConfigError, match="balance_se"):
        synth.make_dataset(tmp_path / "y", animals_per_group=2, duration_s=0.2, balance_se=0.0)
    # one animal per group cannot be balanced to a tiny tolerance: a clear error instead of a long loop
    with pytest.raises(ConfigError, match="no assignment of the animals"):
        synth.make_dataset(tmp_path / "z", animals_per_group=1, duration_s=0.2, balance_se=1e-6)


def test_cli_synth(tmp_path):
    from usvpipe.cli import main

    out = tmp_path / "ds"
    res = CliRunner().invoke(main, ["synth", str(out), "--groups", "A,B,C", "--animals-per-group", "1",
                                    "--duration-s", "0.5", "--seed", "3"])
    assert res.exit_code == 0, res.output
    meta = pd.read_csv(out / "metadata.csv")
    assert meta.group.tolist() == ["A", "B", "C"]
    res = CliRunner().invoke(main, ["synth", str(out), "--groups", ","])
    assert res.exit_code != 0 and "group" in res.output
    # a second dataset into the same folder would mix with the first: refused without --force
    res = CliRunner().invoke(main, ["synth", str(out), "--groups", "A", "--animals-per-group", "1", "--duration-s", "0.5"])
    assert res.exit_code == 2 and "already holds 3 WAV file(s)" in res.output and "--force" in res.output
    res = CliRunner().invoke(main, ["synth", str(out), "--groups", "A", "--animals-per-group", "1", "--duration-s", "0.5", "--force"])
    assert res.exit_code == 0, res.output
    # --balance-se reaches the generator: recorded, and bounded
    res = CliRunner().invoke(main, ["synth", str(tmp_path / "bal"), "--animals-per-group", "6", "--duration-s", "0.2",
                                    "--balance-se", "0.8"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "bal" / "synth.json").read_text())
    assert manifest["params"]["balance_se"] == 0.8 and manifest["offset_imbalance_se"] <= 0.8
    res = CliRunner().invoke(main, ["synth", str(tmp_path / "bal1"), "--groups", "A", "--balance-se", "1"])
    assert res.exit_code == 2 and "balance_se" in res.output
