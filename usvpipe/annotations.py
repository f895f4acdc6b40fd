"""Read and write onset/offset tables in the formats other tools use.

Supported formats (``fmt``):

``"csv"``
    Delimited text, comma, semicolon or tab separated, with or without a header.
    Without a header the first two columns are onset and offset (s), as in the amvoc
    ground truth and the DeepSqueak/VocalMat/MUPET exports; quoted comma decimals
    (``"0,1017","0,1063"``) and ``;``-separated comma decimals (``0,1017;0,1063``) are
    accepted. With a header, onset/offset columns are found by name (``onset_s``,
    ``onset``, ``start``, ``begin``, ``Begin Time (s)``…; ``offset_s``, ``offset``,
    ``end``, ``stop``…), a ``label``/``annotation``/``name`` column becomes ``label``, and a
    ``recording`` column (usvpipe ``segments.csv``) is kept.
``"audacity"``
    Audacity label track export: ``start<TAB>end<TAB>label`` lines, no header; the
    spectral-selection lines (starting with ``\\``) are skipped. Read with crowsetta
    (``aud-seq``, or ``aud-bbox`` when every label has a spectral-selection line), the
    field's library for annotation formats; files crowsetta 5 cannot read (labels
    missing, spectral lines on only some labels) fall back to our parser.
``"raven"``
    Raven selection table: tab-separated with ``Selection``, ``View``, ``Channel``,
    ``Begin Time (s)``, ``End Time (s)`` and optionally ``Low Freq (Hz)``/``High Freq (Hz)``
    (kept as ``low_freq_hz``/``high_freq_hz``) and ``Annotation`` (``label``). When a
    selection appears once per view (Waveform and Spectrogram), it is kept once (the
    Spectrogram row). Read with crowsetta (``raven``); tables its schema rejects (e.g.
    integer frequencies) fall back to our parser.
``"auto"``
    Sniffs the above from the content.

Bad rows (non-numeric, NaN/inf, negative onset, offset before onset) raise
:class:`~usvpipe.errors.InputFileError` naming the file and line (our parser finds the
line when crowsetta rejects a file or returns such a row). The plain/headed CSV variants
(amvoc's headerless and comma-decimal tables, header synonyms) are not a crowsetta format
(its ``simple-seq`` needs named columns), so they are parsed here.
"""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ._csv import neutralise_frame, read_csv, restore_cell
from .config import check_choice
from .errors import ConfigError, InputFileError

__all__ = ["read_segments", "write_segments", "read_review", "is_review_table", "READ_FORMATS", "WRITE_FORMATS",
           "REVIEW_VALUES"]

READ_FORMATS = ("auto", "csv", "audacity", "raven")
#: ``csv``: header ``onset_s,offset_s[,label,...]``; ``plain``: two columns, no header
#: (amvoc style); ``audacity``; ``raven``.
WRITE_FORMATS = ("csv", "plain", "audacity", "raven")

_ONSET_NAMES = ("onset_s", "onset", "onsets", "start_s", "start", "start time", "start_time", "begin_s", "begin",
                "begin time (s)", "begin time", "begin_time", "t_start", "on")
_OFFSET_NAMES = ("offset_s", "offset", "offsets", "end_s", "end", "end time", "end_time", "stop_s", "stop",
                 "end time (s)", "stop time", "t_end", "off")
_LABEL_NAMES = ("label", "labels", "annotation", "name", "call type", "type", "class")
_COMMA_DECIMAL = re.compile(r"^\s*[-+]?\d+,\d+\s*$")
_FIX = "expected two numeric columns onset_s, offset_s in seconds (see `usvpipe evaluate --help` for formats)"


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(path, "file not found", "check the path") from None
    except IsADirectoryError:
        raise InputFileError(path, "is a directory, expected an annotation table") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot read ({exc.strerror})") from None
    for enc in ("utf-8-sig", "utf-16") if raw[:2] not in (b"\xff\xfe", b"\xfe\xff") else ("utf-16",):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _to_float(text: str) -> float:
    s = text.strip()
    if _COMMA_DECIMAL.match(s):
        s = s.replace(",", ".")
    return float(s)


def _is_number(text: str) -> bool:
    try:
        _to_float(text)
        return True
    except ValueError:
        return False


def _sniff(lines: list[str]) -> str:
    first = lines[0]
    if "begin time" in first.lower() and "\t" in first:
        return "raven"
    fields = first.split("\t")
    if len(fields) >= 2 and _is_number(fields[0]) and _is_number(fields[1]):
        return "audacity"
    return "csv"


