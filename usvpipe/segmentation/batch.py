"""Batch segmentation: WAV folders -> ``segments.csv`` + syllable store (resumable, shardable).

:func:`segment_recordings` is what ``usvpipe segment IN_DIR OUT_DIR`` runs. Each
recording is processed whole by one worker (:mod:`usvpipe.segmentation.worker`) and
written as its own store shard (atomically), so

- a killed job leaves complete shards only, and a re-run skips every recording whose
  shard was made from the same file (size + mtime) with the same parameters;
- SLURM array tasks (``shard="i/N"``) never write the same file; whichever task finds
  every recording complete or failed merges the store and writes ``segments.csv``
  (idempotent, so several tasks doing it is harmless);
- a bad file is recorded (``OUT_DIR/errors/`` and ``OUT_DIR/errors.csv``: path, recording and a
  one-line reason) and the rest of the batch continues;
- an exclusion list (``exclude=``: the explorer's ``review.csv``) drops detections reviewed as
  noise and labels relabelled ones (:mod:`usvpipe.segmentation.exclusions`); a recording's rows
  are part of its up-to-date digest, so changing the list redoes the recordings it touches.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..config import params_digest, params_to_dict
from .._lock import WHOLE, acquire_writer_lock
from .._io import NoSpaceError
from .._process import die_with_parent
from ..errors import ConfigError, UsvpipeError
from . import checks, worker
from .detection import COUNT_COLUMNS, SCORE_COLUMNS
from .exclusions import read_exclusions
from .inputs import Recording, plan_recordings
from .params import SegmentParams, SyllableParams
from .spectrogram import SpectrogramParams

log = logging.getLogger(__name__)

SEGMENTS_NAME = "segments.csv"
ERRORS_NAME = "errors.csv"


@dataclass
class SegmentRun:
    """What :func:`segment_recordings` did.

    Attributes
    ----------
    out_dir : Path
    n_recordings : int
        Recordings in this shard.
    n_done, n_skipped, n_failed : int
        Processed now, already complete (skipped), failed.
    n_syllables : int
        Syllables found in the recordings processed now.
    audio_s, elapsed_s : float
        Audio duration processed now and wall-clock time.
    failures : list of (path, reason)
    merged : bool
        True if every recording of the full list is complete or failed, so the store
        was merged and ``segments.csv`` written.
    segments_path, errors_path : Path or None
    n_padded, padded_recordings : int, list of (str, int, int)
        Syllables found now whose image runs past their recording's start or end (shown as
        silence, see :func:`~usvpipe.segmentation.images.images_past_the_edges`), and per
        recording they are in ``(recording, n_padded, n_syllables)``; :meth:`padded_warning`
        says it in one line.
    """

    out_dir: Path
    n_recordings: int = 0
    n_done: int = 0
    n_skipped: int = 0
    n_failed: int = 0
    n_syllables: int = 0
    audio_s: float = 0.0
    elapsed_s: float = 0.0
    failures: list = field(default_factory=list)
    merged: bool = False
    segments_path: Path | None = None
    errors_path: Path | None = None
    n_syllables_total: int | None = None
    pruned: list = field(default_factory=list)
    n_excluded: int = 0
    n_padded: int = 0
    padded_recordings: list = field(default_factory=list)
    review_files: tuple = ()
    review_totals: dict | None = None
    clipped: list = field(default_factory=list)  # (recording, samples at full scale, samples) processed now
    notes: list = field(default_factory=list)  # warnings on the inputs (usvpipe.segmentation.checks), also logged

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio processed per second of wall-clock time."""
        return self.audio_s / self.elapsed_s if self.elapsed_s > 0 else float("nan")


    def padded_warning(self) -> str:
        """One line on syllables whose images run past their recording ("" when there are none)."""
        from .images import describe_padded

        return describe_padded(self.padded_recordings, self.n_syllables)

    def add(self, result: worker.TaskResult) -> None:
        """Count one recording's result."""
        if result.ok:
            self.n_done += 1
            self.n_excluded += result.n_excluded
            if result.n_padded:
                self.n_padded += result.n_padded
                self.padded_recordings.append((result.recording, result.n_padded, result.n_syllables))
            self.n_syllables += result.n_syllables
            self.audio_s += result.audio_s
            self.clipped.append((result.recording, result.n_clipped, result.n_samples))
        else:
            self.n_failed += 1
            self.failures.append((result.path, result.error))

