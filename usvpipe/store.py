"""The syllable store: fixed-size syllable spectrograms on disk, with their table.

Layout of a store directory::

    STORE/
      shards/<name>.h5     one HDF5 file per recording, written atomically by one writer
      errors/<name>.json   one file per recording that could not be processed
      syllables.csv        merged table: id, recording, animal, group, onset_s, offset_s,
                           shard, index, + per-syllable score columns
      manifest.json        format, package version, parameters, per-recording status
      inputs.json          the recordings named by the latest `usvpipe segment` run: the
                           store holds these and no others (see :func:`merge_store`)
      .locks/<scope>.lock  the writer lock of a running `usvpipe segment` (usvpipe._lock)

A shard file holds

- ``spectrograms``: ``uint8`` array ``(n, H, W)``; value / 255 is the normalised
  log-magnitude in [0, 1] (frequency increases with the row index);
- ``onset_s``, ``offset_s``: ``float64`` ``(n,)``;
- ``columns/<name>``: optional extra per-syllable numeric columns (scores);
- attributes ``recording``, ``animal``, ``group``, ``source_size``,
  ``source_mtime_ns``, ``params_json``, ``params_digest``, ``usvpipe_version``.

A recording is *complete* when its shard exists: shards are renamed into place only
once fully written, so a killed job never leaves a partial shard, and a re-run skips
complete recordings whose source file is unchanged. Because each recording has its own
shard, SLURM array tasks never write the same file; :func:`merge_store` (idempotent)
rebuilds ``syllables.csv`` and ``manifest.json`` from whatever shards exist.

This module is the store as a whole (its inputs and errors, merging, reading syllables);
one shard (its name, :func:`write_shard`, its header) is :mod:`usvpipe.shards`.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ._csv import read_csv
from ._io import read_json, remove_stale_temporaries, write_csv_atomic, write_json_atomic
from ._version import __version__
from .errors import InputFileError, UsvpipeError
# one recording's shard (its name, writing and reading it) is shards.py; its names stay importable from here
from .shards import (  # noqa: F401
    FORMAT_VERSION,
    SHARD_DIR,
    STORE_FORMAT,
    ShardInfo,
    _shard_table,
    read_shard_info,
    shard_files,
    shard_is_current,
    shard_name,
    shard_path,
    to_uint8,
    write_shard,
)

log = logging.getLogger(__name__)

ERROR_DIR = "errors"
TABLE_NAME = "syllables.csv"
MANIFEST_NAME = "manifest.json"
INPUTS_NAME = "inputs.json"  # the recordings of the latest `usvpipe segment` run: the store's content
BASE_COLUMNS = ("id", "recording", "animal", "group", "onset_s", "offset_s", "shard", "index")


def error_path(store_dir, recording: str) -> Path:
    return Path(store_dir) / ERROR_DIR / f"{shard_name(recording)}.json"


def write_inputs(store_dir, recordings: Sequence[str]) -> Path:
    """Record the recordings a segmentation run was given: the store holds these and no others.

    Every task of a SLURM array writes the same content, so concurrent writes are harmless.
    """
    return write_json_atomic(Path(store_dir) / INPUTS_NAME, {"recordings": sorted(set(recordings))})


def read_inputs(store_dir) -> set[str] | None:
    """The recordings named by the latest segmentation run, or ``None`` (a store written before
    this was recorded, or by hand: every shard counts)."""
    p = Path(store_dir) / INPUTS_NAME
    if not p.exists():
        return None
    try:
        return set(read_json(p)["recordings"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InputFileError(p, "unreadable list of the store's recordings",
                             "re-run `usvpipe segment` with the inputs of this store") from None


def write_error(store_dir, recording: str, path: str, message: str) -> Path:
    """Record that ``recording`` failed (one JSON file per recording; atomic)."""
    return write_json_atomic(error_path(store_dir, recording), {"recording": recording, "path": str(path), "error": message})


def clear_error(store_dir, recording: str) -> None:
    p = error_path(store_dir, recording)
    if p.exists():
        p.unlink()


def _check_store_dir(store_dir: Path) -> None:
    """Refuse a folder that is not a syllable store, before anything is written into it."""
    if not store_dir.is_dir():
        raise UsvpipeError(store_dir, "not a directory", "pass the OUT_DIR of `usvpipe segment`")
    if (not (store_dir / SHARD_DIR).is_dir() and not (store_dir / ERROR_DIR).is_dir()
            and not (store_dir / MANIFEST_NAME).exists()):
        # never write a table and manifest into, say, the folder of recordings by mistake
        raise UsvpipeError(store_dir, f"not a syllable store (no {SHARD_DIR}/ or {ERROR_DIR}/ folder)",
                           "pass the OUT_DIR of `usvpipe segment`")


def _drop_outside_inputs(store_dir: Path, outside: list, prune: bool) -> None:
    """Delete (``prune``) or warn about the shards of recordings that are not among the inputs."""
    if prune:
        for rec in outside:
            shard_path(store_dir, rec).unlink(missing_ok=True)
            clear_error(store_dir, rec)
        log.warning("%s: removed the shards of %d recording(s) that are no longer among the inputs, e.g. %s",
                    store_dir, len(outside), outside[0])
    else:
        log.warning("%s: %d shard(s) belong to recordings that are not among the inputs of the last "
                    "`usvpipe segment` run (e.g. %s) and are left out (fix: re-run `usvpipe segment` to "
                    "remove them, or with the inputs that include them)", store_dir, len(outside), outside[0])


def _merged_table(infos: list, store_dir: Path) -> "pd.DataFrame":
    """The shards' syllable tables, concatenated in the order of ``infos`` (by recording)."""
    import pandas as pd

    tables = [_shard_table(i, store_dir) for i in infos]
    if not tables:
        return pd.DataFrame({c: [] for c in BASE_COLUMNS})
    table = pd.concat(tables, ignore_index=True)
    if "label" in table.columns:  # shards without an exclusion list have no labels
        table["label"] = table["label"].fillna("")
    return table


