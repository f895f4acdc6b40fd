"""End-to-end and fault-tolerance tests of the pipeline (issue: one command, survives every fault).

The kill tests send SIGKILL (not a polite exception) to a real `usvpipe` process mid-run,
re-run the same command, and check the outputs equal those of an uninterrupted run.
"""
from __future__ import annotations

import hashlib
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
import soundfile as sf
from click.testing import CliRunner
from conftest import write_call_store

from usvpipe.cli import main
from usvpipe.config import load_config
from usvpipe.errors import UsvpipeError
from usvpipe.pipeline import config_from_mapping, default_config_text, demo_config, describe_directory, run_pipeline
from usvpipe.store import open_store

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def _usvpipe(*args: str) -> list[str]:
    return [sys.executable, "-m", "usvpipe", "-q", *args]


def _kill_when(cmd: list[str], ready, timeout_s: float = 120.0) -> bool:
    """Start ``cmd``, SIGKILL it as soon as ``ready()`` is true; return False if it finished first."""
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            if ready():
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return True
            time.sleep(0.002)
        raise AssertionError(f"{cmd} neither finished nor became ready in {timeout_s} s")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- config

def test_init_writes_a_config_that_parses_back_to_the_defaults(tmp_path):
    path = tmp_path / "usvpipe.toml"
    res = CliRunner().invoke(main, ["init", str(path)])
    assert res.exit_code == 0, res.output
    written = config_from_mapping(load_config(path), base_dir=tmp_path)
    default = config_from_mapping({"run": {"input": "recordings/", "output": "usvpipe_out"}}, base_dir=tmp_path)
    assert written.to_dict() == default.to_dict()
    assert written.run.input == str(tmp_path / "recordings")  # relative to the config file
    res = CliRunner().invoke(main, ["init", str(path)])
    assert res.exit_code == 2 and "already exists" in res.output
    assert default_config_text().count("[") >= 7


