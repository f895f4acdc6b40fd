"""The training's time-left line, smoothed so it does not swing from 37 to 5 minutes between epochs.

:func:`usvpipe.vae.schedule.seconds_left` estimates the remaining time from the recent epochs' pace;
each epoch's estimate is noisy (a checkpoint, figures drawn, another process on the machine). What
should stay still while the pace is steady is the predicted *finish time* (now + time left), so that
is what is smoothed: an exponential moving average of the predicted finish times, from which the
time left is read. A steady run shows a steadily falling countdown; a real change of pace moves it
within a few epochs (``alpha`` = 0.3: an epoch's estimate weighs 30 %, the past 70 %).
"""
from __future__ import annotations

from typing import Optional

#: weight of the newest estimate: a change of pace shows to 3/4 of its size within four epochs (1 - 0.7^4)
ALPHA = 0.3


class FinishEstimate:
    """Exponential moving average of predicted finish times; :meth:`update` returns the smoothed time left."""

    def __init__(self, alpha: float = ALPHA):
        self.alpha = float(alpha)
        self.finish: Optional[float] = None

    def update(self, now: float, seconds_left: Optional[float]) -> Optional[float]:
        if seconds_left is None:
            return None
        predicted = now + float(seconds_left)
        self.finish = predicted if self.finish is None else self.alpha * predicted + (1 - self.alpha) * self.finish
        return max(self.finish - now, 0.0)