def _failed_recordings(store_dir: Path, inputs) -> dict:
    """``{recording: {path, error}}`` from the error files of the recordings among the inputs."""
    failed = {}
    for p in sorted((store_dir / ERROR_DIR).glob("*.json")) if (store_dir / ERROR_DIR).is_dir() else []:
        try:
            rec = read_json(p)
            if inputs is not None and rec["recording"] not in inputs:
                continue
            failed[rec["recording"]] = {"path": rec.get("path", ""), "error": rec.get("error", "")}
        except (OSError, ValueError, KeyError):
            continue
    return failed


def _parameter_sets(store_dir: Path, infos: list) -> set:
    """The distinct segmentation parameter sets of the shards; warns when there is more than one."""
    # Shards made with different segmentation parameters (e.g. a re-run into the same
    # store with new thresholds, for some recordings only) would be compared as if alike.
    param_sets = {json.dumps(i.params, sort_keys=True, default=str) for i in infos}
    if len(param_sets) > 1:
        log.warning("%s: shards were made with %d different parameter sets (re-segment into a fresh "
                    "OUT_DIR or re-run `usvpipe segment` with one set)", store_dir, len(param_sets))
    return param_sets


def _recording_entry(i, store_dir: Path) -> dict:
    """One complete recording's entry in the manifest."""
    return {
        "status": "complete",
        "shard": i.path.relative_to(store_dir).as_posix(),
        "n_syllables": i.n_syllables,
        "animal": i.animal,
        "group": i.group,
        "source_size": i.source_size,
        "source_mtime_ns": i.source_mtime_ns,
        **({"source_path": i.source_path, "source_digest": i.source_digest} if i.source_path else {}),
        **({"metadata": i.metadata} if i.metadata else {}),
        **({"review": i.review} if i.review else {}),
    }


def _store_manifest(store_dir: Path, infos: list, *, n_on_disk: int, outside: list, prune: bool, n_syllables: int,
                    failed: dict, mixed: bool, pending: list) -> dict:
    """The store's ``manifest.json`` content (pure)."""
    shapes = sorted({i.spec_shape for i in infos if i.spec_shape})
    return {
        "format": STORE_FORMAT,
        "format_version": FORMAT_VERSION,
        "usvpipe_version": __version__,
        "n_recordings": len(infos),
        "n_shards_on_disk": n_on_disk - (len(outside) if prune else 0),
        "not_in_inputs": [] if prune else outside,
        "pruned": outside if prune else [],
        "n_syllables": n_syllables,
        "n_failed": len(failed),
        "spec_shape": list(shapes[0]) if len(shapes) == 1 else [list(s) for s in shapes],
        "params_digests": sorted({i.params_digest for i in infos}),
        "mixed_parameters": mixed,
        "params": infos[0].params if infos else {},
        "recordings": {i.recording: _recording_entry(i, store_dir) for i in infos},
        "failed": failed,
        # recordings of the latest segmentation run with neither a shard nor an error (a run
        # that stopped, e.g. on a full disk): later stages refuse a store with any
        "pending": pending,
    }


