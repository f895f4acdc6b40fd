"""How many intra-op threads torch should use on the CPU: what this process may really run on.

torch starts one thread per core of the machine. On a shared machine that is wrong: measured
with `usvpipe demo` on a 2-core machine with one busy process beside it, the default threads took
183 s and 225 CPU-s where one thread took 75 s and 72 CPU-s (issue 40; the threads spin-wait for
each other while the other process holds a core). So the count is chosen from

1. ``OMP_NUM_THREADS`` when set (the user, a job script or torchrun chose; kept as given);
2. the CPUs this process may run on (``os.sched_getaffinity``: cgroups/taskset, a SLURM
   allocation), and ``SLURM_CPUS_PER_TASK`` when smaller;
3. less the other work running at start: ``round(1-minute load average)`` busy CPUs, read when
   the command started (so a run's own segmentation does not count against its training);

never fewer than one. ``--threads`` (``threads=`` in the API) overrides all of it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional

_LOAD_AT_START: Optional[float] = None


def note_start_load() -> None:
    """Remember the load average now (the CLI calls this as a command starts)."""
    global _LOAD_AT_START
    if _LOAD_AT_START is None:
        _LOAD_AT_START = _load_now()


def _load_now() -> Optional[float]:
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):  # not on every platform
        return None


def _positive_int(text) -> Optional[int]:
    try:
        n = int(str(text).strip())
    except (TypeError, ValueError):
        return None
    return n if n >= 1 else None


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count and, in words, why (for the run plan and the training line)."""

    threads: int
    reason: str

    def line(self) -> str:
        return f"{self.threads} CPU thread{'s' if self.threads != 1 else ''} ({self.reason})"


def choose_threads(requested: Optional[int] = None, *, environ: Optional[Mapping[str, str]] = None,
                   cpus: Optional[int] = None, load: Optional[float] = None) -> ThreadChoice:
    """The intra-op thread count for this process (see the module docstring).

    ``environ``, ``cpus`` (the affinity's size) and ``load`` default to this process's; tests
    pass them.
    """
    if requested is not None:
        return ThreadChoice(int(requested), "--threads")
    environ = os.environ if environ is None else environ
    omp = _positive_int(environ.get("OMP_NUM_THREADS"))
    if omp is not None:
        return ThreadChoice(omp, f"OMP_NUM_THREADS={omp}")
    if cpus is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # macOS, Windows
            cpus = os.cpu_count() or 1
    why = [f"{cpus} CPU{'s' if cpus != 1 else ''} usable"]
    slurm = _positive_int(environ.get("SLURM_CPUS_PER_TASK"))
    if slurm is not None and slurm < cpus:
        cpus = slurm
        why = [f"SLURM_CPUS_PER_TASK={slurm}"]
    if load is None:
        load = _LOAD_AT_START if _LOAD_AT_START is not None else _load_now()
    busy = int(round(load)) if load is not None else 0
    if load is not None:
        why.append(f"load {load:.1f} at start")
    return ThreadChoice(max(1, cpus - busy), ", ".join(why) + "; OMP_NUM_THREADS or train --threads overrides")
