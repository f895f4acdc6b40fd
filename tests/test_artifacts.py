"""Typed artifacts between stages: Segments and Latents (usvpipe.artifacts)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from usvpipe.artifacts import TEXT_COLUMNS, Latents, Segments, latent_columns
from usvpipe.errors import InputFileError


def _latents(n=6, d=3):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": [f"r#{i}" for i in range(n)], "recording": "r", "animal": ["007", "NA"] * (n // 2),
                          "group": ["1", ""] * (n // 2), "onset_s": np.arange(n) * 0.1, "offset_s": np.arange(n) * 0.1 + 0.05})
    for j in range(d):
        frame[f"z{j}"] = rng.normal(size=n).astype(np.float32)
    return frame


def test_latent_columns_are_numbered_globbed_or_strict():
    cols = ["id", "z10", "z2", "z0", "z1", "pc_1"]
    assert latent_columns(cols) == ["z0", "z1", "z2", "z10"]
    assert latent_columns(cols, "pc_*") == ["pc_1"]
    assert latent_columns(["id"]) == []
    with pytest.raises(InputFileError, match=r"t\.csv: no latent columns z0"):
        latent_columns(["id"], source="t.csv")
    with pytest.raises(InputFileError, match="not z0..z3"):
        latent_columns(cols, source="t.csv")


@pytest.mark.parametrize("suffix", [".csv", ".h5"])
def test_latents_round_trip_keeps_names_that_look_like_numbers_or_gaps(tmp_path, suffix):
    frame = _latents()
    path = tmp_path / f"latents{suffix}"
    Latents(frame, source=path).write(path, {"latent_dim": 3})
    back = Latents.read(path)
    assert back.columns == ["z0", "z1", "z2"] and len(back) == 6 and back.latent_dim == 3
    assert list(back.text("animal")[:2]) == ["007", "NA"] and list(back.text("group")[:2]) == ["1", ""]
    assert np.allclose(back.latents(), frame[["z0", "z1", "z2"]].to_numpy(), atol=1e-6)
    assert list(back.metadata.columns) == [c for c in frame.columns if not c.startswith("z")]
    assert (tmp_path / "latents.json").exists() == (suffix == ".csv")


@pytest.mark.parametrize("breakit, message", [
    (lambda t: t.assign(z1=np.where(np.arange(len(t)) == 2, np.nan, t["z1"])), r"1 row\(s\) have NaN/inf latents \(first: id r#2\)"),
    (lambda t: t.assign(z0="x"), "not all numeric"),
    (lambda t: t.assign(id="same"), "duplicate id 'same'"),
    (lambda t: t.drop(columns=["z1"]), "not z0..z1"),
])
def test_a_bad_latents_table_is_rejected_on_construction_with_source_and_fix(breakit, message):
    with pytest.raises(InputFileError, match=message) as err:
        Latents(breakit(_latents()), source="lat.csv")
    assert str(err.value).startswith("lat.csv: ") and "(fix: " in str(err.value)


def test_segments_validate_times_and_write_the_documented_columns(tmp_path):
    frame = pd.DataFrame({"recording": ["a.wav", "a.wav"], "animal": ["007", "007"], "group": ["NA", "NA"],
                          "onset_s": [0.1, 0.5], "offset_s": [0.2, 0.55], "duration_s": [0.1, 0.05], "extra": [1, 2]})
    seg = Segments(frame)
    assert np.allclose(seg.durations_s, [0.1, 0.05]) and np.allclose(seg.onsets_s, [0.1, 0.5])
    path = seg.write(tmp_path / "segments.csv")
    assert path.read_text().splitlines()[0] == "recording,animal,group,onset_s,offset_s,duration_s"
    back = Segments.read(path)
    assert list(back.frame["animal"]) == ["007", "007"] and list(back.frame["group"]) == ["NA", "NA"]
    with pytest.raises(InputFileError, match="offset before onset"):
        Segments(frame.assign(offset_s=[0.05, 0.6]), source="s.csv")
    with pytest.raises(InputFileError, match="missing column"):
        Segments(frame.drop(columns=["onset_s"]))


def test_every_reader_of_text_columns_uses_the_one_tuple():
    assert TEXT_COLUMNS == ("id", "recording", "animal", "group", "shard", "label")  # label: a reviewed relabel