def run_params(spectrogram: SpectrogramParams, segmentation: SegmentParams, syllables: SyllableParams, channel) -> dict:
    return {
        "spectrogram": params_to_dict(spectrogram),
        "segment": params_to_dict(segmentation),
        "syllables": params_to_dict(syllables),
        "channel": channel,
    }


def _write_errors_csv(out_dir: Path, problems: Sequence[tuple[str, str, str]] = (), inputs=None) -> Path:
    import pandas as pd

    from .._io import read_json, write_csv_atomic
    from ..store import ERROR_DIR

    rows = {}
    err_dir = out_dir / ERROR_DIR
    for p in sorted(err_dir.glob("*.json")) if err_dir.is_dir() else []:
        try:
            e = read_json(p)
            if inputs is not None and e["recording"] not in inputs:
                continue  # a recording no longer among the inputs
            rows[e["recording"]] = {"path": e.get("path", ""), "recording": e["recording"], "reason": e.get("error", "")}
        except (OSError, ValueError, KeyError):
            continue
    for path, rid, reason in problems:
        rows[rid] = {"path": path, "recording": rid, "reason": reason}
    table = pd.DataFrame(sorted(rows.values(), key=lambda r: r["recording"]), columns=["path", "recording", "reason"])
    return write_csv_atomic(out_dir / ERRORS_NAME, table)


def segment_recordings(
    inputs,
    out_dir,
    *,
    spectrogram: SpectrogramParams = SpectrogramParams(),
    segmentation: SegmentParams = SegmentParams(),
    syllables: SyllableParams = SyllableParams(),
    metadata=None,
    jobs: int = 1,
    shard=None,
    progress: bool = True,
    channel=None,
    exclude=None,
) -> SegmentRun:
    """Segment a batch of recordings into ``OUT_DIR`` (segments.csv + syllable store).

    Parameters
    ----------
    inputs : path or list of paths
        A folder (searched recursively for ``*.wav``), WAV files, a ``.txt`` file
        listing paths (one per line, relative to the listing), or a list of these.
    out_dir : path
        Output folder: the syllable store (``shards/``, ``syllables.csv``,
        ``manifest.json``), ``segments.csv`` and ``errors.csv``.
    spectrogram, segmentation, syllables : parameter dataclasses
    metadata : path, optional
        CSV ``path,animal,group,...`` (paths relative to the CSV or absolute). Default:
        the layout ``group/animal/*.wav`` under the input folder (see
        :func:`layout_metadata` for shallower layouts). With a CSV, WAVs it does not
        list fail with a clear reason.
    jobs : int
        Worker processes; each handles whole recordings (default 1).
    shard : str, Shard or None
        ``"i/N"``: process only this task's share of the recordings (deterministic);
        default from SLURM's array environment, else everything.
    progress : bool
        Show a progress bar (only on a terminal).
    channel : int, "mix" or None
        Channel of multichannel files.
    exclude : path or list of paths, optional
        ``review.csv`` files exported by the explorer: detections matching (IoU >= 0.5) a row
        reviewed ``noise`` in the same recording are dropped, ``relabel`` rows set the
        ``label`` column (see :mod:`usvpipe.segmentation.exclusions`). A row naming a
        recording that is not among the inputs is an error.

    Returns
    -------
    SegmentRun
    """
    from .._io import ensure_output_dir
    from ..hpc import Shard, parse_shard

    t0 = time.perf_counter()
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    shard = shard if isinstance(shard, Shard) else parse_shard(shard)
    syllables.band(spectrogram)  # validate the image band early
    out_dir = ensure_output_dir(out_dir)
    recs, problems = plan_recordings(inputs, metadata)
    exclusions = read_exclusions(exclude, [r.recording for r in recs]) if exclude else None
    with acquire_writer_lock(out_dir, WHOLE if shard.is_whole else f"shard-{shard.index}-of-{shard.count}"):
        return _segment_locked(recs, problems, shard, Path(out_dir), t0, spectrogram=spectrogram,
                               segmentation=segmentation, syllables=syllables, jobs=jobs, progress=progress,
                               channel=channel, exclusions=exclusions)


