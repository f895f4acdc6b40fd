"""Regression tests of the second outside probe (issue 40): nothing lost, nothing silently wrong.

Each test is one way the probe made usvpipe lose data, answer wrongly without saying so, crash
or give the wrong advice; the test fails if that way opens again.
"""
from __future__ import annotations

import json

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from usvpipe.segmentation import segment_recordings
from usvpipe.store import open_store
from usvpipe.synth import make_dataset

from probe_helpers import copy_recordings, probe_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return probe_dataset(tmp_path_factory, "probe2_data")


_copy = copy_recordings


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
    from usvpipe.viz import _explorer_page

    assert "function csvCell" in _explorer_page.TEMPLATE
    body = _explorer_page.TEMPLATE.split("function csvCell", 1)[1].split("function reviewCsv", 1)[0]
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


# --------------------------------------------------------------------------- items 6-9: which files a folder holds

def _rec_ids(folder, metadata=None):
    from usvpipe.segmentation.inputs import plan_recordings

    recs, problems = plan_recordings(folder, metadata)
    return recs, problems


def test_wavs_in_hidden_and_trash_folders_are_skipped_and_said(dataset, tmp_path, caplog):
    data = _copy(dataset, tmp_path / "in")
    wav = _wavs(data)[0]
    for trash in (".Trashes/501/A/a9", "B/.Trash-1000/files", "$RECYCLE.BIN/S-1-5", ".hidden/A/a1"):
        (data / trash).mkdir(parents=True)
        shutil.copy(wav, data / trash / "deleted.wav")
    recs, _ = _rec_ids(data)
    assert len(recs) == 4 and not any("deleted" in r.recording for r in recs)
    assert "4 audio file(s) in hidden or trash folders skipped" in caplog.text


def test_flac_and_w64_files_in_a_folder_are_read_and_other_audio_is_named(dataset, tmp_path, caplog):
    import soundfile as sf

    data = _copy(dataset, tmp_path / "in")
    wavs = _wavs(data)
    for wav, fmt in ((wavs[0], "FLAC"), (wavs[1], "W64")):
        audio, sr = sf.read(wav, dtype="int16")
        sf.write(wav.with_suffix("." + fmt.lower()), audio, sr, format=fmt, subtype="PCM_16")
        wav.unlink()
    (data / "A" / "note.mp3").write_bytes(b"ID3")
    recs, _ = _rec_ids(data)
    assert sorted(Path(r.recording).suffix for r in recs) == [".flac", ".w64", ".wav", ".wav"]
    assert "1 audio file(s) in formats usvpipe does not read skipped" in caplog.text and "note.mp3" in caplog.text
    run = segment_recordings(data, tmp_path / "store", progress=False)
    assert not run.failures
    table = open_store(tmp_path / "store").table
    assert {Path(r).suffix for r in table["recording"]} == {".flac", ".w64", ".wav"}


