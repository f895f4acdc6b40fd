"""Shared pytest fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to the read-only real recordings in ``../shared/data`` (skips when absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data not present: real-data test needs {SHARED_DATA}")
    return SHARED_DATA


def write_call_store(store_dir, n_recordings: int, n_calls: int, *, group: str = "g", shape=(32, 32)) -> Path:
    """A syllable store of synthetic call images, one recording per animal.

    Recording ``r`` is ``{group}/a{r}/rec{r}.wav`` (``a{r}/rec{r}.wav`` when ``group`` is
    empty), animal ``a{r}``, with ``n_calls`` calls drawn with seed ``r``.
    """
    from usvpipe.store import write_shard
    from usvpipe.synth import render_call_images, sample_calls

    for r in range(n_recordings):
        calls = sample_calls(n_calls, seed=r)
        onset = calls["duration_s"].cumsum()
        recording = f"{group}/a{r}/rec{r}.wav" if group else f"a{r}/rec{r}.wav"
        write_shard(store_dir, recording, render_call_images(calls, shape=shape), onset, onset + 0.01,
                    animal=f"a{r}", group=group)
    return Path(store_dir)


@pytest.fixture
def two_torch_threads():
    """torch on 2 threads for the test (CI's 2 cores), restored afterwards."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)
