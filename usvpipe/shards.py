"""One recording's shard of the syllable store: its file name, writing it atomically, reading it back.

The store's layout, and what a shard file holds, is described in :mod:`usvpipe.store`, which
merges the shards into ``syllables.csv`` and reads them for training; this module knows one
shard at a time. Its public names are also importable from :mod:`usvpipe.store`.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ._io import TMP_PREFIX, atomic_path, check_room, write_hdf5
from ._version import __version__
from .errors import InputFileError

STORE_FORMAT = "usvpipe-syllable-store"
FORMAT_VERSION = 1
SHARD_DIR = "shards"


def shard_name(recording: str) -> str:
    """File-system-safe, collision-free shard stem for a recording identifier."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", recording).strip("_")[-80:]
    digest = hashlib.sha1(recording.encode("utf-8")).hexdigest()[:10]
    return f"{safe}-{digest}"


def shard_files(store_dir) -> list[Path]:
    """The complete shard files of a store (temporary files of running writers excluded)."""
    shard_dir = Path(store_dir) / SHARD_DIR
    if not shard_dir.is_dir():
        return []
    return sorted(p for p in shard_dir.glob("*.h5") if not p.name.startswith(TMP_PREFIX))


def shard_path(store_dir, recording: str) -> Path:
    return Path(store_dir) / SHARD_DIR / f"{shard_name(recording)}.h5"


def to_uint8(spectrograms: np.ndarray) -> np.ndarray:
    """Quantise [0, 1] spectrograms to uint8 (values outside are clipped).

    Works in place on a float32 scratch copy of at most 32 images at a time, so quantising a
    recording's images costs one uint8 array plus 2 MB, not three float temporaries.
    """
    spectrograms = np.asarray(spectrograms)
    if spectrograms.dtype == np.uint8:
        return spectrograms
    out = np.empty(spectrograms.shape, np.uint8)
    flat_in = spectrograms.reshape((-1, *spectrograms.shape[-2:])) if spectrograms.ndim >= 2 else spectrograms.reshape(1, 1, -1)
    flat_out = out.reshape(flat_in.shape)
    for a in range(0, flat_in.shape[0], 32):
        block = np.clip(flat_in[a : a + 32], 0.0, 1.0).astype(np.float32, copy=False)
        block *= np.float32(255.0)
        np.rint(block, out=block)
        flat_out[a : a + 32] = block
    return out


def write_shard(
    store_dir,
    recording: str,
    spectrograms: np.ndarray,
    onset_s: Sequence[float],
    offset_s: Sequence[float],
    *,
    animal: str = "",
    group: str = "",
    columns: Mapping[str, Sequence[float]] | None = None,
    metadata: Mapping[str, str] | None = None,
    source_fingerprint: Mapping[str, int] | None = None,
    params: Mapping | None = None,
    params_digest: str = "",
    image_shape: tuple[int, int] | None = None,
    labels: Sequence[str] | None = None,
    review: Mapping | None = None,
) -> Path:
    """Atomically write one recording's syllables as a shard; returns its path.

    ``spectrograms`` is ``(n, H, W)``, either uint8 or floats in [0, 1]; ``n`` may be 0
    (a recording with no syllables is still complete). It may also be an iterable of
    such blocks (in syllable order, ``n = len(onset_s)`` rows in all, ``image_shape``
    ``(H, W)`` given): each block is quantised and written as it arrives, so a recording's
    images never need to be in memory at once.
    ``metadata``: the recording's other metadata columns (e.g. sex, age), copied to every one of
    its rows of ``syllables.csv``.
    ``labels``: one text label per syllable (the ``label`` column, from an exclusion list's
    relabel rows); ``review``: the counts of the exclusion list applied (a JSON attribute).
    """
    import h5py

    onset_s = np.asarray(onset_s, dtype=np.float64).reshape(-1)
    offset_s = np.asarray(offset_s, dtype=np.float64).reshape(-1)
    spectrograms, blocks, n, shape = _checked_images(spectrograms, onset_s, offset_s, image_shape)
    path = shard_path(store_dir, recording)
    # The temporary name must not end in .h5, or readers globbing shards/*.h5 would see
    # a half-written file from a concurrent (or killed) writer.

    def fill(f):
        if blocks is None:
            f.create_dataset("spectrograms", data=spectrograms, chunks=(1, *shape) if n else None)
        else:
            _write_blocks(f.create_dataset("spectrograms", shape=(n, *shape), dtype=np.uint8, chunks=(1, *shape) if n else None), blocks)
        f.create_dataset("onset_s", data=onset_s)
        f.create_dataset("offset_s", data=offset_s)
        grp = f.create_group("columns")
        for name, values in (columns or {}).items():
            values = np.asarray(values, dtype=np.float64).reshape(-1)
            if values.shape != (n,):
                raise ValueError(f"column {name!r} must have {n} values")
            grp.create_dataset(name, data=values)
        if labels is not None:
            if len(labels) != n:
                raise ValueError(f"labels must have {n} values")
            f.create_dataset("label", data=[str(x) for x in labels], dtype=h5py.string_dtype())
        _write_header(f.attrs, recording, animal=animal, group=group, metadata=metadata,
                      source_fingerprint=source_fingerprint, params=params, params_digest=params_digest,
                      review=review)

    # HDF5 meeting a full disk mid-write crashed the interpreter (exit 139): the room for the
    # images and a margin is checked first, and write_hdf5 turns a full disk met anyway into one line
    need = int(n * (shape[0] * shape[1] + 8 * (3 + len(columns or {}))) * 1.25) + (256 << 10)
    with atomic_path(path, suffix=".part") as tmp:
        check_room(path, need)
        write_hdf5(tmp, fill, name=path, need_bytes=need)
    return path


