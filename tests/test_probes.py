"""Regression tests of the outside probe (issue 14): nothing lost, nothing silently wrong.

Each test is one way the probe made usvpipe lose data, answer wrongly without saying so,
crash with a traceback or let input do harm; the test fails if that way opens again.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from usvpipe.cli import main
from usvpipe.errors import ConfigError, UsvpipeError
from usvpipe.segmentation import segment_recordings
from usvpipe.store import merge_store, open_store
from usvpipe.synth import make_dataset

from probe_helpers import copy_recordings, probe_dataset

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return probe_dataset(tmp_path_factory, "probe_data")


_copy = copy_recordings


# --------------------------------------------------------------------------- item 3: the store follows the inputs

def test_a_deleted_recording_leaves_the_store_and_later_stages_notice(dataset, tmp_path):
    from usvpipe.pipeline.run import _Run  # the digest `usvpipe run` keys train/encode on

    data = _copy(dataset, tmp_path / "in")
    out = tmp_path / "store"
    segment_recordings(data, out, progress=False)
    before = set(open_store(out).table["recording"])
    assert len(before) == 4

    class _R(_Run):
        def __init__(self):
            self.store_dir = out

    digest_before = _R().store_digest()
    gone = sorted(data.rglob("*.wav"))[0]
    gone.unlink()
    run = segment_recordings(data, out, progress=False)
    assert run.n_skipped == 3 and run.pruned == [gone.relative_to(data).as_posix()]
    table = open_store(out).table
    assert set(table["recording"]) == before - {gone.relative_to(data).as_posix()}
    assert len(list((out / "shards").glob("*.h5"))) == 3
    assert pd.read_csv(out / "segments.csv")["recording"].nunique() <= 3
    assert _R().store_digest() != digest_before  # train and encode are redone


def test_segmenting_a_subfolder_into_the_same_store_does_not_double_count(dataset, tmp_path):
    data = _copy(dataset, tmp_path / "ds")
    out = tmp_path / "o"
    segment_recordings(data, out, progress=False)
    n_a = sum(1 for r in open_store(out).table["recording"] if r.startswith("A/"))
    segment_recordings(data / "A", out, progress=False)
    table = open_store(out).table
    assert set(table["group"]) <= {""}  # group B is gone (and A's layout has no group level)
    assert table["recording"].nunique() == 2 and len(table) == n_a


def test_merge_leaves_out_shards_that_are_not_among_the_inputs(dataset, tmp_path):
    data = _copy(dataset, tmp_path / "in")
    out = tmp_path / "store"
    segment_recordings(data, out, progress=False)
    # an array task of a new run has recorded the new input set, the others have not run yet
    segment_recordings(data / "A", out, progress=False, shard="0/2")
    merge_store(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["not_in_inputs"] and all(r.startswith(("A/", "B/")) for r in manifest["not_in_inputs"])
    assert not any(r.startswith(("A/", "B/")) for r in open_store(out).table["recording"])


# --------------------------------------------------------------------------- item 7: a writer lock on the store

def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    from usvpipe._lock import acquire_writer_lock, live_writers

    code = ("import sys, time; from usvpipe._lock import acquire_writer_lock as a; "
            f"l = a({str(tmp_path)!r}); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(UsvpipeError, match=rf"being written by another usvpipe process: pid {proc.pid} on "):
            acquire_writer_lock(tmp_path)
        with pytest.raises(UsvpipeError, match="being written"):
            acquire_writer_lock(tmp_path, "shard-0-of-2")
        assert [h.pid for h in live_writers(tmp_path)] == [proc.pid]
        wav_dir = tmp_path.parent / (tmp_path.name + "_wavs")
        make_dataset(wav_dir, groups=("A",), animals_per_group=1, duration_s=0.5, seed=0)
        res = CliRunner().invoke(main, ["segment", str(wav_dir), str(tmp_path), "--no-progress"])
        assert res.exit_code != 0 and f"pid {proc.pid}" in res.output and "Traceback" not in res.output
        assert not (tmp_path / "shards").exists()
    finally:
        proc.kill()
        proc.wait()
    # the kernel dropped the lock with the process: its leftover lock file is stale
    assert live_writers(tmp_path) == []
    with acquire_writer_lock(tmp_path):
        pass


def test_array_tasks_write_side_by_side_but_not_twice(tmp_path):
    from usvpipe._lock import acquire_writer_lock

    with acquire_writer_lock(tmp_path, "shard-0-of-2"), acquire_writer_lock(tmp_path, "shard-1-of-2"):
        with pytest.raises(UsvpipeError, match=r"\(task shard-1-of-2\)"):
            acquire_writer_lock(tmp_path, "shard-1-of-2")
        with pytest.raises(UsvpipeError, match="being written"):
            acquire_writer_lock(tmp_path)


def test_merge_keeps_a_live_writers_temporary_and_removes_a_dead_ones(dataset, tmp_path):
    from usvpipe._lock import acquire_writer_lock

    data = _copy(dataset, tmp_path / "in")
    out = tmp_path / "store"
    segment_recordings(data, out, progress=False)
    tmp = out / "shards" / ".tmp-rec-abc.part"
    tmp.write_bytes(b"half a shard")
    code = ("import sys, time; from usvpipe._lock import acquire_writer_lock as a; "
            f"l = a({str(out)!r}, 'shard-0-of-2'); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        res = CliRunner().invoke(main, ["merge", str(out)])
        assert res.exit_code == 0, res.output
        assert tmp.exists()  # the running writer's work in progress survives a merge
    finally:
        proc.kill()
        proc.wait()
    merge_store(out)
    assert not tmp.exists()
    with acquire_writer_lock(out):
        pass


# --------------------------------------------------------------------------- item 8: workers die with their parent

_SLOW_SEGMENT = """
import os, sys, time
import usvpipe.segmentation.worker as w
from usvpipe.segmentation import segment_recordings

