"""Tests of the shared infrastructure: atomic I/O, config parsing, sharding, the store."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from usvpipe import _io
from usvpipe.cli import main
from usvpipe.config import load_config, params_digest, params_from_mapping, params_to_dict
from usvpipe.errors import ConfigError, OutputError, UsvpipeError
from usvpipe.hpc import Shard, parse_shard, select_shard, shard_from_env
from usvpipe.store import merge_store, open_store, shard_is_current, write_shard


# --- atomic I/O -------------------------------------------------------------------

def test_atomic_path_leaves_old_file_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with _io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_replaces_on_success(tmp_path):
    target = tmp_path / "sub" / "out.json"
    _io.write_json_atomic(target, {"a": np.int64(3), "b": np.float32(0.5), "c": (1, 2)})
    assert _io.read_json(target) == {"a": 3, "b": 0.5, "c": [1, 2]}


def test_ensure_output_dir_rejects_read_only(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permission bits
            pytest.skip("running as root: permission bits are not enforced")
        with pytest.raises(OutputError, match="not writable"):
            _io.ensure_output_dir(ro)
    finally:
        ro.chmod(0o700)


def test_ensure_output_dir_rejects_full_disk(tmp_path):
    with pytest.raises(OutputError, match="free"):
        _io.ensure_output_dir(tmp_path, min_free_bytes=2**62)


def test_ensure_output_dir_rejects_file_in_the_way(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(OutputError, match="cannot create"):
        _io.ensure_output_dir(f / "sub")


# --- config -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Params:
    rate_hz: float = 1.0
    n: int = 3
    flag: bool = False
    band_hz: tuple[float, float] = (1.0, 2.0)
    name: str = "x"

    def __post_init__(self):
        if self.rate_hz <= 0:
            raise ConfigError("rate_hz must be > 0")


def test_params_from_mapping_coerces_and_overrides():
    p = params_from_mapping(_Params, {"rate_hz": 2, "band_hz": [3, 4], "flag": "yes"}, n=7, name=None)
    assert p == _Params(rate_hz=2.0, n=7, flag=True, band_hz=(3.0, 4.0), name="x")
    assert isinstance(p.rate_hz, float)
    assert params_to_dict(p)["band_hz"] == [3.0, 4.0]


@pytest.mark.parametrize(
    "mapping, match",
    [({"nope": 1}, "unknown parameter"), ({"n": 1.5}, "integer"), ({"rate_hz": "fast"}, "number"),
     ({"rate_hz": -1}, "rate_hz must be > 0"), ({"band_hz": [1]}, "expected 2 values")],
)
def test_params_from_mapping_rejects_bad_values(mapping, match):
    with pytest.raises(ConfigError, match=match):
        params_from_mapping(_Params, mapping, section="demo")


def test_params_digest_changes_with_values():
    assert params_digest(_Params()) == params_digest(_Params())
    assert params_digest(_Params()) != params_digest(_Params(n=4))


def test_load_config_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nx=1")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        load_config(bad)
    good = tmp_path / "good.toml"
    good.write_text("[train]\nepochs = 3\n")
    assert load_config(good) == {"train": {"epochs": 3}}


# --- sharding -----------------------------------------------------------------------

def test_shards_partition_items_exactly():
    items = [f"rec{i:03d}.wav" for i in range(23)][::-1]
    parts = [select_shard(items, Shard(i, 4)) for i in range(4)]
    flat = sorted(x for p in parts for x in p)
    assert flat == sorted(items)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert parts == [select_shard(list(reversed(items)), Shard(i, 4)) for i in range(4)]


def test_parse_shard_and_slurm_env():
    assert parse_shard("2/5") == Shard(2, 5)
    assert parse_shard(None, environ={}) == Shard(0, 1)
    env = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1"}
    assert shard_from_env(env) == Shard(2, 3)
    assert parse_shard(None, environ=env) == Shard(2, 3)
    listed = {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1"}  # --array=1,3,7
    with pytest.raises(ConfigError, match="contiguous range"):
        shard_from_env(listed)
    stepped = {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2"}
    assert shard_from_env(stepped) == Shard(2, 3)  # --array=0-4:2
    for bad in ("3/3", "x", "1/0", "-1/2"):
        with pytest.raises(ConfigError):
            parse_shard(bad)


# --- store ----------------------------------------------------------------------------

def _fill_store(d, rng):
    specs = {"g1/a1/r1.wav": rng.random((5, 8, 8)), "g2/a2/r2.wav": rng.random((3, 8, 8)), "g2/a3/r3.wav": np.zeros((0, 8, 8))}
    for rec, s in specs.items():
        group, animal, _ = rec.split("/")
        write_shard(d, rec, s, np.arange(len(s)) * 1.0, np.arange(len(s)) + 0.05, animal=animal, group=group,
                    columns={"score": np.linspace(0, 1, len(s))}, source_fingerprint={"size": 10, "mtime_ns": 5},
                    params={"k": 1}, params_digest="abc")
    return specs


def test_store_round_trip_and_random_access(tmp_path):
    rng = np.random.default_rng(0)
    specs = _fill_store(tmp_path, rng)
    store = open_store(tmp_path)
    assert len(store) == 8 and store.spec_shape == (8, 8)
    assert list(store.table["recording"].unique()) == ["g1/a1/r1.wav", "g2/a2/r2.wav"]
    assert store.table["id"].is_unique
    expected = np.concatenate([np.rint(specs["g1/a1/r1.wav"] * 255), np.rint(specs["g2/a2/r2.wav"] * 255)]) / 255
    np.testing.assert_allclose(store.read_all(dtype=np.float64), expected, atol=1e-12)
    rows = [7, 0, 7, 3]
    np.testing.assert_array_equal(store.read(rows, dtype=np.uint8), store.read_all()[rows])
    batches = list(store.iter_batches(3))
    assert [len(p) for p, _ in batches] == [3, 3, 2]
    np.testing.assert_array_equal(np.concatenate([b for _, b in batches]), store.read_all(dtype=np.float32))
    assert store.manifest["n_recordings"] == 3 and store.manifest["recordings"]["g2/a3/r3.wav"]["n_syllables"] == 0


def test_store_merge_is_idempotent_and_order_independent(tmp_path):
    rng = np.random.default_rng(1)
    _fill_store(tmp_path / "a", rng)
    rng = np.random.default_rng(1)
    _fill_store(tmp_path / "b", rng)
    t1 = merge_store(tmp_path / "a")
    first = (tmp_path / "a" / "syllables.csv").read_bytes()
    t2 = merge_store(tmp_path / "a")
    assert t1.equals(t2)
    assert (tmp_path / "a" / "syllables.csv").read_bytes() == first
    merge_store(tmp_path / "b")  # same shards written in another directory: identical table
    assert (tmp_path / "b" / "syllables.csv").read_bytes() == first


def test_shard_is_current_tracks_source_and_params(tmp_path):
    _fill_store(tmp_path, np.random.default_rng(2))
    p = tmp_path / "shards"
    path = next(p.glob("*.h5"))
    assert shard_is_current(path, {"size": 10, "mtime_ns": 5}, "abc")
    assert not shard_is_current(path, {"size": 11, "mtime_ns": 5}, "abc")
    assert not shard_is_current(path, {"size": 10, "mtime_ns": 5}, "other")
    path.write_bytes(b"garbage")  # a corrupt shard is not current: it will be redone
    assert not shard_is_current(path, None, None)


def test_store_keeps_labels_that_look_like_missing_values(tmp_path):
    # group "NA" (not applicable) and animal "None" are names; empty scores stay NaN
    write_shard(tmp_path, "NA/None/r.wav", np.zeros((2, 8, 8)), [0.0, 1.0], [0.5, 1.5], animal="None", group="NA",
                columns={"score": [np.nan, 1.0]})
    table = open_store(tmp_path).table
    assert list(table.group) == ["NA", "NA"] and list(table.animal) == ["None", "None"]
    assert np.isnan(table.score[0]) and table.score[1] == 1.0


def test_unwritable_output_is_one_clear_line(tmp_path, monkeypatch):
    # an output "inside" a regular file cannot be created, also as root
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="file.txt/x.csv: cannot write here"):
        _io.write_text_atomic(blocker / "x.csv", "a")
    assert blocker.read_text() == "x"
    # any other OSError reaching the CLI is one line naming the file, exit status 2
    import usvpipe.pipeline

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(usvpipe.pipeline, "describe_directory", denied)
    res = CliRunner().invoke(main, ["info", str(tmp_path / "somewhere")])
    assert res.exit_code == 2 and res.output.strip() == (
        f"usvpipe: error: {tmp_path / 'somewhere'}: Permission denied (fix: check the path, its permissions and free space)")


def test_merge_flags_shards_made_with_different_parameters(tmp_path):
    _fill_store(tmp_path, np.random.default_rng(4))
    assert merge_store(tmp_path) is not None
    assert _io.read_json(tmp_path / "manifest.json")["mixed_parameters"] is False
    write_shard(tmp_path, "g3/a9/r9.wav", np.zeros((1, 8, 8)), [0.0], [0.1], params={"k": 2}, params_digest="other")
    res = CliRunner().invoke(main, ["merge", str(tmp_path)])
    assert res.exit_code == 0 and "different parameters" in res.output
    assert _io.read_json(tmp_path / "manifest.json")["mixed_parameters"] is True


def test_open_store_errors_clearly(tmp_path):
    with pytest.raises(UsvpipeError, match="not a syllable store"):
        open_store(tmp_path)


def test_merge_cli(tmp_path):
    _fill_store(tmp_path, np.random.default_rng(3))
    res = CliRunner().invoke(main, ["merge", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "3 recordings complete, 8 syllables" in res.output
    res = CliRunner().invoke(main, ["merge", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "not a directory" in res.output
    # a folder that is not a store (e.g. the recordings) is refused and left untouched
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    (wavs / "a.wav").write_bytes(b"RIFF")
    res = CliRunner().invoke(main, ["merge", str(wavs)])
    assert res.exit_code == 2 and "not a syllable store" in res.output
    assert sorted(p.name for p in wavs.iterdir()) == ["a.wav"]


def test_cli_help_lists_commands_without_heavy_imports():
    code = "import sys; from usvpipe.cli import main; import usvpipe; print('torch' in sys.modules, 'umap' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0 and "merge" in res.output
