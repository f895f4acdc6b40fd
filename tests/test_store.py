"""The syllable store: shards, merge, random access (usvpipe.store)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from usvpipe import _io
from usvpipe.cli import main
from usvpipe.errors import UsvpipeError
from usvpipe.store import merge_store, open_store, shard_is_current, to_uint8, write_shard


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


# -- shards written in blocks ------------------------------------------------------------
def _images(n, seed=0):
    return np.random.default_rng(seed).uniform(-0.2, 1.2, (n, 16, 8)).astype(np.float32)


def test_to_uint8_clips_and_rounds_like_the_plain_formula():
    x = _images(70)
    assert np.array_equal(to_uint8(x), np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8))


def test_a_shard_written_in_blocks_equals_one_written_at_once(tmp_path):
    x = _images(70)
    on = np.arange(70.0)
    whole = write_shard(tmp_path, "a.wav", x, on, on + 0.1)
    blocks = write_shard(tmp_path, "b.wav", (x[i : i + 32] for i in range(0, 70, 32)), on, on + 0.1, image_shape=(16, 8))
    empty = write_shard(tmp_path, "c.wav", iter(()), [], [], image_shape=(16, 8))
    with h5py.File(whole) as a, h5py.File(blocks) as b, h5py.File(empty) as c:
        assert np.array_equal(a["spectrograms"][()], b["spectrograms"][()])
        assert c["spectrograms"].shape == (0, 16, 8)
    store = open_store(tmp_path)
    assert len(store) == 140


def test_blocks_that_do_not_add_up_to_the_onsets_leave_no_shard(tmp_path):
    with pytest.raises(ValueError, match="5 images for 6 onsets"):
        write_shard(tmp_path, "e.wav", iter([_images(5)]), np.arange(6.0), np.arange(6.0) + 0.1, image_shape=(16, 8))
    assert not list((tmp_path / "shards").glob("*.h5"))