def _checked_images(spectrograms, onset_s: np.ndarray, offset_s: np.ndarray, image_shape):
    """``(images, blocks, n, (H, W))`` for :func:`write_shard`: an array quantised to uint8 (``blocks``
    ``None``), or an iterable of blocks left to arrive (``images`` as given); one onset and offset per image."""
    blocks = None
    if isinstance(spectrograms, np.ndarray) or image_shape is None:
        spectrograms = to_uint8(spectrograms)
        if spectrograms.ndim != 3:
            raise ValueError(f"spectrograms must be (n, H, W), got shape {spectrograms.shape}")
        n, shape = spectrograms.shape[0], spectrograms.shape[1:]
    else:
        blocks, n, shape = spectrograms, onset_s.shape[0], tuple(int(x) for x in image_shape)
        if len(shape) != 2:
            raise ValueError(f"image_shape must be (H, W), got {image_shape}")
    if onset_s.shape != (n,) or offset_s.shape != (n,):
        raise ValueError("onset_s/offset_s must have one value per spectrogram")
    return spectrograms, blocks, n, shape


def _write_header(attrs, recording: str, *, animal, group, metadata, source_fingerprint, params, params_digest,
                  review) -> None:
    """The shard's attributes (what :func:`read_shard_info` reads back), in the order they were always written."""
    fp = dict(source_fingerprint or {})
    if review is not None:
        attrs["review_json"] = json.dumps(dict(review))
    attrs["recording"] = recording
    attrs["animal"] = str(animal)
    attrs["group"] = str(group)
    if metadata:
        attrs["metadata_json"] = json.dumps({str(k): str(v) for k, v in metadata.items()})
    attrs["source_size"] = int(fp.get("size", -1))
    attrs["source_mtime_ns"] = int(fp.get("mtime_ns", -1))
    # which file this recording id came from: a second folder with the same relative names must
    # not replace it silently (usvpipe.segmentation.batch refuses it)
    attrs["source_path"] = str(fp.get("path", ""))
    attrs["source_digest"] = str(fp.get("digest", ""))
    attrs["params_json"] = json.dumps(dict(params or {}), default=str)
    attrs["params_digest"] = params_digest
    attrs["usvpipe_version"] = __version__
    attrs["format"] = STORE_FORMAT
    attrs["format_version"] = FORMAT_VERSION


