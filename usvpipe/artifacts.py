"""Typed artifacts handed between stages: :class:`Segments` and :class:`Latents`.

Each is validated once, when it is built (a bad table raises :class:`InputFileError`
naming its source, the reason and the fix), exposes its contents through unit-named
accessors (``onsets_s``, ``durations_s``, ``latents``) and has one reader and one
writer, so no stage re-guesses column names. The files on disk are the documented ones:

- ``segments.csv``: :data:`SEGMENT_COLUMNS` + the score columns (:data:`SCORE_COLUMNS`);
- ``latents.csv`` (or ``.h5``): the ``syllables.csv`` columns + ``z0..z{d-1}``
  (+ ``var_z*`` with ``--variances``), with a ``latents.json`` sidecar.
"""
from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Iterable, Mapping, Optional

import numpy as np

from ._csv import read_csv
from .errors import InputFileError

# Columns holding names, never numbers: an animal "007" or a group "NA" stays a string.
TEXT_COLUMNS = ("id", "recording", "animal", "group", "shard", "label")
# segments.csv: where each syllable is, then its scores
SEGMENT_COLUMNS = ("recording", "animal", "group", "onset_s", "offset_s")
SCORE_COLUMNS = ("duration_s", "peak_amplitude", "mean_amplitude", "mean_freq_hz", "min_freq_hz", "max_freq_hz",
                 "joined_pieces", "dropped_fragments")
#: Score columns that are counts (integers): the segmenter's fragment decisions
#: (usvpipe.segmentation.fragments); tables written before they existed lack them.
COUNT_COLUMNS = ("joined_pieces", "dropped_fragments")
_LATENT_RE = re.compile(r"^z(\d+)$")
_ENCODE_FIX = "pass the latents table written by `usvpipe encode`"


def latent_columns(columns, features: Optional[str] = None, *, source=None) -> list[str]:
    """The latent feature columns of a table (or of a list of column names).

    Parameters
    ----------
    columns : DataFrame or iterable of str
    features : str, optional
        Comma-separated glob patterns (e.g. ``"z*"`` or ``"pc_*,umap_*"``); default:
        ``z0..z{d-1}`` in numeric order.
    source : str or Path, optional
        Strict mode: raise :class:`InputFileError` naming ``source`` when there are no
        latent columns, or (without ``features``) when they are not ``z0..z{d-1}``.
        Without it, a table with no latent columns gives ``[]``.
    """
    names = [str(c) for c in (columns.columns if hasattr(columns, "columns") else columns)]
    if features:
        pats = [p.strip() for p in features.split(",") if p.strip()]
        found = [c for c in names if any(fnmatch.fnmatchcase(c, p) for p in pats)]
        if not found and source is not None:
            raise InputFileError(source, f"no latent columns matching {features!r}",
                                 "pass --features with a glob matching the latent columns")
        return found
    numbered = sorted((int(m.group(1)), c) for c in names if (m := _LATENT_RE.match(c)))
    if source is not None:
        if not numbered:
            raise InputFileError(source, "no latent columns z0..z{d-1}", _ENCODE_FIX)
        idx = [i for i, _ in numbered]
        if idx != list(range(len(idx))):
            raise InputFileError(source, f"latent columns are not z0..z{len(idx) - 1} "
                                 f"(found {', '.join(c for _, c in numbered[:6])}...)", _ENCODE_FIX)
    return [c for _, c in numbered]