def test_config_rejects_unknown_sections_and_keys(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[run]\ninput='x'\n[trian]\nepochs=3\n")
    res = CliRunner().invoke(main, ["run", str(path)])
    assert res.exit_code == 2 and "unknown section(s) trian" in res.output
    path.write_text("[run]\ninput='x'\n[train]\nepoch=3\n")
    res = CliRunner().invoke(main, ["run", str(path)])
    assert res.exit_code == 2 and f"{path}: [train]: unknown parameter(s) epoch" in res.output


def test_command_line_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    # `usvpipe run conf/usvpipe.toml --input recs` means ./recs, not conf/recs; paths in
    # the file stay relative to the file, and "~" is the home folder in both.
    from usvpipe.pipeline import read_pipeline_config

    (tmp_path / "conf").mkdir()
    cfg = tmp_path / "conf" / "usvpipe.toml"
    cfg.write_text("[run]\ninput = 'in_file'\nmetadata = '~/mice.csv'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    run = read_pipeline_config(cfg, input="recs", output="out").run
    assert run.input == str(tmp_path / "recs")
    assert run.output == str(tmp_path / "out")
    assert run.metadata == str(tmp_path / "home" / "mice.csv")
    assert read_pipeline_config(cfg).run.input == str(tmp_path / "conf" / "in_file")


# --------------------------------------------------------------------------- bad input

def _write_bad_files(folder: Path, good_src: Path) -> dict[str, str]:
    """A zoo of broken recordings; returns name -> a word the error message must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    data, sr = sf.read(good_src, dtype="float32")
    raw = good_src.read_bytes()
    (folder / "truncated.wav").write_bytes(raw[: len(raw) // 3])
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notawav.wav").write_text("this is a text file, not audio\n")
    nan = data.copy()
    nan[1000:1010] = np.nan
    sf.write(folder / "nan.wav", nan, sr, subtype="FLOAT")
    sf.write(folder / "silent.wav", np.zeros(sr, dtype=np.float32), sr, subtype="PCM_16")
    sf.write(folder / "lowrate.wav", np.random.default_rng(0).normal(0, 0.1, 44100).astype(np.float32), 44100, subtype="PCM_16")
    return {"truncated.wav": "truncat", "empty.wav": "empty", "notawav.wav": "wav", "nan.wav": "nan",
            "silent.wav": "silent", "lowrate.wav": "sample rate"}


def test_bad_files_are_reported_and_the_rest_of_the_batch_is_processed(tmp_path):
    from usvpipe.synth import make_dataset

    data = tmp_path / "data"
    make_dataset(data, groups=("A",), animals_per_group=2, duration_s=3.0, seed=3)
    good = sorted(data.rglob("*.wav"))
    expected = _write_bad_files(data / "A" / "bad", good[0])
    before = _tree_digest(data)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["segment", str(data), str(out), "--no-progress"])
    text = res.output  # click >= 8.2: stdout and stderr interleaved
    assert res.exit_code == 1, text
    assert _tree_digest(data) == before, "inputs were modified"
    errors = pd.read_csv(out / "errors.csv")
    reported = {Path(p).name: r for p, r in zip(errors["path"], errors["reason"])}
    assert set(reported) == set(expected)
    for name, word in expected.items():
        assert word in reported[name].lower(), (name, reported[name])
        assert name in text
        assert "\n" not in reported[name]
    store = open_store(out)
    assert sorted(store.table["recording"].unique()) == sorted(p.relative_to(data).as_posix() for p in good)


# --------------------------------------------------------------------------- kills

@pytest.fixture(scope="module")
def many_recordings(tmp_path_factory):
    from usvpipe.synth import make_dataset

    data = tmp_path_factory.mktemp("kill") / "data"
    make_dataset(data, groups=("A", "B"), animals_per_group=8, duration_s=12.0, seed=5)
    return data


def test_segmentation_killed_midway_resumes_to_the_uninterrupted_result(tmp_path, many_recordings):
    ref, out = tmp_path / "ref", tmp_path / "out"
    subprocess.run(_usvpipe("segment", str(many_recordings), str(ref), "--no-progress"), env=ENV, check=True)
    n_total = len(list((ref / "shards").glob("*.h5")))
    assert n_total == 16

    def some_done():
        return any((out / "shards").glob("*.h5")) if (out / "shards").exists() else False

    killed = _kill_when(_usvpipe("segment", str(many_recordings), str(out), "--no-progress"), some_done)
    assert killed, "segmentation finished before it could be killed; make the test data larger"
    done = sorted((out / "shards").glob("*.h5"))
    assert 0 < len(done) < n_total
    import h5py

    for p in done:  # whatever is in place is complete
        with h5py.File(p, "r") as f:
            assert f["spectrograms"].shape[0] == f["onset_s"].shape[0]
    assert not (out / "syllables.csv").exists()
    assert "not merged yet" in describe_directory(out)[0]
    mtimes = {p.name: p.stat().st_mtime_ns for p in done}

    subprocess.run(_usvpipe("segment", str(many_recordings), str(out), "--no-progress"), env=ENV, check=True)
    assert {p.name: p.stat().st_mtime_ns for p in done} == mtimes, "finished recordings were redone"
    assert not list(out.rglob(".tmp-*")), "temporary files left behind"
    a, b = open_store(ref), open_store(out)
    pd.testing.assert_frame_equal(a.table, b.table)
    np.testing.assert_array_equal(a.read_all(), b.read_all())
    pd.testing.assert_frame_equal(pd.read_csv(ref / "segments.csv"), pd.read_csv(out / "segments.csv"))


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    return write_call_store(tmp_path_factory.mktemp("tinystore"), 4, 120)


TRAIN_ARGS = ["--epochs", "12", "--min-steps", "0", "--batch-size", "32", "--latent-dim", "4", "--patience", "0", "--checkpoint-every", "1",
              "--seed", "3", "--device", "cpu", "--no-progress", "--set", "channels=[4,8]", "--set", "hidden=[32]",
              "--set", "figure_every=0"]


def _weights(model_dir: Path) -> dict:
    import torch

    ckpt = torch.load(model_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    state = ckpt.get("model") or ckpt.get("model_state") or ckpt.get("state_dict")
    assert state is not None, sorted(ckpt)
    return state


def test_training_killed_midway_resumes_bit_for_bit(tmp_path, tiny_store):
    import torch

    ref, out = tmp_path / "ref", tmp_path / "out"
    subprocess.run(_usvpipe("train", str(tiny_store), str(ref), *TRAIN_ARGS), env=ENV, check=True)

    def first_checkpoint():
        return (out / "checkpoint.pt").exists()

    killed = _kill_when(_usvpipe("train", str(tiny_store), str(out), *TRAIN_ARGS), first_checkpoint)
    assert killed, "training finished before it could be killed"
    torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)  # what is in place is whole
    assert "not finished" in describe_directory(out)[0]
    subprocess.run(_usvpipe("train", str(tiny_store), str(out), *TRAIN_ARGS, "--resume"), env=ENV, check=True)
    assert "complete" in describe_directory(out)[0]
    assert "axis encoder contour+width" in describe_directory(out)[0]  # the default, resolved
    a, b = _weights(ref), _weights(out)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    pd.testing.assert_frame_equal(pd.read_csv(ref / "loss.csv").drop(columns=[c for c in ("seconds", "time_s", "epoch_s") if c in pd.read_csv(ref / "loss.csv")]),
                                  pd.read_csv(out / "loss.csv").drop(columns=[c for c in ("seconds", "time_s", "epoch_s") if c in pd.read_csv(out / "loss.csv")]))


# --------------------------------------------------------------------------- demo

@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    cfg = demo_config(out, animals_per_group=6, duration_s=8.0, epochs=8, seed=0)
    return cfg, run_pipeline(cfg, progress=False)


def test_demo_finds_the_planted_group_difference(demo_run):
    cfg, result = demo_run
    assert result.ok
    assert [s.status for s in result.stages] == ["ran"] * 6  # the five stages + the classical measures
    report = result.mmd
    assert report.p_value < 0.01, report
    # the answer is marked by the training health: interpretable exactly when the check passed
    # (the demo's short training does not pass it: its report says "do not interpret")
    assert report.latent_health is not None and report.interpretable == report.latent_health["passed"]
    if not report.interpretable:
        assert "do not interpret" in report.do_not_interpret
        assert "do not interpret" in (result.output / "report.html").read_text()
    assert [r["representation"] for r in report.second_opinion][:2] == ["VAE latents", "classical measures"]
    out = result.output
    # the demo's groups differ only by the planted shift: the animals were balanced, the calls are louder
    synth = json.loads((out / "demo_data" / "synth.json").read_text())
    assert synth["params"]["balance_se"] == 1.0 and synth["offset_imbalance_se"] <= 1.0
    assert synth["params"]["snr_db"] == 30.0
    for rel in ("report.html", "report.md", "run_manifest.json", "latents.csv", "mmd/report.json", "store/syllables.csv"):
        assert (out / rel).exists(), rel
    html = (out / "report.html").read_text()
    assert "MMD" in html and "<img" in html
    assert any("usvpipe run" in line for line in describe_directory(out))


def test_demo_with_too_few_animals_to_balance_says_so_and_draws_in_order(tmp_path, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="usvpipe.pipeline.demo"):
        demo_config(tmp_path / "run", animals_per_group=1, duration_s=0.3, seed=0)
    assert "the groups are drawn in order instead" in caplog.text and "balance_se" in caplog.text
    synth = json.loads((tmp_path / "run" / "demo_data" / "synth.json").read_text())
    assert synth["params"]["balance_se"] is None and synth["assignment"] == "in drawing order"


def test_rerun_skips_up_to_date_stages_and_redoes_changed_ones(demo_run):
    import dataclasses

    cfg, first = demo_run
    again = run_pipeline(cfg, progress=False)
    # nothing new to segment: the segment stage says so (not "ran ... syllables=0"); measures are always remade
    assert [s.status for s in again.stages] == ["skipped (up to date)"] * 5 + ["ran"]
    assert "already in the store" in again.stages[0].detail and "last ran" in again.stages[1].detail
    changed = dataclasses.replace(cfg, stages={**cfg.stages, "mmd": dataclasses.replace(cfg.stages["mmd"], seed=cfg.stages["mmd"].seed + 1)})
    third = run_pipeline(changed, progress=False)
    assert [s.status for s in third.stages[1:]] == ["skipped (up to date)"] * 3 + ["ran", "ran"]


def test_rerun_with_new_training_parameters_retrains(tmp_path):
    # `usvpipe run` after editing [train] (or adding recordings) must train a new model,
    # not fail on (or silently resume) the old checkpoint: its OUT_DIR is not the user's choice.
    import torch

    out = tmp_path / "run"
    write_call_store(out / "store", 2, 40)
    train = {"epochs": 1, "min_steps": 0, "batch_size": 16, "latent_dim": 4, "channels": [4, 8], "hidden": [16], "figure_every": 0}

    def run(**changes):
        cfg = config_from_mapping({"run": {"output": str(out), "stages": ["train"], "device": "cpu"},
                                   "train": {**train, **changes}})
        res = run_pipeline(cfg, progress=False)
        ckpt = torch.load(out / "model" / "checkpoint.pt", map_location="cpu", weights_only=True)
        return res.stages[1].status, ckpt["model_config"]["latent_dim"], int(ckpt["epoch"])

    assert run() == ("ran", 4, 1)
    assert run() == ("skipped (up to date)", 4, 1)
    assert run(latent_dim=3) == ("ran", 3, 1)


def test_a_to_a_split_is_not_significant(demo_run, tmp_path):
    """Same model, new animals all drawn from one distribution: no difference to find."""
    from usvpipe.mmd import mmd_test
    from usvpipe.segmentation import segment_recordings
    from usvpipe.synth import make_dataset
    from usvpipe.vae import encode

    cfg, result = demo_run
    data = tmp_path / "aa"
    make_dataset(data, groups=("A", "B"), animals_per_group=6, duration_s=8.0, group_shift=0.0, seed=11)
    segment_recordings(data, tmp_path / "store", metadata=data / "metadata.csv", spectrogram=cfg.stages["spectrogram"],
                       segmentation=cfg.stages["segment"], syllables=cfg.stages["syllables"], progress=False)
    latents = encode(result.output / "model" / "model.pt", tmp_path / "store", tmp_path / "latents.csv", device="cpu")
    res = mmd_test(latents, group_col="group", a="A", b="B", params=cfg.stages["mmd"])
    assert res.p_value > 0.05, res


@pytest.mark.parametrize("command", ["segment", "run"])
def test_full_disk_fails_early_with_a_clear_message(tmp_path, monkeypatch, command):
    import collections

    from usvpipe import _io

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(_io.shutil, "disk_usage", lambda p: usage(10 * 2**30, 10 * 2**30 - 2**20, 2**20))
    wav = tmp_path / "in" / "a.wav"
    wav.parent.mkdir()
    sf.write(wav, np.zeros(2500, dtype=np.float32), 250_000)
    out = tmp_path / "out"
    if command == "segment":
        args = ["segment", str(wav.parent), str(out), "--no-progress"]
    else:
        cfg = tmp_path / "c.toml"
        cfg.write_text(f"[run]\ninput = '{wav.parent}'\noutput = '{out}'\n")
        args = ["run", str(cfg), "--no-progress"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    assert "MiB free" in res.output and str(out) in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not any(out.rglob("*"))  # nothing was written


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


def test_the_real_demo_trains_with_the_package_defaults_and_the_synthetic_one_with_its_short_recipe(tmp_path):
    from usvpipe.pipeline.demo import demo_config, shared_data_dir
    from usvpipe.segmentation import SyllableParams
    from usvpipe.vae import TrainParams

    synthetic = demo_config(tmp_path / "syn", animals_per_group=2, duration_s=2.0)
    assert synthetic.stages["syllables"].shape == (32, 32) and synthetic.stages["train"].min_steps == 1500
    if shared_data_dir() is None:
        pytest.skip("../shared/data absent: the real demo needs the shared recordings")
    real = demo_config(tmp_path / "real", real=True, seed=3)
    # the recipe benchmarked on the real recordings, not the one chosen on the synthetic demo data
    assert real.stages["syllables"] == SyllableParams()
    assert real.stages["train"] == TrainParams(seed=3)


def test_stage_announcements_count_epochs_in_words_and_mention_compiling_only_when_not_compiled(monkeypatch):
    from usvpipe.pipeline import config_from_mapping
    from usvpipe.pipeline.run import _what
    from usvpipe.viz import _projection

    one = config_from_mapping({"run": {"output": "x"}, "train": {"epochs": 1, "patience": 1}})
    assert "(1 epoch, as asked" in _what("train", one) and "after 1 epoch without" in _what("train", one)
    monkeypatch.setattr(_projection, "umap_compiled", lambda: True)
    assert "compiles" not in _what("umap", one)
    monkeypatch.setattr(_projection, "umap_compiled", lambda: False)
    assert "compiles its numba code" in _what("umap", one)


def test_umap_compiled_reads_numbas_cache_files(tmp_path):
    from usvpipe.viz._projection import umap_compiled

    assert not umap_compiled([tmp_path, tmp_path / "missing"])
    (tmp_path / "umap").mkdir()
    (tmp_path / "umap" / "layouts._optimize_layout_euclidean_single_epoch-63.py311.nbi").write_bytes(b"")
    assert umap_compiled([tmp_path])


def test_info_on_a_run_in_progress_names_its_process_and_after_an_interrupt_says_to_rerun(tmp_path, monkeypatch):
    import sys as _sys

    from usvpipe.pipeline.run import _Run

    out = tmp_path / "run"
    holder = subprocess.Popen(
        [_sys.executable, "-c", "import sys, time; sys.argv = ['usvpipe', 'run', 'my.toml']\n"
         "from usvpipe._lock import acquire_writer_lock\n"
         f"lock = acquire_writer_lock({str(out)!r}, 'all', what='run folder'); print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    try:
        assert holder.stdout.readline().strip() == "ready"
        lines = describe_directory(out)
        assert f"a run is in progress (pid {holder.pid}, host " in lines[0] and "`usvpipe run my.toml`" in lines[0]
        assert "not a usvpipe output directory" not in " ".join(lines)
        # a second run into the same folder is refused, naming the first
        with pytest.raises(UsvpipeError, match=f"pid {holder.pid}"):
            run_pipeline(config_from_mapping({"run": {"output": str(out), "stages": ["mmd"]}}), progress=False, quiet=True)
    finally:
        holder.kill()
        holder.wait()
    # a run stopped by Ctrl-C leaves its lock file behind, unlocked: info reads it as interrupted
    monkeypatch.setattr(_sys, "argv", ["usvpipe", "run", "cfg.toml"])
    monkeypatch.setattr(_Run, "segment", lambda self: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(config_from_mapping({"run": {"output": str(out), "stages": ["mmd"]}}), progress=False, quiet=True)
    lines = describe_directory(out)
    assert "a run was interrupted (pid" in lines[0] and "re-run `usvpipe run cfg.toml` to finish it" in lines[0]