def _segment_locked(recs, problems, shard, out_dir: Path, t0: float, *, spectrogram, segmentation, syllables, jobs,
                    progress, channel, exclusions=None) -> SegmentRun:
    """The body of :func:`segment_recordings`, run while holding the store's writer lock."""
    from .. import store
    from ..hpc import select_shard

    _refuse_other_sources(recs, out_dir)
    # the store is a function of these inputs: shards of other recordings are left out of
    # every merge from now on, and removed once every input is complete
    store.write_inputs(out_dir, [r.recording for r in recs])
    mine = select_shard(recs, shard, key=lambda r: r.recording)
    params = run_params(spectrogram, segmentation, syllables, channel)
    run = SegmentRun(out_dir=Path(out_dir), n_recordings=len(mine),
                     review_files=exclusions.files if exclusions is not None else ())
    tasks = []
    for rec in mine:
        review = exclusions.for_recording(rec.recording) if exclusions is not None else ()
        task = worker.Task(rec, str(out_dir), spectrogram, segmentation, syllables, channel,
                           params_digest(params, _labels(rec, review)), params, review=review)
        status = _plan_status(task, problems)
        if status == "current":
            run.n_skipped += 1
        elif status:  # a metadata problem: the recording fails without being read
            worker.record_failure(task, status)
            run.add(worker.TaskResult("failed", rec.recording, rec.path, error=status))
        else:
            tasks.append(task)
    _note(run, checks.sample_rate_note(_sample_rates(recs)))
    for result in _execute(tasks, jobs, progress):
        run.add(result)
    _note(run, checks.clipped_note(run.clipped))
    run.failures.sort()
    run.errors_path = _write_errors_csv(Path(out_dir), problems, {r.recording for r in recs})
    _finish(run, recs, params)
    run.elapsed_s = time.perf_counter() - t0
    return run


def _note(run: SegmentRun, line: str) -> None:
    if line:
        run.notes.append(line)
        log.warning("%s", line)


def _sample_rates(recs: Sequence[Recording]) -> dict:
    """recording -> sample rate (Hz) from each readable header (an unreadable file fails on its own)."""
    import soundfile as sf

    from ..audio import soundfile_source

    rates = {}
    for rec in recs:
        try:
            rates[rec.recording] = int(sf.info(soundfile_source(rec.path)).samplerate)
        except (RuntimeError, OSError, TypeError, sf.SoundFileError):
            continue
    return rates


def _refuse_other_sources(recs: Sequence[Recording], out_dir: Path) -> None:
    """Stop before anything is written when a recording id of the store came from another file.

    ``segment day1 OUT`` then ``segment day2 OUT`` with the same relative names replaced day 1's
    syllables without a word; now the second command names both files and changes nothing.
    """
    clashes = [(rec, old) for rec in recs if (old := _source_conflict(out_dir, rec.recording, rec.path))]
    if clashes:
        rec, old = clashes[0]
        more = f" ({len(clashes) - 1} more recording(s) alike)" if len(clashes) > 1 else ""
        raise UsvpipeError(rec.path, f"recording {rec.recording} is already in {out_dir} from another file, "
                           f"{old}{more}; segmenting would replace its syllables",
                           "segment this folder into another output folder, or pass both folders in one command "
                           "(their recordings then keep apart names); to replace the old recordings, delete "
                           f"{out_dir} first")


def _source_conflict(store_dir, recording: str, source) -> str:
    """The file a recording id of the store came from, when ``source`` is another recording ("" else).

    Another path with the same content (a moved or copied folder) is the same recording; the same
    path with new content is an edited recording (re-segmented, as before). Another path with
    other content is another recording under the same id: replacing it would lose its syllables.
    """
    from .. import store
    from .._io import content_digest

    path = store.shard_path(store_dir, recording)
    if not path.exists():
        return ""
    try:
        info = store.read_shard_info(path)
    except UsvpipeError:
        return ""
    if not info.source_path or info.source_path == os.path.realpath(source):
        return ""
    try:
        if os.path.getsize(source) == info.source_size and content_digest(source) == info.source_digest:
            return ""
    except OSError:
        return ""  # an unreadable input fails on its own
    return info.source_path