def run_task(task):  # stands in for a long recording
    with open(os.path.join(sys.argv[2], str(os.getpid())), "w"):
        pass
    time.sleep(120)

run_task.__module__, run_task.__qualname__ = w.__name__, "run_task"
w.run_task = run_task
segment_recordings(sys.argv[1], sys.argv[3], jobs=2, progress=False)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_the_segment_parent_takes_its_workers_with_it(dataset, tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SEGMENT, str(dataset), str(pids), str(tmp_path / "out")],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(list(pids.iterdir())) < 2:
            assert time.monotonic() < deadline and proc.poll() is None, "workers never started"
            time.sleep(0.05)
        workers = [int(p.name) for p in pids.iterdir()]
        assert all(_alive(p) for p in workers)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in workers)
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in pids.iterdir():
            if _alive(int(p.name)):
                os.kill(int(p.name), signal.SIGKILL)


# --------------------------------------------------------------------------- item 4: never decide on NaN

def _latents(scale: float = 1.0, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g in ("A", "B"):
        for k in range(4):
            z = rng.normal(size=(12, 4)) + (shift if g == "B" else 0.0)
            for v in z:
                rows.append({"group": g, "animal": f"{g}{k}", **{f"z{i}": x * scale for i, x in enumerate(v)}})
    return pd.DataFrame(rows)


def test_huge_latents_give_the_float64_answer_not_a_nan_rejection():
    from usvpipe.mmd import MMDParams, mmd_test

    ref = mmd_test(_latents(), params=MMDParams(dtype="float64"))
    big = mmd_test(_latents(scale=1e20), params=MMDParams(dtype="float32"))
    assert np.isfinite(big.statistic) and np.isfinite(big.null).all()
    assert big.p_value == pytest.approx(ref.p_value) and big.reject == ref.reject
    assert big.statistic == pytest.approx(ref.statistic, rel=1e-6)
    assert any("float64" in n for n in big.notes)


@pytest.mark.parametrize("scale", [1e200, np.inf])
def test_latents_beyond_float64_stop_with_a_message(scale, tmp_path):
    from usvpipe.mmd import MMDParams, mmd_test

    frame = _latents(scale=scale if np.isfinite(scale) else 1.0)
    if not np.isfinite(scale):
        frame.loc[0, "z0"] = np.inf
    with pytest.raises(UsvpipeError, match=r"fix:"):
        mmd_test(frame, params=MMDParams(bandwidth="1.0" if np.isfinite(scale) else "median"))
    path = tmp_path / "latents.csv"
    frame.to_csv(path, index=False)
    res = CliRunner().invoke(main, ["mmd", str(path), str(tmp_path / "m"), "--no-figures"])
    assert res.exit_code != 0 and "Traceback" not in res.output and not (tmp_path / "m" / "report.json").exists()


# --------------------------------------------------------------------------- item 5: a mistyped --animal-col

def test_a_mistyped_animal_column_is_an_error_not_the_syllable_unit(tmp_path):
    from usvpipe.mmd import MMDParams, mmd_test

    path = tmp_path / "latents.csv"
    _latents().to_csv(path, index=False)
    res = CliRunner().invoke(main, ["mmd", str(path), "--animal-col", "mouse", "--no-figures", "--out", str(tmp_path / "m")])
    assert res.exit_code != 0 and "no animal column 'mouse'" in res.output and "--unit syllable" in res.output
    assert not (tmp_path / "m").exists()
    # asked for explicitly, the syllable unit runs and says what it assumes
    syl = mmd_test(_latents().drop(columns="animal"), params=MMDParams(unit="syllable", permutations=99))
    assert syl.unit == "syllable" and any("treated as independent" in n for n in syl.notes)
    syl.save(tmp_path / "s", figures=False)
    report = json.loads((tmp_path / "s" / "report.json").read_text())
    assert report["unit"] == "syllable" and any("independent" in n for n in report["notes"])


# --------------------------------------------------------------------------- item 6: NaN parameters

def _all_param_classes():
    from usvpipe.pipeline.config import RunParams, _stage_classes
    from usvpipe.poise import PoiseParams

    return {**_stage_classes(), "run": RunParams, "poise": PoiseParams}


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_parameters_are_refused_in_every_section(bad):
    import dataclasses

    from usvpipe.config import params_from_mapping

    checked = 0
    for section, cls in _all_param_classes().items():
        for f in dataclasses.fields(cls):
            if isinstance(getattr(cls(), f.name), float):
                with pytest.raises(ConfigError, match="finite"):
                    params_from_mapping(cls, {f.name: bad}, section=section)
                checked += 1
    assert checked > 20


def test_nan_parameters_are_refused_by_the_api_and_the_cli(dataset, tmp_path):
    import dataclasses

    for cls in _all_param_classes().values():
        for f in dataclasses.fields(cls):
            if isinstance(getattr(cls(), f.name), float):
                with pytest.raises(ConfigError, match="finite"):
                    cls(**{f.name: float("nan")})
    res = CliRunner().invoke(main, ["segment", str(dataset), str(tmp_path / "o"), "--high-threshold", "nan"])
    assert res.exit_code != 0 and "[segment].high_threshold: nan is not a finite number" in res.output
    assert not (tmp_path / "o" / "shards").exists()


# --------------------------------------------------------------------------- item 9: an unreadable output is redone

def test_a_truncated_model_in_a_run_folder_is_retrained(tmp_path):
    import dataclasses

    from usvpipe.pipeline import demo_config, run_pipeline

    cfg = demo_config(tmp_path / "run", animals_per_group=2, duration_s=2.0, epochs=1, seed=1, progress=False)
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, stages=("segment", "train", "encode"), device="cpu"),
                              # (a short run: the test is about the truncated file, not what the model learns)
                              stages={**cfg.stages, "train": dataclasses.replace(cfg.stages["train"], num_workers=0,
                                                                                 min_steps=100)})
    first = run_pipeline(cfg, progress=False)
    assert [s.status for s in first.stages[:3]] == ["ran"] * 3
    model = tmp_path / "run" / "model" / "model.pt"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    again = run_pipeline(cfg, progress=False)
    assert [s.status for s in again.stages[1:3]] == ["ran", "ran"], again.stages
    from usvpipe.vae.checkpoint import load_checkpoint

    load_checkpoint(model)  # readable again
    third = run_pipeline(cfg, progress=False)
    assert [s.status for s in third.stages[1:3]] == ["skipped (up to date)"] * 2


