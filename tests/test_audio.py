"""WAV reading and validation (usvpipe.audio)."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from usvpipe.audio import audio_info, iter_blocks, read_audio
from usvpipe.errors import InputFileError

SR = 250_000


def _tone(n=SR // 10, freq=50_000.0, amp=0.5, sr=SR):
    t = np.arange(n) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float64)


@pytest.mark.parametrize(
    "subtype,fmt,tol",
    [("PCM_16", "WAV", 2e-4), ("PCM_24", "WAV", 1e-6), ("PCM_32", "WAV", 1e-7), ("FLOAT", "WAV", 1e-7),
     ("DOUBLE", "WAV", 1e-7), ("PCM_16", "WAVEX", 2e-4), ("FLOAT", "WAVEX", 1e-7)],
)
def test_reads_every_subtype(tmp_path, subtype, fmt, tol):
    x = _tone()
    p = tmp_path / f"x_{subtype}_{fmt}.wav"
    sf.write(p, x, SR, subtype=subtype, format=fmt)
    info = audio_info(p)
    assert info.subtype == subtype and info.format == fmt
    assert info.n_frames == x.size and info.n_channels == 1 and info.sample_rate_hz == SR
    assert info.duration_s == pytest.approx(x.size / SR)
    y, sr = read_audio(p)
    assert sr == SR and y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - x)) < tol


def test_real_extensible_header(shared_data):
    # the stdlib `wave` module rejects this file; soundfile must read it
    info = audio_info(shared_data / "unlabelled" / "amvoc_small2.wav")
    assert info.format == "WAVEX" and info.sample_rate_hz == 250_000
    y, _ = read_audio(info.path)
    assert y.size == info.n_frames and np.abs(y).max() > 0


def test_multichannel(tmp_path):
    a, b = _tone(amp=0.5), _tone(freq=40_000, amp=0.25)
    p = tmp_path / "stereo.wav"
    sf.write(p, np.stack([a, b], axis=1), SR, subtype="FLOAT")
    with pytest.raises(InputFileError, match="2 channels.*--channel"):
        read_audio(p)
    assert np.allclose(read_audio(p, channel=0)[0], a, atol=1e-6)
    assert np.allclose(read_audio(p, channel=1)[0], b, atol=1e-6)
    assert np.allclose(read_audio(p, channel="mix")[0], (a + b) / 2, atol=1e-6)
    with pytest.raises(InputFileError, match="channel 2 requested"):
        read_audio(p, channel=2)


def test_iter_blocks_cover_file_with_overlap(tmp_path):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 10_001)
    p = tmp_path / "n.wav"
    sf.write(p, x, SR, subtype="FLOAT")
    blocks = list(iter_blocks(p, block_frames=1000, overlap_frames=100))
    assert [b.start_frame for b in blocks] == list(range(0, 9901, 900))
    for b in blocks:
        assert np.allclose(b.data, x[b.start_frame : b.start_frame + 1000], atol=1e-7)
    assert blocks[-1].start_frame + blocks[-1].data.size == x.size


def _one_line(err: InputFileError, path) -> str:
    msg = str(err)
    assert "\n" not in msg and str(path) in msg and "(fix:" in msg
    return msg


def test_not_a_wav(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is not audio\n" * 20)
    with pytest.raises(InputFileError) as e:
        audio_info(p)
    assert "not a readable WAV" in _one_line(e.value, p)


def test_an_empty_file_is_named_as_such(tmp_path):
    p = tmp_path / "interrupted.wav"
    p.write_bytes(b"")
    with pytest.raises(InputFileError) as e:
        audio_info(p)
    assert "empty file (0 bytes)" in _one_line(e.value, p)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        audio_info(tmp_path / "nope.wav")


def test_empty(tmp_path):
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros(0), SR, subtype="PCM_16")
    with pytest.raises(InputFileError) as e:
        audio_info(p)
    assert "empty" in _one_line(e.value, p)


def test_truncated(tmp_path):
    p = tmp_path / "cut.wav"
    sf.write(p, _tone(n=SR), SR, subtype="PCM_16")  # 1 s
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError) as e:
        audio_info(p)
    msg = _one_line(e.value, p)
    assert "truncated" in msg and "1.000 s" in msg and "0.500 s" in msg


def test_nan_samples(tmp_path):
    x = _tone()
    x[1234] = np.nan
    p = tmp_path / "nan.wav"
    sf.write(p, x, SR, subtype="FLOAT")
    with pytest.raises(InputFileError) as e:
        read_audio(p)
    assert "NaN/Inf" in _one_line(e.value, p)


def test_inf_samples_found_while_streaming(tmp_path):
    x = _tone(n=SR)
    x[-10] = np.inf
    p = tmp_path / "inf.wav"
    sf.write(p, x, SR, subtype="DOUBLE")
    with pytest.raises(InputFileError, match="NaN/Inf"):
        for _ in iter_blocks(p, block_s=0.1):
            pass


def test_all_silent(tmp_path):
    p = tmp_path / "zeros.wav"
    sf.write(p, np.zeros(5000), SR, subtype="PCM_16")
    with pytest.raises(InputFileError) as e:
        read_audio(p)
    assert "silent" in _one_line(e.value, p)


def test_sample_rate_below_band(tmp_path):
    p = tmp_path / "low.wav"
    sf.write(p, _tone(freq=1000, sr=96_000), 96_000, subtype="PCM_16")
    with pytest.raises(InputFileError) as e:
        audio_info(p, min_sample_rate_hz=220_000)
    msg = _one_line(e.value, p)
    assert "Nyquist 48000 Hz" in msg and "max-freq-hz" in msg
