"""``usvpipe poise pairs``: behaviour videos + a syllable store -> POISE pairs (frame, syllable).

Matching videos to recordings uses the rules that give WAVs their animal and group:

1. the video's path relative to VIDEOS, without its suffix, equals the recording's identifier
   without its suffix (``g1/m1/day1.mp4`` <-> ``g1/m1/day1.wav``; videos kept next to the WAVs
   or in a mirrored folder); else
2. the same file stem, animal and group, where a video's animal and group come from the folder
   layout ``group/animal/file.mp4`` (:func:`usvpipe.segmentation.inputs.layout_metadata`) or, with
   ``video_metadata``, from a ``path,animal,group`` CSV read like the WAVs' metadata CSV.

Each syllable gets the frame (or short stack) on screen at its onset mapped to video time
(``PairsParams``: offset, clock drift), cropped to the region of interest and resized to grey.
A recording that cannot pair (no video, several videos, a video shorter than its audio, an
unknown frame rate, a corrupt file) is reported in one line and skipped; the others still pair.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from .._csv import read_csv
from ..errors import InputFileError, UsvpipeError
from .params import PairsParams
from .video import VIDEO_SUFFIXES, read_frames, video_info

log = logging.getLogger(__name__)
PROBLEM_COLUMNS = ("recording", "path", "reason")


@dataclass
class PairsRun:
    """Result of :func:`make_pairs`: where the pairs went, how many, and what failed."""

    path: Path | None
    table: object  # pandas.DataFrame: provenance, one row per pair
    problems: list = field(default_factory=list)  # (recording, path, reason)

    @property
    def n_pairs(self) -> int:
        return len(self.table)


def _stem(rel) -> str:
    p = PurePosixPath(str(rel))
    return str(p.with_suffix("")) if p.suffix else str(p)


def discover_videos(videos) -> tuple[list[Path], Path]:
    """Video files under a folder (recursive), or one file: ``(files, root)``."""
    videos = Path(videos)
    if not videos.exists():
        raise InputFileError(videos, "videos not found", "pass the folder that holds the behaviour videos")
    absolute = Path(os.path.abspath(videos))  # as the WAV rules do: symlinks are not resolved
    if videos.is_file():
        return [absolute], absolute.parent
    found = sorted(p for p in videos.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                   and not p.name.startswith("."))
    if not found:
        raise InputFileError(videos, f"no videos found in this folder (searched recursively for {', '.join('*' + s for s in VIDEO_SUFFIXES)})",
                             "pass the folder that holds the behaviour videos")
    return [Path(os.path.abspath(p)) for p in found], absolute


def match_videos(recordings, videos, *, video_metadata=None) -> tuple[dict, list]:
    """``{recording: video path}`` and problems ``(recording, path, reason)``.

    ``recordings`` is a table with columns ``recording, animal, group`` (one row per recording).
    """
    from ..segmentation.inputs import layout_metadata, read_metadata

    files, root = discover_videos(videos)
    meta = read_metadata(video_metadata) if video_metadata is not None else None
    by_rel, by_key = {}, {}
    for f in files:
        rel = f.relative_to(root)
        by_rel.setdefault(_stem(rel.as_posix()), []).append(f)
        m = meta.get(f) if meta is not None else layout_metadata(rel)
        if m is None:
            continue  # not listed in the videos' metadata CSV: only the path rule applies
        by_key.setdefault((m["group"], m["animal"], f.stem), []).append(f)
    out, problems = {}, []
    for row in recordings.itertuples(index=False):
        rec = str(row.recording)
        cands = by_rel.get(_stem(rec)) or by_key.get((str(row.group), str(row.animal), PurePosixPath(rec).stem), [])
        if len(cands) == 1:
            out[rec] = cands[0]
        elif not cands:
            problems.append((rec, "", f"no video for this recording under {videos} (fix: name it like the WAV, e.g. "
                                      f"{_stem(rec)}.mp4, or list it in a path,animal,group CSV)"))
        else:
            problems.append((rec, "", f"several videos match ({', '.join(str(c) for c in cands[:3])}) "
                                      "(fix: keep one video per recording)"))
    return out, problems


def read_sync(path) -> dict:
    """Per-recording sync from a CSV ``recording,offset_s[,drift_ppm]`` -> {recording: (offset, drift)}."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "sync CSV not found", "check the --sync path")
    try:
        table = read_csv(path, text_columns=("recording",), ours=False, skipinitialspace=True)
    except Exception as exc:
        raise InputFileError(path, f"unreadable sync CSV ({str(exc).splitlines()[0]})", "columns recording,offset_s[,drift_ppm]") from None
    if not {"recording", "offset_s"} <= set(table.columns):
        raise InputFileError(path, f"sync CSV lacks recording/offset_s (has {', '.join(map(str, table.columns))})",
                             "columns recording,offset_s[,drift_ppm]")
    drift = table["drift_ppm"] if "drift_ppm" in table else np.full(len(table), np.nan)
    out = {}
    for rec, off, dr in zip(table["recording"], table["offset_s"], drift):
        if not np.isfinite(off):
            raise InputFileError(path, f"offset_s of {rec} is not a number", "fill in offset_s")
        out[str(rec).strip()] = (float(off), None if not np.isfinite(dr) else float(dr))
    return out


