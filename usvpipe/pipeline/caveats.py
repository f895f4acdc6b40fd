"""What the report adds beside the MMD answer so that a scientist reads it the right way.

- :func:`direction_sentence`: which way the classical measures differ, in words, with the size and
  the animal-level test behind each claim ("B's calls are longer (+12 ms, p = 0.004) ... than A's");
  nothing directional when no measure differs.
- :func:`health_against_pca`: the VAE reconstructs held-out syllables worse than PCA of the same
  dimension, and what the representation that holds up says (the second-opinion row).
- :func:`synthetic_note`, :func:`short_recordings_warning`, :func:`negative_interval_note`: numbers
  that mislead unless flagged (synthetic data, calls per minute over pre-cut clips, an MMD²
  interval below zero).

Pure functions of the run's records (``measures.json``, ``measures_per_animal.csv``, the MMD
result, the training health), kept apart from the report's layout so each reads and tests alone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional

from .answer import _fmt, pca_comparison

#: measure -> (words when B > A, words when B < A, unit, subject): the words finish "B's calls are ..."
#: (subject "calls") or "B's animals ..." (subject "animals")
DIRECTION_WORDS = {
    "calls": ("made more calls", "made fewer calls", "calls", "animals"),
    "calls_per_min": ("call more often", "call less often", "calls/min", "animals"),
    "duration_ms": ("longer", "shorter", "ms", "calls"),
    "mean_freq_khz": ("higher", "lower", "kHz mean frequency", "calls"),
    "min_freq_khz": ("higher at their lowest", "lower at their lowest", "kHz minimum frequency", "calls"),
    "max_freq_khz": ("higher at their highest", "lower at their highest", "kHz maximum frequency", "calls"),
    "bandwidth_khz": ("wider in frequency", "narrower in frequency", "kHz bandwidth", "calls"),
    "mean_amplitude": ("louder", "quieter", "dB mean amplitude", "calls"),
    "peak_amplitude": ("louder at their peak", "quieter at their peak", "dB peak amplitude", "calls"),
}
#: recordings shorter than this (median) are pre-cut clips, not sessions: a calling rate over them
#: counts calls per minute of clip (clips are cut around calls), not per minute of behaviour
SHORT_RECORDING_S = 60.0


def _signed(x: float) -> str:
    s = _fmt(abs(x), 2)
    return ("+" if x > 0 else "−") + s


def direction_sentence(meas: Optional[Mapping]) -> str:
    """"B's calls are longer (+12 ms, p = 0.004) and higher (+4.1 kHz mean frequency, p = 0.01) than A's",
    from the measures that differ at the animal level after Holm's correction ("" when none does)."""
    tests = (meas or {}).get("tests") or []
    groups = list((meas or {}).get("groups") or [])
    if len(groups) != 2:
        return ""
    a, b = (str(g) for g in groups)
    claims: dict[str, list[str]] = {"calls": [], "animals": []}
    for t in tests:
        words = DIRECTION_WORDS.get(str(t.get("measure")))
        diff = t.get("difference")
        if not t.get("reject") or words is None or diff is None or not diff == diff or diff == 0:
            continue
        more, less, unit, subject = words
        claims[subject].append(f"{more if diff > 0 else less} ({_signed(diff)} {unit}, p = {_fmt(t.get('p_holm'))})")
    parts = []
    if claims["calls"]:
        parts.append(f"{b}'s calls are " + _join(claims["calls"]) + f" than {a}'s")
    if claims["animals"]:
        parts.append(f"{b}'s animals " + _join(claims["animals"]) + f" than {a}'s")
    if not parts:
        return ""
    return ("; ".join(parts) + " (mean of the animals' means, B − A; p: animal-level permutation test, "
            "Holm-corrected over the measures).")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _pca_row(mmd: Optional[Mapping]) -> Optional[Mapping]:
    for r in (mmd or {}).get("second_opinion") or []:
        if isinstance(r, Mapping) and "pca" in str(r.get("representation", "")).lower():
            return r
    return None


