"""Exclusion lists: the explorer's ``review.csv`` applied to a new segmentation run.

``usvpipe segment --exclude review.csv`` (``segment_recordings(exclude=...)``, ``[run]
exclude`` in ``usvpipe.toml``) reads each review file once, checks it against the batch, and
hands every recording only its own rows. A worker then matches each detection with the
review rows of its recording:

Matching rule
    A detection ``d`` and a reviewed interval ``r`` of the same recording match when their
    intersection over union ``|d ∩ r| / |d ∪ r|`` is at least :data:`MIN_IOU` (0.5). Each
    detection takes the verdict of the row it overlaps most (on a tie, the later row: a later
    file or a later line overrides an earlier one). An IoU rule rather than equal times, so
    an exclusion list survives small parameter changes: a boundary that moves by a few
    milliseconds on a 40-ms call keeps the IoU near 0.9, while a neighbouring call (which
    does not overlap) or one half of a split detection (IoU <= 0.5 for an even split) does
    not inherit the verdict.

Verdicts
    ``noise``: the detection is dropped from ``segments.csv`` and the syllable store;
    ``relabel``: kept, and its ``label`` column holds the new label; ``call``: kept as it is.
    Detections no row matches are kept with an empty label.

What is recorded
    Every recording's shard (and ``manifest.json``, under ``recordings.<id>.review``) holds
    its counts: detections found, excluded as noise, relabelled, confirmed as calls, and
    review rows that matched no detection (a sign that the parameters moved the boundaries
    too far). A recording's review rows are part of its up-to-date digest, so editing an
    exclusion list redoes exactly the recordings whose rows changed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import InputFileError

#: Smallest intersection over union at which a detection takes a review row's verdict.
MIN_IOU = 0.5

# (onset_s, offset_s, review, label), times rounded to 1 µs (what the tables hold)
ReviewRow = tuple


@dataclass(frozen=True)
class ExclusionList:
    """The review rows of one or more ``review.csv`` files, by recording."""

    files: tuple[str, ...] = ()
    rows: dict = field(default_factory=dict)  # recording -> tuple of ReviewRow, in file order

    def for_recording(self, recording: str) -> tuple:
        return tuple(self.rows.get(recording, ()))

    @property
    def n_rows(self) -> int:
        return sum(len(v) for v in self.rows.values())


def read_exclusions(paths: Iterable | str | os.PathLike | None, recordings: Sequence[str]) -> ExclusionList:
    """Read and check review files against the batch's recording identifiers.

    A row whose recording is not in the batch is an error (naming the file, the row and the
    fix): an exclusion list made from other inputs, or from the same ones under another
    input root, would otherwise silently exclude nothing.
    """
    from ..annotations import read_review

    if paths is None:
        return ExclusionList((), {})
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    known = set(recordings)
    rows: dict[str, list] = {}
    files = []
    for p in items:
        p = Path(p)
        table = read_review(p)
        for i, r in enumerate(table.itertuples(index=False)):
            if r.recording not in known:
                example = sorted(known)[0] if known else "(none)"
                raise InputFileError(p, f"row {i + 1} (line {r.line}): recording {r.recording!r} is not among this run's "
                                     f"{len(known)} recording(s) (e.g. {example!r})",
                                     "segment the inputs the review was made from (same input folder), or delete the "
                                     "rows of other recordings")
            rows.setdefault(r.recording, []).append(
                (round(float(r.onset_s), 6), round(float(r.offset_s), 6), str(r.review), str(r.label)))
        files.append(str(p))
    return ExclusionList(tuple(files), {k: tuple(v) for k, v in rows.items()})


def match_reviews(onset_s: np.ndarray, offset_s: np.ndarray, rows: Sequence[ReviewRow], min_iou: float = MIN_IOU):
    """For each detection, the index of the review row it matches (``-1``: none), and the IoU matrix's best values.

    Returns ``(index, iou)``: arrays of one value per detection.
    """
    on = np.asarray(onset_s, np.float64).reshape(-1, 1)
    off = np.asarray(offset_s, np.float64).reshape(-1, 1)
    if not len(rows) or on.size == 0:
        return np.full(on.shape[0], -1, np.int64), np.zeros(on.shape[0])
    r_on = np.array([r[0] for r in rows], np.float64).reshape(1, -1)
    r_off = np.array([r[1] for r in rows], np.float64).reshape(1, -1)
    inter = np.clip(np.minimum(off, r_off) - np.maximum(on, r_on), 0.0, None)
    union = np.maximum(off, r_off) - np.minimum(on, r_on)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    # the later row wins a tie: argmax over the reversed columns
    last = iou.shape[1] - 1 - np.argmax(iou[:, ::-1], axis=1)
    best = iou[np.arange(iou.shape[0]), last]
    return np.where(best >= min_iou, last, -1).astype(np.int64), best


def apply_review(segments, rows: Sequence[ReviewRow], min_iou: float = MIN_IOU):
    """Apply one recording's review rows to its detections.

    Returns ``(kept, labels, counts)``: the segments table without the detections matched to a
    ``noise`` row (index reset), the ``label`` of each kept detection (``""`` unless relabelled)
    and the counts recorded with the shard.
    """
    n = len(segments)
    idx, _ = match_reviews(segments["onset_s"].to_numpy(), segments["offset_s"].to_numpy(), rows, min_iou)
    verdict = np.array([rows[i][2] if i >= 0 else "" for i in idx], dtype=object)
    label = np.array([rows[i][3] if i >= 0 and rows[i][2] == "relabel" else "" for i in idx], dtype=object)
    keep = verdict != "noise"
    matched_rows = set(int(i) for i in idx if i >= 0)
    counts = {
        "n_detected": int(n),
        "n_excluded": int((~keep).sum()),
        "n_relabelled": int((verdict == "relabel").sum()),
        "n_confirmed": int((verdict == "call").sum()),
        "n_review_rows": int(len(rows)),
        "n_rows_unmatched": int(len(rows) - len(matched_rows)),
        "min_iou": float(min_iou),
    }
    kept = segments.loc[keep].reset_index(drop=True)
    return kept, [str(x) for x in label[keep]], counts


def describe_review_totals(totals: dict) -> str:
    """One line of a store's exclusion-list counts (``SegmentRun.review_totals``), for the CLI and ``usvpipe run``."""
    t = totals
    return (f"{t['n_excluded']} detection(s) excluded as noise, {t['n_relabelled']} relabelled, "
            f"{t['n_confirmed']} confirmed as calls; {t['n_rows_unmatched']} of {t['n_review_rows']} review row(s) "
            "matched no detection")
