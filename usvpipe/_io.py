"""Crash-safe file output.

Every file usvpipe writes goes through :func:`atomic_path`: it is written to a temporary
file in the destination directory and renamed into place only when complete, so a
job killed at any moment leaves either the old file, the new file, or nothing — never
half a file. ``os.replace`` is atomic on POSIX file systems when source and destination
share a directory.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import OutputError

TMP_PREFIX = ".tmp-"
# Below this many free bytes a failed write is taken as the disk being full: torch and HDF5
# report a full disk as a RuntimeError or an OSError without errno ("file write failed").
_FULL_BELOW_BYTES = 1 << 20


class NoSpaceError(OutputError):
    """The file system holding an output is full (or the user's quota is spent): the batch stops.

    Not a problem of any input: nothing is recorded against a recording, and the run is not
    marked complete.
    """


def _mount_point(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(_mount_point(path)).free
    except OSError:
        return None


def no_space_error(exc: BaseException, path) -> NoSpaceError | None:
    """``exc`` as a one-line :class:`NoSpaceError` when it means the disk is full, else None.

    Call it before a failed write's temporary file is removed: the free space is read then.
    """
    import errno

    if isinstance(exc, NoSpaceError):
        return exc
    full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(exc)
    full = full or "No space left on device" in text or "Disk quota exceeded" in text or "errno = 28" in text
    if not full and isinstance(exc, (OSError, RuntimeError)):
        free = _free_bytes(Path(path))
        full = free is not None and free < _FULL_BELOW_BYTES
    if not full:
        return None
    return NoSpaceError(_mount_point(Path(path)), f"no space left on device (writing {path})",
                        "free space or choose another output folder")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by the owner only; outputs should get the permissions
# any other new file would get (a lab shares results), so apply the umask before renaming.
_FILE_MODE = 0o666 & ~_current_umask()


@contextlib.contextmanager
def atomic_path(path, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    ``suffix`` defaults to the destination's suffix (some writers, e.g. matplotlib,
    pick the format from it).
    """
    path = Path(path)
    suffix = path.suffix if suffix is None else suffix
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + path.stem + "-", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise no_space_error(exc, path) or OutputError(path, f"cannot write here ({exc.strerror or exc})",
                                                       "choose a writable location") from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException as exc:
        full = no_space_error(exc, path) if isinstance(exc, Exception) else None
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if full is not None and full is not exc:
            raise full from None
        raise


def _fsync_file(path: Path) -> None:
    # Flush to disk before the rename so a power cut cannot leave a renamed but empty file.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_room(path, need_bytes: int) -> None:
    """Raise :class:`NoSpaceError` when the file system of ``path`` has fewer than ``need_bytes`` free."""
    free = _free_bytes(Path(path))
    if free is not None and free < need_bytes:
        raise NoSpaceError(_mount_point(Path(path)), f"no space left on device ({free / 2**20:.1f} MiB free, "
                           f"{need_bytes / 2**20:.1f} MiB needed to write {path})",
                           "free space or choose another output folder")


def _without_full_disk_reports(hook):
    if getattr(hook, "drops_full_disk_reports", False):
        return hook

    def filtered(unraisable):
        text = f"{unraisable.exc_value}"
        if "No space left on device" in text or "errno = 28" in text or "file write failed" in text:
            return
        hook(unraisable)

    filtered.drops_full_disk_reports = True
    return filtered


# With less free space than this (beside four times what a file needs), an HDF5 file is built in
# memory and written with plain Python I/O, so a disk that fills up fails in Python, cleanly.
_HDF5_IN_MEMORY_BELOW = 256 << 20
# Set when HDF5 itself met a full disk: its handles on that file cannot be closed, and closing
# them at interpreter exit crashed it (exit 139); the CLI then leaves with os._exit.
HDF5_LEFT_OPEN = False


def write_hdf5(path, fill, *, name=None, need_bytes: int = 0) -> None:
    """Create the HDF5 file ``path`` and call ``fill(h5py_file)``; a full disk raises :class:`NoSpaceError`.

    When space is short the file is built in memory first (see :data:`_HDF5_IN_MEMORY_BELOW`).
    Otherwise HDF5 writes it directly; should the disk fill up meanwhile (another process), the
    reports h5py's deallocators make on the failed file are dropped and :data:`HDF5_LEFT_OPEN` is
    set. ``name``: the path the error names (default ``path``).
    """
    import io

    import h5py

    shown = path if name is None else name
    free = _free_bytes(Path(path))
    if free is not None and free < 4 * need_bytes + _HDF5_IN_MEMORY_BELOW:
        image = io.BytesIO()
        with h5py.File(image, "w") as f:
            fill(f)
        try:
            with open(path, "wb") as fh:
                fh.write(image.getbuffer())
        except OSError as exc:
            full = no_space_error(exc, shown)
            if full is None:
                raise
            raise full from None
        return
    _write_hdf5_direct(path, fill, shown)


def _write_hdf5_direct(path, fill, shown) -> None:
    import gc
    import sys
    import types

    import h5py

    global HDF5_LEFT_OPEN

    def run():
        with h5py.File(path, "w") as f:
            fill(f)

    # h5py reports a failed flush from its objects' deallocators (sys.unraisablehook), which
    # may run inside the `with` already: they are held back, dropped if the disk was full,
    # and passed on otherwise (the hook's `object` is not kept, as the docs ask)
    held, hook = [], sys.unraisablehook
    sys.unraisablehook = lambda u: held.append(types.SimpleNamespace(
        exc_type=u.exc_type, exc_value=u.exc_value, exc_traceback=u.exc_traceback, err_msg=u.err_msg, object=None))
    failure = None
    try:
        try:
            run()
        except Exception as exc:  # noqa: BLE001 - only a full disk is handled here
            failure = no_space_error(exc, shown)
            if failure is None:
                raise
        if failure is not None:
            HDF5_LEFT_OPEN = True
            gc.collect()
            raise failure
    finally:
        # after a full disk, h5py's handles on the failed file keep reporting until the process
        # ends: from then on this process drops those reports (and only those)
        sys.unraisablehook = hook if failure is None else _without_full_disk_reports(hook)
        if failure is None:
            for u in held:
                hook(u)


def write_text_atomic(path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _json_default(obj: Any):
    import numpy as np

    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json_atomic(path, obj: Any, *, indent: int = 2) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=indent, default=_json_default, sort_keys=False) + "\n")