def merge_store(store_dir, *, prune: bool = False) -> "pd.DataFrame":
    """(Re)build ``syllables.csv`` and ``manifest.json`` from the shards present.

    Only shards of the recordings named by the latest segmentation run (``inputs.json``)
    are merged: a recording deleted, renamed or moved since an earlier run must not stay
    in the analysis. ``prune=True`` (what ``usvpipe segment`` does once every input is
    complete) also deletes those shards and their error files; otherwise they are left
    on disk, listed in the manifest as ``not_in_inputs`` and a warning is logged.

    Idempotent and safe to run concurrently (each output is replaced atomically with
    identical content). Rows are ordered by recording, then onset, so the table does not
    depend on which task finished first. Returns the merged table.
    """
    from ._lock import live_writers

    store_dir = Path(store_dir)
    _check_store_dir(store_dir)
    if not live_writers(store_dir):
        # a running writer's temporary shard is its work in progress, not debris
        remove_stale_temporaries(store_dir / SHARD_DIR)
    on_disk = shard_files(store_dir)
    infos = sorted((read_shard_info(p) for p in on_disk), key=lambda s: s.recording)
    inputs = read_inputs(store_dir)
    outside = sorted(i.recording for i in infos if inputs is not None and i.recording not in inputs)
    if outside:
        infos = [i for i in infos if i.recording in inputs]
        _drop_outside_inputs(store_dir, outside, prune)

    table = _merged_table(infos, store_dir)
    write_csv_atomic(store_dir / TABLE_NAME, table, float_format="%.6f")
    failed = _failed_recordings(store_dir, inputs)
    mixed = len(_parameter_sets(store_dir, infos)) > 1
    pending = sorted(set(inputs) - {i.recording for i in infos} - set(failed)) if inputs is not None else []
    manifest = _store_manifest(store_dir, infos, n_on_disk=len(on_disk), outside=outside, prune=prune,
                               n_syllables=int(len(table)), failed=failed, mixed=mixed, pending=pending)
    write_json_atomic(store_dir / MANIFEST_NAME, manifest)
    return table


class SyllableStore:
    """Read access to a merged store (use :func:`open_store`).

    Attributes
    ----------
    path : Path
    table : pandas.DataFrame
        One row per syllable, in store order (the order of :meth:`read_all`).
    spec_shape : tuple of int
        ``(H, W)`` of every spectrogram.
    params : dict
        Parameters that made the store.
    """

    def __init__(self, path, table, manifest):
        self.path = Path(path)
        self.table = table
        self.manifest = manifest
        shape = manifest.get("spec_shape") or []
        if shape and isinstance(shape[0], list):
            raise UsvpipeError(self.path, f"shards have different spectrogram shapes {shape}", "re-segment with one set of parameters")
        self.spec_shape = tuple(shape)
        self.params = manifest.get("params", {})
        # positions of each shard's rows, so reads touch each file once
        self._groups = {s: np.flatnonzero(table["shard"].to_numpy() == s) for s in dict.fromkeys(table["shard"])}

    def __len__(self) -> int:
        return len(self.table)

    def require_complete(self) -> None:
        """Raise when recordings of the latest ``usvpipe segment`` run into this store are unfinished."""
        pending = self.manifest.get("pending") or []
        if pending:
            n = len(pending) + int(self.manifest.get("n_recordings", 0)) + int(self.manifest.get("n_failed", 0))
            raise UsvpipeError(self.path, f"{len(pending)} of the {n} recordings segmented into this store are "
                               f"unfinished (e.g. {pending[0]}): the segmentation run stopped before them",
                               "re-run the same `usvpipe segment` command to finish them")

    def require_syllables(self) -> None:
        """Raise a one-line error for a store without syllables (every recording failed or was silent):
        the stages that read images (train, encode) have nothing to work on."""
        if len(self) == 0:
            raise UsvpipeError(f"{self.path}: the syllable store is empty (fix: check the segmentation output)")

    def __repr__(self) -> str:
        return f"SyllableStore({str(self.path)!r}, n={len(self)}, spec_shape={self.spec_shape})"

    def read(self, rows: Sequence[int] | np.ndarray, *, dtype=np.float32) -> np.ndarray:
        """Spectrograms for table positions ``rows`` (in that order).

        ``dtype=np.uint8`` returns raw quantised values; a float dtype returns [0, 1].
        """
        import h5py

        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), *self.spec_shape), dtype=np.uint8)
        if len(rows):
            shards = self.table["shard"].to_numpy()[rows]
            index = self.table["index"].to_numpy()[rows]
            for s in dict.fromkeys(shards):
                sel = np.flatnonzero(shards == s)
                idx = index[sel]
                order = np.argsort(idx)
                with h5py.File(self.path / s, "r") as f:
                    # h5py fancy indexing needs increasing, unique indices
                    uniq, inverse = np.unique(idx[order], return_inverse=True)
                    block = f["spectrograms"][uniq]
                out[sel[order]] = block[inverse]
        if np.dtype(dtype) == np.uint8:
            return out
        return out.astype(dtype) / np.asarray(255.0, dtype=dtype)

    def read_all(self, *, dtype=np.uint8) -> np.ndarray:
        """All spectrograms in table order (uint8 by default, to keep memory small)."""
        import h5py

        out = np.empty((len(self), *self.spec_shape), dtype=np.uint8)
        for s, pos in self._groups.items():
            with h5py.File(self.path / s, "r") as f:
                out[pos] = f["spectrograms"][()][self.table["index"].to_numpy()[pos]]
        if np.dtype(dtype) == np.uint8:
            return out
        return out.astype(dtype) / np.asarray(255.0, dtype=dtype)

    def iter_batches(self, batch_size: int = 256, rows: Sequence[int] | None = None, *, dtype=np.float32) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(positions, spectrograms)`` batches without loading the whole store."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        for start in range(0, len(rows), batch_size):
            pos = rows[start : start + batch_size]
            yield pos, self.read(pos, dtype=dtype)