def _delimiter(line: str) -> str:
    if "\t" in line:
        return "\t"
    if ";" in line:
        return ";"
    return ","


def _find(header: list[str], names) -> int | None:
    norm = [h.strip().strip('"').lower() for h in header]
    for name in names:
        if name in norm:
            return norm.index(name)
    return None


def _numbered_lines(text: str):
    """(line number, line) for non-blank, non-comment lines."""
    for i, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        yield i, line


def _parse_value(path, lineno: int, text: str, what: str) -> float:
    try:
        v = _to_float(text)
    except ValueError:
        raise InputFileError(path, f"line {lineno}: {what} {text.strip()!r} is not a number", _FIX) from None
    if not math.isfinite(v):
        raise InputFileError(path, f"line {lineno}: {what} is {text.strip()!r}", "remove or fix the row")
    return v


def _fast_two_columns(path, items, delim):
    """Headerless numeric tables (the common export) parsed by pandas' C reader.

    Returns None when the table is not plainly numeric, so the line-by-line parser runs
    and reports the exact bad line.
    """
    if len(items) < 1000 or any('"' in line for _, line in items[:1000]):
        return None
    try:
        arr = pd.read_csv(io.StringIO("\n".join(line for _, line in items)), header=None, sep=delim,
                          usecols=[0, 1], dtype=float, engine="c").to_numpy()
    except (ValueError, pd.errors.ParserError):
        return None
    if len(arr) != len(items):
        return None
    bad = ~np.isfinite(arr).all(axis=1) | (arr[:, 0] < 0) | (arr[:, 1] < arr[:, 0])
    if bad.any():
        i = int(np.argmax(bad))
        no, line = items[i]
        _collect(path, [(no, next(csv.reader([line], delimiter=delim)))], 0, 1)  # raises with the line number
    return {"onset_s": arr[:, 0], "offset_s": arr[:, 1]}


def _parse_csv(path, items) -> dict:
    first_no, first = items[0]
    delim = _delimiter(first)
    if delim != ";" and all(_is_number(f) and "," not in f for f in first.split(delim)[:2]):
        fast = _fast_two_columns(path, items, delim)
        if fast is not None:
            return fast
    rows = [(no, next(csv.reader([line], delimiter=delim, quotechar='"'))) for no, line in items]
    header = None
    if len(rows[0][1]) < 2:
        raise InputFileError(path, f"line {first_no}: found 1 column (delimiter {delim!r})", _FIX)
    if not all(_is_number(f) for f in rows[0][1][:2]):
        header, rows = rows[0][1], rows[1:]
    i_on, i_off, i_label, i_rec = 0, 1, None, None
    extras = {}
    if header is not None:
        i_on, i_off = _find(header, _ONSET_NAMES), _find(header, _OFFSET_NAMES)
        if i_on is None or i_off is None:
            raise InputFileError(path, f"line {first_no}: header {delim.join(header)!r} has no onset/offset columns",
                                 "name them onset_s and offset_s")
        i_label = _find(header, _LABEL_NAMES)
        i_rec = _find(header, ("recording", "file", "filename", "begin file"))
        for col in ("low_freq_hz", "high_freq_hz"):
            j = _find(header, (col, col.replace("_hz", " (hz)").replace("_", " ")))
            if j is not None:
                extras[col] = j
    return _collect(path, rows, i_on, i_off, i_label, i_rec, extras)


def _collect(path, rows, i_on, i_off, i_label=None, i_rec=None, extras=None) -> dict:
    need = max(i_on, i_off) + 1
    out = {"onset_s": [], "offset_s": []}
    if i_label is not None:
        out["label"] = []
    if i_rec is not None:
        out["recording"] = []
    extras = extras or {}
    for col in extras:
        out[col] = []
    for no, fields in rows:
        if len(fields) < need:
            raise InputFileError(path, f"line {no}: expected at least {need} columns, found {len(fields)}", _FIX)
        on = _parse_value(path, no, fields[i_on], "onset")
        off = _parse_value(path, no, fields[i_off], "offset")
        if on < 0:
            raise InputFileError(path, f"line {no}: negative onset {on}", "times are seconds from the start of the recording")
        if off < on:
            raise InputFileError(path, f"line {no}: offset {off} s is before onset {on} s", "swap or remove the row")
        out["onset_s"].append(on)
        out["offset_s"].append(off)
        if i_label is not None:
            # restore_cell: the apostrophe write_segments put before a formula-like label goes again
            out["label"].append(restore_cell(fields[i_label].strip()) if i_label < len(fields) else "")
        if i_rec is not None:
            out["recording"].append(restore_cell(fields[i_rec].strip()) if i_rec < len(fields) else "")
        for col, j in extras.items():
            out[col].append(_parse_value(path, no, fields[j], col) if j < len(fields) and fields[j].strip() else np.nan)
    return out