def _audio_duration(audio_root, rec):
    """Duration of the recording's WAV if it can be found under ``audio_root`` (else None)."""
    if audio_root is None:
        return None
    p = Path(audio_root) / rec
    if not p.is_file():
        return None
    from ..audio import audio_info

    return audio_info(p).duration_s


def frame_times(onsets_s, offsets_s, params: PairsParams, rate: float, *, offset_s=None, drift_ppm=None) -> np.ndarray:
    """Video times ``(n, frames)`` of each syllable's frame stack."""
    t = np.asarray(onsets_s, dtype=np.float64)
    if params.anchor == "middle":
        t = 0.5 * (t + np.asarray(offsets_s, dtype=np.float64))
    tv = params.video_time(t, offset_s=offset_s, drift_ppm=drift_ppm)
    return tv[:, None] + np.arange(params.frames)[None, :] * params.frame_step / rate


def make_pairs(store, videos, out_path=None, params: PairsParams = PairsParams(), *, video_metadata=None,
               audio=None, sync=None) -> PairsRun:
    """Pair each syllable of ``store`` with the video frame(s) at its onset.

    Parameters
    ----------
    store : path of a syllable store (``usvpipe segment`` OUT_DIR)
    videos : folder of behaviour videos (or one video file)
    out_path : path of the ``.npz`` to write, or None
        Arrays ``x1`` (frames, ``(N, h, frames * w)``), ``x2`` (syllable spectrograms) -- the PAIRS
        format of ``poise train`` -- plus provenance arrays ``recording``, ``syllable_id``,
        ``onset_s``, ``frame_time_s`` (of the first stacked frame). The same provenance goes to
        ``OUT.csv``; recordings that could not pair to ``OUT.errors.csv``.
    params : PairsParams
    video_metadata : path of a ``path,animal,group`` CSV for the videos, optional
    audio : folder the store's recording identifiers are relative to (the WAV folder), optional;
        default ``videos``. Where a WAV is found, a video shorter than it is refused.
    sync : path of a ``recording,offset_s[,drift_ppm]`` CSV overriding the offset/drift per recording

    Raises
    ------
    UsvpipeError
        Not a store, no videos at all, or no recording paired.
    """
    import pandas as pd

    from ..store import open_store

    st = open_store(store)
    table = st.table
    if len(table) == 0:
        raise UsvpipeError(f"{store}: the store has no syllables (fix: segment recordings with calls first)")
    recordings = table[["recording", "animal", "group"]].drop_duplicates("recording")
    matched, problems = match_videos(recordings, videos, video_metadata=video_metadata)
    sync_map = read_sync(sync) if sync is not None else {}
    audio_root = Path(audio) if audio is not None else (Path(videos) if Path(videos).is_dir() else None)
    frames, specs, prov = [], [], []
    for rec, video in matched.items():
        rows = np.flatnonzero(table["recording"].to_numpy() == rec)
        sub = table.iloc[rows]
        off, drift = sync_map.get(rec, (None, None))
        try:
            got, times = _frames_of_recording(video, sub, params, _audio_duration(audio_root, rec), off, drift)
        except InputFileError as exc:
            problems.append((rec, str(video), exc.reason + (f" (fix: {exc.fix})" if exc.fix else "")))
            continue
        frames.append(got)
        specs.append(st.read(rows))
        prov.append(pd.DataFrame({"recording": rec, "syllable_id": sub["id"].astype(str).to_numpy(),
                                  "animal": sub["animal"].to_numpy(), "group": sub["group"].to_numpy(),
                                  "onset_s": sub["onset_s"].to_numpy(), "frame_time_s": times[:, 0],
                                  "video": str(video)}))
    for rec, path, reason in problems:
        log.warning("%s: %s", path or rec, reason)
    if not frames:
        first = problems[0] if problems else ("", "", "nothing to pair")
        raise UsvpipeError(f"no recording could be paired ({len(problems)} problem(s); first: "
                           f"{first[1] or first[0]}: {first[2]})")
    prov = pd.concat(prov, ignore_index=True)
    run = PairsRun(None, prov, problems)
    if out_path is not None:
        run.path = _write_pairs(Path(out_path), frames, specs, prov, problems)
    return run