def open_store(path, *, merge_if_stale: bool = True) -> SyllableStore:
    """Open a syllable store, merging shards first if the table is missing or stale.

    Raises
    ------
    UsvpipeError
        If ``path`` is not a store (no shards and no table).
    """
    import pandas as pd

    path = Path(path)
    table_path = path / TABLE_NAME
    manifest_path = path / MANIFEST_NAME
    shard_dir = path / SHARD_DIR
    if not path.is_dir() or (not shard_dir.is_dir() and not table_path.exists()):
        raise UsvpipeError(path, f"not a syllable store (no {SHARD_DIR}/ or {TABLE_NAME})", f"create it with `usvpipe segment IN_DIR {path}`")
    from ._lock import live_writers

    writers = live_writers(path)
    if writers:
        log.warning("%s: the store is being written by %s; it holds only the recordings complete so far "
                    "(fix: wait for that run to finish)", path, writers[0].describe())
    if merge_if_stale and shard_dir.is_dir():
        shards = shard_files(path)
        newest_shard = max((p.stat().st_mtime_ns for p in shards), default=0)
        n_shards = len(shards)
        stale = not table_path.exists() or not manifest_path.exists()
        if not stale:
            manifest = read_json(manifest_path)
            inputs_path = path / INPUTS_NAME
            newest = max(newest_shard, inputs_path.stat().st_mtime_ns if inputs_path.exists() else 0)
            stale = (manifest.get("n_shards_on_disk", manifest.get("n_recordings")) != n_shards
                     or manifest_path.stat().st_mtime_ns < newest)
        if stale:
            merge_store(path)
    from .artifacts import TEXT_COLUMNS

    manifest = read_json(manifest_path) if manifest_path.exists() else {}
    # the metadata CSV's extra columns are text too: a cohort "01" must not become 1
    meta_cols = {k for r in manifest.get("recordings", {}).values() if isinstance(r, dict) for k in r.get("metadata", {})}
    text_cols = (*TEXT_COLUMNS, *sorted(meta_cols - set(TEXT_COLUMNS)))
    # keep_default_na=False: an animal or group called "NA" (or "None") is a name, not a gap
    table = read_csv(table_path, text_columns=text_cols)
    for c in text_cols:
        if c in table:
            table[c] = table[c].fillna("")
    if "spec_shape" not in manifest or not manifest["spec_shape"]:
        if len(table):
            import h5py

            with h5py.File(path / table["shard"].iloc[0], "r") as f:
                manifest["spec_shape"] = list(f["spectrograms"].shape[1:])
    return SyllableStore(path, table, manifest)