def _parse_audacity(path, items) -> dict:
    rows = []
    for no, line in items:
        if line.startswith("\\"):
            continue  # spectral selection line of the previous label
        rows.append((no, line.rstrip("\r\n").split("\t")))
    has_label = any(len(f) >= 3 for _, f in rows)
    out = _collect(path, rows, 0, 1)
    labels = [f[2].strip() if len(f) >= 3 else "" for _, f in rows]
    if has_label and any(labels):
        out["label"] = labels
    return out


def _parse_raven(path, items) -> dict:
    header = items[0][1].rstrip("\r\n").split("\t")
    i_on, i_off = _find(header, ("begin time (s)",)), _find(header, ("end time (s)",))
    if i_on is None or i_off is None:
        raise InputFileError(path, f"line {items[0][0]}: Raven header lacks 'Begin Time (s)'/'End Time (s)'")
    rows = [(no, line.rstrip("\r\n").split("\t")) for no, line in items[1:]]
    i_sel, i_view = _find(header, ("selection",)), _find(header, ("view",))
    if i_sel is not None:
        # One selection is listed once per view; keep the spectrogram row (else the first).
        chosen = {}
        for no, f in rows:
            key = f[i_sel].strip() if i_sel < len(f) else str(no)
            view = f[i_view].strip().lower() if i_view is not None and i_view < len(f) else ""
            if key not in chosen or (view.startswith("spectrogram") and not chosen[key][2]):
                chosen[key] = (no, f, view.startswith("spectrogram"))
        rows = sorted(((no, f) for no, f, _ in chosen.values()), key=lambda r: r[0])
    extras = {}
    for col, name in (("low_freq_hz", "low freq (hz)"), ("high_freq_hz", "high freq (hz)")):
        j = _find(header, (name,))
        if j is not None:
            extras[col] = j
    i_label = _find(header, ("annotation", "label", "call type", "type"))
    return _collect(path, rows, i_on, i_off, i_label, None, extras)


def _crowsetta_audacity(path: Path, items) -> dict | None:
    """Audacity labels through crowsetta, or None where it does not read the file."""
    spectral = sum(1 for _, line in items if line.startswith("\\"))
    labels = len(items) - spectral
    try:
        import crowsetta

        if spectral == 0:
            seq = crowsetta.formats.by_name("aud-seq").from_file(path)
            on, off, lab = np.asarray(seq.start_times, float), np.asarray(seq.end_times, float), [str(x) for x in seq.labels]
        elif spectral == labels:
            boxes = crowsetta.formats.by_name("aud-bbox").from_file(path).to_bbox()
            on = np.asarray([b.onset for b in boxes], float)
            off = np.asarray([b.offset for b in boxes], float)
            lab = [str(b.label) for b in boxes]
        else:
            return None  # crowsetta 5 drops the labels without a spectral line
    except Exception:  # crowsetta raises pandera/pydantic/pandas errors for what it cannot read
        return None
    if len(on) != labels:
        return None
    out = {"onset_s": on, "offset_s": off}
    if any(lab):
        out["label"] = lab
    return out


def _crowsetta_raven(path: Path) -> dict | None:
    """A Raven selection table through crowsetta (one row per selection), or None."""
    try:
        import crowsetta

        df = crowsetta.formats.by_name("raven").from_file(path).df
    except Exception:
        return None
    if "Selection" in df.columns:
        view = df["View"].astype(str).str.lower().str.startswith("spectrogram") if "View" in df.columns else False
        df = df.assign(_spec=view).sort_values(["_spec"], ascending=False, kind="stable")
        df = df.drop_duplicates("Selection").sort_index()
    out = {"onset_s": df["begin_time_s"].to_numpy(float), "offset_s": df["end_time_s"].to_numpy(float)}
    if "annotation" in df.columns:
        out["label"] = ["" if pd.isna(x) else str(x).strip() for x in df["annotation"]]
    for col in ("low_freq_hz", "high_freq_hz"):
        if col in df.columns:
            out[col] = df[col].to_numpy(float)
    return out


