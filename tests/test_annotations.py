"""Reading/writing onset-offset tables: real amvoc files, every format round trip,
format sniffing and clear errors for bad rows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from usvpipe.annotations import WRITE_FORMATS, read_segments, write_segments
from usvpipe.errors import ConfigError, InputFileError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
AMVOC = DATA / "amvoc"


def _write(tmp_path, name, text, newline="\n"):
    p = tmp_path / name
    p.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return p


def test_reads_every_amvoc_table():
    if not AMVOC.is_dir():
        pytest.skip(f"../shared/data not present: {AMVOC}")
    files = sorted(AMVOC.glob("*/*.csv"))
    assert len(files) >= 20
    for f in files:
        df = read_segments(f)
        n_lines = sum(1 for line in f.read_text().splitlines() if line.strip())
        assert list(df.columns) == ["onset_s", "offset_s"], f
        assert len(df) == n_lines, f
        assert (df["offset_s"] >= df["onset_s"]).all() and (df["onset_s"] >= 0).all(), f
        assert df["offset_s"].max() < 10, f  # seconds, not samples or a misparsed comma decimal
    # Quoted comma decimals: "0,1017","0,1063" on the first line of msa1_2.csv.
    first = next(line for line in (AMVOC / "2" / "msa1_2.csv").read_text().splitlines() if line.strip())
    on, off = (float(x.strip('"').replace(",", ".")) for x in first.split('","'))
    df = read_segments(AMVOC / "2" / "msa1_2.csv")
    assert (df["onset_s"].iat[0], df["offset_s"].iat[0]) == (on, off)


@pytest.mark.parametrize("fmt", WRITE_FORMATS)
def test_round_trip_all_formats(tmp_path, fmt):
    rng = np.random.default_rng(0)
    on = np.sort(rng.uniform(0, 100, 25))
    frame = pd.DataFrame({"onset_s": on, "offset_s": on + rng.uniform(0.005, 0.2, 25)})
    if fmt in ("csv", "audacity", "raven"):
        frame["label"] = [f"call {i}" for i in range(25)]
    if fmt in ("csv", "raven"):
        frame["low_freq_hz"] = rng.uniform(30e3, 60e3, 25)
        frame["high_freq_hz"] = frame["low_freq_hz"] + 20e3
    path = write_segments(frame, tmp_path / f"seg.{fmt}.txt", fmt=fmt)
    back = read_segments(path)  # auto-sniffed
    assert list(back.columns) == list(frame.columns)
    for col in frame.columns:
        if frame[col].dtype.kind == "f":
            np.testing.assert_array_equal(back[col].to_numpy(), frame[col].to_numpy())  # exact floats
        else:
            assert back[col].tolist() == frame[col].tolist()
    assert not list(tmp_path.glob(".tmp-*"))  # atomic write left no temporaries


def test_round_trip_array_and_empty(tmp_path):
    arr = np.array([[0.1, 0.2], [0.3, 0.35]])
    back = read_segments(write_segments(arr, tmp_path / "a.csv", fmt="plain"))
    np.testing.assert_array_equal(back.to_numpy(), arr)
    empty = read_segments(write_segments(np.zeros((0, 2)), tmp_path / "e.csv"))
    assert len(empty) == 0 and list(empty.columns) == ["onset_s", "offset_s"]
    (tmp_path / "blank.csv").write_text("")
    assert len(read_segments(tmp_path / "blank.csv")) == 0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0.1,0.2\n0.3,0.4\n", [[0.1, 0.2], [0.3, 0.4]]),                      # amvoc gt style
        ('"0,1017","0,1063"\n"1,5","2,25"\n', [[0.1017, 0.1063], [1.5, 2.25]]),  # quoted comma decimals
        ("0,1;0,2\n0,3;0,4\n", [[0.1, 0.2], [0.3, 0.4]]),                      # ; separated comma decimals
        ("0.1;0.2\n", [[0.1, 0.2]]),
        ("onset_s,offset_s,score\n0.1,0.2,3\n", [[0.1, 0.2]]),                # headered
        ("Start,End\n0.1,0.2\n", [[0.1, 0.2]]),
        ("# comment\n\n0.1,0.2\n\n", [[0.1, 0.2]]),                            # blank/comment lines
        ("0.1\t0.2\tUSV\n\\\t40000\t60000\n0.3\t0.4\t\n", [[0.1, 0.2], [0.3, 0.4]]),  # Audacity + spectral line
    ],
)
def test_sniffing(tmp_path, text, expected):
    for newline in ("\n", "\r\n"):
        df = read_segments(_write(tmp_path, "t.csv", text, newline))
        np.testing.assert_allclose(df[["onset_s", "offset_s"]].to_numpy(), expected)


def test_audacity_labels(tmp_path):
    df = read_segments(_write(tmp_path, "labels.txt", "0.1\t0.2\tflat\n0.3\t0.4\tup, loud\n"), fmt="audacity")
    assert df["label"].tolist() == ["flat", "up, loud"]
    # Comma-decimal locales.
    df = read_segments(_write(tmp_path, "labels2.txt", "0,100000\t0,200000\tflat\n"))
    assert df[["onset_s", "offset_s"]].to_numpy().tolist() == [[0.1, 0.2]] and df["label"].tolist() == ["flat"]


def test_raven_selection_table_one_row_per_selection(tmp_path):
    text = (
        "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tAnnotation\n"
        "1\tWaveform 1\t1\t0.5\t0.6\t0\t125000\tA\n"
        "1\tSpectrogram 1\t1\t0.5\t0.6\t40000\t70000\tA\n"
        "2\tSpectrogram 1\t1\t1.5\t1.58\t50000\t80000\tB\n"
    )
    df = read_segments(_write(tmp_path, "sel.selections.txt", "\ufeff" + text))
    assert df[["onset_s", "offset_s"]].to_numpy().tolist() == [[0.5, 0.6], [1.5, 1.58]]
    assert df["low_freq_hz"].tolist() == [40000, 50000]
    assert df["label"].tolist() == ["A", "B"]


@pytest.mark.parametrize(
    "text, line, what",
    [
        ("0.1,0.2\n0.5,0.4\n", 2, "before onset"),
        ("0.1,0.2\nnan,0.4\n", 2, "nan"),
        ("0.1,0.2\n0.3,0.4\n0.5,abc\n", 3, "not a number"),
        ("-0.1,0.2\n", 1, "negative"),
        ("0.1\n", 1, "1 column"),
        ("onset_s,offset_s\n0.1,0.2\n0.3,\n", 3, ""),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, text, line, what):
    p = _write(tmp_path, "bad_table.csv", text)
    with pytest.raises(InputFileError) as err:
        read_segments(p)
    msg = str(err.value)
    assert "bad_table.csv" in msg and f"line {line}" in msg and what in msg.lower()
    assert "\n" not in msg


def test_header_without_time_columns(tmp_path):
    with pytest.raises(InputFileError, match="onset"):
        read_segments(_write(tmp_path, "h.csv", "foo,bar\n0.1,0.2\n"))


def test_missing_file_and_bad_fmt(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        read_segments(tmp_path / "nope.csv")
    with pytest.raises(ConfigError):
        read_segments(tmp_path / "nope.csv", fmt="excel")
    with pytest.raises(ConfigError):
        write_segments(np.zeros((1, 2)), tmp_path / "x.csv", fmt="excel")


@pytest.mark.parametrize("bad, what", [("7.0,6.0", "before onset"), ("7.0,abc", "not a number"), ("nan,1", "nan")])
def test_large_tables_parse_exactly_and_report_bad_lines(tmp_path, bad, what):
    # Tables above 1000 rows take a vectorised path; it must agree with the line parser.
    rng = np.random.default_rng(1)
    arr = np.sort(rng.uniform(0, 3600, (1500, 2)), axis=1)
    good = read_segments(write_segments(arr, tmp_path / "big.csv", fmt="plain"))
    np.testing.assert_array_equal(good.to_numpy(), arr)
    lines = (tmp_path / "big.csv").read_text().splitlines()
    lines[1199] = bad
    (tmp_path / "big_bad.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFileError) as err:
        read_segments(tmp_path / "big_bad.csv")
    assert "big_bad.csv" in str(err.value) and "line 1200" in str(err.value) and what in str(err.value).lower()


def test_audacity_and_raven_are_read_through_crowsetta(tmp_path, monkeypatch):
    import usvpipe.annotations as ann

    aud = tmp_path / "labels.txt"
    aud.write_text("0.1\t0.2\tA\n0.5\t0.55\tB\n")
    raven = tmp_path / "sel.txt"
    raven.write_text("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tAnnotation\n"
                     "1\tWaveform 1\t1\t0.1\t0.2\t30000.0\t60000.0\tA\n1\tSpectrogram 1\t1\t0.1\t0.2\t30000.0\t60000.0\tA\n"
                     "2\tSpectrogram 1\t1\t0.5\t0.6\t40000.0\t70000.0\tB\n")
    assert ann._crowsetta_audacity(aud, list(ann._numbered_lines(aud.read_text()))) is not None
    assert ann._crowsetta_raven(raven) is not None
    via_crowsetta = read_segments(aud), read_segments(raven)
    # the same tables through our own parsers
    monkeypatch.setattr(ann, "_crowsetta_audacity", lambda *a: None)
    monkeypatch.setattr(ann, "_crowsetta_raven", lambda *a: None)
    for got, want in zip(via_crowsetta, (read_segments(aud), read_segments(raven))):
        pd.testing.assert_frame_equal(got, want)
    assert via_crowsetta[1]["label"].tolist() == ["A", "B"]


def test_files_crowsetta_cannot_read_still_read_completely(tmp_path):
    # spectral-selection lines on only some labels (crowsetta 5 drops the others), no labels
    # at all, and a Raven table with integer frequencies (rejected by crowsetta's schema)
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("0.1\t0.2\tA\n\\\t30000\t60000\n0.5\t0.55\tB\n")
    bare = tmp_path / "bare.txt"
    bare.write_text("0.1\t0.2\n0.5\t0.55\n")
    raven = tmp_path / "int.txt"
    raven.write_text("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\n"
                     "1\tSpectrogram 1\t1\t0.1\t0.2\t30000\t60000\n")
    assert read_segments(mixed)["label"].tolist() == ["A", "B"]
    assert read_segments(bare)["offset_s"].tolist() == [0.2, 0.55]
    assert read_segments(raven)["high_freq_hz"].tolist() == [60000.0]


def test_a_bad_row_that_crowsetta_accepts_is_still_named_by_line(tmp_path):
    aud = tmp_path / "labels.txt"
    aud.write_text("0.1\t0.2\tA\n0.5\t0.45\tB\n")
    with pytest.raises(InputFileError, match="line 2"):
        read_segments(aud)