def vae_worse_than_pca(health: Optional[Mapping]) -> bool:
    """The VAE's (held-out) reconstruction R² is below PCA's of the same dimension."""
    return bool(pca_comparison(health))


def health_against_pca(mmd: Optional[Mapping]) -> str:
    """A sentence when the VAE reconstructs worse than PCA of the same dimension ("" otherwise), naming
    what the PCA representation's own test says, so the reader leads with the one that holds up."""
    h = (mmd or {}).get("latent_health") or {}
    if not vae_worse_than_pca(h):
        return ""
    held = "held-out " if h.get("held_out") else ""
    how = pca_comparison(h)
    text = (f"The VAE reconstructs {held}syllables {how} PCA of the same dimension (reconstruction R² "
            f"{_fmt(h.get('recon_r2'))} against {_fmt(h.get('pca_r2'))}): its latents describe the calls "
            f"{'less well than' if how == 'worse than' else 'no better than'} a linear summary does, so lead with the PCA "
            "representation")
    row = _pca_row(mmd)
    if row is not None and row.get("p_value") is not None:
        verdict = "the groups differ" if row.get("reject") else "no evidence that the groups differ"
        text += (f", whose animal-level test says {verdict} (MMD² = {_fmt(row.get('statistic'), 4)}, "
                 f"p = {_fmt(row.get('p_value'))})")
    return text + "; retraining the VAE longer or with more syllables may change this."


def synthetic_note(input_dir, source: str = "") -> str:
    """A line when the run's recordings were generated (``usvpipe synth`` and the demo write ``synth.json``;
    the demo's config is named ``usvpipe demo``, so its report says so even when its data were moved)."""
    synthetic = source == "usvpipe demo"
    try:
        synthetic = synthetic or bool(input_dir) and (Path(input_dir) / "synth.json").is_file()
    except (OSError, TypeError):
        pass
    if not synthetic:
        return ""
    return ("These data are synthetic (generated by usvpipe: see synth.json in the input folder): the difference "
            "between the groups was planted to show the pipeline at work; nothing here is about real mice.")


def short_recordings_warning(per_animal) -> str:
    """A warning when calls per minute are computed over pre-cut clips (median recording < 1 minute)."""
    import numpy as np

    if per_animal is None or not {"recorded_min", "n_recordings", "calls_per_min"} <= set(per_animal.columns):
        return ""
    minutes = per_animal["recorded_min"].to_numpy(dtype=float)
    n = per_animal["n_recordings"].to_numpy(dtype=float)
    ok = np.isfinite(minutes) & (n > 0)
    if not ok.any():
        return ""
    per_recording_s = 60.0 * minutes[ok] / n[ok]
    median_s = float(np.median(per_recording_s))
    if median_s >= SHORT_RECORDING_S:
        return ""
    rate = float(np.nanmedian(per_animal["calls_per_min"].to_numpy(dtype=float)))
    return (f"calls per minute are computed over short recordings (median {_fmt(median_s, 2)} s per recording; "
            f"median animal {_fmt(rate, 3)} calls/min): if these are clips cut around calls, the rate counts calls per "
            "minute of clip, not of behaviour; do not compare it with calling rates from whole sessions")


def negative_interval_note(effect) -> str:
    """Why an MMD² interval can go below zero (``effect``: :class:`~usvpipe.pipeline.answer.Effect`)."""
    if effect is None or not effect.ci95 or not effect.ci95[0] < 0:
        return ""
    return (f"the effect size's interval goes below zero ({_fmt(effect.ci95[0], 3)} to {_fmt(effect.ci95[1], 3)}): "
            "a squared distance cannot be negative, but its unbiased estimate can, because it subtracts the "
            "within-group similarity from the between-group one and sampling noise can tip the difference below "
            "zero; an interval reaching below zero means 'no difference' is among the values the animals allow")
