"""Which recordings a batch processes: WAV discovery and the animal/group of each one.

Inputs are folders (searched recursively), WAV files or ``.txt`` listings; metadata comes
from a ``path,animal,group`` CSV or, by default, from the folder layout ``group/animal/*.wav``.
"""
from __future__ import annotations

import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..audio import AUDIO_SUFFIXES
from ..errors import InputFileError, UsvpipeError

log = logging.getLogger(__name__)

WAV_SUFFIXES = (".wav", ".wave")
# Folders never searched: hidden ones (a dot first: .Trashes, .Trash-1000, .git, ...) and Windows'
# recycle bin and system folder, where deleted audio would otherwise join an animal.
SKIPPED_FOLDERS = ("$RECYCLE.BIN", "System Volume Information")
# Audio that libsndfile does not read: named when ignored, so a folder of MP3s is not "no WAV files".
OTHER_AUDIO_SUFFIXES = (".mp3", ".m4a", ".aac", ".ogg", ".opus", ".wma", ".aif", ".aiff")
# columns of syllables.csv / latents.csv that usvpipe writes itself
RESERVED_COLUMNS = ("id", "recording", "animal", "group", "onset_s", "offset_s", "shard", "index", "duration_s",
                    "peak_amplitude", "mean_amplitude", "mean_freq_hz", "min_freq_hz", "max_freq_hz", "umap_x",
                    "umap_y", "x", "y")


@dataclass(frozen=True)
class Recording:
    """One input WAV: ``recording`` is its identifier in the store (POSIX relative path)."""

    path: str
    recording: str
    animal: str = ""
    group: str = ""
    extra: tuple = ()  # ((column, value), ...): the metadata CSV's other columns (sex, age, ...)


def _abs(p) -> Path:
    """Absolute, normalised path without resolving symlinks (a symlinked WAV is its own recording)."""
    return Path(os.path.abspath(os.path.expanduser(str(p))))


def nfc(text: str) -> str:
    """``text`` in Unicode NFC: macOS writes file names decomposed (NFD), spreadsheets composed."""
    return unicodedata.normalize("NFC", text)


def _is_wav(p: Path) -> bool:
    return p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")


