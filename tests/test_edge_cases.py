"""Cross-stage edge cases a lab analyst hits: each works or fails with one clear line."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import write_call_store

from usvpipe.cli import main


def test_run_where_every_recording_failed_says_why(tmp_path):
    # Not "the store is empty" from the training stage: the reason of the failed files.
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    (wavs / "a.wav").write_text("not audio")
    (wavs / "b.wav").write_bytes(b"")
    cfg = tmp_path / "usvpipe.toml"
    cfg.write_text("[run]\ninput = 'wavs'\noutput = 'out'\n")
    res = CliRunner().invoke(main, ["run", str(cfg), "--no-progress"])
    assert res.exit_code == 2, res.output
    line = res.output.strip().splitlines()[-1]
    assert "all 2 recording(s) failed" in line and "a.wav" in line and "errors.csv" in line
    # `usvpipe info` recognises the store although it holds only failures
    res = CliRunner().invoke(main, ["info", str(tmp_path / "out" / "store")])
    assert res.exit_code == 0 and "0 recordings complete" in res.output and "2 failed" in res.output


def test_run_whose_mmd_cannot_be_done_still_reports_the_rest(tmp_path):
    # One group only (e.g. the layout animal/*.wav): the figures and the report are still
    # written, the failure is one line naming the fix, the exit status is non-zero, and an
    # old mmd/report.json is not shown as this run's answer.
    import json

    out = tmp_path / "run"
    write_call_store(out / "store", 2, 30, group="")
    (out / "mmd").mkdir(parents=True)
    (out / "mmd" / "report.json").write_text(json.dumps({"statistic": 9.0, "p_value": 0.001, "unit": "animal"}))
    cfg = tmp_path / "usvpipe.toml"
    cfg.write_text("[run]\noutput = 'run'\nstages = ['train', 'encode', 'umap', 'mmd']\ndevice = 'cpu'\n"
                   "[train]\nepochs = 1\nmin_steps = 0\nbatch_size = 16\nlatent_dim = 3\nchannels = [4, 8]\nhidden = [16]\nfigure_every = 0\n"
                   "[umap]\nmethod = 'pca'\nfigure_formats = ['png']\nexplorer = false\n")
    res = CliRunner().invoke(main, ["run", str(cfg), "--no-progress"])
    assert res.exit_code == 1, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("usvpipe: error:")]
    assert len(errors) == 1 and "fewer than 2 groups" in errors[0] and "group/animal" in errors[0]
    assert (out / "umap" / "embedding.csv").exists() and (out / "report.html").exists()
    report = (out / "report.md").read_text()
    assert "| mmd | failed |" in report and "p=0.001" not in report


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
