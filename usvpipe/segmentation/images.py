"""Fixed-size syllable spectrograms for the store (AVA-compatible, default 128 x 128).

Computed directly at the target time points from the recording, frequency increasing
with the row index, normalised against the recording's noise floor (or AVA's fixed scale).
"""
from __future__ import annotations

import contextlib

import numpy as np

from .params import SyllableParams
from .spectrogram import SpectrogramParams, band_power, power_to_db

_IMAGE_BATCH = 32  # syllables per batch (bounds the gathered frames to 8 MB at 128 x 512)
#: Fraction of an image's width that may lie before the recording's start or after its end
#: (shown as silence) before the image counts as padded: a sliver at the edge is harmless,
#: a syllable cut out with no context (a pre-cut clip) is not.
PADDED_FRACTION = 0.1


#: ``syllables.csv`` column: 1 where the syllable's image runs past its recording (see below).
PADDED_COLUMN = "image_padded"


def describe_padded(per_recording, n_syllables: int) -> str:
    """One sentence on syllables whose images run past their recording ("" when there are none).

    ``per_recording``: ``(recording, n_padded, n_syllables_in_it)`` for each recording with
    some; ``n_syllables``: all the syllables they are counted among. A recording whose every
    syllable is padded is most likely a pre-cut clip, and the sentence says so.
    """
    rows = [r for r in per_recording if r[1] > 0]
    if not rows:
        return ""
    whole = [rec for rec, n_padded, n in rows if n_padded == n]
    example = whole[0] if whole else max(rows, key=lambda r: r[1])[0]
    clips = f"; all of the syllables of {len(whole)}, e.g. {whole[0]}: pre-cut clips?" if whole else ""
    return (f"{sum(r[1] for r in rows)} of {n_syllables} syllables (in {len(rows)} recording(s), e.g. {example}) "
            f"have images that run past their recording's start or end (silence shown{clips}; column "
            f"{PADDED_COLUMN}): they may group by that alone in the latents and UMAP (fix: segment the full "
            "recordings, or leave them out of a comparison)")


def padded_images_line(table) -> str:
    """:func:`describe_padded` for a store table (``recording`` and :data:`PADDED_COLUMN`; "" without them)."""
    columns = getattr(table, "columns", ())
    if PADDED_COLUMN not in columns or "recording" not in columns:
        return ""
    padded = table[PADDED_COLUMN].fillna(0).to_numpy() > 0
    counts = table.assign(_padded=padded).groupby(table["recording"].astype(str))["_padded"].agg(["sum", "size"])
    return describe_padded([(rec, int(c["sum"]), int(c["size"])) for rec, c in counts.iterrows()], len(table))


def images_past_the_edges(onset_s, offset_s, recording_s: float, params: SyllableParams) -> np.ndarray:
    """Which syllables' image windows run past the recording by more than :data:`PADDED_FRACTION`.

    Outside the recording the image is silence (zero power, black), so such images differ
    from the rest for a reason that has nothing to do with the call: a VAE and a UMAP will
    group them by their black margins.
    """
    onset = np.asarray(onset_s, np.float64)
    offset = np.asarray(offset_s, np.float64)
    span = params.span_s(offset - onset)
    centre = 0.5 * (onset + offset)
    outside = np.maximum(0.0, span / 2 - centre) + np.maximum(0.0, centre + span / 2 - recording_s)
    return outside > PADDED_FRACTION * span


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
    """Fixed-size spectrogram of each segment, all in one array (see :func:`iter_syllable_images`).

    Returns
    -------
    numpy.ndarray
        float32 ``(n, H, W)`` in [0, 1]; frequency increases with the row index.
    """
    out = np.zeros((len(segments), *params.shape), np.float32)
    pos = 0
    for block in iter_syllable_images(source, segments, trace, spectrogram_params, params):
        out[pos : pos + block.shape[0]] = block
        pos += block.shape[0]
    return out


def iter_syllable_images(source, segments, trace, spectrogram_params: SpectrogramParams, params: SyllableParams):
    """Fixed-size spectrogram of each segment, yielded in blocks of up to 32 syllables.

    What the batch writes into a shard block by block, so a recording's images are never
    all in memory (a dense 3-h recording has ~40 000 syllables: 2.6 GB as float32).

    Parameters
    ----------
    source : object with ``read(start, stop)`` (zero-padded) and ``n_samples``
        The recording (see :mod:`usvpipe.segmentation.sources`).
    segments : pandas.DataFrame
        ``onset_s``, ``offset_s``.
    trace : usvpipe.segmentation.trace.Trace
        Gives the frame geometry and the noise floor.
    spectrogram_params, params : SpectrogramParams, SyllableParams

    Yields
    ------
    numpy.ndarray
        float32 ``(k, H, W)`` in [0, 1]; frequency increases with the row index.
    """
    geom = trace.geom
    n_freq, n_time = params.shape
    n = len(segments)
    if n == 0:
        return
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
                db = power_to_db(power, scale=10.0 / params.dynamic_range_db, out=power)
            else:
                db = power_to_db(power, out=power) + np.float32(geom.db_offset - spectrogram_params.spec_min_db)
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
            yield img
