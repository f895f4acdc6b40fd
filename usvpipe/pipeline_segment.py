"""Batch segmentation: WAV folders -> ``segments.csv`` + syllable store (resumable, shardable).

:func:`segment_recordings` is what ``usvpipe segment IN_DIR OUT_DIR`` runs. Each
recording is processed whole by one worker and written as its own store shard
(atomically), so

- a killed job leaves complete shards only, and a re-run skips every recording whose
  shard was made from the same file (size + mtime) with the same parameters;
- SLURM array tasks (``shard="i/N"``) never write the same file; whichever task finds
  every recording complete or failed merges the store and writes ``segments.csv``
  (idempotent, so several tasks doing it is harmless);
- a bad file is recorded (``OUT_DIR/errors/`` and ``OUT_DIR/errors.csv``: path, recording and a
  one-line reason) and the rest of the batch continues.

Syllable images are AVA-compatible fixed-size spectrograms (default 128 x 128,
frequency increasing with the row index) computed directly at the target time points
from the recording.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import check_choice, params_digest, params_to_dict
from .errors import ConfigError, InputFileError, UsvpipeError
from .segment import SCORE_COLUMNS, SegmentParams
from .spectrogram import SpectrogramParams

log = logging.getLogger(__name__)

WAV_SUFFIXES = (".wav", ".wave")
SEGMENTS_NAME = "segments.csv"
ERRORS_NAME = "errors.csv"
_NORMALIZATIONS = ("noise", "fixed")
_IMAGE_BATCH = 32  # syllables per batch (bounds the gathered frames to 8 MB at 128 x 512)


@dataclass(frozen=True)
class SyllableParams:
    """Fixed-size syllable spectrograms for the store (AVA-compatible defaults).

    Attributes
    ----------
    shape : (int, int)
        ``(n_freq, n_time)`` of every image (default 128 x 128, as AVA).
    max_dur_s : float
        Duration that fills the image width (default 0.2 s, AVA's mouse setting).
    time_stretch : bool
        If True (default, as AVA for mice), a syllable of duration ``d`` is shown over
        ``sqrt(d * max_dur_s)`` seconds centred on it, so short syllables are stretched
        and still fill a good part of the image; if False, every image spans a fixed
        ``max_dur_s`` window centred on the syllable. Syllables longer than the span
        are shown by their central part.
    min_freq_hz, max_freq_hz : float
        Frequency range of the image rows; 0 (default) means the spectrogram band's
        edge (TOML has no "None"). Must lie inside the spectrogram band.
    normalization : {"noise", "fixed"}
        ``"noise"`` (default): dB above the recording's per-frequency noise floor,
        ``[0, dynamic_range_db]`` mapped to [0, 1], so images do not depend on the
        recording's gain or background colour (important when groups were recorded
        with different set-ups). ``"fixed"``: AVA's absolute scaling with the
        spectrogram's ``spec_min_db``/``spec_max_db``.
    dynamic_range_db : float
        dB above the noise floor that maps to 1 in ``noise`` normalisation (default 40).
    """

    shape: tuple[int, int] = (128, 128)
    max_dur_s: float = 0.2
    time_stretch: bool = True
    min_freq_hz: float = 0.0
    max_freq_hz: float = 0.0
    normalization: str = "noise"
    dynamic_range_db: float = 40.0

    def __post_init__(self):
        if len(self.shape) != 2 or min(self.shape) < 4:
            raise ConfigError(f"[syllables] shape must be two integers >= 4, got {self.shape}")
        object.__setattr__(self, "shape", (int(self.shape[0]), int(self.shape[1])))
        if self.max_dur_s <= 0:
            raise ConfigError(f"[syllables] max_dur_s must be > 0, got {self.max_dur_s}")
        check_choice("[syllables] normalization", self.normalization, _NORMALIZATIONS)
        if self.dynamic_range_db <= 0:
            raise ConfigError(f"[syllables] dynamic_range_db must be > 0, got {self.dynamic_range_db}")
        if self.min_freq_hz < 0 or self.max_freq_hz < 0:
            raise ConfigError("[syllables] min_freq_hz/max_freq_hz must be >= 0 (0 = the spectrogram band)")
        if self.min_freq_hz and self.max_freq_hz and not self.min_freq_hz < self.max_freq_hz:
            raise ConfigError("[syllables] need min_freq_hz < max_freq_hz")

    def band(self, sp: SpectrogramParams) -> tuple[float, float]:
        lo = self.min_freq_hz or sp.min_freq_hz
        hi = self.max_freq_hz or sp.max_freq_hz
        if lo < sp.min_freq_hz - 1e-9 or hi > sp.max_freq_hz + 1e-9:
            raise ConfigError(
                f"[syllables] band {lo:.0f}-{hi:.0f} Hz must lie inside the spectrogram band {sp.min_freq_hz:.0f}-{sp.max_freq_hz:.0f} Hz"
            )
        return lo, hi

    def span_s(self, duration_s: np.ndarray) -> np.ndarray:
        """Time span shown by each syllable's image."""
        d = np.asarray(duration_s, dtype=np.float64)
        if self.time_stretch:
            return np.where(d < self.max_dur_s, np.sqrt(np.maximum(d, 0.0) * self.max_dur_s), self.max_dur_s)
        return np.full_like(d, self.max_dur_s)