def _valid(out: dict) -> bool:
    on, off = np.asarray(out["onset_s"], float), np.asarray(out["offset_s"], float)
    return bool(np.isfinite(on).all() and np.isfinite(off).all() and (on >= 0).all() and (off >= on).all())


def read_segments(path, *, fmt: str = "auto") -> pd.DataFrame:
    """Read an onset/offset table.

    Parameters
    ----------
    path : str or path-like
    fmt : {"auto", "csv", "audacity", "raven"}
        See the module docstring; ``"auto"`` sniffs the content.

    Returns
    -------
    pandas.DataFrame
        ``onset_s``, ``offset_s`` (float, seconds, file order) and, when present,
        ``label``, ``recording``, ``low_freq_hz``, ``high_freq_hz``. An empty file gives
        an empty table (a recording with no detections is valid).

    Raises
    ------
    InputFileError
        Missing/unreadable file or a bad row (message names the file and line).
    """
    check_choice("fmt", fmt, READ_FORMATS)
    path = Path(path)
    items = list(_numbered_lines(_read_text(path)))
    if not items:
        return pd.DataFrame({"onset_s": np.zeros(0), "offset_s": np.zeros(0)})
    kind = _sniff([line for _, line in items]) if fmt == "auto" else fmt
    out = None
    if kind == "audacity":
        out = _crowsetta_audacity(path, items)
    elif kind == "raven":
        out = _crowsetta_raven(path)
    if out is None or not _valid(out):
        # our parser: the formats crowsetta does not cover, and line-numbered errors
        parser = {"csv": _parse_csv, "audacity": _parse_audacity, "raven": _parse_raven}[kind]
        out = parser(path, items)
    frame = pd.DataFrame(out)
    frame["onset_s"] = frame["onset_s"].astype(float)
    frame["offset_s"] = frame["offset_s"].astype(float)
    return frame


def _as_frame(frame) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        if not {"onset_s", "offset_s"} <= set(frame.columns):
            raise ConfigError("segments table needs onset_s and offset_s columns")
        return frame
    arr = np.asarray(frame, dtype=float).reshape(-1, 2)
    return pd.DataFrame({"onset_s": arr[:, 0], "offset_s": arr[:, 1]})


def _fmt(x: float) -> str:
    return repr(float(x))


def write_segments(frame, path, *, fmt: str = "csv") -> Path:
    """Write an onset/offset table atomically.

    Parameters
    ----------
    frame : pandas.DataFrame or (n, 2) array
        ``onset_s``, ``offset_s`` and optionally ``label`` (``low_freq_hz``,
        ``high_freq_hz`` for Raven).
    path : str or path-like
    fmt : {"csv", "plain", "audacity", "raven"}
        ``csv``: all columns with a header, ``onset_s, offset_s`` first; ``plain``: the two
        times only, no header (amvoc style); ``audacity``: label track
        (``start<TAB>end<TAB>label``); ``raven``: selection table (one Spectrogram row
        per selection). Times are written with full float precision, so reading back
        gives identical values.

    Returns
    -------
    pathlib.Path
    """
    from ._io import atomic_path

    check_choice("fmt", fmt, WRITE_FORMATS)
    df = _as_frame(frame)
    on, off = df["onset_s"].to_numpy(float), df["offset_s"].to_numpy(float)
    labels = df["label"].astype(str).tolist() if "label" in df.columns else [""] * len(df)
    buf = io.StringIO()
    if fmt == "csv":
        cols = ["onset_s", "offset_s"] + [c for c in df.columns if c not in ("onset_s", "offset_s")]
        # text cells that Excel would run as formulas get an apostrophe (usvpipe._csv)
        neutralise_frame(df[cols]).to_csv(buf, index=False, float_format="%.17g", lineterminator="\n")
    elif fmt == "plain":
        buf.writelines(f"{_fmt(a)},{_fmt(b)}\n" for a, b in zip(on, off))
    elif fmt == "audacity":
        buf.writelines(f"{_fmt(a)}\t{_fmt(b)}\t{lab}\n" for a, b, lab in zip(on, off, labels))
    else:
        freq = {"low_freq_hz", "high_freq_hz"} <= set(df.columns)
        head = ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)"]
        if freq:
            head += ["Low Freq (Hz)", "High Freq (Hz)"]
        head.append("Annotation")
        buf.write("\t".join(head) + "\n")
        for i in range(len(df)):
            row = [str(i + 1), "Spectrogram 1", "1", _fmt(on[i]), _fmt(off[i])]
            if freq:
                row += [_fmt(df["low_freq_hz"].iat[i]), _fmt(df["high_freq_hz"].iat[i])]
            row.append(labels[i])
            buf.write("\t".join(row) + "\n")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    return path


