"""Deterministic sharding for SLURM arrays (usvpipe.hpc)."""
from __future__ import annotations

import pytest

from usvpipe.errors import ConfigError
from usvpipe.hpc import Shard, parse_shard, select_shard, shard_from_env


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