class Latents:
    """A latents table: one row per syllable, metadata columns plus latent features.

    Validated on construction: the latent columns exist (``z0..z{d-1}``, or those
    matching ``features``), are numeric and finite, and ids (when present) are unique.

    Parameters
    ----------
    frame : pandas.DataFrame
    source : str or Path
        Where it came from (named in every error).
    features : str, optional
        Glob(s) selecting the latent columns (see :func:`latent_columns`).
    """

    def __init__(self, frame, *, source="latents", features: Optional[str] = None):
        self.frame = frame
        self.source = str(source)
        self.columns = latent_columns(frame, features, source=self.source)
        try:
            z = frame[self.columns].to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise InputFileError(self.source, "latent columns are not all numeric",
                                 "re-run `usvpipe encode`, or check --features") from None
        bad = ~np.isfinite(z).all(axis=1)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            which = f"id {frame['id'].iloc[first]}" if "id" in frame.columns else f"row {first}"
            raise InputFileError(self.source, f"{int(bad.sum())} row(s) have NaN/inf latents (first: {which})",
                                 "re-run `usvpipe encode` or drop those rows")
        if "id" in frame.columns and frame["id"].duplicated().any():
            dup = frame["id"][frame["id"].duplicated()].iloc[0]
            raise InputFileError(self.source, f"duplicate id {dup!r}", "ids must be unique; " + _ENCODE_FIX)

    # --- accessors
    def __len__(self) -> int:
        return len(self.frame)

    @property
    def latent_dim(self) -> int:
        return len(self.columns)

    def latents(self, dtype=np.float64) -> np.ndarray:
        """``(n, d)`` array of the latent columns."""
        return self.frame[self.columns].to_numpy(dtype=dtype)

    def text(self, column: str) -> np.ndarray:
        """A metadata column as strings (a missing value is ``""``)."""
        return self.frame[column].fillna("").astype(str).to_numpy()

    @property
    def metadata(self):
        """Every column that is not a latent feature (same rows, same order)."""
        zset = set(self.columns)
        return self.frame[[c for c in self.frame.columns if c not in zset]]

    # --- one reader
    @classmethod
    def read(cls, path, *, features: Optional[str] = None, text_columns: Iterable[str] = ()) -> "Latents":
        """Read ``latents.csv`` or ``.h5`` (as written by :meth:`write`); ``text_columns`` are kept as strings too."""
        path = Path(path)
        if not path.is_file():
            raise InputFileError(path, "latents file not found", _ENCODE_FIX)
        text = tuple(dict.fromkeys((*TEXT_COLUMNS, *text_columns)))
        try:
            if path.suffix.lower() in (".h5", ".hdf5"):
                frame = _read_h5(path)
            else:
                # keep_default_na=False: a group or animal called "NA" (or "None") is a name, not a gap
                frame = read_csv(path, text_columns=text, low_memory=False)
        except Exception as exc:  # pandas and h5py raise many types for unreadable files
            raise InputFileError(path, f"cannot read latents table ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''})", _ENCODE_FIX) from None
        for c in text:
            if c in frame.columns:
                frame[c] = frame[c].fillna("")
        return cls(frame, source=path, features=features)

    @staticmethod
    def read_meta(path) -> dict:
        """What :meth:`write` recorded beside the table (the CSV's ``.json`` sidecar, or the HDF5
        attribute): for ``usvpipe encode`` the model, its parameters, ``model_complete`` and
        ``model_health``. ``{}`` when there is none (a table made by another tool)."""
        path = Path(path)
        try:
            if path.suffix.lower() == ".csv":
                sidecar = path.with_suffix(".json")
                return json.loads(sidecar.read_text()) if sidecar.is_file() else {}
            import h5py

            with h5py.File(path, "r") as f:
                return json.loads(f.attrs.get("meta_json", "{}"))
        except (OSError, ValueError):
            return {}

    # --- one writer
    def write(self, path, meta: Optional[Mapping] = None) -> Path:
        """Write the table atomically: CSV (+ ``.json`` sidecar with ``meta``) or HDF5 (``meta`` as an attribute)."""
        from ._io import write_csv_atomic, write_json_atomic

        path = Path(path)
        if path.suffix.lower() == ".csv":
            write_csv_atomic(path, self.frame, float_format="%.7g")
            if meta is not None:
                write_json_atomic(path.with_suffix(".json"), dict(meta))
            return path
        _write_h5(path, self, dict(meta or {}))
        return path


def _variance_columns(frame, zcols) -> list[str]:
    names = [f"var_{c}" for c in zcols]
    return names if all(n in frame.columns for n in names) else []