# --------------------------------------------------------------------------- images
def _interp_weights(src_hz: np.ndarray, dst_hz: np.ndarray):
    """Linear interpolation from ``src_hz`` bins to ``dst_hz``: ``(i0, i1, w1)`` (clamped).

    Applied as two gathers rather than a matrix product: tiny BLAS calls are very slow
    on an oversubscribed machine (thread hand-offs), gathers are not.
    """
    pos = np.interp(dst_hz, src_hz, np.arange(src_hz.size, dtype=np.float64))
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, src_hz.size - 1)
    i1 = np.clip(i0 + 1, 0, src_hz.size - 1)
    w1 = (pos - i0).astype(np.float32)
    return i0, i1, w1


def syllable_images(source, segments, trace, spectrogram_params: SpectrogramParams, params: SyllableParams) -> np.ndarray:
    """Fixed-size spectrogram of each segment.

    Parameters
    ----------
    source : object with ``read(start, stop)`` (zero-padded) and ``n_samples``
        The recording (see :mod:`usvpipe.segment`'s sources).
    segments : pandas.DataFrame
        ``onset_s``, ``offset_s``.
    trace : usvpipe.segment.Trace
        Gives the frame geometry and the noise floor.
    spectrogram_params, params : SpectrogramParams, SyllableParams

    Returns
    -------
    numpy.ndarray
        float32 ``(n, H, W)`` in [0, 1]; frequency increases with the row index.
    """
    from .spectrogram import band_power

    geom = trace.geom
    n_freq, n_time = params.shape
    n = len(segments)
    out = np.zeros((n, n_freq, n_time), np.float32)
    if n == 0:
        return out
    lo_hz, hi_hz = params.band(spectrogram_params)
    interp = _interp_weights(geom.freqs_hz, np.linspace(lo_hz, hi_hz, n_freq))
    onset = segments["onset_s"].to_numpy(np.float64)
    offset = segments["offset_s"].to_numpy(np.float64)
    centre = 0.5 * (onset + offset)
    span = params.span_s(offset - onset)
    sr = geom.sample_rate_hz
    half = geom.nperseg // 2
    grid = (np.arange(n_time) + 0.5) / n_time
    ctx = source if hasattr(source, "__enter__") else contextlib.nullcontext()
    with ctx:
        # batches of syllables share the FFT calls (per-call overhead dominates otherwise)
        # buffers allocated once, not per batch (fresh pages cost as much as the arithmetic)
        frames_buf = np.empty((min(_IMAGE_BATCH, n), n_time, geom.nperseg), np.float32)
        workspace = {}
        for c0 in range(0, n, _IMAGE_BATCH):
            idx = np.arange(c0, min(c0 + _IMAGE_BATCH, n))
            frames = frames_buf[: idx.size]
            for j, i in enumerate(idx):
                times = centre[i] - span[i] / 2 + grid * span[i]
                starts = np.rint(times * sr).astype(np.int64) - half
                first, last = int(starts[0]), int(starts[-1]) + geom.nperseg
                audio = source.read(first, last)
                # rows of a strided all-frames view: a plain copy, no index arithmetic
                frames[j] = np.lib.stride_tricks.sliding_window_view(audio, geom.nperseg)[starts - first]
            # window, FFT and |X|^2 of the band in cache-sized chunks (the segmentation's kernel)
            power = band_power(frames.reshape(-1, geom.nperseg), geom, workspace=workspace).reshape(idx.size, n_time, -1)  # (k, n_time, n_bins)
            if params.normalization == "noise":
                centre_frame = np.maximum(0, (centre[idx] * sr - half) // geom.hop).astype(np.int64)
                floors = np.stack([trace.floor_at(int(f)) for f in centre_frame])
                power /= np.maximum(floors, np.float32(1e-30))[:, None, :]
                np.maximum(power, np.float32(1e-20), out=power)
                db = np.log10(power) * np.float32(10.0 / params.dynamic_range_db)
            else:
                np.maximum(power, np.float32(1e-20), out=power)
                db = np.log10(power) * np.float32(10.0) + np.float32(geom.db_offset - spectrogram_params.spec_min_db)
                db *= np.float32(1.0 / (spectrogram_params.spec_max_db - spectrogram_params.spec_min_db))
            i0, i1, w1 = interp
            # frequency-major first, so the interpolation gathers whole contiguous rows
            # and the result needs no transposing copy
            db = np.ascontiguousarray(db.transpose(0, 2, 1))  # (k, n_bins, n_time)
            img = np.take(db, i0, axis=1)
            img *= (np.float32(1.0) - w1)[:, None]
            hi_part = np.take(db, i1, axis=1)
            hi_part *= w1[:, None]
            img += hi_part  # (k, n_freq, n_time)
            np.clip(img, 0.0, 1.0, out=img)
            out[idx] = img
    return out


# --------------------------------------------------------------------------- inputs
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


# --------------------------------------------------------------------------- worker
@dataclass(frozen=True)
class _Task:
    rec: Recording
    out_dir: str
    spectrogram: SpectrogramParams
    segmentation: SegmentParams
    syllables: SyllableParams
    channel: object
    digest: str
    params: dict


def _run_task(task: _Task) -> dict:
    """Process one recording; never raises (failures are returned and recorded)."""
    from . import store
    from ._io import file_fingerprint
    from .segment import segment_file_with_trace

    rec = task.rec
    t0 = time.perf_counter()
    try:
        fp = file_fingerprint(rec.path)
        segments, trace, source = segment_file_with_trace(rec.path, task.segmentation, task.spectrogram, channel=task.channel)
        images = syllable_images(source, segments, trace, task.spectrogram, task.syllables)
        store.write_shard(
            task.out_dir, rec.recording, images, segments["onset_s"].to_numpy(), segments["offset_s"].to_numpy(),
            animal=rec.animal, group=rec.group, columns={c: segments[c].to_numpy() for c in SCORE_COLUMNS},
            source_fingerprint=fp, params=task.params, params_digest=task.digest,
        )
        store.clear_error(task.out_dir, rec.recording)
        duration = source.n_samples / source.info.sample_rate_hz
        return {"status": "done", "recording": rec.recording, "path": rec.path, "n": len(segments), "audio_s": duration, "time_s": time.perf_counter() - t0}
    except UsvpipeError as exc:
        reason = str(exc)
    except MemoryError:
        reason = f"{rec.path}: out of memory while processing (fix: run with fewer --jobs)"
    except OSError as exc:
        if exc.filename is not None and os.path.abspath(os.fsdecode(exc.filename)) == os.path.abspath(rec.path):
            # e.g. a path in a .txt listing that does not exist, or a file without read permission
            what = "file not found" if isinstance(exc, FileNotFoundError) else f"cannot read the file ({exc.strerror})"
            reason = f"{rec.path}: {what} (fix: check the path in the input listing, and that the file is readable)"
        else:
            reason = f"{rec.path}: unexpected {type(exc).__name__}: {exc} (fix: report this with the file)"
    except Exception as exc:  # keep the batch going; report the unexpected error in one line
        reason = f"{rec.path}: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (fix: report this with the file)"
    try:
        store.write_error(task.out_dir, rec.recording, rec.path, reason)
        # A shard from an earlier run was made from another version of the file or other
        # parameters (else this run would have skipped it): it must not be merged as if current.
        store.shard_path(task.out_dir, rec.recording).unlink(missing_ok=True)
    except OSError:
        pass
    return {"status": "failed", "recording": rec.recording, "path": rec.path, "error": reason, "n": 0, "audio_s": 0.0, "time_s": time.perf_counter() - t0}


# --------------------------------------------------------------------------- batch
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

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio processed per second of wall-clock time."""
        return self.audio_s / self.elapsed_s if self.elapsed_s > 0 else float("nan")


def run_params(spectrogram: SpectrogramParams, segmentation: SegmentParams, syllables: SyllableParams, channel) -> dict:
    return {
        "spectrogram": params_to_dict(spectrogram),
        "segment": params_to_dict(segmentation),
        "syllables": params_to_dict(syllables),
        "channel": channel,
    }


def _write_errors_csv(out_dir: Path, problems: Sequence[tuple[str, str, str]] = ()) -> Path:
    import pandas as pd

    from ._io import read_json, write_csv_atomic
    from .store import ERROR_DIR

    rows = {}
    err_dir = out_dir / ERROR_DIR
    for p in sorted(err_dir.glob("*.json")) if err_dir.is_dir() else []:
        try:
            e = read_json(p)
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

    Returns
    -------
    SegmentRun
    """
    from . import store
    from ._io import ensure_output_dir, file_fingerprint
    from .hpc import Shard, parse_shard, select_shard

    t0 = time.perf_counter()
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    shard = shard if isinstance(shard, Shard) else parse_shard(shard)
    syllables.band(spectrogram)  # validate the image band early
    out_dir = ensure_output_dir(out_dir)
    recs, problems = plan_recordings(inputs, metadata)
    problem_ids = {rid for _, rid, _ in problems}
    mine = select_shard(recs, shard, key=lambda r: r.recording)
    params = run_params(spectrogram, segmentation, syllables, channel)
    run = SegmentRun(out_dir=Path(out_dir), n_recordings=len(mine))

    tasks = []
    for rec in mine:
        if rec.recording in problem_ids:
            reason = next(r for _, rid, r in problems if rid == rec.recording)
            store.write_error(out_dir, rec.recording, rec.path, f"{rec.path}: {reason}")
            store.shard_path(out_dir, rec.recording).unlink(missing_ok=True)  # stale, see _run_task
            run.n_failed += 1
            run.failures.append((rec.path, f"{rec.path}: {reason}"))
            continue
        digest = params_digest(params, {"animal": rec.animal, "group": rec.group})
        try:
            fp = file_fingerprint(rec.path)
        except OSError:
            fp = None
        if fp is not None and store.shard_is_current(store.shard_path(out_dir, rec.recording), fp, digest):
            run.n_skipped += 1
            continue
        tasks.append(_Task(rec, str(out_dir), spectrogram, segmentation, syllables, channel, digest, params))

    bar = None
    if progress and tasks:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), unit="rec", desc="segment", disable=not sys.stderr.isatty())

    def handle(res: dict):
        if res["status"] == "done":
            run.n_done += 1
            run.n_syllables += res["n"]
            run.audio_s += res["audio_s"]
        else:
            run.n_failed += 1
            run.failures.append((res["path"], res["error"]))
        if bar is not None:
            bar.update(1)

    try:
        if jobs == 1 or len(tasks) <= 1:
            for t in tasks:
                handle(_run_task(t))
        else:
            with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
                futures = {pool.submit(_run_task, t): t for t in tasks}
                for fut in as_completed(futures):
                    try:
                        handle(fut.result())
                    except BrokenProcessPool:
                        # A worker was killed (typically out of memory): every recording still
                        # in the pool whose shard is not written is reported, and a re-run
                        # retries them.
                        t = futures[fut]
                        done = _finished_before_the_pool_broke(t, out_dir)
                        if done is not None:
                            handle(done)
                            continue
                        reason = (f"{t.rec.path}: a worker process died while this recording was in the pool "
                                  "(out of memory?) (fix: re-run the same command; use fewer --jobs if it recurs)")
                        store.write_error(out_dir, t.rec.recording, t.rec.path, reason)
                        handle({"status": "failed", "path": t.rec.path, "error": reason})
    finally:
        if bar is not None:
            bar.close()
    run.failures.sort()
    run.errors_path = _write_errors_csv(Path(out_dir), problems)
    _finish(run, recs, params)
    run.elapsed_s = time.perf_counter() - t0
    return run


