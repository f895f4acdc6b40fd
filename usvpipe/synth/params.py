"""``WorldParams``: every option of the vocal world, shared by the CLI, a config file and Python.

Frozen and validated once (:func:`usvpipe.constraints.check_params`); the text forms the
CLI takes (``"usage:0.1"``, ``"5:30"``, ``"clicks,hum"``) are parsed by the small
``parse_*`` functions here so that the CLI and a config file read them the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..constraints import Interval, OneOf, check_params, config_error
from .calls import CALL_TYPES
from .noise import NOISE_CLASSES
#: Kinds of planted group difference; ``none`` is the A/A world.
DIFFERENCE_KINDS = ("none", "usage", "pitch", "duration", "shape")
#: What ``difference_size`` means for each kind (also printed by ``usvpipe synth --help``).
DIFFERENCE_UNITS = {
    "none": "ignored",
    "usage": "probability moved from usage_from to usage_to per group step (0.1 = 10 percentage points)",
    "pitch": "kHz added to every call's frequency per group step",
    "duration": "percent added to every call's duration per group step",
    "shape": "relative change of FM extent and jump size per group step (0.3 = 30 % larger); "
             "mean frequency and duration unchanged",
}


@dataclass(frozen=True)
class WorldParams:
    """The vocal world (``usvpipe synth --world vocal``).

    Group ``k`` (0-based, in the order of ``groups``) carries ``k * difference_size`` of
    the planted difference, so with two groups the second differs and the first is the
    reference. Defaults: six animals per group (a typical cohort), 200 syllables per
    animal (a short session), all call types, every noise class on, per-call SNR uniform
    in 5–30 dB (the range a threshold segmenter meets, from barely visible to clean).
    """

    groups: tuple = ("A", "B")
    animals_per_group: int = 6
    recordings_per_animal: int = 1
    syllables_per_animal: int = 200
    call_types: tuple = CALL_TYPES
    #: Dirichlet concentration of an animal's usage around its group's (larger = closer).
    usage_concentration: float = 50.0
    #: SD (kHz) of an animal's own pitch offset, added to all its calls.
    animal_pitch_sd_khz: float = 2.0
    #: SD of an animal's own log-duration factor (0.1 ~ 10 % longer or shorter calls).
    animal_duration_sd: float = 0.1
    noise: tuple = NOISE_CLASSES
    #: Per-call SNR (dB), uniform between the two values; equal values fix it exactly.
    snr_db: tuple = (5.0, 30.0)
    difference: str = "none"
    difference_size: float = 0.0
    usage_from: str = "upsweep"
    usage_to: str = "step"
    #: Silence between consecutive calls: ``min_gap_s`` + exponential with this mean (s).
    mean_gap_s: float = 0.12
    min_gap_s: float = 0.02
    sample_rate_hz: int = 250_000
    seed: int = 0

    _constraints = {
        "animals_per_group": [Interval(int, 1, None)],
        "recordings_per_animal": [Interval(int, 1, None)],
        "syllables_per_animal": [Interval(int, 1, None)],
        "usage_concentration": [Interval(float, 0, None, closed="neither")],
        "animal_pitch_sd_khz": [Interval(float, 0, 20)],
        "animal_duration_sd": [Interval(float, 0, 1)],
        "difference": [OneOf(*DIFFERENCE_KINDS)],
        "difference_size": [Interval(float, -100, 100)],
        "usage_from": [OneOf(*CALL_TYPES)],
        "usage_to": [OneOf(*CALL_TYPES)],
        "mean_gap_s": [Interval(float, 0, 10, closed="neither")],
        "min_gap_s": [Interval(float, 0, 10)],
        "sample_rate_hz": [Interval(int, 240_000, 1_000_000)],
        "seed": [Interval(int, 0, None)],
    }

    def __post_init__(self):
        for name in ("groups", "call_types", "noise", "snr_db"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = tuple(v for v in value.split(",") if v)
            object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "snr_db", tuple(float(v) for v in self.snr_db))
        object.__setattr__(self, "difference_size", float(self.difference_size))
        check_params(self, "synth")
        self._check_names()
        lo, hi = (self.snr_db * 2)[:2] if len(self.snr_db) == 1 else self.snr_db
        if len(self.snr_db) not in (1, 2) or lo > hi:
            raise config_error("synth", "snr_db", f"{self.snr_db!r} is not one value or a (low, high) range",
                               "give e.g. 10 or (5, 30)")
        object.__setattr__(self, "snr_db", (lo, hi))
        if self.syllables_per_animal < self.recordings_per_animal:
            raise config_error("synth", "syllables_per_animal",
                               f"{self.syllables_per_animal} is fewer than recordings_per_animal "
                               f"({self.recordings_per_animal}): a recording would hold no call",
                               "give at least one syllable per recording")
        if self.difference == "usage" and self.usage_from == self.usage_to:
            raise config_error("synth", "usage_to", "equals usage_from", "move usage between two different types")

    def _check_names(self):
        groups = [str(g) for g in self.groups]
        if not groups or len(set(groups)) != len(groups) or any(not g or "/" in g for g in groups):
            raise config_error("synth", "groups", f"{groups} are not distinct non-empty names without '/'",
                               "give e.g. A,B")
        object.__setattr__(self, "groups", tuple(groups))
        bad = [t for t in self.call_types if t not in CALL_TYPES]
        if bad or not self.call_types:
            raise config_error("synth", "call_types", f"unknown or empty call type(s) {bad or list(self.call_types)}",
                               f"choose from {', '.join(CALL_TYPES)}")
        bad = [n for n in self.noise if n not in NOISE_CLASSES]
        if bad:
            raise config_error("synth", "noise", f"unknown noise class(es) {bad}",
                               f"choose from {', '.join(NOISE_CLASSES)}, or none")
        if self.difference == "usage" and {self.usage_from, self.usage_to} - set(self.call_types):
            raise config_error("synth", "usage_from", f"{self.usage_from}/{self.usage_to} not among call_types",
                               "include both types in call_types or choose others")


def parse_difference(text: str) -> tuple:
    """``"usage:0.1"`` -> ``("usage", 0.1)``; ``"none"`` -> ``("none", 0.0)``."""
    kind, _, size = str(text).partition(":")
    kind = kind.strip()
    if kind not in DIFFERENCE_KINDS:
        raise config_error("synth", "difference", f"{text!r} is not a known kind",
                           f"use KIND:SIZE with KIND one of {', '.join(DIFFERENCE_KINDS)}, e.g. usage:0.1")
    try:
        value = float(size) if size.strip() else 0.0
    except ValueError:
        raise config_error("synth", "difference", f"size {size!r} is not a number", "e.g. pitch:2.0") from None
    return kind, value


def parse_snr(text: str) -> tuple:
    """``"10"`` -> ``(10, 10)``; ``"5:30"`` -> ``(5, 30)`` (uniform in dB)."""
    try:
        values = tuple(float(v) for v in str(text).split(":"))
    except ValueError:
        raise config_error("synth", "snr_db", f"{text!r} is not a number or LOW:HIGH", "e.g. 10 or 5:30") from None
    return values if len(values) == 2 else values * 2


def parse_names(text: str) -> tuple:
    """``"clicks, hum"`` -> ``("clicks", "hum")``; ``"none"`` or ``""`` -> ``()``."""
    names = tuple(t.strip() for t in str(text).split(",") if t.strip())
    return () if names in (("none",), ()) else names