def write_csv_atomic(path, frame, **to_csv_kwargs) -> Path:
    """Write a pandas DataFrame as CSV atomically (``index=False`` by default).

    Text cells a spreadsheet would run as a formula get a leading apostrophe
    (:func:`usvpipe._csv.neutralise_frame`); :func:`usvpipe._csv.read_csv` removes it again.
    """
    from ._csv import neutralise_frame

    to_csv_kwargs.setdefault("index", False)
    frame = neutralise_frame(frame)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **to_csv_kwargs)
    return Path(path)


def save_figure_atomic(fig, path, *, close: bool = True, **savefig_kwargs) -> Path:
    """Save a matplotlib figure atomically (``savefig_kwargs`` go to ``fig.savefig``).

    The temporary file keeps the destination's suffix, so matplotlib infers the format
    from it. ``close=True`` also releases the figure from pyplot's registry.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **savefig_kwargs)
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path


def read_json(path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def file_fingerprint(path) -> dict:
    """Cheap identity of an input file: size and modification time (ns).

    Used to decide whether an output is up to date without hashing hours of audio.
    """
    st = os.stat(path)
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def content_digest(path, *, edge_bytes: int = 1 << 20) -> str:
    """SHA-256 of a file's size, first and last ``edge_bytes`` (the whole file when smaller).

    Tells two recordings apart (or finds one recording twice) without reading hours of audio:
    two different WAVs of equal length share a header but not their first and last MiB of samples.
    """
    import hashlib

    size = os.path.getsize(path)
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(edge_bytes))
        if size > edge_bytes:
            fh.seek(max(edge_bytes, size - edge_bytes))
            h.update(fh.read(edge_bytes))
    return h.hexdigest()


def source_identity(path) -> dict:
    """:func:`file_fingerprint` plus the resolved path and :func:`content_digest` of an input file."""
    return {**file_fingerprint(path), "path": os.path.realpath(path), "digest": content_digest(path)}


def remove_stale_temporaries(directory) -> int:
    """Delete temporary files left by a killed writer in ``directory`` (non-recursive)."""
    n = 0
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    for p in directory.glob(TMP_PREFIX + "*"):
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n


def ensure_output_dir(path, *, min_free_bytes: int = 64 * 1024 * 1024) -> Path:
    """Create ``path`` if needed and check early that it is writable and has space.

    Raises
    ------
    OutputError
        If the directory cannot be created, is read-only, or its file system has less
        than ``min_free_bytes`` free.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(path, f"cannot create output directory ({exc.strerror})", "choose a writable location") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(path, "output directory is not writable", "choose a writable location or fix its permissions")
    try:
        fd, probe = tempfile.mkstemp(prefix=TMP_PREFIX + "probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(path, f"cannot write to output directory ({exc.strerror})", "choose a writable location") from None
    free = shutil.disk_usage(path).free
    if free < min_free_bytes:
        raise OutputError(
            path, f"only {free / 2**20:.0f} MiB free on this file system, need at least {min_free_bytes / 2**20:.0f} MiB",
            "free space or choose another output directory"
        )
    return path