def _finished_before_the_pool_broke(task: "_Task", out_dir) -> dict | None:
    """A task whose worker wrote its shard before another worker died counts as done.

    Its result was lost with the pool, but the shard is complete (written atomically) and
    current, so reporting it as failed would be wrong and a re-run would skip it anyway.
    """
    from . import store
    from ._io import file_fingerprint

    path = store.shard_path(out_dir, task.rec.recording)
    try:
        if not store.shard_is_current(path, file_fingerprint(task.rec.path), task.digest):
            return None
        n = store.read_shard_info(path).n_syllables
    except (OSError, UsvpipeError):
        return None
    # The audio duration travelled with the lost result; the shard does not record it.
    return {"status": "done", "n": n, "audio_s": 0.0}


def _finish(run: SegmentRun, recs: Sequence[Recording], params: dict) -> None:
    """Merge the store and write segments.csv if every recording is complete or failed."""
    from . import store
    from ._io import write_csv_atomic

    out_dir = run.out_dir
    for rec in recs:
        if not store.shard_path(out_dir, rec.recording).exists() and not store.error_path(out_dir, rec.recording).exists():
            return  # another shard's recordings are still pending
    table = store.merge_store(out_dir)
    cols = ["recording", "animal", "group", "onset_s", "offset_s", *[c for c in SCORE_COLUMNS if c in table.columns]]
    segments = table[cols] if len(table) else table.reindex(columns=cols)
    run.segments_path = write_csv_atomic(out_dir / SEGMENTS_NAME, segments, float_format="%.6f")
    run.merged = True
    run.n_syllables_total = int(len(table))
