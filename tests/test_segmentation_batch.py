"""Batch segmentation: CLI, resumability, sharding, failures (usvpipe.segmentation: inputs, worker, batch)."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from click.testing import CliRunner

from usvpipe.cli import main
from usvpipe.errors import ConfigError, InputFileError
from usvpipe.segmentation import SyllableParams, layout_metadata, segment_recordings
from usvpipe.store import open_store
from usvpipe.synth import make_dataset

SR = 250_000


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    make_dataset(root, animals_per_group=2, duration_s=2.0, seed=5)
    return root


def _hashes(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _with_bad_file(dataset: Path, tmp_path: Path) -> Path:
    root = tmp_path / "in"
    shutil.copytree(dataset, root)
    good = next(root.rglob("*.wav"))
    bad = good.parent / "broken.wav"
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 3])  # truncated copy
    return root


def test_cli_batch_with_bad_file(dataset, tmp_path):
    root = _with_bad_file(dataset, tmp_path)
    before = _hashes(root)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["segment", str(root), str(out), "--no-progress"])
    assert res.exit_code == 1, res.output
    assert "broken.wav" in res.output and "truncated" in res.output
    assert "4 done" in res.output and "1 failed" in res.output
    assert _hashes(root) == before  # inputs untouched
    errors = pd.read_csv(out / "errors.csv")
    assert len(errors) == 1 and errors.path[0].endswith("broken.wav") and "truncated" in errors.reason[0]
    segs = pd.read_csv(out / "segments.csv")
    assert set(segs.recording) == {p.relative_to(root).as_posix() for p in root.rglob("*.wav") if p.name != "broken.wav"}
    assert {"onset_s", "offset_s", "animal", "group", "peak_amplitude"} <= set(segs.columns)
    # animal/group from the layout group/animal/file.wav
    assert set(segs.group) == {"A", "B"} and set(segs.animal) == {"A01", "A02", "B01", "B02"}
    store = open_store(out)
    assert len(store) == len(segs) > 0 and store.spec_shape == (128, 128)
    x = store.read(np.arange(min(5, len(store))))
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
    assert store.params["segment"]["threshold_mode"] == "noise"


def test_rerun_skips_completed(dataset, tmp_path):
    out = tmp_path / "out"
    first = segment_recordings(dataset, out, progress=False)
    assert first.n_done == 4 and first.merged
    shards = sorted((out / "shards").glob("*.h5"))
    mtimes = {p: p.stat().st_mtime_ns for p in shards}
    table = (out / "segments.csv").read_text()
    again = segment_recordings(dataset, out, progress=False)
    assert again.n_done == 0 and again.n_skipped == 4
    assert {p: p.stat().st_mtime_ns for p in shards} == mtimes
    assert (out / "segments.csv").read_text() == table
    # changed parameters make the shards stale
    third = segment_recordings(dataset, out, progress=False, syllables=SyllableParams(time_stretch=False))
    assert third.n_done == 4


def test_shards_and_jobs_give_the_same_store(dataset, tmp_path):
    whole = segment_recordings(dataset, tmp_path / "whole", progress=False)
    a = segment_recordings(dataset, tmp_path / "split", progress=False, shard="0/2")
    assert a.n_recordings == 2 and not a.merged and not (tmp_path / "split" / "segments.csv").exists()
    b = segment_recordings(dataset, tmp_path / "split", progress=False, shard="1/2")
    assert b.n_recordings == 2 and b.merged
    par = segment_recordings(dataset, tmp_path / "par", progress=False, jobs=2)
    assert whole.n_done == par.n_done == 4
    ref = (tmp_path / "whole" / "segments.csv").read_text()
    for other in ("split", "par"):
        assert (tmp_path / other / "segments.csv").read_text() == ref
        assert (tmp_path / other / "syllables.csv").read_text() == (tmp_path / "whole" / "syllables.csv").read_text()
        np.testing.assert_array_equal(open_store(tmp_path / other).read_all(), open_store(tmp_path / "whole").read_all())


def test_metadata_csv_and_listing(dataset, tmp_path):
    wavs = sorted(dataset.rglob("*.wav"))
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(str(p) for p in wavs[:2]) + "\n")
    meta = tmp_path / "meta.csv"
    pd.DataFrame({"path": [str(p) for p in wavs[:2]], "animal": ["m1", "m2"], "group": ["ko", "wt"]}).to_csv(meta, index=False)
    run = segment_recordings(listing, tmp_path / "out", metadata=meta, progress=False)
    assert run.n_done == 2 and run.merged
    segs = pd.read_csv(tmp_path / "out" / "segments.csv")
    assert set(segs.animal) <= {"m1", "m2"} and set(segs.group) <= {"ko", "wt"}
    # a path in a listing that does not exist is a clear per-file failure, not an "unexpected" error
    missing = tmp_path / "missing.txt"
    missing.write_text(f"{wavs[0]}\nnot/there.wav\n")
    run = segment_recordings(missing, tmp_path / "out3", progress=False)
    assert run.n_done == 1 and run.n_failed == 1
    assert "not/there.wav: file not found" in run.failures[0][1] and "unexpected" not in run.failures[0][1]
    # a WAV missing from the metadata CSV is a reported failure, not a silent guess
    run = segment_recordings(wavs[:3], tmp_path / "out2", metadata=meta, progress=False)
    assert run.n_failed == 1 and "not listed in metadata" in run.failures[0][1]


def test_metadata_rows_that_disagree_are_refused(tmp_path):
    from usvpipe.segmentation.inputs import read_metadata

    meta = tmp_path / "meta.csv"
    # The same recording twice with the same labels is harmless (a copy-pasted row) ...
    meta.write_text("path,animal,group\na.wav,m1,ko\na.wav,m1,ko\nb.wav,m2,wt\n")
    assert read_metadata(meta)[(tmp_path / "a.wav").resolve()] == {"animal": "m1", "group": "ko"}
    # ... but with different animals or groups it is an error naming the file and the row.
    meta.write_text("path,animal,group\na.wav,m1,ko\nb.wav,m2,wt\n./a.wav,m3,ko\n")
    with pytest.raises(InputFileError) as err:
        read_metadata(meta)
    msg = str(err.value)
    assert "meta.csv" in msg and "a.wav" in msg and "m1/ko" in msg and "m3/ko" in msg and "\n" not in msg


@pytest.mark.parametrize("style", ["spaces", "windows", "semicolon", "outside"])
def test_metadata_csv_as_spreadsheets_and_windows_write_it(dataset, tmp_path, style):
    # Real metadata CSVs: "path, animal, group" with spaces, backslash paths and CRLF from
    # Windows, ';' from comma-decimal locales, or kept outside the data folder with paths
    # relative to the input folder. Each must give every recording its animal and group.
    from usvpipe.segmentation.inputs import plan_recordings

    import os

    rels = sorted(p.relative_to(dataset).as_posix() for p in dataset.rglob("*.wav"))
    # paths relative to the CSV's folder, except in "outside" (relative to the input folder)
    paths = rels if style == "outside" else [os.path.relpath(dataset / r, tmp_path) for r in rels]
    rows = [(p, f"m{i}", "ko" if i % 2 else "wt") for i, p in enumerate(paths)]
    sep, eol = {"spaces": ", ", "semicolon": ";"}.get(style, ","), "\n"
    if style == "windows":
        rows, eol = [(p.replace("/", "\\"), a, g) for p, a, g in rows], "\r\n"
    meta = tmp_path / f"meta_{style}.csv"
    meta.write_bytes(eol.join([sep.join(("path", "animal", "group"))] + [sep.join(r) for r in rows]).encode() + eol.encode())
    recs, problems = plan_recordings(dataset, meta)
    assert problems == []
    assert [(r.recording, r.animal, r.group) for r in recs] == [(r, a, g) for (_, a, g), r in zip(rows, rels)]


def test_layout_fallbacks():
    assert layout_metadata(Path("ko/m1/a.wav")) == {"group": "ko", "animal": "m1"}
    assert layout_metadata(Path("cohort/ko/m1/a.wav")) == {"group": "ko", "animal": "m1"}
    assert layout_metadata(Path("m1/a.wav")) == {"group": "", "animal": "m1"}
    assert layout_metadata(Path("a.wav")) == {"group": "", "animal": "a"}


def test_multichannel_needs_channel(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "in" / "g" / "m" / "stereo.wav"
    p.parent.mkdir(parents=True)
    sf.write(p, rng.normal(0, 0.01, (SR, 2)), SR, subtype="FLOAT")
    run = segment_recordings(tmp_path / "in", tmp_path / "out", progress=False)
    assert run.n_failed == 1 and "--channel" in run.failures[0][1]
    run = segment_recordings(tmp_path / "in", tmp_path / "out", progress=False, channel="mix")
    assert run.n_done == 1 and run.n_failed == 0 and run.merged
    assert pd.read_csv(tmp_path / "out" / "errors.csv").empty
    # a re-run that now fails (here: a channel the file lacks) must not keep the earlier
    # run's syllables in the store as if they were made with the new parameters
    run = segment_recordings(tmp_path / "in", tmp_path / "out", progress=False, channel=5)
    assert run.n_failed == 1 and "channel 5" in run.failures[0][1]
    store = open_store(tmp_path / "out")
    assert store.manifest["n_recordings"] == 0 and store.manifest["n_failed"] == 1 and len(store) == 0


def test_syllable_params():
    p = SyllableParams()
    span = p.span_s(np.array([0.0, 0.05, 0.2, 0.5]))
    assert np.allclose(span, [0.0, 0.1, 0.2, 0.2])
    assert np.allclose(SyllableParams(time_stretch=False).span_s(np.array([0.01, 0.3])), 0.2)
    with pytest.raises(ConfigError):
        SyllableParams(normalization="zscore")


def test_cli_usage_errors(dataset, tmp_path):
    r = CliRunner().invoke(main, ["segment", str(dataset), str(tmp_path / "o"), "--shard", "3/2"])
    assert r.exit_code == 2 and "shard" in r.output
    cfg = tmp_path / "usvpipe.toml"
    cfg.write_text("[segment]\nhigh_treshold = 3\n")
    r = CliRunner().invoke(main, ["segment", str(dataset), str(tmp_path / "o"), "--config", str(cfg)])
    assert r.exit_code == 2 and "high_treshold" in r.output
    r = CliRunner().invoke(main, ["segment", str(tmp_path / "missing"), str(tmp_path / "o")])
    assert r.exit_code == 2 and "not found" in r.output


def test_the_shard_written_block_by_block_holds_the_images_of_the_whole_recording(tmp_path):
    from usvpipe.segmentation import SegmentParams, segment_file_with_trace, syllable_images
    from usvpipe.segmentation.spectrogram import SpectrogramParams
    from usvpipe.store import to_uint8
    from usvpipe.synth import synth_recording

    audio, _ = synth_recording(12.0, SR, snr_db=10.0, call_rate_hz=6.0, seed=1)  # > 32 syllables: several blocks
    wav = tmp_path / "in" / "r.wav"
    wav.parent.mkdir()
    sf.write(wav, audio / 4, SR, subtype="PCM_16")
    segment_recordings(wav.parent, tmp_path / "out", progress=False)
    store = open_store(tmp_path / "out")
    segs, trace, source = segment_file_with_trace(wav, SegmentParams(), SpectrogramParams())
    assert len(store) == len(segs) > 32
    want = to_uint8(syllable_images(source, segs, trace, SpectrogramParams(), SyllableParams()))
    assert np.array_equal(store.read_all(), want)


def _dies_on_one_recording(task):
    """Stand-in for the worker function: the process dies (as when the OOM killer strikes)."""
    import os

    from usvpipe.segmentation import worker

    if task.rec.recording.endswith("A02_rec1.wav"):
        os._exit(137)
    return worker._real_run_task(task)


def test_a_shard_written_before_the_pool_broke_counts_as_done(tmp_path):
    # When a worker dies, a recording another worker had already finished (its shard written,
    # its result not yet collected) is done, not failed; an unfinished or outdated one is not.
    from dataclasses import replace

    from usvpipe.config import params_digest
    from usvpipe.segmentation import batch, inputs, worker
    from usvpipe.segmentation.params import SegmentParams, SyllableParams
    from usvpipe.segmentation.spectrogram import SpectrogramParams
    from usvpipe.store import read_shard_info, shard_path
    from usvpipe.synth import make_dataset

    data = tmp_path / "data"
    make_dataset(data, groups=("A",), animals_per_group=2, duration_s=2.0, seed=3)
    recs, _ = inputs.plan_recordings(data)
    params = batch.run_params(SpectrogramParams(), SegmentParams(), SyllableParams(), None)
    out = tmp_path / "out"
    out.mkdir()
    tasks = [worker.Task(r, str(out), SpectrogramParams(), SegmentParams(), SyllableParams(), None,
                      params_digest(params, {"animal": r.animal, "group": r.group}), params) for r in recs]
    assert worker.run_task(tasks[0]).ok
    done = worker.finished_before_the_pool_broke(tasks[0])
    assert done.ok and done.audio_s == 0.0
    assert done.n_syllables == read_shard_info(shard_path(out, recs[0].recording)).n_syllables
    assert worker.finished_before_the_pool_broke(tasks[1]) is None  # never written
    assert worker.finished_before_the_pool_broke(replace(tasks[0], digest="other parameters")) is None


def test_a_killed_worker_is_reported_and_the_rerun_finishes(tmp_path, monkeypatch):
    import multiprocessing

    import pandas as pd

    from usvpipe.segmentation import batch, worker
    from usvpipe.store import open_store
    from usvpipe.synth import make_dataset

    if multiprocessing.get_start_method() != "fork":
        pytest.skip("the stand-in worker reaches child processes only with the fork start method")
    data = tmp_path / "data"
    make_dataset(data, groups=("A",), animals_per_group=3, duration_s=2.0, seed=2)
    monkeypatch.setattr(worker, "_real_run_task", worker.run_task, raising=False)
    monkeypatch.setattr(worker, "run_task", _dies_on_one_recording)
    run = batch.segment_recordings(data, tmp_path / "out", jobs=2, progress=False)
    assert run.n_failed >= 1 and run.n_done + run.n_failed == 3
    assert all("worker process died" in reason for _, reason in run.failures)
    errors = pd.read_csv(tmp_path / "out" / "errors.csv")
    assert any("A02_rec1.wav" in p for p in errors["path"])
    monkeypatch.setattr(worker, "run_task", worker._real_run_task)
    again = batch.segment_recordings(data, tmp_path / "out", jobs=2, progress=False)
    assert again.n_failed == 0 and again.n_done == run.n_failed
    assert len(open_store(tmp_path / "out").table["recording"].unique()) == 3
    assert not (tmp_path / "out" / "errors").exists() or not any((tmp_path / "out" / "errors").iterdir())


def test_images_past_the_recording_edges_are_those_of_syllables_without_room_around_them():
    from usvpipe.segmentation.images import images_past_the_edges

    params = SyllableParams()  # a 40 ms syllable is shown over sqrt(0.04 * 0.2) = 89 ms
    inside = images_past_the_edges([1.0], [1.04], 5.0, params)
    clip = images_past_the_edges([0.001], [0.041], 0.042, params)  # a pre-cut clip: the call fills it
    sliver = images_past_the_edges([0.0197], [0.0597], 5.0, params)  # 5 ms (6 %) of the image before 0 s
    margin = images_past_the_edges([0.0113], [0.0513], 5.0, params)  # 13 ms (15 %) before 0 s
    at_end = images_past_the_edges([4.9487], [4.9887], 5.0, params)  # the same after the end
    assert not inside[0] and clip[0] and not sliver[0] and margin[0] and at_end[0]
    assert images_past_the_edges([], [], 1.0, params).shape == (0,)


def test_pre_cut_clips_are_segmented_and_flagged_for_their_padded_images(tmp_path):
    from usvpipe.synth import synth_recording

    sr = 250_000
    audio, truth = synth_recording(3.0, sr, snr_db=30.0, seed=4)
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "full.wav", audio, sr, subtype="FLOAT")
    call = truth.iloc[len(truth) // 2]
    a, b = int((call["onset_s"] - 0.002) * sr), int((call["offset_s"] + 0.002) * sr)
    sf.write(src / "clip.wav", audio[a:b], sr, subtype="FLOAT")  # one call, 2 ms either side, as VoICE ships them
    result = CliRunner().invoke(main, ["segment", str(src), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    warning = [line for line in result.output.splitlines() if "image" in line and "warning" in line]
    assert len(warning) == 1 and "clip.wav" in warning[0] and "full.wav" not in warning[0]
    assert "all of the syllables of 1, e.g. clip.wav: pre-cut clips?" in warning[0] and "fix:" in warning[0]
    run = segment_recordings(src, tmp_path / "again", progress=False)  # the Python API counts them too
    assert run.n_padded >= 1 and [r for r, _, _ in run.padded_recordings] == ["clip.wav"]
    table = open_store(tmp_path / "again").table
    assert len(table) > 1  # nothing is dropped: the clip's syllable stays, marked
    marked = table.loc[table["image_padded"] > 0, "recording"]
    assert set(marked) == {"clip.wav"} and (table.loc[table["recording"] == "full.wav", "image_padded"] == 0).all()
    info = CliRunner().invoke(main, ["info", str(tmp_path / "out")])
    assert info.exit_code == 0 and "warning:" in info.output and "e.g. clip.wav" in info.output
    assert "column image_padded" in info.output


def test_cli_trace_and_contour_options_reach_the_store_and_the_fragment_columns_reach_segments_csv(dataset, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["segment", str(dataset), str(out), "--no-progress", "--trace", "band_power",
                                    "--contour-max-gap-s", "0.015", "--contour-max-jump-hz", "8000"])
    assert res.exit_code == 0, res.output
    params = open_store(out).params["segment"]
    assert (params["trace"], params["contour_max_gap_s"], params["contour_max_jump_hz"]) == ("band_power", 0.015, 8000.0)
    segs = pd.read_csv(out / "segments.csv")
    assert len(segs) > 0 and (segs.joined_pieces >= 1).all() and (segs.dropped_fragments >= 0).all()
    assert segs.joined_pieces.dtype.kind == "i" and segs.dropped_fragments.dtype.kind == "i"  # written as integers
    bad = CliRunner().invoke(main, ["segment", str(dataset), str(tmp_path / "o2"), "--no-progress", "--trace", "flat"])
    assert bad.exit_code == 2 and "flat" in bad.output