def _write_blocks(dataset, blocks) -> None:
    """Fill ``dataset`` (n, H, W) from an iterable of image blocks, checking the row count."""
    n, shape = dataset.shape[0], dataset.shape[1:]
    pos = 0
    for block in blocks:
        block = to_uint8(block)
        if block.ndim != 3 or block.shape[1:] != shape:
            raise ValueError(f"image blocks must be (k, {shape[0]}, {shape[1]}), got {block.shape}")
        if pos + block.shape[0] > n:
            raise ValueError(f"more images than the {n} onsets given")
        dataset[pos : pos + block.shape[0]] = block
        pos += block.shape[0]
    if pos != n:
        raise ValueError(f"{pos} images for {n} onsets")


@dataclass(frozen=True)
class ShardInfo:
    """Header of a shard file (no spectrograms loaded)."""

    path: Path
    recording: str
    animal: str
    group: str
    n_syllables: int
    source_size: int
    source_mtime_ns: int
    params_digest: str
    params: dict = field(compare=False, repr=False)
    spec_shape: tuple = ()
    metadata: dict = field(default_factory=dict, compare=False)
    review: dict = field(default_factory=dict, compare=False)  # counts of the exclusion list applied
    source_path: str = ""  # resolved path of the WAV (empty in stores written before it was recorded)
    source_digest: str = ""  # usvpipe._io.content_digest of that WAV


def read_shard_info(path) -> ShardInfo:
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            a = f.attrs
            spec = f["spectrograms"]
            return ShardInfo(
                path=path,
                recording=str(a["recording"]),
                animal=str(a.get("animal", "")),
                group=str(a.get("group", "")),
                n_syllables=int(spec.shape[0]),
                source_size=int(a.get("source_size", -1)),
                source_mtime_ns=int(a.get("source_mtime_ns", -1)),
                params_digest=str(a.get("params_digest", "")),
                params=json.loads(a.get("params_json", "{}")),
                spec_shape=tuple(int(s) for s in spec.shape[1:]),
                metadata=json.loads(a.get("metadata_json", "{}")),
                review=json.loads(a.get("review_json", "{}")),
                source_path=str(a.get("source_path", "")),
                source_digest=str(a.get("source_digest", "")),
            )
    except (OSError, KeyError) as exc:
        raise InputFileError(path, f"unreadable store shard ({exc})", "delete it and re-run `usvpipe segment`") from None


def shard_is_current(path, fingerprint: Mapping[str, int] | None, params_digest: str | None) -> bool:
    """True if a shard exists for the same source file (size+mtime) and parameters."""
    path = Path(path)
    if not path.exists():
        return False
    try:
        info = read_shard_info(path)
    except InputFileError:
        return False
    if params_digest is not None and info.params_digest != params_digest:
        return False
    if fingerprint is not None and (
        info.source_size != int(fingerprint.get("size", -1)) or info.source_mtime_ns != int(fingerprint.get("mtime_ns", -1))
    ):
        return False
    return True


def _shard_table(info: ShardInfo, store_dir: Path) -> "pd.DataFrame":
    import h5py
    import pandas as pd

    with h5py.File(info.path, "r") as f:
        onset = f["onset_s"][()]
        offset = f["offset_s"][()]
        extra = {k: f["columns"][k][()] for k in f["columns"]} if "columns" in f else {}
        label = [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in f["label"][()]] if "label" in f else None
    n = info.n_syllables
    rel = info.path.relative_to(store_dir).as_posix()
    table = pd.DataFrame(
        {
            "id": [f"{info.recording}#{i}" for i in range(n)],
            "recording": [info.recording] * n,
            "animal": [info.animal] * n,
            "group": [info.group] * n,
            "onset_s": onset,
            "offset_s": offset,
            "shard": [rel] * n,
            "index": np.arange(n, dtype=np.int64),
        }
    )
    for k, v in extra.items():
        table[k] = v
    if label is not None:  # an exclusion list's relabel rows (usvpipe.segmentation.exclusions)
        table["label"] = label
    for k, v in info.metadata.items():  # the metadata CSV's other columns, after the scores
        if k not in table.columns:
            table[k] = [v] * n
    return table