def _frames_of_recording(video, sub, params: PairsParams, audio_duration_s, offset_s, drift_ppm):
    """``(frames, times)`` for the syllables ``sub`` of one recording: each syllable's stacked frames
    ``(n, h, frames * w)`` and their video times ``(n, frames)``. A video shorter than its audio
    (``audio_duration_s``, when known) is refused with an :class:`InputFileError`."""
    info = video_info(video, fps=params.fps)
    times = frame_times(sub["onset_s"], sub["offset_s"], params, info.fps, offset_s=offset_s, drift_ppm=drift_ppm)
    if audio_duration_s is not None:
        need = float(params.video_time(np.array(audio_duration_s), offset_s=offset_s, drift_ppm=drift_ppm))
        if info.duration_s + 1.0 / info.fps < need:
            raise InputFileError(video, f"video is shorter than its audio ({info.duration_s:.2f} s of video, "
                                        f"{need:.2f} s needed for {audio_duration_s:.2f} s of audio)",
                                 "pass the whole video, or fix the sync offset/drift")
    got = read_frames(video, times.reshape(-1), size=params.size,
                      roi=params.roi or None, fps=params.fps)
    h, w = params.size
    got = got.reshape(len(sub), params.frames, h, w).transpose(0, 2, 1, 3).reshape(len(sub), h, params.frames * w)
    return got, times


def _write_pairs(out_path: Path, frames, specs, prov, problems) -> Path:
    """``OUT.npz`` (the PAIRS arrays and provenance), ``OUT.csv`` and, when recordings failed,
    ``OUT.errors.csv`` (a stale one from an earlier run is removed)."""
    import pandas as pd

    from .._io import write_csv_atomic

    if out_path.suffix.lower() != ".npz":
        raise UsvpipeError(f"{out_path}: the pairs file must end in .npz (fix: e.g. pairs.npz)")
    _write_npz(out_path, np.concatenate(frames), np.concatenate(specs), prov)
    write_csv_atomic(out_path.with_suffix(".csv"), prov, index=False)
    err = out_path.with_name(out_path.stem + ".errors.csv")
    if problems:
        write_csv_atomic(err, pd.DataFrame(problems, columns=PROBLEM_COLUMNS), index=False)
    elif err.exists():
        err.unlink()  # a stale list from an earlier run would mislead
    return out_path


def _write_npz(path, x1, x2, prov):
    from .._io import atomic_path

    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, x1=x1.astype(np.float32), x2=x2.astype(np.float32),
                     recording=prov["recording"].to_numpy(dtype=str), syllable_id=prov["syllable_id"].to_numpy(dtype=str),
                     onset_s=prov["onset_s"].to_numpy(np.float64), frame_time_s=prov["frame_time_s"].to_numpy(np.float64))
