"""How long a training run is and how its learning rate moves: planned epochs, the time left, the schedule."""
from __future__ import annotations

import math

import numpy as np

from .params import TrainParams


def planned_epochs(params: TrainParams, steps_per_epoch: int) -> int:
    """The epochs asked for, or more when that many would be fewer than the step floor
    (:attr:`TrainParams.step_floor`: none when the user gave ``epochs`` and not ``min_steps``)."""
    floor = params.step_floor
    need = -(-floor // max(steps_per_epoch, 1)) if floor else 0
    return max(params.resolved_epochs, need)


#: Epochs whose times :func:`seconds_left` reads: recent enough to follow a change of pace
#: (a machine that became busy), enough for one slow epoch (a checkpoint) not to move it.
PACE_EPOCHS = 10


def seconds_left(epoch_seconds, epochs_left: int) -> float | None:
    """Expected seconds for the ``epochs_left`` remaining epochs, from the recent epochs' median time.

    The first epoch timed in this process is left out when there are others (it carries
    one-time costs: allocator warm-up, thread-pool start). ``None`` until one epoch is timed.
    """
    times = [float(t) for t in epoch_seconds]
    if len(times) > 1:
        times = times[1:]
    if not times or epochs_left <= 0:
        return None if not times else 0.0
    return float(np.median(times[-PACE_EPOCHS:])) * epochs_left


def describe_seconds(seconds: float) -> str:
    """``48 s``, ``12 min``, ``2.1 h``: a duration as a person reads a countdown."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _lr_lambda(warmup_steps: float, total_steps: int, floor: float):
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``floor`` at ``total_steps``."""
    total = max(total_steps, 1)

    def f(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        t = min((step - warmup_steps) / max(total - warmup_steps, 1), 1.0)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))

    return f