def test_symlinked_folders_are_followed_once_and_broken_links_are_named(dataset, tmp_path, caplog):
    data = tmp_path / "in"
    data.mkdir()
    elsewhere = _copy(dataset, tmp_path / "elsewhere")
    (data / "A").symlink_to(elsewhere / "A", target_is_directory=True)
    shutil.copytree(elsewhere / "B", data / "B")
    (data / "B" / "loop").symlink_to(data, target_is_directory=True)
    (data / "B" / _wavs(data / "B")[0].parent.name / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    recs, _ = _rec_ids(data)
    assert sorted(r.recording for r in recs) == sorted(w.relative_to(elsewhere).as_posix() for w in _wavs(elsewhere))
    assert "1 broken symbolic link(s) skipped" in caplog.text and "gone.wav" in caplog.text
    assert "already searched not followed again" in caplog.text


def test_nfd_file_names_match_an_nfc_metadata_csv_and_make_one_group(dataset, tmp_path):
    import unicodedata

    nfd, nfc = unicodedata.normalize("NFD", "Käse"), unicodedata.normalize("NFC", "Käse")
    assert nfd != nfc
    data = tmp_path / "in"
    wavs = _wavs(dataset)
    for i, group in enumerate((nfd, nfc)):
        for j in range(2):
            (data / group / f"m{i}{j}").mkdir(parents=True)
            shutil.copy(wavs[2 * i + j], data / group / f"m{i}{j}" / "rec.wav")
    recs, _ = _rec_ids(data)
    assert {r.group for r in recs} == {nfc}
    assert all(r.recording == unicodedata.normalize("NFC", r.recording) for r in recs)
    meta = tmp_path / "meta.csv"
    rows = [{"path": f"{nfc}/m{i}{j}/rec.wav", "animal": f"m{i}{j}", "group": "G" + str(i)} for i in (0, 1) for j in (0, 1)]
    pd.DataFrame(rows).to_csv(meta, index=False, encoding="utf-8")
    recs, problems = _rec_ids(data, metadata=meta)
    assert problems == [] and sorted({r.group for r in recs}) == ["G0", "G1"]


# --------------------------------------------------------------------------- item 12: the right fix

def test_a_recording_at_a_1461_character_path_is_read(dataset, tmp_path):
    from usvpipe.audio import audio_info, read_audio

    folder = tmp_path
    while len(str(folder)) < 1300:
        folder = folder / ("d" * 100)
    folder.mkdir(parents=True)
    target = folder / ("x" * (1461 - len(str(folder)) - 5) + ".wav")
    assert len(str(target)) == 1461
    shutil.copy(_wavs(dataset)[0], target)
    info = audio_info(target)
    assert info.n_frames > 0 and read_audio(target)[0].shape[0] == info.n_frames


def test_a_name_too_long_for_the_file_system_says_so(tmp_path):
    from usvpipe.audio import audio_info
    from usvpipe.errors import InputFileError

    with pytest.raises(InputFileError, match="path too long for the file system .*fix: move the recordings"):
        audio_info(tmp_path / ("y" * 300 + ".wav"))


def test_a_cp1252_metadata_csv_is_read_with_a_note_and_an_undecodable_one_says_csv_utf8(dataset, tmp_path, caplog):
    from usvpipe.errors import InputFileError
    from usvpipe.segmentation.inputs import read_metadata

    wav = _wavs(dataset)[0]
    meta = tmp_path / "meta.csv"
    meta.write_bytes(f"path,animal,group\n{wav},Maus1,Käse\n".encode("cp1252"))
    assert list(read_metadata(meta).values())[0]["group"] == "Käse"
    assert "Windows-1252" in caplog.text and "CSV UTF-8" in caplog.text
    meta.write_bytes(b"path,animal,group\n" + str(wav).encode() + b",M\x81,G\x8d\n")
    with pytest.raises(InputFileError, match='save it as "CSV UTF-8"'):
        read_metadata(meta)


# --------------------------------------------------------------------------- items 10-11: disk full

def _disk_full_after(monkeypatch, n_ok: int):
    """Make the shard writer fail with ENOSPC after ``n_ok`` successful shards (in workers too: fork)."""
    import errno

    from usvpipe import shards

    real, calls = shards._write_blocks, {"n": 0}

    def write_blocks(dataset, blocks):
        calls["n"] += 1
        if calls["n"] > n_ok:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(dataset, blocks)

    monkeypatch.setattr(shards, "_write_blocks", write_blocks)


def _nothing_blamed_nothing_trusted(store_dir: Path):
    from usvpipe import store

    assert not list((store_dir / store.ERROR_DIR).glob("*")), "an input was blamed for the full disk"
    assert not (store_dir / "segments.csv").exists() and not (store_dir / "manifest.json").exists()
    assert not [p for p in store_dir.rglob("*") if p.name.startswith(".tmp-")]


def test_a_full_disk_during_segment_stops_the_batch_in_one_line_blaming_no_input(dataset, tmp_path, monkeypatch):
    from usvpipe.errors import OutputError

    data = _copy(dataset, tmp_path / "in")
    out = tmp_path / "store"
    _disk_full_after(monkeypatch, 1)
    with pytest.raises(OutputError) as err:
        segment_recordings(data, out, progress=False, jobs=1)
    msg = str(err.value)
    assert "\n" not in msg and "no space left on device" in msg and "free space or choose another output folder" in msg
    assert len(list((out / "shards").glob("*.h5"))) == 1  # the one before stays, whole; the batch stopped
    _nothing_blamed_nothing_trusted(out)
    monkeypatch.undo()
    run = segment_recordings(data, out, progress=False)  # space freed: the re-run finishes the rest
    assert run.merged and not run.failures and run.n_skipped == 1


def test_a_full_disk_in_a_segment_worker_gives_the_same_line_and_exit_code(dataset, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from usvpipe.cli import main

    data = _copy(dataset, tmp_path / "in")
    out = tmp_path / "store"
    _disk_full_after(monkeypatch, 0)
    res = CliRunner().invoke(main, ["segment", str(data), str(out), "--jobs", "2", "--no-progress"])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "no space left on device" in lines[0] and "report this" not in lines[0], res.output
    _nothing_blamed_nothing_trusted(out)


def test_a_full_disk_during_train_is_one_line_and_the_checkpoint_stays_whole(tmp_path, monkeypatch):
    import errno

    import torch
    from test_vae import TINY, _make_store

    from usvpipe.errors import OutputError
    from usvpipe.vae import TrainParams, train
    from usvpipe.vae.checkpoint import load_checkpoint

    store = tmp_path / "store"
    _make_store(store, n_recordings=2, per_recording=40)
    params = TrainParams(**{**TINY, "epochs": 3, "checkpoint_every": 1, "checkpoint_min_interval_s": 0})
    real, calls = torch.save, {"n": 0}

    def save(obj, f, *a, **k):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(OutputError, match="no space left on device .*free space or choose another output folder"):
        train(store, tmp_path / "run", params, device="cpu", progress=False)
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["epoch"] == 1
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".tmp-")]