def _write_h5(path: Path, latents: Latents, meta: dict) -> None:
    import h5py

    from ._io import atomic_path
    from ._version import __version__

    frame, zcols = latents.frame, latents.columns
    vcols = _variance_columns(frame, zcols)
    table = frame[[c for c in frame.columns if c not in set(zcols) | set(vcols)]]
    z = frame[zcols].to_numpy(dtype=np.float32)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("z", data=z, chunks=(min(max(len(z), 1), 65536), z.shape[1]) if len(z) else None)
            if vcols:
                f.create_dataset("var", data=frame[vcols].to_numpy(dtype=np.float32))
            g = f.create_group("table")
            for c in table.columns:
                col = table[c]
                if col.dtype.kind in "biuf":
                    g.create_dataset(c, data=col.to_numpy())
                else:
                    g.create_dataset(c, data=col.astype(str).to_numpy().astype(object), dtype=h5py.string_dtype())
            f.attrs["table_columns"] = json.dumps(list(table.columns))
            f.attrs["meta_json"] = json.dumps(meta, default=str)
            f.attrs["usvpipe_version"] = __version__


def _read_h5(path: Path):
    import h5py
    import pandas as pd

    with h5py.File(path, "r") as f:
        cols = json.loads(f.attrs["table_columns"])
        data = {}
        for c in cols:
            arr = f["table"][c][()]
            data[c] = [s.decode() if isinstance(s, bytes) else s for s in arr] if arr.dtype.kind == "O" else arr
        frame = pd.DataFrame(data)
        z = f["z"][()]
        frame = frame.assign(**{f"z{i}": z[:, i] for i in range(z.shape[1])})
        if "var" in f:
            v = f["var"][()]
            frame = frame.assign(**{f"var_z{i}": v[:, i] for i in range(v.shape[1])})
    return frame


class Segments:
    """Syllable segments of one or more recordings (``segments.csv``).

    Validated on construction: ``onset_s``/``offset_s`` exist, are finite numbers and
    ``offset_s >= onset_s``. Times are seconds from the start of the recording.
    """

    def __init__(self, frame, *, source="segments"):
        self.frame = frame
        self.source = str(source)
        missing = [c for c in ("onset_s", "offset_s") if c not in frame.columns]
        if missing:
            raise InputFileError(self.source, f"missing column(s) {', '.join(missing)}",
                                 "pass a segments table with onset_s and offset_s in seconds")
        try:
            on = frame["onset_s"].to_numpy(dtype=np.float64)
            off = frame["offset_s"].to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise InputFileError(self.source, "onset_s/offset_s are not all numbers", "write times in seconds") from None
        bad = ~(np.isfinite(on) & np.isfinite(off) & (off >= on))
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise InputFileError(self.source, f"{int(bad.sum())} segment(s) with a missing time or offset before onset "
                                 f"(first: row {first})", "fix those rows (offset_s >= onset_s, both in seconds)")

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def onsets_s(self) -> np.ndarray:
        return self.frame["onset_s"].to_numpy(dtype=np.float64)

    @property
    def offsets_s(self) -> np.ndarray:
        return self.frame["offset_s"].to_numpy(dtype=np.float64)

    @property
    def durations_s(self) -> np.ndarray:
        return self.offsets_s - self.onsets_s

    @classmethod
    def read(cls, path) -> "Segments":
        """Read a ``segments.csv`` written by :meth:`write` (text columns kept as strings)."""
        path = Path(path)
        if not path.is_file():
            raise InputFileError(path, "segments file not found", "run `usvpipe segment` first")
        try:
            frame = read_csv(path, text_columns=TEXT_COLUMNS)
        except Exception as exc:  # pandas raises several types for malformed CSVs
            raise InputFileError(path, f"unreadable segments CSV ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
                                 "pass the segments.csv written by `usvpipe segment`") from None
        return cls(frame, source=path)

    def write(self, path) -> Path:
        """Write atomically as CSV: :data:`SEGMENT_COLUMNS` present, then the score columns (and ``label``), times to 1 µs."""
        from ._io import write_csv_atomic

        # label: a reviewed detection's new label (usvpipe segment --exclude review.csv)
        cols = [c for c in (*SEGMENT_COLUMNS, *SCORE_COLUMNS, "label") if c in self.frame.columns]
        return write_csv_atomic(Path(path), self.frame[cols], float_format="%.6f")
