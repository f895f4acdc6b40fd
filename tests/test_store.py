"""Syllable store shards written in blocks (usvpipe.store)."""
import h5py
import numpy as np
import pytest

from usvpipe.store import open_store, to_uint8, write_shard


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