# --------------------------------------------------------------------------- item 13: warnings users expect

def test_mixed_sample_rates_in_one_analysis_are_warned(dataset, tmp_path, caplog):
    data = _copy(dataset, tmp_path / "in")
    other = tmp_path / "other"
    make_dataset(other, groups=("C",), animals_per_group=1, duration_s=1.0, sample_rate_hz=300_000, seed=5)
    shutil.copytree(other / "C", data / "C")
    run = segment_recordings(data, tmp_path / "store", progress=False)
    note = next(n for n in run.notes if "sample rates" in n)
    assert "250000 Hz: 4, 300000 Hz: 1" in note and "C/" in note and note in caplog.text


def test_a_clipped_recording_is_warned(dataset, tmp_path):
    import soundfile as sf

    data = _copy(dataset, tmp_path / "in")
    wav = _wavs(data)[0]
    audio, sr = sf.read(wav, dtype="float64")
    sf.write(wav, np.clip(audio * 50, -1, 1), sr, subtype="PCM_16")
    run = segment_recordings(data, tmp_path / "store", progress=False)
    note = next(n for n in run.notes if "clipped" in n)
    assert note.startswith("1 recording(s) clipped (e.g. " + wav.relative_to(data).as_posix())
    clean = segment_recordings(_copy(dataset, tmp_path / "clean"), tmp_path / "store2", progress=False)
    assert not any("clipped" in n for n in clean.notes)


def test_the_same_recording_twice_is_warned(dataset, tmp_path):
    data = _copy(dataset, tmp_path / "in")
    wavs = _wavs(data)
    (wavs[0].parent / "copy.wav").symlink_to(wavs[0])
    shutil.copy(wavs[1], wavs[1].parent / (wavs[1].stem + " (copy).wav"))
    run = segment_recordings(data, tmp_path / "store", progress=False)
    note = next(n for n in run.notes if "more than once" in n)
    assert note.startswith("4 recordings are 2 recording(s) present more than once")


# --------------------------------------------------------------------------- item 14: epochs as asked

