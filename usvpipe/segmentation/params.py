"""Parameters of the segmentation stage: detection (:class:`SegmentParams`) and syllable images (:class:`SyllableParams`).

Frozen dataclasses, the single source of defaults for the API, the CLI and ``usvpipe.toml``
(``[segment]`` and ``[syllables]``); each default states why it is that value.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..constraints import Interval, OneOf, check_params, config_error
from .spectrogram import SpectrogramParams

_THRESHOLD_MODES = ("noise", "absolute")
_TRACES = ("tonal", "band_power")
_NORMALIZATIONS = ("noise", "fixed")
_NUMBER = Interval(float)
_NON_NEGATIVE = Interval(float, 0, None)
_POSITIVE = Interval(float, 0, None, closed="neither")


@dataclass(frozen=True)
class SegmentParams:
    """Amplitude-threshold segmentation settings.

    Attributes
    ----------
    threshold_mode : {"noise", "absolute"}
        ``"noise"`` (default): trace = loudest band bin in dB above that bin's noise
        floor; robust to gain and coloured noise, sensitive to faint narrow-band calls.
        ``"absolute"``: AVA's mean normalised spectrogram amplitude.
    trace : {"tonal", "band_power"}
        The per-frame detection trace in ``noise`` mode (see
        :mod:`usvpipe.segmentation.tonal`). ``"tonal"`` (default): how far the frame's
        strongest whitened bin stands above the frame's own spectral envelope (a line in
        log power vs. log frequency), so broadband sounds (clicks, scratches, bursts, a
        gain step) read as background whatever their level, and a burst between two calls
        does not bridge them. ``"band_power"``: the strongest whitened bin over its noise
        floor (the previous default; a broadband sound raises it like a call). Chosen on
        the synthetic noise classes (``scripts/bench/segment_noise_classes.py``) and
        checked on amvoc; ``benchmarks/segmentation-defaults.md`` gives both.
    high_threshold : float
        A syllable's trace must exceed this somewhere (default 14 dB above the
        background in ``noise`` mode). Set from the trace's statistics on background
        noise alone, not from calls: both traces are the maximum of ~160 exponential
        fluctuations (median ~9 dB) and white noise exceeds 14 dB in < 1e-4 of the frames
        (99.99th percentile 13.2 dB band-power, 13.5 dB tonal; 30 s of white noise).
    low_threshold : float
        The syllable extends while the trace stays above this (default 12 dB, which
        background noise exceeds in < 1 % of the frames: 0.4 % band-power, 0.6 % tonal):
        the hysteresis keeps faint onsets/offsets attached to a call detected by its peak.
    abs_high_threshold, abs_low_threshold : float
        The same for ``absolute`` mode, in normalised [0, 1] units.
    smoothing_s : float
        Gaussian smoothing (standard deviation) of the trace (default 0: none; LORO chose
        none over 1 and 2 ms, the sub-frame boundary interpolation needs no smoothing).
    min_dur_s, max_dur_s : float
        Syllables outside this duration range are dropped (default 5 ms - 0.5 s: mouse
        USVs are rarely shorter than 5 ms, the shortest human-labelled amvoc syllable
        lasts 8 ms; longer events are usually noise; 2-3 ms keeps the shortest calls at
        some cost in precision, see benchmarks/segmentation-defaults.md). A dropped
        short piece is counted in the ``dropped_fragments`` column of the nearest kept
        detection within ``contour_max_gap_s``.
    min_gap_s : float
        Syllables separated by less than this are merged whatever their spectrum
        (default 10 ms: half the shortest silence between two syllables, which holds an
        inspiration; a call whose level dips for a few ms stays one syllable).
    contour_max_gap_s, contour_max_jump_hz : float
        The contour rule (:mod:`usvpipe.segmentation.fragments`): pieces separated by a
        silence shorter than ``contour_max_gap_s`` (default 20 ms) are joined when the
        peak frequency where one ends and the next starts differ by at most
        ``contour_max_jump_hz`` (default 10 kHz). 20 ms: syllables are produced on
        exhalations, so two syllables are separated by an inspiration (Sirotin et al.
        2014; Castellucci et al. 2018), and no two annotated amvoc syllables are closer
        than 18 ms; a shorter silence with a continuous contour is a dip inside one call.
        10 kHz: of the two finalists (5 and 10 kHz) on the synthetic ``dips`` class (calls
        with a 8-18 ms near-silent stretch), 5 kHz left calls whose sweep and FM moved
        their frequency by more across the dip unjoined (event F1 0.957 vs 0.989 at
        10 dB SNR). ``contour_max_gap_s = 0`` turns the rule off.
    noise_window_s : float
        Length of the fixed windows in which the per-bin noise floor is re-estimated
        (default 2 s: the floor follows changes of the background within seconds,
        e.g. an animal moving or equipment switching; still long enough that calls
        occupy a minority of any bin's frames).
    noise_max_frames : int
        At most this many evenly spaced frames per window are used for the floor.
    valley_db : float
        Split a detection at an internal valley of the smoothed trace at least this many
        dB below the lower of the highest points on either side, where the trace stays
        low for at least ``min_gap_s`` (default 0 = never split; ``noise`` mode only; see
        :mod:`usvpipe.segmentation.decisions`). Off by default because it loses on the
        leave-one-recording-out figures (real calls of amvoc rec_2 have dips that deep),
        although 15 dB fixes the echo class of the stress benchmark; turn it on for
        reverberant recordings.
    noise_check : bool
        Drop detections whose spectrum looks like a broadband click or low-frequency noise
        rather than a narrow-band call (default True: it wins on the stress benchmark's
        click and low-frequency classes and on amvoc removes false detections only;
        ``noise`` mode only; see :mod:`usvpipe.segmentation.decisions`).
    noise_max_fraction : float
        Median fraction of the band's bins more than 10 dB above their floor above which a
        detection is a broadband click (default 0.25: whistles raise < 5 % of the bins,
        clicks 70-97 %), if it is also shorter than ``noise_click_max_dur_s``.
    noise_low_edge_hz : float
        A detection whose median centroid of those elevated bins lies less than this above
        the band's lower edge is low-frequency noise leaking into the band (default 15 kHz:
        the stress benchmark's low-passed bursts reach ~44 kHz, mouse calls on amvoc and in
        the synthetic benchmarks sit at 47 kHz or more, for a 30 kHz edge).
    noise_click_max_dur_s : float
        Only detections shorter than this can be rejected as clicks (default 30 ms: clicks
        and click bursts are brief, while harmonic stacks such as deer-mouse pup cries are
        broadband for 40-160 ms).
    """

    threshold_mode: str = "noise"
    trace: str = "tonal"
    high_threshold: float = 14.0
    low_threshold: float = 12.0
    abs_high_threshold: float = 0.3
    abs_low_threshold: float = 0.2
    smoothing_s: float = 0.0
    min_dur_s: float = 0.005
    max_dur_s: float = 0.5
    min_gap_s: float = 0.010
    noise_window_s: float = 2.0
    noise_max_frames: int = 500
    valley_db: float = 0.0
    noise_check: bool = True
    noise_max_fraction: float = 0.25
    noise_low_edge_hz: float = 15_000.0
    noise_click_max_dur_s: float = 0.030
    contour_max_gap_s: float = 0.020
    contour_max_jump_hz: float = 10_000.0

    _constraints = {
        "threshold_mode": [OneOf(*_THRESHOLD_MODES)],
        "trace": [OneOf(*_TRACES)],
        "high_threshold": [_NUMBER],
        "low_threshold": [_NUMBER],
        "abs_high_threshold": [_NUMBER],
        "abs_low_threshold": [_NUMBER],
        "smoothing_s": [_NON_NEGATIVE],
        "min_dur_s": [_NON_NEGATIVE],
        "max_dur_s": [_POSITIVE],
        "min_gap_s": [_NON_NEGATIVE],
        "noise_window_s": [_POSITIVE],
        "noise_max_frames": [Interval(int, 16, None)],
        "valley_db": [_NON_NEGATIVE],
        "noise_max_fraction": [Interval(float, 0, 1, closed="right")],
        "noise_low_edge_hz": [_NON_NEGATIVE],
        "noise_click_max_dur_s": [_NON_NEGATIVE],
        "contour_max_gap_s": [_NON_NEGATIVE],
        "contour_max_jump_hz": [_NON_NEGATIVE],
    }

    def __post_init__(self):
        check_params(self, "segment")
        if self.low_threshold > self.high_threshold:
            raise config_error("segment", "low_threshold",
                               f"{self.low_threshold!r} is above high_threshold {self.high_threshold!r}",
                               "set low_threshold <= high_threshold")
        if self.abs_low_threshold > self.abs_high_threshold:
            raise config_error("segment", "abs_low_threshold",
                               f"{self.abs_low_threshold!r} is above abs_high_threshold {self.abs_high_threshold!r}",
                               "set abs_low_threshold <= abs_high_threshold")
        if not self.min_dur_s < self.max_dur_s:
            raise config_error("segment", "min_dur_s", f"{self.min_dur_s!r} is not below max_dur_s {self.max_dur_s!r}",
                               "set min_dur_s < max_dur_s")

    @property
    def thresholds(self) -> tuple[float, float]:
        """``(high, low)`` for the active mode."""
        if self.threshold_mode == "absolute":
            return self.abs_high_threshold, self.abs_low_threshold
        return self.high_threshold, self.low_threshold


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

    _constraints = {
        "max_dur_s": [_POSITIVE],
        "time_stretch": [OneOf(True, False)],
        "min_freq_hz": [_NON_NEGATIVE],
        "max_freq_hz": [_NON_NEGATIVE],
        "normalization": [OneOf(*_NORMALIZATIONS)],
        "dynamic_range_db": [_POSITIVE],
    }

    def __post_init__(self):
        shape = self.shape
        if (not isinstance(shape, (tuple, list)) or len(shape) != 2
                or not all(Interval(int, 4, None).accepts(n) for n in shape)):
            raise config_error("syllables", "shape", f"{shape!r} is not two integers >= 4",
                               "set shape to (n_freq, n_time), e.g. [128, 128]")
        object.__setattr__(self, "shape", (int(shape[0]), int(shape[1])))
        check_params(self, "syllables")
        if self.min_freq_hz and self.max_freq_hz and not self.min_freq_hz < self.max_freq_hz:
            raise config_error("syllables", "min_freq_hz", f"{self.min_freq_hz!r} is not below max_freq_hz {self.max_freq_hz!r}",
                               "set min_freq_hz < max_freq_hz, or 0 for the spectrogram band's edge")

    def band(self, sp: SpectrogramParams) -> tuple[float, float]:
        lo = self.min_freq_hz or sp.min_freq_hz
        hi = self.max_freq_hz or sp.max_freq_hz
        if lo < sp.min_freq_hz - 1e-9 or hi > sp.max_freq_hz + 1e-9:
            name = "min_freq_hz" if lo < sp.min_freq_hz - 1e-9 else "max_freq_hz"
            raise config_error("syllables", name,
                               f"the band {lo:.0f}-{hi:.0f} Hz is not inside the spectrogram band "
                               f"{sp.min_freq_hz:.0f}-{sp.max_freq_hz:.0f} Hz",
                               "choose min_freq_hz/max_freq_hz inside [spectrogram]'s band, or 0 for its edge")
        return lo, hi

    def span_s(self, duration_s: np.ndarray) -> np.ndarray:
        """Time span shown by each syllable's image."""
        d = np.asarray(duration_s, dtype=np.float64)
        if self.time_stretch:
            return np.where(d < self.max_dur_s, np.sqrt(np.maximum(d, 0.0) * self.max_dur_s), self.max_dur_s)
        return np.full_like(d, self.max_dur_s)
