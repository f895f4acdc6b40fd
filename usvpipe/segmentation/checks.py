"""Warnings about a batch's recordings that are readable but not what an analysis assumes.

Each function returns one line ("" when there is nothing to say); the batch logs it:

- recordings at different sample rates in one store (the same call gives a different image
  at another rate: frame length and frequency resolution are set in samples);
- clipped recordings (samples at full scale: clipping adds harmonics that look like calls);
- the same recording twice (a symbolic link, or a "(copy)" of a file): its animal counts double.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable, Mapping

# A handful of full-scale samples in a recording is a click; this many is clipping worth a look.
CLIPPED_MIN_SAMPLES = 10


def sample_rate_note(rates: Mapping[str, int]) -> str:
    """``rates``: recording -> sample rate (Hz) of a batch's recordings."""
    counts = Counter(rates.values())
    if len(counts) < 2:
        return ""
    rarest = min(counts, key=lambda r: (counts[r], r))
    example = next(rec for rec, r in sorted(rates.items()) if r == rarest)
    listing = ", ".join(f"{r} Hz: {n}" for r, n in sorted(counts.items()))
    return (f"recordings at {len(counts)} sample rates in one analysis ({listing}; e.g. {example} at {rarest} Hz): "
            "their syllable images differ by rate (fix: resample them to one rate, or analyse each rate apart)")


def clipped_note(clipped: Iterable[tuple[str, int, int]]) -> str:
    """``clipped``: (recording, samples at full scale, samples) of the recordings processed now."""
    hits = sorted(((rec, n, total) for rec, n, total in clipped if n >= CLIPPED_MIN_SAMPLES), key=lambda t: -t[1])
    if not hits:
        return ""
    rec, n, total = hits[0]
    return (f"{len(hits)} recording(s) clipped (e.g. {rec}: {n} samples at full scale, {100.0 * n / max(total, 1):.3g} %): "
            "clipping adds harmonics that look like calls (fix: record with lower gain; check their syllables)")


def duplicate_note(sources: Mapping[str, Mapping]) -> str:
    """``sources``: recording -> manifest entry (``source_path``, ``source_size``, ``source_digest``)."""
    same = defaultdict(list)
    for rec, entry in sources.items():
        if entry.get("source_digest"):
            same[(entry.get("source_size"), entry["source_digest"])].append(rec)
    twins = sorted(sorted(recs) for recs in same.values() if len(recs) > 1)
    if not twins:
        return ""
    example = " and ".join(twins[0][:3])
    return (f"{sum(len(t) for t in twins)} recordings are {len(twins)} recording(s) present more than once "
            f"(same content: a symbolic link or a copied file), e.g. {example}: their syllables count twice "
            "(fix: remove the duplicates from the input folder)")
