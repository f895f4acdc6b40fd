"""One CSV reader and one cell rule for every CSV usvpipe reads or writes.

Two ways a CSV went silently wrong, each fixed here once:

- **Names that look like gaps.** pandas reads ``NA``, ``None``, ``null``, ``n/a`` (and a dozen
  more) as missing values by default, so an animal or group of that name lost its calls.
  :func:`read_csv` keeps every non-empty cell as written (``keep_default_na=False``); only an
  empty cell is missing, and in a text column it reads as ``""``.
- **Formula injection.** Analysts open our tables in Excel; a cell that starts with ``=``,
  ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula there (OWASP, "CSV
  injection"). :func:`neutralise_frame` prefixes such *text* cells with an apostrophe (Excel
  shows the text and hides the apostrophe); numbers such as ``-3.2`` are left as numbers.
  So that a name survives the round trip through our own files, an apostrophe is also added
  to a cell that already starts with apostrophes followed by one of those characters, and
  :func:`read_csv` removes exactly one: writing then reading gives back every string.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

# OWASP's trigger characters, after any apostrophes already there (see the module docstring)
_FORMULA_START = re.compile(r"^'*[=+\-@\t\r]")
_PROTECTED = re.compile(r"^'+[=+\-@\t\r]")
# a plain number is data in every spreadsheet, never a formula
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def neutralise_cell(value):
    """``value`` made safe to open in a spreadsheet (only text that a spreadsheet would run changes)."""
    if isinstance(value, str) and _FORMULA_START.match(value) and not _NUMBER.match(value):
        return "'" + value
    return value


def restore_cell(value):
    """The inverse of :func:`neutralise_cell` on what it wrote."""
    if isinstance(value, str) and _PROTECTED.match(value) and not _NUMBER.match(value[1:]):
        return value[1:]
    return value


def _is_text(values) -> bool:
    from pandas.api.types import is_object_dtype, is_string_dtype

    return is_object_dtype(values.dtype) or is_string_dtype(values.dtype)


def _text_columns(frame) -> list:
    return [c for c in frame.columns if _is_text(frame[c])]


def _mask(values, pattern: re.Pattern, strip: int):
    """Text cells matching ``pattern`` that are not a number once ``strip`` characters are dropped (vectorised)."""
    text = values.astype(object).where(values.map(type) == str, "") if values.dtype == object else values.astype(str)
    text = text.str
    hit = text.match(pattern.pattern).fillna(False).astype(bool)
    if hit.any():
        hit &= ~text.slice(strip).str.fullmatch(_NUMBER.pattern).fillna(False).astype(bool)
    return hit


def _changed_column(values, pattern, strip, change):
    hit = _mask(values, pattern, strip)
    if not hit.any():
        return None
    out = values.copy()
    rows = hit.to_numpy()
    out[rows] = [change(v) for v in values[rows]]
    return out


def neutralise_frame(frame):
    """A copy of ``frame`` whose text cells (and text index and header) are safe in a spreadsheet.

    Returns ``frame`` itself when nothing needs a change (the common case costs one vectorised scan).
    """
    import pandas as pd

    changed = {c: _changed_column(frame[c], _FORMULA_START, 0, lambda v: "'" + v) for c in _text_columns(frame)}
    changed = {c: s for c, s in changed.items() if s is not None}
    header = [neutralise_cell(str(c)) if isinstance(c, str) else c for c in frame.columns]
    index_text = _is_text(frame.index)
    if not changed and header == list(frame.columns) and not index_text:
        return frame
    out = frame.copy()
    for c, s in changed.items():
        out[c] = s
    out.columns = header
    if index_text:
        out.index = pd.Index([neutralise_cell(v) for v in frame.index], name=frame.index.name)
    return out


def _restore_frame(frame):
    for c in _text_columns(frame):
        restored = _changed_column(frame[c], _PROTECTED, 1, lambda v: v[1:])
        if restored is not None:
            frame[c] = restored
    frame.columns = [restore_cell(c) if isinstance(c, str) else c for c in frame.columns]
    if _is_text(frame.index):
        frame.index = frame.index.map(restore_cell)
    return frame


ENCODINGS = ("utf-8-sig", "cp1252")  # Excel's "CSV UTF-8", then its plain "CSV" on Windows


def read_csv(path, *, text_columns=(), all_text: bool = False, ours: bool = True, **kwargs):
    """Read a CSV the one way usvpipe reads CSVs (see the module docstring).

    ``text_columns`` (those present) are read as strings, a missing value as ``""``;
    ``all_text`` reads every column so. A file that is not UTF-8 is read as Windows-1252
    (what Excel on Windows saves as plain "CSV"), with a logged note. Other keyword
    arguments go to :func:`pandas.read_csv`; its exceptions propagate. ``ours``: the file was
    written by usvpipe, so the apostrophe :func:`neutralise_cell` added is removed; a user's
    own table (``ours=False``, e.g. the metadata CSV) is taken as written.
    """
    import pandas as pd

    kwargs.setdefault("keep_default_na", False)
    kwargs.setdefault("na_values", [""])
    if all_text:
        kwargs["dtype"] = str
    elif text_columns:
        kwargs["dtype"] = {c: str for c in text_columns}
    encodings = [kwargs.pop("encoding")] if "encoding" in kwargs else list(ENCODINGS)
    for i, encoding in enumerate(encodings):
        try:
            frame = pd.read_csv(path, encoding=encoding, **kwargs)
            break
        except UnicodeDecodeError:
            if i == len(encodings) - 1:
                raise
            log.warning("%s: not UTF-8; read as Windows-1252 (Excel's plain CSV) (fix: save it as \"CSV UTF-8\" "
                        "to be sure of names with accents)", path)
    texts = list(frame.columns) if all_text else [c for c in text_columns if c in frame.columns]
    for c in texts:
        frame[c] = frame[c].fillna("")
    return _restore_frame(frame) if ours else frame