# --------------------------------------------------------------------------- items 2 and 10: odd names end to end

ODD = ["ctrl_$1_$", "<!--<script>", "a</script>&b"]


def test_odd_group_and_animal_names_survive_figures_and_the_explorer(tmp_path):
    import re

    from usvpipe.mmd import MMDParams, mmd_test
    from usvpipe.viz import UmapParams, run_umap

    frame = _latents(shift=1.0)
    frame["group"] = frame["group"].map({"A": ODD[0], "B": ODD[1]})
    frame["animal"] = [f"{ODD[2]}{a}" if g == ODD[1] else f"m${a}$" for g, a in zip(frame["group"], frame["animal"])]
    frame["id"] = [f"s{i}" for i in range(len(frame))]
    res = mmd_test(frame, params=MMDParams(permutations=99, syllable_view=False))
    paths = res.save(tmp_path / "mmd", figures=True)  # matplotlib would parse "$1_$" as math and raise
    assert paths["null_figure"].exists()
    run = run_umap(frame, tmp_path / "umap", UmapParams(method="pca", figure_formats=("png",), dpi=50), color_by="animal")
    text = run.explorer.read_text(encoding="utf-8")
    blob = re.search(r'<script type="application/json" id="usvpipe-data">(.*?)</script>', text, re.S).group(1)
    assert "<" not in blob and ">" not in blob  # no label can open a comment or end the script
    levels = json.loads(blob)["cats"]["group"]["levels"]
    assert set(levels) == {ODD[0], ODD[1]}
    # the page's own script follows the data element, and nothing between them opens a comment
    assert text.count("<script") == text.count("</script>")