# --- review.csv: the explorer's verdicts on detections -----------------------------------

#: The verdicts of the explorer's review mode: a true call, a false detection, a true call
#: with another label (the ``label`` column holds it).
REVIEW_VALUES = ("call", "noise", "relabel")
REVIEW_COLUMNS = ("id", "recording", "onset_s", "offset_s", "review", "label")
_REVIEW_NEEDED = ("recording", "onset_s", "offset_s", "review")
_REVIEW_FIX_COLUMNS = "export it again from the explorer's review panel (header id,recording,onset_s,offset_s,review,label)"


def is_review_table(path) -> bool:
    """True when ``path`` is a CSV whose header has the review columns (``recording``, ``review``...)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    names = {h.strip() for h in header}
    return set(_REVIEW_NEEDED) <= names


def read_review(path) -> pd.DataFrame:
    """Read and validate a ``review.csv`` exported by the explorer (``usvpipe umap`` HTML).

    Returns a table with columns :data:`REVIEW_COLUMNS` plus ``line`` (the line in the file,
    1 = header) in file order. ``review`` is lower-cased; ``label`` is ``""`` except for
    ``relabel`` rows, which must give one. Every problem raises
    :class:`~usvpipe.errors.InputFileError` naming the file, the row and the fix: a missing
    column, an unknown review value, a time that is not a number, an offset before its onset,
    a relabel without a label.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "review file not found", "export review.csv from the explorer's review panel")
    try:
        table = read_csv(path, all_text=True, skipinitialspace=True)
    except Exception as exc:  # pandas raises several types for malformed CSVs
        raise InputFileError(path, f"unreadable review CSV ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
                             _REVIEW_FIX_COLUMNS) from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in _REVIEW_NEEDED if c not in table.columns]
    if missing:
        raise InputFileError(path, f"review CSV lacks column(s) {', '.join(missing)} (has {', '.join(table.columns) or 'none'})",
                             _REVIEW_FIX_COLUMNS)
    n = len(table)
    out = pd.DataFrame({
        "id": table["id"].str.strip() if "id" in table.columns else [""] * n,
        "recording": table["recording"].str.strip(),
        "review": table["review"].str.strip().str.lower(),
        "label": table["label"].str.strip() if "label" in table.columns else [""] * n,
        "line": np.arange(2, n + 2, dtype=np.int64),
    })
    for i, row in enumerate(out.itertuples(index=False)):
        where = f"row {i + 1} (line {row.line})"
        if not row.recording:
            raise InputFileError(path, f"{where}: empty recording", "give the recording each reviewed detection came from")
        if row.review not in REVIEW_VALUES:
            raise InputFileError(path, f"{where}: unknown review {table['review'].iloc[i]!r}",
                                 f"use one of {', '.join(REVIEW_VALUES)}")
        if row.review == "relabel" and not row.label:
            raise InputFileError(path, f"{where}: relabel without a label", "put the new label in the label column")
    on = np.full(n, np.nan)
    off = np.full(n, np.nan)
    for name, dest in (("onset_s", on), ("offset_s", off)):
        for i, text in enumerate(table[name].tolist()):
            try:
                dest[i] = float(str(text).strip())
            except ValueError:
                dest[i] = np.nan
            if not math.isfinite(dest[i]) or dest[i] < 0:
                raise InputFileError(path, f"row {i + 1} (line {i + 2}): {name} {text!r} is not a time in seconds",
                                     "export the review from an explorer whose table has onset_s and offset_s (the "
                                     "latents.csv of `usvpipe encode`), or write the times in seconds")
    bad = np.flatnonzero(off <= on)
    if bad.size:
        i = int(bad[0])
        raise InputFileError(path, f"row {i + 1} (line {i + 2}): offset_s {off[i]:g} is not after onset_s {on[i]:g}",
                             "fix that row's times (seconds from the start of the recording)")
    out.insert(2, "onset_s", on)
    out.insert(3, "offset_s", off)
    # call and noise rows carry the verdict itself as their label in the explorer's export
    out.loc[out["review"] != "relabel", "label"] = ""
    return out[[*REVIEW_COLUMNS, "line"]]