def _skipped_folder(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED_FOLDERS


def _wavs_under(folder: Path) -> list[Path]:
    """Audio files under ``folder``, following symlinked folders once each; what is left out is logged.

    Hidden and trash folders are not searched, broken symbolic links and audio of formats
    libsndfile cannot read are named, and a symlinked folder seen before (a loop, or the same
    folder twice) is not searched again.
    """
    found, hidden, broken, other, loops = [], [], [], [], []
    seen = set()
    for top, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            loops.append(top)
            dirs[:] = []
            continue
        seen.add(real)
        hidden += [os.path.join(top, d) for d in dirs if _skipped_folder(d)]
        dirs[:] = sorted(d for d in dirs if not _skipped_folder(d))
        for name in files:
            p = Path(top, name)
            if not p.exists():
                broken.append(p)
            elif _is_wav(p):
                found.append(p)
            elif p.suffix.lower() in OTHER_AUDIO_SUFFIXES:
                other.append(p)
    _log_left_out(folder, hidden, broken, other, loops)
    return sorted(found)


def _log_left_out(folder: Path, hidden, broken, other, loops) -> None:
    n_hidden = sum(1 for h in hidden for _, _, fs in os.walk(h) for f in fs if _is_wav(Path(f)))
    if n_hidden:
        log.warning("%s: %d audio file(s) in hidden or trash folders skipped (e.g. in %s) (fix: move them to a "
                    "visible folder if they are data)", folder, n_hidden, hidden[0])
    if broken:
        log.warning("%s: %d broken symbolic link(s) skipped (e.g. %s -> %s) (fix: point them at the recordings, or "
                    "remove them)", folder, len(broken), broken[0], os.readlink(broken[0]))
    if other:
        log.warning("%s: %d audio file(s) in formats usvpipe does not read skipped (e.g. %s) (fix: convert them to "
                    "WAV or FLAC)", folder, len(other), other[0])
    if loops:
        log.warning("%s: symbolic link(s) to a folder already searched not followed again (e.g. %s)", folder, loops[0])


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
                raise InputFileError(p, "no WAV files found in this folder (searched recursively for "
                                     f"{', '.join('*' + s for s in AUDIO_SUFFIXES)})", "pass the folder that holds the recordings")
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
    from .._csv import read_csv

    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "metadata CSV not found", "check the --metadata path")
    try:
        # skipinitialspace: hand-written "path, animal, group" is common; all text: "NA" is a name
        table = read_csv(path, all_text=True, ours=False, skipinitialspace=True)
        if len(table.columns) == 1 and ";" in str(table.columns[0]):
            # spreadsheets in comma-decimal locales save CSV with ';'
            table = read_csv(path, all_text=True, ours=False, skipinitialspace=True, sep=";")
    except UnicodeDecodeError:
        raise InputFileError(path, "metadata CSV is neither UTF-8 nor Windows-1252 text",
                             'save it as "CSV UTF-8" (Excel: File > Save As > CSV UTF-8)') from None
    except Exception as exc:  # pandas raises several types for malformed CSVs
        raise InputFileError(path, f"unreadable metadata CSV ({str(exc).splitlines()[0]})", "write it as CSV with columns path,animal,group") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in ("path", "animal", "group") if c not in table.columns]
    if missing:
        raise InputFileError(path, f"metadata CSV lacks column(s) {', '.join(missing)} (has {', '.join(table.columns)})", "add columns path,animal,group")
    base = _abs(path).parent
    # Other columns (sex, age, ...) travel with each recording into syllables.csv and latents.csv,
    # except those that would overwrite a column usvpipe writes itself.
    extra_cols = [c for c in table.columns if c not in ("path", "animal", "group") and not c.startswith("Unnamed:")]
    clash = [c for c in extra_cols if c in RESERVED_COLUMNS or re.fullmatch(r"(var_)?z\d+", c)]
    if clash:
        log.warning("%s: metadata column(s) %s not carried into the tables: usvpipe writes columns of that name "
                    "(fix: rename them, e.g. meta_%s)", path, ", ".join(clash), clash[0])
        extra_cols = [c for c in extra_cols if c not in clash]
    out = {}
    for row in table.to_dict("records"):
        p = nfc(str(row["path"]).strip())
        if os.sep == "/" and "\\" in p:
            p = p.replace("\\", "/")  # a CSV written on Windows separates folders with backslashes
        q = Path(p).expanduser()
        q = Path(nfc(str(_abs(q if q.is_absolute() else base / q))))
        meta = {"animal": nfc(str(row["animal"]).strip()), "group": nfc(str(row["group"]).strip())}
        if extra_cols:
            meta["extra"] = tuple((c, nfc(str(row[c]).strip())) for c in extra_cols)
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
    # names compared in NFC on both sides: a folder copied from a Mac (NFD) and a CSV typed
    # elsewhere (NFC) print identically and must match; so must two such folders without a CSV
    by_id: dict[str, Path] = {}
    for f in files:
        rel = Path(nfc(str(f.relative_to(root) if _is_relative_to(f, root) else Path(f.name))))
        rid = rel.as_posix()
        if rid in by_id:
            raise InputFileError(f, f"has the same name as {by_id[rid]} once both are written in Unicode NFC",
                                 "rename one of them (their names differ only in how accents are encoded)")
        by_id[rid] = f
        if meta is not None:
            # relative paths: to the CSV's folder, or else to the input folder (a CSV
            # kept outside the data folder usually lists paths as the input shows them)
            m = meta.get(Path(nfc(str(f)))) or meta.get(Path(nfc(str(_abs(meta_base / rel)))))
            if m is None:
                problems.append((str(f), rid, f"not listed in metadata CSV {metadata} (fix: add a row path,animal,group or remove the file)"))
                recs.append(Recording(str(f), rid))
                continue
        else:
            m = layout_metadata(rel)
        recs.append(Recording(str(f), rid, m["animal"], m["group"], m.get("extra", ())))
    if meta is None:
        note = layout_note([r.recording for r in recs], root)
        if note:
            log.warning("%s", note)
    return sorted(recs, key=lambda r: r.recording), problems


def layout_note(recordings, root) -> str:
    """A warning naming the folder layout understood, unless it is ``group/animal/file.wav``.

    A flat folder, or one level too few or too many, silently gave every recording the
    group ``""`` (or took the wrong folders as group and animal).
    """
    depths = sorted({len(Path(r).parts) for r in recordings})
    if depths == [3]:
        return ""
    fix = "(fix: arrange the files as group/animal/*.wav under the input folder, or pass --metadata path,animal,group)"
    example = next(iter(sorted(recordings, key=lambda r: -len(Path(r).parts))))
    m = layout_metadata(Path(example))
    if len(depths) > 1:
        return (f"{root}: recordings lie at different depths ({', '.join(map(str, depths))} levels); each is read "
                f"by its last two folders as group/animal, e.g. {example} -> group {m['group']!r}, animal "
                f"{m['animal']!r} {fix}")
    if depths[0] > 3:
        return (f"{root}: recordings are {depths[0] - 1} folders deep; read as .../group/animal/file.wav, e.g. "
                f"{example} -> group {m['group']!r}, animal {m['animal']!r} {fix}")
    if depths[0] == 2:
        return (f"{root}: layout understood as animal/file.wav (no group folder): every recording has the "
                f"group '' {fix}")
    return f"{root}: flat folder: each file is its own animal and every recording has the group '' {fix}"
