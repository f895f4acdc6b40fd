"""Sharding work over SLURM array tasks (or any ``i/N`` split).

Recordings are partitioned deterministically: sort by identifier, then deal round-robin,
so every recording lands in exactly one shard, shards differ in size by at most one,
and the assignment depends only on the list of recordings.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence, TypeVar

from .errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Task ``index`` (0-based) of ``count`` tasks."""

    index: int = 0
    count: int = 1

    def __post_init__(self):
        if self.count < 1 or not (0 <= self.index < self.count):
            raise ConfigError(f"invalid shard {self.index}/{self.count}: need 0 <= i < N (0-based index)")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def is_whole(self) -> bool:
        return self.count == 1


def shard_from_env(environ: Mapping[str, str] | None = None) -> Shard | None:
    """The shard of a SLURM array task, or ``None`` outside an array job.

    Uses ``SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN`` as the 0-based index so that
    ``--array=0-9`` and ``--array=1-10`` both work, and ``SLURM_ARRAY_TASK_COUNT`` as N.

    ``USVPIPE_TASKS=N`` (the array's full size; scripts/slurm/chain.sh sets it) makes the
    task id itself the 0-based index of N instead. That is what a resubmission needs: SLURM
    numbers the tasks of ``sbatch --array=7`` by that submission alone (COUNT=1, MIN=7), so
    without it task 7 would take every recording. A lone task with a non-zero id and no
    ``USVPIPE_TASKS`` is refused for that reason.
    """
    env = os.environ if environ is None else environ
    if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
        return None
    try:
        task = int(env["SLURM_ARRAY_TASK_ID"])
        count = int(env["SLURM_ARRAY_TASK_COUNT"])
        first = int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
        total = int(env["USVPIPE_TASKS"]) if env.get("USVPIPE_TASKS") else None
    except ValueError:
        raise ConfigError("SLURM_ARRAY_TASK_ID/COUNT/MIN or USVPIPE_TASKS are not integers "
                          "(fix: unset them or use --shard i/N)") from None
    if total is not None:
        if not 0 <= task < total:
            raise ConfigError(f"SLURM array task {task} is outside 0..{total - 1} of USVPIPE_TASKS={total} "
                              "(fix: array ids are the 0-based task numbers, e.g. --array=0-{total - 1})")
        return Shard(task, total)
    if count == 1 and task != 0:
        raise ConfigError(
            f"SLURM array task {task} is the only task of its array, as in a resubmission (--array={task}): "
            "its share of the recordings is unknown (fix: set USVPIPE_TASKS to the original array's size, "
            "or pass --shard i/N)"
        )
    step = int(env.get("SLURM_ARRAY_TASK_STEP", "1") or 1)
    index = (task - first) // max(step, 1)
    if not 0 <= index < count:
        # e.g. --array=1,3,7: SLURM gives no position in an explicit list
        raise ConfigError(
            f"SLURM array task {task} is not in a contiguous range of {count} tasks starting at {first} "
            "(fix: submit with --array=0-N or --array=A-B:STEP, or pass --shard i/N explicitly)"
        )
    return Shard(index, count)


def parse_shard(text: str | None, environ: Mapping[str, str] | None = None) -> Shard:
    """Parse ``"i/N"`` (0-based i); ``None`` falls back to SLURM's environment, then ``0/1``."""
    if text is None or text == "":
        return shard_from_env(environ) or Shard()
    try:
        i, n = str(text).split("/")
        return Shard(int(i), int(n))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected i/N with 0 <= i < N, e.g. 0/4") from None


def select_shard(items: Sequence[T], shard: Shard, key=str) -> list[T]:
    """The items of ``shard``: sorted by ``key``, then every N-th starting at i."""
    ordered = sorted(items, key=key)
    return ordered[shard.index :: shard.count]
