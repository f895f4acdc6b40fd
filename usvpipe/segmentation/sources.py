"""Audio as a block source for the segmenter: an in-memory array or a streamed WAV file.

Both sources offer ``read(start, stop)`` (zero-padded outside the recording) and
``blocks(start, stop, block, overlap)``; :func:`iter_frame_blocks` turns them into blocks
of whole frames of the global frame grid (see "Exactness under streaming" in
:mod:`usvpipe.segmentation.detection`).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..audio import block_spans, pcm16_to_float32, read_block, select_channel, soundfile_source
from .spectrogram import FrameGeometry

# STFT frames per streamed block (~1.5 s at the default hop): small enough to stay in cache.
DEFAULT_BLOCK_FRAMES = 1024


class ArraySource:
    """In-memory audio as a block source (same interface as :class:`FileSource`)."""

    def __init__(self, audio: np.ndarray):
        self.audio = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))
        self.n_samples = self.audio.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)``, zero-padded outside the array."""
        out = np.zeros(stop - start, np.float32)
        a, b = max(start, 0), min(stop, self.n_samples)
        if b > a:
            out[a - start : b - start] = self.audio[a:b]
        return out

    def blocks(self, start: int, stop: int, block: int, overlap: int) -> Iterator[tuple[int, np.ndarray]]:
        for pos, end in block_spans(start, stop, block, overlap):
            yield pos, self.audio[pos:end]


#: A float sample this close to full scale counts as clipped (one int16 step below 1).
FULL_SCALE_FLOAT = 1.0 - 2.0**-15


def count_full_scale(samples: np.ndarray) -> int:
    """How many samples sit at full scale: int16's two extreme codes, or ``|x| >= FULL_SCALE_FLOAT``.

    Two SIMD reductions (min, max) settle the usual block, which has no such sample, without the
    element-wise comparisons and their temporary arrays (this count runs on every block read).
    """
    low, high = (-32768, 32767) if samples.dtype == np.int16 else (-FULL_SCALE_FLOAT, FULL_SCALE_FLOAT)
    if samples.max() < high and samples.min() > low:
        return 0
    return int(np.count_nonzero((samples >= high) | (samples <= low)))


class FileSource:
    """A WAV file (header already read and channel checked) as a block source.

    Used as a context manager it keeps the file open for many :meth:`read`/:meth:`blocks`
    calls; otherwise each call opens it.
    """

    def __init__(self, info, channel):
        self.info = info
        self.channel = channel
        self.n_samples = info.n_frames
        # samples at full scale met by blocks() (each counted once, overlaps aside): a clipped recording
        self.n_clipped = 0
        self._clip_counted_to = 0

    _fh = None

    def _count_clipped(self, pos: int, data: np.ndarray) -> None:
        new = data[max(self._clip_counted_to - pos, 0):]
        if new.size:
            self.n_clipped += count_full_scale(new)
            self._clip_counted_to = pos + data.shape[0]

    def __enter__(self):
        """Keep the file open for many :meth:`read` calls."""
        import soundfile as sf

        self._fh = sf.SoundFile(soundfile_source(self.info.path))
        return self

    def __exit__(self, *exc):
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)``, zero-padded outside the file."""
        import soundfile as sf

        out = np.zeros(stop - start, np.float32)
        a, b = max(start, 0), min(stop, self.n_samples)
        if b > a:
            # 16-bit PCM: read int16 and scale in numpy (see usvpipe.audio.pcm16_to_float32)
            pcm16 = self.info.subtype == "PCM_16"
            dtype = "int16" if pcm16 else "float32"
            if self._fh is not None:
                self._fh.seek(a)
                data = self._fh.read(b - a, dtype=dtype, always_2d=True)
            else:
                with sf.SoundFile(soundfile_source(self.info.path)) as fh:
                    fh.seek(a)
                    data = fh.read(b - a, dtype=dtype, always_2d=True)
            if pcm16:
                data = pcm16_to_float32(data)
            out[a - start : a - start + data.shape[0]] = select_channel(data, self.channel)
        return out

    def blocks(self, start: int, stop: int, block: int, overlap: int) -> Iterator[tuple[int, np.ndarray]]:
        """Validated blocks (see :func:`usvpipe.audio.read_block`) of samples ``[start, stop)``.

        A 16-bit PCM channel comes as its int16 values (``band_power`` scales them in its
        window); everything else as float32.
        """
        if self._fh is None:
            with self:
                yield from self.blocks(start, stop, block, overlap)
            return
        for pos, end in block_spans(start, stop, block, overlap):
            data = read_block(self._fh, self.info, pos, end - pos, self.channel, keep_pcm16=True)
            self._count_clipped(pos, data)
            yield pos, data


def iter_frame_blocks(source, geom: FrameGeometry, first: int, stop: int, frames_per_block: int):
    """Yield ``(k0, audio)`` where ``audio[0]`` is the first sample of grid frame ``k0``
    and ``audio`` holds whole frames ``k0 .. k0 + n - 1`` (all below ``stop``)."""
    if stop <= first:
        return
    block = (frames_per_block - 1) * geom.hop + geom.nperseg
    overlap = geom.nperseg - geom.hop
    start_sample = first * geom.hop
    stop_sample = min((stop - 1) * geom.hop + geom.nperseg, source.n_samples)
    for pos, data in source.blocks(start_sample, stop_sample, block, overlap):
        yield pos // geom.hop, data