def test_an_explicit_epoch_count_wins_over_the_automatic_step_floor_with_a_warning(tmp_path, caplog):
    from test_vae import _make_store

    from usvpipe.vae import TrainParams, train
    from usvpipe.vae.schedule import planned_epochs

    assert planned_epochs(TrainParams(), steps_per_epoch=7) == 286  # auto: 100 raised to 2000 steps
    assert planned_epochs(TrainParams(epochs=2), steps_per_epoch=7) == 2  # typed: as asked
    assert planned_epochs(TrainParams(epochs="2"), steps_per_epoch=7) == 2  # typed on the CLI / in TOML
    assert planned_epochs(TrainParams(epochs=2, min_steps=70), steps_per_epoch=7) == 10  # both typed: the floor
    store = tmp_path / "store"
    _make_store(store, n_recordings=2, per_recording=40)
    res = train(store, tmp_path / "run", TrainParams(epochs=2, latent_dim=4, channels=(4, 8), hidden=(16,),
                                                      batch_size=16, figure_every=0), device="cpu", progress=False)
    assert list(res.history["epoch"]) == [1, 2]
    assert "2 epochs as asked" in caplog.text and "health may fail" in caplog.text


def test_the_cli_epochs_option_is_honoured(tmp_path):
    from click.testing import CliRunner
    from test_vae import _make_store

    from usvpipe.cli import main

    store = tmp_path / "store"
    _make_store(store, n_recordings=2, per_recording=40)
    res = CliRunner().invoke(main, ["train", str(store), str(tmp_path / "run"), "--epochs", "1", "--latent-dim", "4",
                                    "--batch-size", "16", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "run" / "loss.csv")) == 1


# --------------------------------------------------------------------------- item 16: threads under contention

def test_the_thread_count_follows_what_the_process_may_use():
    from usvpipe._threads import choose_threads

    assert choose_threads(environ={}, cpus=2, load=0.2).threads == 2  # idle machine: every CPU
    assert choose_threads(environ={}, cpus=2, load=1.1).threads == 1  # one busy process beside it
    assert choose_threads(environ={}, cpus=2, load=7.0).threads == 1  # never below one
    assert choose_threads(environ={"SLURM_CPUS_PER_TASK": "4"}, cpus=64, load=0.0).threads == 4
    assert choose_threads(environ={"OMP_NUM_THREADS": "3"}, cpus=2, load=5.0).threads == 3  # the user's choice
    assert choose_threads(2, environ={"OMP_NUM_THREADS": "3"}, cpus=8, load=0.0).threads == 2  # --threads wins
    line = choose_threads(environ={}, cpus=2, load=1.1).line()
    assert line.startswith("1 CPU thread (2 CPUs usable, load 1.1 at start") and "OMP_NUM_THREADS or train --threads overrides" in line


def test_training_uses_the_chosen_threads_says_so_and_restores_torchs(tmp_path, capsys):
    import torch
    from click.testing import CliRunner
    from test_vae import _make_store

    from usvpipe.cli import main

    store = tmp_path / "store"
    _make_store(store, n_recordings=2, per_recording=40)
    before = torch.get_num_threads()
    seen = []
    from usvpipe.vae import training

    real_fit = training._Trainer.fit

    def fit(self, on_epoch_end=None):
        seen.append(torch.get_num_threads())
        return real_fit(self, on_epoch_end)

    training._Trainer.fit = fit
    try:
        res = CliRunner().invoke(main, ["train", str(store), str(tmp_path / "run"), "--epochs", "1", "--latent-dim", "4",
                                        "--batch-size", "16", "--device", "cpu", "--no-progress", "--threads", "1"])
    finally:
        training._Trainer.fit = real_fit
    assert res.exit_code == 0, res.output
    assert seen == [1] and torch.get_num_threads() == before
    assert "on the CPU (1 thread):" in res.output + capsys.readouterr().out
    assert "1 CPU thread (--threads)" in json.loads((tmp_path / "run" / "train.json").read_text())["plan"]


