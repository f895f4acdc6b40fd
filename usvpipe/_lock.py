"""Writer locks on an output folder (the syllable store).

A writer (``usvpipe segment``) registers itself in ``DIR/.locks/<scope>.lock``: a small
JSON file naming the holder (host, pid, command, start time) on which it holds a POSIX
record lock (``fcntl.lockf``; also honoured by NFS) for as long as it runs. The kernel
drops the lock when the process dies however it dies, so

- a second writer of the same scope is refused with a message naming the holder;
- a lock file whose lock can be taken belongs to a writer that is gone (stale);
- temporaries (``.tmp-*``) of a writer are removed only when no other writer is alive.

Scopes: ``"all"`` (a whole run) conflicts with every other writer; ``"shard-i-of-N"``
(a SLURM array task) conflicts with ``"all"`` and with the same shard only, so the tasks
of one array write side by side.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import UsvpipeError

try:  # POSIX only; elsewhere locks degrade to the pid check of same-host holders
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

log = logging.getLogger(__name__)

LOCK_DIR = ".locks"
WHOLE = "all"
# lock file path -> its Holder, for the locks this process holds. POSIX record locks drop
# when the process closes ANY descriptor of the file, so a held lock file is never opened
# (nor read) again by its holder.
_HELD: dict[str, "Holder"] = {}


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a writer lock."""

    path: Path
    scope: str
    host: str = "?"
    pid: int = -1
    command: str = ""
    started: str = ""

    def describe(self) -> str:
        cmd = f" `{self.command}`" if self.command else ""
        since = f" since {self.started}" if self.started else ""
        return f"pid {self.pid} on {self.host}{cmd}{since}"


def _read_holder(path: Path) -> Holder:
    scope = path.name[: -len(".lock")]
    try:
        d = json.loads(path.read_text(encoding="utf-8") or "{}")
        return Holder(path, scope, str(d.get("host", "?")), int(d.get("pid", -1)), str(d.get("command", "")),
                      str(d.get("started", "")))
    except (OSError, ValueError, TypeError):
        return Holder(path, scope)


def _conflicts(a: str, b: str) -> bool:
    return a == WHOLE or b == WHOLE or a == b


def _alive(path: Path) -> bool:
    """True if some process holds the lock of ``path`` (or it cannot be told)."""
    if str(path) in _HELD:
        return True
    if fcntl is not None:
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        except OSError:
            fd = None
        if fd is not None:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except (BlockingIOError, PermissionError):
                return True
            except OSError:  # e.g. ENOLCK: no locking on this file system; fall through
                pass
            else:
                return False  # we got it: its writer is gone (closing our fd releases it)
            finally:
                os.close(fd)
    h = _read_holder(path)
    if h.host == socket.gethostname() and h.pid > 0:
        try:
            os.kill(h.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return path.exists()  # another host and no working locks: assume it is alive


def live_writers(directory, *, exclude_self: bool = True) -> list[Holder]:
    """Writers of ``directory`` that are still running (this process excluded by default)."""
    lock_dir = Path(directory) / LOCK_DIR
    if not lock_dir.is_dir():
        return []
    out = []
    for p in sorted(lock_dir.glob("*.lock")):
        if str(p) in _HELD:
            if not exclude_self:
                out.append(_HELD[str(p)])
            continue
        if _alive(p):
            out.append(_read_holder(p))
    return out


def lock_records(directory) -> list[tuple[Holder, bool]]:
    """Every writer lock file of ``directory`` with whether its writer still runs (``False``: it stopped
    without releasing it, e.g. an interrupted run), this process's own locks left out."""
    lock_dir = Path(directory) / LOCK_DIR
    if not lock_dir.is_dir():
        return []
    return [(_read_holder(p), _alive(p)) for p in sorted(lock_dir.glob("*.lock")) if str(p) not in _HELD]


class WriterLock:
    """A held writer lock; release it with :meth:`release` or use it as a context manager."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    def release(self) -> None:
        if _HELD.pop(str(self.path), None) is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self.fd)  # closing drops the record lock

    def abandon(self) -> None:
        """Drop the lock but leave its file: a record that this writer stopped before finishing (a later
        writer removes it as stale; ``usvpipe info`` reads it as an interrupted run)."""
        if _HELD.pop(str(self.path), None) is None:
            return
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def acquire_writer_lock(directory, scope: str = WHOLE, *, what: str = "store") -> WriterLock:
    """Take the writer lock of ``directory`` for ``scope`` or raise naming the holder.

    Raises
    ------
    UsvpipeError
        If a live writer with a conflicting scope holds the folder.
    """
    directory = Path(directory)
    lock_dir = directory / LOCK_DIR
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{scope}.lock"

    def refuse(h: Holder):
        part = "" if h.scope == WHOLE else f" (task {h.scope})"
        raise UsvpipeError(directory, f"this {what} is being written by another usvpipe process{part}: {h.describe()}",
                           f"wait for it to finish or use another output folder; if that process is gone, delete {h.path}")

    for h in live_writers(directory, exclude_self=False):
        if _conflicts(scope, h.scope):
            refuse(h)
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if fcntl is not None:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except (BlockingIOError, PermissionError):
                os.close(fd)
                refuse(_read_holder(path))
            except OSError as exc:  # no locking on this file system: the pid check still works on one host
                log.debug("%s: cannot lock (%s); relying on the holder's pid", path, exc)
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # a stale file was removed between our open and our lock: take the new one
    else:  # pragma: no cover - needs ten lost races in a row
        raise UsvpipeError(path, "could not take the writer lock", "retry")
    info = {"host": socket.gethostname(), "pid": os.getpid(), "command": " ".join(["usvpipe", *sys.argv[1:]])[:300],
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "scope": scope}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    _HELD[str(path)] = Holder(path, scope, info["host"], info["pid"], info["command"], info["started"])
    lock = WriterLock(path, fd)
    # two writers that started at the same moment may each have missed the other: check again
    for h in live_writers(directory, exclude_self=False):
        if _conflicts(scope, h.scope) and h.path != path:
            lock.release()
            refuse(h)
    _remove_stale(lock_dir)
    return lock


def _remove_stale(lock_dir: Path) -> None:
    """Delete lock files of writers that are gone (taken under their lock, so never a live one's)."""
    if fcntl is None:
        return
    for p in lock_dir.glob("*.lock"):
        if str(p) in _HELD:
            continue
        try:
            fd = os.open(p, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            p.unlink()  # a writer opening it now finds another inode at the path and retries
        except OSError:
            pass
        finally:
            os.close(fd)
