"""Which recordings a batch processes: WAV discovery and the animal/group of each one.

Inputs are folders (searched recursively), WAV files or ``.txt`` listings; metadata comes
from a ``path,animal,group`` CSV or, by default, from the folder layout ``group/animal/*.wav``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputFileError, UsvpipeError

WAV_SUFFIXES = (".wav", ".wave")


@dataclass(frozen=True)
class Recording:
    """One input WAV: ``recording`` is its identifier in the store (POSIX relative path)."""

    path: str
    recording: str
    animal: str = ""
    group: str = ""


def _abs(p) -> Path:
    """Absolute, normalised path without resolving symlinks (a symlinked WAV is its own recording)."""
    return Path(os.path.abspath(os.path.expanduser(str(p))))


def _is_wav(p: Path) -> bool:
    return p.suffix.lower() in WAV_SUFFIXES and not p.name.startswith(".")


def _wavs_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and _is_wav(p))


def discover_inputs(inputs) -> tuple[list[Path], Path]:
    """WAV files from a folder (recursive), a file list, a ``.txt`` listing, or a list of those.

    Returns the absolute paths (sorted, unique) and the root that recording identifiers
    are relative to (the folder, the listing's folder, or the files' common parent).
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not items:
        raise UsvpipeError("no inputs given (fix: pass a folder of WAV files, WAV files, or a .txt file listing them)")
    files: list[Path] = []
    roots: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        if not p.exists():
            raise InputFileError(p, "input not found", "check the path")
        if p.is_dir():
            found = _wavs_under(p)
            if not found:
                raise InputFileError(p, "no WAV files found in this folder (searched recursively for *.wav)", "pass the folder that holds the recordings")
            files += [_abs(f) for f in found]
            roots.append(_abs(p))
        elif p.suffix.lower() in (".txt", ".lst", ".list"):
            base = _abs(p).parent
            for line in p.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                q = Path(line).expanduser()
                q = q if q.is_absolute() else base / q
                if q.is_dir():
                    files += [_abs(f) for f in _wavs_under(q)]
                else:
                    files.append(_abs(q))  # missing files are reported per recording
            roots.append(base)
        else:
            files.append(_abs(p))
            roots.append(_abs(p).parent)
    files = sorted(dict.fromkeys(files))
    if not files:
        raise UsvpipeError("no WAV files in the inputs (fix: pass a folder of WAV files, WAV files, or a .txt file listing them)")
    root = roots[0] if len(set(roots)) == 1 else Path(os.path.commonpath([str(f.parent) for f in files]))
    if not all(_is_relative_to(f, root) for f in files):
        root = Path(os.path.commonpath([str(f.parent) for f in files]))
    return files, root


def _is_relative_to(p: Path, root: Path) -> bool:
    try:
        p.relative_to(root)
        return True
    except ValueError:
        return False


def read_metadata(path) -> dict[Path, dict]:
    """``path,animal,group,...`` CSV -> {absolute path: {"animal", "group"}}.

    Paths may be absolute or relative to the CSV's folder.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "metadata CSV not found", "check the --metadata path")
    try:
        # skipinitialspace: hand-written "path, animal, group" is common
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:  # pandas raises several types for malformed CSVs
        raise InputFileError(path, f"unreadable metadata CSV ({str(exc).splitlines()[0]})", "write it as CSV with columns path,animal,group") from None
    if len(table.columns) == 1 and ";" in str(table.columns[0]):
        # spreadsheets in comma-decimal locales save CSV with ';'
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, sep=";")
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in ("path", "animal", "group") if c not in table.columns]
    if missing:
        raise InputFileError(path, f"metadata CSV lacks column(s) {', '.join(missing)} (has {', '.join(table.columns)})", "add columns path,animal,group")
    base = _abs(path).parent
    out = {}
    for row in table.itertuples(index=False):
        p = str(row.path).strip()
        if os.sep == "/" and "\\" in p:
            p = p.replace("\\", "/")  # a CSV written on Windows separates folders with backslashes
        q = Path(p).expanduser()
        q = _abs(q if q.is_absolute() else base / q)
        meta = {"animal": str(row.animal).strip(), "group": str(row.group).strip()}
        if q in out and out[q] != meta:
            # Two rows for one recording that disagree: which animal it came from decides the
            # MMD's unit of exchangeability, so guessing (e.g. last row wins) is not safe.
            old = out[q]
            raise InputFileError(path, f"lists {p} twice with different animal/group "
                                 f"({old['animal']}/{old['group']} and {meta['animal']}/{meta['group']})",
                                 "keep one row per recording")
        out[q] = meta
    return out


def layout_metadata(rel: Path) -> dict:
    """Animal and group from the folder layout ``group/animal/file.wav``.

    Deeper layouts use the last two folders; with one folder level the folder is the
    animal and the group is empty; a file directly in the root is its own animal
    (its stem) with an empty group.
    """
    parts = rel.parts
    if len(parts) >= 3:
        return {"group": parts[-3], "animal": parts[-2]}
    if len(parts) == 2:
        return {"group": "", "animal": parts[0]}
    return {"group": "", "animal": rel.stem}


def plan_recordings(inputs, metadata=None) -> tuple[list[Recording], list[tuple[str, str, str]]]:
    """Recordings to process (sorted by identifier) and metadata problems
    ``(path, recording, reason)`` for files missing from a metadata CSV."""
    files, root = discover_inputs(inputs)
    meta = read_metadata(metadata) if metadata is not None else None
    meta_base = _abs(metadata).parent if metadata is not None else None
    recs, problems = [], []
    for f in files:
        rel = f.relative_to(root) if _is_relative_to(f, root) else Path(f.name)
        rid = rel.as_posix()
        if meta is not None:
            # relative paths: to the CSV's folder, or else to the input folder (a CSV
            # kept outside the data folder usually lists paths as the input shows them)
            m = meta.get(f) or meta.get(_abs(meta_base / rel))
            if m is None:
                problems.append((str(f), rid, f"not listed in metadata CSV {metadata} (fix: add a row path,animal,group or remove the file)"))
                recs.append(Recording(str(f), rid))
                continue
        else:
            m = layout_metadata(rel)
        recs.append(Recording(str(f), rid, m["animal"], m["group"]))
    return sorted(recs, key=lambda r: r.recording), problems