def test_exported_segments_neutralise_formula_labels_and_read_back_as_written(tmp_path):
    from usvpipe.annotations import read_segments, write_segments

    frame = pd.DataFrame({"onset_s": [0.1, 0.5], "offset_s": [0.2, 0.6], "label": ["=cmd|' /C calc'!A0", "-"]})
    path = write_segments(frame, tmp_path / "seg.csv")
    assert _unsafe(_cells(path)) == []
    back = read_segments(path)
    assert list(back["label"]) == ["=cmd|' /C calc'!A0", "-"]


def test_a_shard_that_cannot_fit_is_refused_before_hdf5_touches_the_disk(tmp_path, monkeypatch):
    """HDF5 meeting a full disk mid-write crashed the interpreter (exit 139, seen on a full tmpfs);
    a shard is now checked against the free space first."""
    from usvpipe import _io, store
    from usvpipe.errors import OutputError

    monkeypatch.setattr(_io, "_free_bytes", lambda path: 100 << 10)
    images = np.zeros((20, 128, 128), np.uint8)
    with pytest.raises(OutputError, match=r"no space left on device \(0.1 MiB free, .* MiB needed to write .*rec1"):
        store.write_shard(tmp_path, "rec1", images, np.arange(20.0), np.arange(20.0) + 0.05)
    assert not list(tmp_path.rglob("*.h5")) and not list(tmp_path.rglob(".tmp-*"))


def test_a_store_whose_segmentation_stopped_is_not_trained_on(dataset, tmp_path, monkeypatch):
    from usvpipe.errors import OutputError, UsvpipeError
    from usvpipe.vae import TrainParams, train

    data = _copy(dataset, tmp_path / "in")
    out = tmp_path / "store"
    _disk_full_after(monkeypatch, 2)
    with pytest.raises(OutputError):
        segment_recordings(data, out, progress=False)
    monkeypatch.undo()
    store = open_store(out)  # what `usvpipe train S` opens: merged from the two shards there
    assert len(store.manifest["pending"]) == 2
    with pytest.raises(UsvpipeError, match="2 of the 4 recordings segmented into this store are unfinished .*re-run the "
                                           "same `usvpipe segment` command"):
        train(out, tmp_path / "vae", TrainParams(epochs=1), device="cpu", progress=False)


def test_with_little_space_a_shard_is_built_in_memory_and_a_full_disk_fails_in_python(tmp_path, monkeypatch):
    import builtins
    import errno

    from usvpipe import _io, store
    from usvpipe.errors import OutputError

    monkeypatch.setattr(_io, "_free_bytes", lambda path: 100 << 20)  # room for the shard, but short
    real_open = builtins.open

    class FullDisk:
        def __init__(self, *a, **k):
            self.fh = real_open(*a, **k)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_io, "open", FullDisk, raising=False)
    monkeypatch.setattr(_io, "HDF5_LEFT_OPEN", False)
    images = np.zeros((3, 32, 32), np.uint8)
    with pytest.raises(OutputError, match="no space left on device .*rec1"):
        store.write_shard(tmp_path, "rec1", images, np.arange(3.0), np.arange(3.0) + 0.05)
    assert not _io.HDF5_LEFT_OPEN  # HDF5 never met the full disk
    assert not list(tmp_path.rglob("*.h5")) and not list(tmp_path.rglob(".tmp-*"))
    monkeypatch.undo()
    path = store.write_shard(tmp_path, "rec1", images, np.arange(3.0), np.arange(3.0) + 0.05)
    assert store.read_shard_info(path).n_syllables == 3


def test_full_scale_samples_are_counted_exactly_whatever_the_sample_format():
    from usvpipe.segmentation.sources import FULL_SCALE_FLOAT, count_full_scale

    quiet = np.array([0, 100, -32767, 32766], np.int16)
    assert count_full_scale(quiet) == 0
    assert count_full_scale(np.array([32767, 5, -32768, -32768], np.int16)) == 3
    f = np.array([0.0, 0.5, -0.99, FULL_SCALE_FLOAT - 1e-6], np.float32)
    assert count_full_scale(f) == 0
    assert count_full_scale(np.array([1.0, -FULL_SCALE_FLOAT, 0.2, np.nan], np.float32)) == 2
