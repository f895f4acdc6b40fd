"""Declarative parameter constraints, checked by one function (scikit-learn's ``_parameter_constraints`` idea).

A parameter dataclass lists what each field may be, as data::

    @dataclass(frozen=True)
    class MMDParams:
        _constraints = {
            "permutations": [Interval(int, 1, None)],
            "alpha": [Interval(float, 0, 1, closed="neither")],
            "unit": [OneOf("auto", "animal", "syllable")],
            "max_per_animal": [None, Interval(int, 2, None)],
        }

        def __post_init__(self):
            check_params(self, "mmd")

and :func:`check_params` raises one :class:`~usvpipe.errors.ConfigError` shaped like every
other error: ``[mmd].alpha: 1.5 is not in (0, 1) (fix: ...)``, with ``path``, ``reason`` and
``fix`` attributes. Rules that tie two fields together stay in ``__post_init__`` and raise
through :func:`config_error`, so their messages have the same shape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Mapping, Sequence

from .errors import ConfigError


@dataclass(frozen=True)
class Interval:
    """A number in ``[low, high]`` (each end optional; ``closed``: "both", "left", "right" or "neither")."""

    type: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"

    def accepts(self, value) -> bool:
        if isinstance(value, bool):
            return False
        kind = Integral if self.type is int else Real
        if not isinstance(value, kind) or (kind is Real and not math.isfinite(float(value))):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (value < self.low or (value == self.low and not left)):
            return False
        if self.high is not None and (value > self.high or (value == self.high and not right)):
            return False
        return True

    def describe(self) -> str:
        what = "an integer" if self.type is int else "a number"
        lo_op = ">=" if self.closed in ("both", "left") else ">"
        hi_op = "<=" if self.closed in ("both", "right") else "<"
        if self.low is not None and self.high is not None:
            lb = "[" if self.closed in ("both", "left") else "("
            rb = "]" if self.closed in ("both", "right") else ")"
            return f"{what} in {lb}{_num(self.low)}, {_num(self.high)}{rb}"
        if self.low is not None:
            return f"{what} {lo_op} {_num(self.low)}"
        if self.high is not None:
            return f"{what} {hi_op} {_num(self.high)}"
        return what


@dataclass(frozen=True, init=False)
class OneOf:
    """One of a fixed set of values (e.g. the names of a mode)."""

    values: tuple

    def __init__(self, *values):
        object.__setattr__(self, "values", tuple(values))

    def accepts(self, value) -> bool:
        return value in self.values

    def describe(self) -> str:
        return "one of " + ", ".join(str(v) for v in self.values)


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _accepts(rule, value) -> bool:
    return value is None if rule is None else rule.accepts(value)


def config_error(section: str, name: str, reason: str, fix: str | None = None) -> ConfigError:
    """A :class:`ConfigError` for parameter ``[section].name`` (the one prefix style)."""
    return ConfigError(f"[{section}].{name}", reason, fix)


def check_params(obj, section: str, constraints: Mapping[str, Sequence[Any]] | None = None) -> None:
    """Check every field named in ``constraints`` (default ``type(obj)._constraints``).

    A field passes when any of its rules accepts it (``None`` as a rule allows an unset
    value). The first failure raises ``ConfigError("[section].name", reason, fix)``.
    """
    rules_by_name = constraints if constraints is not None else getattr(type(obj), "_constraints", {})
    for name, rules in rules_by_name.items():
        value = getattr(obj, name)
        if any(_accepts(r, value) for r in rules):
            continue
        allowed = " or ".join(r.describe() for r in rules if r is not None)
        unset = ", or leave it unset" if None in rules else ""
        raise config_error(section, name, f"{value!r} is not {allowed}", f"set {name} to {allowed}{unset}")