# --------------------------------------------------------------------------- item 11: wrong TOML types are one line

@pytest.mark.parametrize("text", ["run = 3", "[run]\nstages = \"train\"", "[syllables]\nshape = 3", "[run]\ninput = [\"a\"]",
                                  "[segment]\nhigh_threshold = {a = 1}", "mmd = [1, 2]", "[train]\nlr = [1]"])
def test_a_wrong_toml_type_is_a_one_line_error(text, tmp_path):
    cfg = tmp_path / "usvpipe.toml"
    cfg.write_text(text + "\n")
    for args in (["run", str(cfg)], ["segment", "--config", str(cfg), str(tmp_path), str(tmp_path / "o")],
                 ["mmd", "--config", str(cfg), str(cfg)], ["train", "--config", str(cfg), str(tmp_path), str(tmp_path / "m")]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code not in (0, None) and not isinstance(res.exception, (TypeError, AttributeError)), (args, res.output)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        if "run = 3" in text or "mmd = " in text:
            assert len(lines) == 1 and lines[0].startswith("usvpipe: error:") and str(cfg) in lines[0], (args, res.output)


# --------------------------------------------------------------------------- item 12: evaluate a store's segments.csv

def _segments_and_annotations(tmp_path: Path, n: int):
    (tmp_path / "store").mkdir()
    (tmp_path / "ann").mkdir()
    rows = ["recording,animal,group,onset_s,offset_s"]
    for i in range(1, n + 1):  # recording i has its call at i seconds: a wrong pairing scores 0
        rows.append(f"X/m{i}/rec_{i}.wav,m{i},X,{i}.0,{i}.05")
        (tmp_path / "ann" / f"gt_{i}.csv").write_text(f"onset_s,offset_s\n{i}.0,{i}.05\n")
    (tmp_path / "store" / "segments.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "pairs.csv").write_text("pred,gt\n" + "".join(f"store/segments.csv,ann/gt_{i}.csv\n" for i in range(1, n + 1)))


@pytest.mark.parametrize("n", [2, 25])
def test_evaluate_pairs_a_layout_store_with_its_annotations(tmp_path, n):
    _segments_and_annotations(tmp_path, n)
    for args in (["evaluate", str(tmp_path / "store" / "segments.csv"), str(tmp_path / "ann"), "--json"],
                 ["evaluate", "--pairs", str(tmp_path / "pairs.csv"), "--json"]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
        out = json.loads(res.output)
        assert len(out["pairs"]) == n and out["total"]["event_f1"] == 1.0, res.output


# --------------------------------------------------------------------------- item 13: the layout understood is said

def test_a_layout_other_than_group_animal_file_is_named(dataset, tmp_path, caplog):
    import logging

    from usvpipe.segmentation.inputs import layout_note, plan_recordings

    assert layout_note(["A/m1/r.wav", "B/m2/r.wav"], tmp_path) == ""
    assert "flat folder" in layout_note(["r1.wav", "r2.wav"], tmp_path)
    assert "animal/file.wav" in layout_note(["m1/r.wav"], tmp_path)
    deep = layout_note(["s/A/m1/r.wav"], tmp_path)
    assert "group 'A', animal 'm1'" in deep and "--metadata" in deep
    with caplog.at_level(logging.WARNING):
        plan_recordings(dataset / "A")
    assert "no group folder" in caplog.text


# --------------------------------------------------------------------------- item 14: extra metadata columns travel

def test_extra_metadata_columns_reach_the_tables_and_can_be_the_group(dataset, tmp_path):
    from usvpipe.mmd import MMDParams, mmd_test

    data = _copy(dataset, tmp_path / "in")
    wavs = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.wav"))
    meta = pd.DataFrame({"path": wavs, "animal": [Path(w).parent.name for w in wavs], "group": [w[0] for w in wavs],
                         "sex": ["F", "M"] * (len(wavs) // 2), "cohort": ["01"] * len(wavs)})
    meta.to_csv(data / "meta.csv", index=False)
    segment_recordings(data, tmp_path / "s", metadata=data / "meta.csv", progress=False)
    table = open_store(tmp_path / "s").table
    assert {"sex", "cohort"} <= set(table.columns) and set(table["cohort"]) == {"01"}
    assert set(table["sex"]) == {"F", "M"}
    rows = table.merge(meta.rename(columns={"path": "recording"}), on="recording", suffixes=("", "_m"))
    assert (rows["sex"] == rows["sex_m"]).all() and len(rows) == len(table)
    # a latents table carries them (encode copies every store column) and the test can compare by them
    lat = table.copy()
    rng = np.random.default_rng(0)
    for j in range(3):
        lat[f"z{j}"] = rng.normal(size=len(lat))
    if lat.groupby("sex").size().min() >= 2:
        res = mmd_test(lat, group_col="sex", params=MMDParams(unit="syllable", permutations=49))
        assert set(res.groups) == {"F", "M"}
    # re-running with the same metadata skips every recording; changing a column re-makes the shards
    assert segment_recordings(data, tmp_path / "s", metadata=data / "meta.csv", progress=False).n_skipped == len(wavs)
    meta["sex"] = "F"
    meta.to_csv(data / "meta.csv", index=False)
    segment_recordings(data, tmp_path / "s", metadata=data / "meta.csv", progress=False)
    assert set(open_store(tmp_path / "s").table["sex"]) == {"F"}


# --------------------------------------------------------------------------- item 15: the Nyquist hint that works

def test_a_44k_file_is_said_to_hold_no_usvs_and_the_hint_gives_both_limits(tmp_path):
    import soundfile as sf

    wav = tmp_path / "cd" / "m1" / "r.wav"
    wav.parent.mkdir(parents=True)
    sf.write(wav, np.random.default_rng(0).normal(0, 0.01, 44100).astype(np.float32), 44100, subtype="PCM_16")
    run = segment_recordings(tmp_path / "cd", tmp_path / "o", progress=False)
    reason = run.failures[0][1]
    assert "cannot hold ultrasonic calls" in reason and "--min-freq-hz" in reason and "--max-freq-hz" in reason
    # following the hint works
    m = __import__("re").search(r"--min-freq-hz (\d+) --max-freq-hz (\d+)", reason)
    res = CliRunner().invoke(main, ["segment", str(tmp_path / "cd"), str(tmp_path / "o2"), "--min-freq-hz", m.group(1),
                                    "--max-freq-hz", m.group(2), "--no-progress"])
    assert res.exit_code == 0, res.output
    # a file whose Nyquist lies inside the band: lowering the top alone is the fix
    from usvpipe.audio import band_above_nyquist

    assert "lower --max-freq-hz to at most 48000" in band_above_nyquist(96000, 30000, 110000)[1]


# --------------------------------------------------------------------------- item 16: info on single files

def test_info_says_what_a_wav_and_each_table_is(dataset, tmp_path):
    out = tmp_path / "s"
    segment_recordings(dataset, out, progress=False)
    wav = sorted(dataset.rglob("*.wav"))[0]
    said = {}
    for f in (wav, out / "segments.csv", out / "syllables.csv", out / "errors.csv", dataset / "metadata.csv",
              sorted(dataset.rglob("*.truth.csv"))[0]):
        res = CliRunner().invoke(main, ["info", str(f)])
        assert res.exit_code == 0, res.output
        said[f.name] = res.output
    assert "250000 Hz" in said[wav.name] and "mono" in said[wav.name] and "1.000 s" in said[wav.name]
    assert "segments table" in said["segments.csv"] and "latents" not in said["segments.csv"]
    assert "syllable table" in said["syllables.csv"] and "error list" in said["errors.csv"]
    assert "metadata CSV" in said["metadata.csv"]
    assert "onset/offset table" in said[sorted(dataset.rglob("*.truth.csv"))[0].name]


def test_nan_in_the_commands_that_take_no_parameter_class(tmp_path):
    res = CliRunner().invoke(main, ["synth", str(tmp_path / "s"), "--duration-s", "nan"])
    assert res.exit_code != 0 and "duration_s must be a finite number" in res.output
    res = CliRunner().invoke(main, ["synth", str(tmp_path / "s"), "--snr-db", "nan"])
    assert res.exit_code != 0 and "snr_db must be a finite number" in res.output
    gt = tmp_path / "gt.csv"
    gt.write_text("onset_s,offset_s\n0.1,0.2\n")
    res = CliRunner().invoke(main, ["evaluate", str(gt), str(gt), "--tolerance-s", "nan"])
    assert res.exit_code != 0 and "finite" in res.output
