"""Worker processes that die with their parent.

A ``kill -9`` of a parent (a SLURM job cancelled, an OOM kill, a user's ``kill``) does not
reach its pool workers: they would go on for minutes, holding memory and writing into a
store whose writer lock is gone. :func:`die_with_parent` is a pool ``initializer``: on
Linux the kernel sends the worker SIGKILL when its parent dies (``PR_SET_PDEATHSIG``), and
everywhere a daemon thread checks once a second that the parent named at start still lives
(this also covers start methods whose direct parent is a fork server).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
POLL_S = 1.0


def _pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _parent_alive(pid: int) -> bool:
    if os.getppid() == 1:  # re-parented to init: the parent is gone
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: end this process when ``parent_pid`` ends (pass ``os.getpid()`` of the parent)."""
    _pdeathsig()
    if not _parent_alive(parent_pid):  # the parent died before the signal was armed
        os._exit(1)

    def watch():
        while _parent_alive(parent_pid):
            time.sleep(POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="usvpipe-parent-watch", daemon=True).start()
