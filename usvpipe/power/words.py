"""The sensitivity in words, for the first screen of the report (pure functions of ``sensitivity.json``)."""
from __future__ import annotations

from typing import Mapping, Optional

#: kind -> (phrase before the size, phrase after it)
PHRASES = {
    "pitch": ("a pitch shift of ≥ ", ""),
    "duration": ("a duration change of ≥ ", ""),
    "usage": ("a ", "-point change in the use of one call cluster (latent-space region)"),
}


def _num(x: float) -> str:
    return f"{x:.2g}" if abs(x) < 10 else f"{x:.0f}"


def _size(kind: str, value: float, unit: str) -> str:
    if kind == "usage":
        return _num(value)
    return f"{_num(value)} {unit}" if unit != "%" else f"{_num(value)} %"


def _latent_phrase(entry: Mapping) -> str:
    kind, value, unit = entry.get("kind"), entry.get("mde"), entry.get("unit", "")
    before, after = PHRASES.get(kind, (f"a {kind} effect of ≥ ", ""))
    if value is None:
        big = entry.get("largest_tried") or {}
        return (f"{before.replace('≥ ', '')}{_size(kind, big.get('effect', float('nan')), unit)}{after}, "
                f"the largest tried, was detected only {100 * big.get('power', 0):.0f} % of the time")
    text = f"{before}{_size(kind, value, unit)}{after}"
    if entry.get("mde_sd") is not None:
        text += f" ({entry['mde_sd']:.2g} SD of the animals' mean frequency)"
    return text


def _join(parts: list) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def sensitivity_lines(sens: Optional[Mapping]) -> list:
    """The report's lines for a test that did not reject: what the design would have detected 80 % of the time.

    Empty without a sensitivity result. Effects not reached are said as such, so no line
    claims a sensitivity the search did not find.
    """
    if not sens or not (sens.get("latent") or sens.get("measures")):
        return []
    n = sens.get("n_animals") or {}
    design = " + ".join(str(v) for v in n.values())
    target = f"{100 * float(sens.get('target', 0.8)):.0f} %"
    lines = []
    found = [e for e in sens.get("latent") or [] if e.get("mde") is not None]
    missed = [e for e in sens.get("latent") or [] if e.get("mde") is None]
    if found:
        se = "; ".join(f"{e['kind']} ±{_size(e['kind'], e['mde_se'], e.get('unit', ''))}"
                       + (" points" if e["kind"] == "usage" else "") for e in found if e.get("mde_se") is not None)
        lines.append(f"With this design ({design} animals, the same animal-level test at α = {sens.get('alpha')}), "
                     f"{_join([_latent_phrase(e) for e in found])} would have been detected {target} of the time; "
                     f"smaller effects cannot be ruled out (effects planted into these animals' own syllables"
                     + (f"; Monte Carlo s.e. {se}" if se else "") + ").")
    for e in missed:
        text = _latent_phrase(e)
        lines.append(f"{text[0].upper()}{text[1:]}: this design cannot promise to detect a {e.get('kind')} difference.")
    meas = [e for e in sens.get("measures") or [] if e.get("mde") is not None]
    if meas:
        parts = [f"{e['unit']} ≥ {_num(e['mde'])} ({e['mde_sd']:.2g} SD)" for e in meas[:4] if e.get("mde_sd") is not None]
        if parts:
            lines.append(f"Classical measures (their own animal-level tests, Holm): {'; '.join(parts)} would have been "
                         f"detected {target} of the time (all measures: power/sensitivity.csv).")
    return lines
