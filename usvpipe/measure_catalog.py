"""The classical acoustic measures: their names, units and where each comes from in ``syllables.csv``.

A leaf module shared by the measures stage (:mod:`usvpipe.measures`) and its figure
(:mod:`usvpipe.viz.measures`), so that neither has to import the other for the table.
"""
from __future__ import annotations

#: (column in the per-animal table, label with unit, source column in syllables.csv, scale)
MEASURES = (
    ("calls", "call count", None, 1.0),
    ("calls_per_min", "calls per minute of recording", None, 1.0),
    ("duration_ms", "duration (ms)", "duration_s", 1e3),
    ("mean_freq_khz", "mean frequency (kHz)", "mean_freq_hz", 1e-3),
    ("min_freq_khz", "minimum frequency (kHz)", "min_freq_hz", 1e-3),
    ("max_freq_khz", "maximum frequency (kHz)", "max_freq_hz", 1e-3),
    ("bandwidth_khz", "bandwidth, max − min frequency (kHz)", None, 1e-3),
    ("mean_amplitude", "mean amplitude (dB above noise floor)", "mean_amplitude", 1.0),
    ("peak_amplitude", "peak amplitude (dB above noise floor)", "peak_amplitude", 1.0),
)
LABELS = {m[0]: m[1] for m in MEASURES}
