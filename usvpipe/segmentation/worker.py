"""One recording, start to finish, in a worker process: segments, images, its store shard.

:func:`run_task` never raises: a failure is recorded (``OUT_DIR/errors/``) and returned as
a :class:`TaskResult`, so one bad file never stops a batch.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Literal

from .._io import NoSpaceError, no_space_error
from ..errors import UsvpipeError
from .detection import SCORE_COLUMNS, segment_file_with_trace
from .images import PADDED_COLUMN, images_past_the_edges, iter_syllable_images
from .inputs import Recording
from .params import SegmentParams, SyllableParams
from .spectrogram import SpectrogramParams


@dataclass(frozen=True)
class Task:
    """Everything a worker needs for one recording (picklable)."""

    rec: Recording
    out_dir: str
    spectrogram: SpectrogramParams
    segmentation: SegmentParams
    syllables: SyllableParams
    channel: object
    digest: str
    params: dict
    review: tuple = ()  # this recording's exclusion-list rows (usvpipe.segmentation.exclusions)


@dataclass(frozen=True)
class TaskResult:
    """What a worker reports for one recording.

    ``n_syllables`` and ``audio_s`` are 0 for a failure; ``error`` is the one-line reason
    (path, what went wrong, fix) for a failure and empty otherwise.
    """

    status: Literal["done", "failed"]
    recording: str
    path: str
    n_syllables: int = 0
    audio_s: float = 0.0
    time_s: float = 0.0
    error: str = ""
    n_excluded: int = 0  # detections dropped as noise by an exclusion list
    n_padded: int = 0  # syllables whose image runs past the recording's edges (silence shown)
    n_clipped: int = 0  # samples at full scale (see FileSource.n_clipped)
    n_samples: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "done"


def run_task(task: Task) -> TaskResult:
    """Process one recording; never raises (failures are returned and recorded)."""
    from .. import store
    from .._io import source_identity

    rec = task.rec
    t0 = time.perf_counter()
    try:
        fp = source_identity(rec.path)
        # flat memory: the trace is not kept (only the noise floors), images go to the shard
        # 32 at a time as uint8
        segments, trace, source = segment_file_with_trace(rec.path, task.segmentation, task.spectrogram, channel=task.channel,
                                                          keep_trace=False)
        labels = review = None
        if task.review:  # the shard then gets a label column and the counts
            from .exclusions import apply_review

            segments, labels, review = apply_review(segments, task.review)
        images = iter_syllable_images(source, segments, trace, task.spectrogram, task.syllables)
        duration = source.n_samples / source.info.sample_rate_hz
        padded = images_past_the_edges(segments["onset_s"], segments["offset_s"], duration, task.syllables)
        columns = {c: segments[c].to_numpy() for c in SCORE_COLUMNS}
        columns[PADDED_COLUMN] = padded.astype("float32")  # kept in syllables.csv, so info and the report see it
        store.write_shard(
            task.out_dir, rec.recording, images, segments["onset_s"].to_numpy(), segments["offset_s"].to_numpy(),
            image_shape=task.syllables.shape,
            animal=rec.animal, group=rec.group, columns=columns,
            metadata=dict(rec.extra),
            source_fingerprint=fp, params=task.params, params_digest=task.digest, labels=labels, review=review,
        )
        store.clear_error(task.out_dir, rec.recording)
        return TaskResult("done", rec.recording, rec.path, len(segments), duration, time.perf_counter() - t0,
                          n_excluded=review["n_excluded"] if review else 0, n_padded=int(padded.sum()),
                          n_clipped=int(getattr(source, "n_clipped", 0)), n_samples=int(source.n_samples))
    except NoSpaceError:
        raise  # the output's disk is full: not this recording's fault, and the batch stops
    except UsvpipeError as exc:
        reason = str(exc)
    except MemoryError:
        reason = f"{rec.path}: out of memory while processing (fix: run with fewer --jobs)"
    except OSError as exc:
        full = no_space_error(exc, store.shard_path(task.out_dir, rec.recording))
        if full is not None:
            raise full from None
        if exc.filename is not None and os.path.abspath(os.fsdecode(exc.filename)) == os.path.abspath(rec.path):
            # e.g. a path in a .txt listing that does not exist, or a file without read permission
            what = "file not found" if isinstance(exc, FileNotFoundError) else f"cannot read the file ({exc.strerror})"
            reason = f"{rec.path}: {what} (fix: check the path in the input listing, and that the file is readable)"
        else:
            reason = f"{rec.path}: unexpected {type(exc).__name__}: {exc} (fix: report this with the file)"
    except Exception as exc:  # keep the batch going; report the unexpected error in one line
        reason = f"{rec.path}: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (fix: report this with the file)"
    record_failure(task, reason)
    return TaskResult("failed", rec.recording, rec.path, time_s=time.perf_counter() - t0, error=reason)


def record_failure(task: Task, reason: str) -> None:
    """Write the recording's error file and remove any stale shard of it."""
    from .. import store

    try:
        store.write_error(task.out_dir, task.rec.recording, task.rec.path, reason)
        # A shard from an earlier run was made from another version of the file or other
        # parameters (else this run would have skipped it): it must not be merged as if current.
        store.shard_path(task.out_dir, task.rec.recording).unlink(missing_ok=True)
    except OSError:
        pass


def finished_before_the_pool_broke(task: Task) -> TaskResult | None:
    """A task whose worker wrote its shard before another worker died counts as done.

    Its result was lost with the pool, but the shard is complete (written atomically) and
    current, so reporting it as failed would be wrong and a re-run would skip it anyway.
    """
    from .. import store
    from .._io import file_fingerprint

    path = store.shard_path(task.out_dir, task.rec.recording)
    try:
        if not store.shard_is_current(path, file_fingerprint(task.rec.path), task.digest):
            return None
        n = store.read_shard_info(path).n_syllables
    except (OSError, UsvpipeError):
        return None
    # The audio duration travelled with the lost result; the shard does not record it.
    return TaskResult("done", task.rec.recording, task.rec.path, n_syllables=n)
