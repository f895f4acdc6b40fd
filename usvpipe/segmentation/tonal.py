"""The tonal detection trace: how far a frame's strongest bin stands above the frame's own spectral envelope.

Why
---
Mouse USVs are whistles: at any instant one narrow peak (plus, at most, a harmonic) in the
30-110 kHz band. The band-power trace (the loudest bin over its noise floor) cannot tell
such a peak from a broadband sound that raises every bin: a click, a cage scratch, a
noise burst. A burst between two calls then holds the trace above the low threshold and
bridges them, and a burst alone becomes a detection.

The tonal trace measures the *shape* of each frame's spectrum instead of its level:

1. **Whitening** (done by the caller, :mod:`usvpipe.segmentation.trace`): each bin's power
   is divided by that bin's noise floor (its median over a fixed window of the recording),
   so stationary background of any colour, hum lines included, becomes a flat spectrum
   whose bins fluctuate around 1.
2. **Envelope**: a least-squares line through the frame's whitened log power against the
   logarithm of frequency. A broadband sound, white or with a power-law tilt (the ~1/f^a
   spectra of scratches and rustling), lies on that line whatever its level; a narrow
   peak of a few of the ~160 bins barely moves it (a 40 dB peak over 3 bins raises the
   line by < 1 dB at the band's centre).
3. **Tonality**: the largest excess of any bin over that line, in dB. For background noise
   this is the maximum of ~160 exponential fluctuations (about 9-10 dB, the same as the
   band-power trace on noise); for a broadband burst, of any level, it stays there (the
   burst's own fluctuations are exponential too; a smooth click is lower still); for a
   whistle it is the whistle's level over the local background.

This follows the idea of USVSEG (Tachibana et al. 2020, PLoS ONE 15:e0228907), which
flattens each frame's spectrum by removing its smooth envelope (cepstral liftering) before
thresholding, and of Pessoa et al. (2022, JASA 152:266), who segment on spectral entropy,
a flatness measure; it is neither: a two-parameter envelope per frame costs two dot
products, so the trace stays a few vectorised passes over the STFT the segmenter already
computes (see ``scripts/bench/segment.py`` for the cost).

Exactness under streaming
-------------------------
Every value depends only on its own frame's spectrum and on the noise floor of the fixed
noise window holding that frame (a window on the absolute frame grid, see
:func:`usvpipe.segmentation.trace.noise_windows`), so it is identical whatever the block
size in which a file is read.
"""
from __future__ import annotations

import functools

import numpy as np

# log10 of the smallest whitened power considered (digital silence: -200 dB)
_TINY = np.float32(1e-20)
#: The line through noise's log power is its geometric mean, exp(-Euler's gamma) = 0.561
#: times its mean power; the noise floor the band-power trace is measured against is the
#: median, ln 2 = 0.693 times it. Adding the ratio, 10 log10(ln 2 exp(gamma)) = 0.915 dB, to
#: the line puts both traces in the same unit (dB above a median-level background), so
#: background noise reads alike on both (median ~9 dB, 99.99th percentile ~13.5 dB).
GEOMETRIC_TO_MEDIAN_DB = float(10.0 * np.log10(np.log(2.0) * np.exp(np.euler_gamma)))


@functools.lru_cache(maxsize=32)
def _regressor(freqs_key: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Centred log-frequency ``x`` of the band's bins, and the ``(n_bins, 2)`` matrix whose
    product with a frame's log power gives the least-squares line's level (the mean) and
    slope."""
    x = np.log(np.asarray(freqs_key, np.float64))
    x -= x.mean()
    ss = float((x * x).sum())
    fit = np.empty((x.size, 2), np.float32)
    fit[:, 0] = 1.0 / x.size
    fit[:, 1] = x / ss if ss > 0 else 0.0
    return x.astype(np.float32), fit


def tonal_peak(whitened: np.ndarray, freqs_hz: np.ndarray, workspace: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame tonality (dB) and the band bin where it peaks.

    Parameters
    ----------
    whitened : numpy.ndarray
        float32 ``(n_frames, n_bins)``: band power divided by each bin's noise floor
        (not modified).
    freqs_hz : numpy.ndarray
        ``(n_bins,)`` centre frequencies of the band's bins.
    workspace : dict, optional
        Scratch buffers kept between calls (the caller's per-recording workspace).

    Returns
    -------
    tonality_db : numpy.ndarray
        float32 ``(n_frames,)``: ``10 * max_b(log10 W_b - line_b) - 0.915``, the line
        being the least-squares fit of ``log10 W`` against ``log(frequency)`` in that
        frame (see :data:`GEOMETRIC_TO_MEDIAN_DB`).
    peak_bin : numpy.ndarray
        int ``(n_frames,)``: the bin of that maximum.

    Three passes over the spectrum: a log, one matrix product for every frame's line
    (level and slope), and the line's removal as a BLAS rank-1 update in place
    (``sger``), then the argmax. A first version in plain numpy (a floor before the log,
    row means, an outer product and a subtraction) cost 2.6x as much per frame.
    """
    from scipy.linalg import blas

    n, nb = whitened.shape
    if n == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    key = ("tonal_fit", nb, float(freqs_hz[0]), float(freqs_hz[-1]))
    if workspace is not None and key in workspace:
        x, fit = workspace[key]
    else:
        x, fit = _regressor(tuple(float(f) for f in freqs_hz))
        if workspace is not None:
            workspace[key] = (x, fit)
    log_w = _buffer(workspace, "tonal_log", (n, nb))
    with np.errstate(divide="ignore", invalid="ignore"):
        np.log10(whitened, out=log_w)
        coef = log_w @ fit  # (n, 2): level, slope
        # a finite total means every frame's line is finite (a per-row test costs as much as the matmul)
        bad = None if np.isfinite(coef.sum()) else ~np.isfinite(coef).all(axis=1)
    if bad is not None and bad.any():  # exact zeros (digital silence): floor them, for those frames only
        log_w[bad] = np.log10(np.maximum(whitened[bad], _TINY))
        coef[bad] = log_w[bad] @ fit
    # log_w -= outer(slope, x), in place: the C-ordered (n, nb) buffer is the Fortran-ordered
    # (nb, n) matrix BLAS sees, so the update is x (outer) slope
    out = blas.sger(np.float32(-1.0), x, np.ascontiguousarray(coef[:, 1]), a=log_w.T, overwrite_a=1)
    if not np.shares_memory(out, log_w):  # BLAS made a copy (never with these layouts); keep the result
        log_w[...] = out.T
    peak_bin = log_w.argmax(axis=1)
    peak = log_w[np.arange(n), peak_bin]
    peak -= coef[:, 0]
    peak *= np.float32(10.0)
    peak -= np.float32(GEOMETRIC_TO_MEDIAN_DB)
    return peak.astype(np.float32, copy=False), peak_bin


def _buffer(workspace: dict | None, key: str, shape: tuple) -> np.ndarray:
    """A float32 scratch array of ``shape``, reused across noise windows when a workspace is given."""
    if workspace is None:
        return np.empty(shape, np.float32)
    buf = workspace.get(key)
    if buf is None or buf.shape[0] < shape[0] or buf.shape[1] != shape[1]:
        buf = workspace[key] = np.empty(shape, np.float32)
    return buf[: shape[0]]
