"""Regression tests of the second outside probe (issue 40): nothing lost, nothing silently wrong.

Each test is one way the probe made usvpipe lose data, answer wrongly without saying so, crash
or give the wrong advice; the test fails if that way opens again.
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from usvpipe.segmentation import segment_recordings
from usvpipe.store import open_store
from usvpipe.synth import make_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("probe2_data")
    make_dataset(root, animals_per_group=2, duration_s=1.0, seed=3)
    return root


def _copy(dataset: Path, dest: Path) -> Path:
    shutil.copytree(dataset, dest, ignore=shutil.ignore_patterns("*.csv", "*.json"))
    return dest


def _wavs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.wav"))


def _metadata(data: Path, names: list[tuple[str, str]], path: Path) -> Path:
    """A metadata CSV giving the i-th WAV under ``data`` the i-th (animal, group)."""
    rows = [{"path": str(w), "animal": a, "group": g} for w, (a, g) in zip(_wavs(data), names)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- item 1: "NA" is a name

def test_animals_and_groups_called_na_none_null_keep_their_calls(dataset, tmp_path):
    from usvpipe.measures import measures_stage

    data = _copy(dataset, tmp_path / "in")
    names = [("NA", "null"), ("None", "null"), ("null", "NA"), ("n/a", "NA")]
    meta = _metadata(data, names, tmp_path / "meta.csv")
    store = tmp_path / "store"
    segment_recordings(data, store, metadata=meta, progress=False)
    table = open_store(store).table
    per_rec = table.groupby("animal").size()
    res = measures_stage(store, tmp_path / "measures", input_root=data, figure=False)
    per_animal = res.per_animal.set_index("animal")
    assert set(per_animal.index) == {"NA", "None", "null", "n/a"}
    assert set(per_animal["group"]) == {"NA", "null"}
    for animal, n in per_rec.items():
        assert per_animal.loc[animal, "calls"] == n > 0
    assert res.tests is not None  # two groups, "NA" and "null": compared, not "no evidence"


def test_the_one_csv_reader_keeps_na_names_in_every_column(tmp_path):
    from usvpipe._csv import read_csv

    path = tmp_path / "t.csv"
    path.write_text("recording,animal,cohort,x\nr1,NA,None,1.5\nr2,null,,2\n", encoding="utf-8")
    frame = read_csv(path, text_columns=("recording", "animal"))
    assert frame["animal"].tolist() == ["NA", "null"]
    assert frame["cohort"].tolist()[0] == "None"
    assert frame["x"].dtype == float


# --------------------------------------------------------------------------- item 2: formula injection

FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3"]


def _cells(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [c for row in csv.reader(fh) for c in row]


def _unsafe(cells) -> list[str]:
    import re

    number = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
    return [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r") and not number.match(c)]


def test_metadata_that_is_a_formula_is_neutralised_in_every_table_and_read_back_as_written(dataset, tmp_path):
    from usvpipe.measures import measures_stage

    data = _copy(dataset, tmp_path / "in")
    names = [(FORMULAS[0], FORMULAS[1]), (FORMULAS[2], FORMULAS[1]), (FORMULAS[3], "'=quoted"), ("plain", "'=quoted")]
    meta = _metadata(data, names, tmp_path / "meta.csv")
    store = tmp_path / "store"
    segment_recordings(data, store, metadata=meta, progress=False)
    measures_stage(store, tmp_path / "measures", input_root=data, figure=False)
    written = [store / "syllables.csv", store / "segments.csv", *(tmp_path / "measures").glob("*.csv")]
    for path in written:
        assert _unsafe(_cells(path)) == [], path
    table = open_store(store).table  # the round trip gives every name back exactly
    assert set(table["animal"]) == {FORMULAS[0], FORMULAS[2], FORMULAS[3], "plain"}
    assert set(table["group"]) == {FORMULAS[1], "'=quoted"}


def test_numbers_stay_numbers_and_only_text_cells_change(tmp_path):
    from usvpipe._csv import read_csv
    from usvpipe._io import write_csv_atomic

    frame = pd.DataFrame({"group": ["-3.2", "=1+1", "a"], "z0": [-3.2, 1.0, -1e-5], "label": ["-", "+x", "@"]})
    path = write_csv_atomic(tmp_path / "t.csv", frame)
    rows = list(csv.reader(open(path, encoding="utf-8")))
    assert rows[1] == ["-3.2", "-3.2", "'-"] and rows[2][0] == "'=1+1" and rows[3][1] == "-1e-05"
    back = read_csv(path, text_columns=("group", "label"))
    pd.testing.assert_frame_equal(back, frame)


def test_the_explorer_review_export_neutralises_formulas():
    from usvpipe.viz import _explorer

    assert "function csvCell" in _explorer._TEMPLATE
    body = _explorer._TEMPLATE.split("function csvCell", 1)[1].split("function reviewCsv", 1)[0]
    assert "'*[=+\\-@\\t\\r]" in body


def test_a_pipe_in_a_group_name_keeps_the_markdown_table_whole():
    from usvpipe.pipeline.report import _Doc

    doc = _Doc()
    doc.table(["group", "animals"], [["A|B", 3], ["C", 2]])
    lines = [line for line in doc.md if line.startswith("|")]
    assert all(line.replace("\\|", "").count("|") == 3 for line in lines)
    assert "A\\|B" in lines[2]


# --------------------------------------------------------------------------- item 3: a second folder, same names

def test_a_second_folder_with_the_same_names_is_refused_and_the_first_ones_syllables_stay(dataset, tmp_path):
    from usvpipe.errors import UsvpipeError

    day1 = _copy(dataset, tmp_path / "day1")
    day2 = tmp_path / "day2"
    make_dataset(day2, animals_per_group=2, duration_s=1.0, seed=11)
    assert [w.relative_to(day2) for w in _wavs(day2)] == [w.relative_to(day1) for w in _wavs(day1)]
    store = tmp_path / "S"
    segment_recordings(day1, store, progress=False)
    before = open_store(store).table.copy()
    shards = {p.name: p.stat().st_mtime_ns for p in (store / "shards").glob("*.h5")}
    with pytest.raises(UsvpipeError) as err:
        segment_recordings(day2, store, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and str(day2) in msg and str(day1) in msg and "another output folder" in msg
    assert {p.name: p.stat().st_mtime_ns for p in (store / "shards").glob("*.h5")} == shards
    pd.testing.assert_frame_equal(open_store(store).table, before)
    manifest = pd.read_json(store / "manifest.json", typ="series")["recordings"]
    assert all(Path(r["source_path"]).is_relative_to(day1.resolve()) and len(r["source_digest"]) == 64
               for r in manifest.values())


def test_a_moved_folder_is_the_same_recordings_not_a_clash(dataset, tmp_path):
    day1 = _copy(dataset, tmp_path / "day1")
    store = tmp_path / "S"
    segment_recordings(day1, store, progress=False)
    moved = day1.rename(tmp_path / "moved")
    run = segment_recordings(moved, store, progress=False)
    assert not run.failures and len(open_store(store).table["recording"].unique()) == 4


# --------------------------------------------------------------------------- item 4: resume with another lr

def test_resume_with_another_learning_rate_is_refused_naming_it(tmp_path):
    from dataclasses import replace

    from test_vae import TINY, _make_store

    from usvpipe.errors import ConfigError
    from usvpipe.vae import TrainParams, train

    store = tmp_path / "store"
    _make_store(store, n_recordings=2, per_recording=40)
    params = TrainParams(**{**TINY, "epochs": 3, "checkpoint_every": 1, "checkpoint_min_interval_s": 0})

    class Killed(Exception):
        pass

    def kill_after_2(epoch, row):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train(store, tmp_path / "run", params, device="cpu", progress=False, on_epoch_end=kill_after_2)
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    with pytest.raises(ConfigError) as err:
        train(store, tmp_path / "run", replace(params, lr=0.01, weight_decay=1e-4), device="cpu", progress=False,
              resume=True)
    msg = str(err.value)
    assert "\n" not in msg and "lr 0.001 -> 0.01" in msg and "weight_decay" in msg and "new OUT_DIR" in msg
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()} == before  # nothing recorded
    resumed = train(store, tmp_path / "run", params, device="cpu", progress=False, resume=True)
    assert list(resumed.history["epoch"]) == [1, 2, 3]


# --------------------------------------------------------------------------- item 5: near-duplicate groups

def test_groups_left_out_of_the_mmd_are_named_with_their_near_duplicates(tmp_path):
    from mmd_helpers import FAST, _nested

    from usvpipe.mmd import MMDParams, mmd_test

    rng = np.random.default_rng(0)
    table = _nested(rng, animals=(4, 4), per_animal=4)
    extra = _nested(rng, animals=(1, 1, 1), per_animal=4, groups=("A ", "a", ""))
    extra["animal"] = ["x1"] * 4 + ["x2"] * 4 + ["x3"] * 4
    path = tmp_path / "latents.csv"
    pd.concat([table, extra]).to_csv(path, index=False)
    res = mmd_test(path, a="A", b="B", params=MMDParams(**FAST))
    note = next(n for n in res.notes if "not compared" in n)
    assert "'A ' (4 syllables, 1 animal(s); differs from 'A' only in spaces or case)" in note
    assert "'a' (4 syllables, 1 animal(s); differs from 'A'" in note and "'' (4 syllables, 1 animal(s); an empty group name)" in note
    assert "not compared" in " ".join(res.to_dict()["notes"])