def _labels(rec: Recording, review=()) -> dict:
    """What a shard records about its recording besides the audio (part of its up-to-date digest)."""
    labels = {"animal": rec.animal, "group": rec.group}
    if rec.extra:  # only then, so shards of stores without extra columns stay current
        labels["extra"] = [list(kv) for kv in rec.extra]
    if review:
        # a recording's own exclusion-list rows (not the list's file name) decide: an edit redoes
        # only the recordings whose rows changed, and recordings without rows stay current
        labels["review"] = [list(r) for r in review]
    return labels


def _plan_status(task: worker.Task, problems: Sequence[tuple[str, str, str]]) -> str:
    """``""`` (to process), ``"current"`` (its shard is up to date) or a metadata problem's reason."""
    from .. import store
    from .._io import file_fingerprint

    rec = task.rec
    for _, rid, reason in problems:
        if rid == rec.recording:
            return f"{rec.path}: {reason}"
    try:
        fp = file_fingerprint(rec.path)
    except OSError:
        return ""
    return "current" if store.shard_is_current(store.shard_path(task.out_dir, rec.recording), fp, task.digest) else ""


def _execute(tasks: Sequence[worker.Task], jobs: int, progress: bool):
    """Yield a :class:`~usvpipe.segmentation.worker.TaskResult` per task, in a pool when ``jobs > 1``."""
    bar = None
    if progress and tasks:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), unit="rec", desc="segment", disable=not sys.stderr.isatty())
    try:
        if jobs == 1 or len(tasks) <= 1:
            for t in tasks:
                yield worker.run_task(t)
                if bar is not None:
                    bar.update(1)
            return
        # workers die with this process: a kill -9 of the parent must not leave them running
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), initializer=die_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(worker.run_task, t): t for t in tasks}
            for fut in as_completed(futures):
                try:
                    yield fut.result()
                except NoSpaceError:
                    pool.shutdown(wait=True, cancel_futures=True)  # the rest would fail alike
                    raise
                except BrokenProcessPool:
                    # A worker was killed (typically out of memory): every recording still
                    # in the pool whose shard is not written is reported, and a re-run
                    # retries them.
                    yield _lost_with_the_pool(futures[fut])
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def _lost_with_the_pool(task: worker.Task) -> worker.TaskResult:
    """The result of a task whose worker pool broke: done if its shard was written, else failed."""
    done = worker.finished_before_the_pool_broke(task)
    if done is not None:
        return done
    reason = (f"{task.rec.path}: a worker process died while this recording was in the pool "
              "(out of memory?) (fix: re-run the same command; use fewer --jobs if it recurs)")
    from .. import store

    store.write_error(task.out_dir, task.rec.recording, task.rec.path, reason)
    return worker.TaskResult("failed", task.rec.recording, task.rec.path, error=reason)


def _finish(run: SegmentRun, recs: Sequence[Recording], params: dict) -> None:
    """Merge the store and write segments.csv if every recording is complete or failed."""
    from .. import store
    from .._io import read_json
    from ..artifacts import Segments

    out_dir = run.out_dir
    for rec in recs:
        if not store.shard_path(out_dir, rec.recording).exists() and not store.error_path(out_dir, rec.recording).exists():
            return  # another shard's recordings are still pending
    table = store.merge_store(out_dir, prune=True)
    cols = ["recording", "animal", "group", "onset_s", "offset_s", *[c for c in (*SCORE_COLUMNS, "label") if c in table.columns]]
    segments = table[cols] if len(table) else table.reindex(columns=cols)
    # the store keeps every score column as float64; the fragment counts read as integers
    counts = [c for c in COUNT_COLUMNS if c in segments.columns and segments[c].notna().all()]
    if counts and len(segments):
        segments = segments.astype({c: "int64" for c in counts})
    run.segments_path = Segments(segments, source=out_dir / SEGMENTS_NAME).write(out_dir / SEGMENTS_NAME)
    run.merged = True
    run.n_syllables_total = int(len(table))
    manifest = read_json(out_dir / store.MANIFEST_NAME)
    run.pruned = list(manifest.get("pruned", []))
    _note(run, checks.duplicate_note(manifest.get("recordings", {})))
    reviews = [r["review"] for r in manifest.get("recordings", {}).values() if r.get("review")]
    if reviews:
        run.review_totals = {k: int(sum(r.get(k, 0) for r in reviews))
                             for k in ("n_detected", "n_excluded", "n_relabelled", "n_confirmed", "n_review_rows",
                                       "n_rows_unmatched")}
