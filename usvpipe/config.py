"""Parameters as frozen dataclasses, shared by the Python API, the CLI and ``usvpipe.toml``.

Each stage defines its own ``@dataclass(frozen=True)`` parameter class; this module turns
mappings (a TOML section, CLI options) into those classes with validation, and back into
plain dictionaries for manifests.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import typing
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


_TRUE_WORDS = frozenset({"true", "yes", "1", "on"})
_FALSE_WORDS = frozenset({"false", "no", "0", "off"})


def bool_from_text(value) -> bool | None:
    """A bool as it is, or the text of one (true/yes/1/on, false/no/0/off, any case); None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.lower()
        if low in _TRUE_WORDS:
            return True
        if low in _FALSE_WORDS:
            return False
    return None


def _coerce(value: Any, annotation: Any, where: str):
    """Convert a TOML/CLI value to the field's annotated type (best effort, strict on nonsense)."""
    if isinstance(annotation, str):
        # Postponed annotations: evaluate the few simple forms we use.
        annotation = {"float": float, "int": int, "bool": bool, "str": str}.get(annotation, annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if value is None:
        return None
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _coerce(value, non_none[0], where)
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, where) for v, a in zip(value, args))
        inner = args[0] if args else Any
        seq = [_coerce(v, inner, where) for v in value]
        return tuple(seq) if origin is tuple else seq
    if annotation is bool:
        flag = bool_from_text(value)
        if flag is not None:
            return flag
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if annotation is str:
        if isinstance(value, (list, tuple, dict)):
            raise ConfigError(f"{where}: expected a single value (text), got {value!r}")
        return str(value)
    return value


def check_choice(label: str, value, choices) -> None:
    """Raise ``ConfigError(label, "'x' is not one of a, b, c", fix)`` unless ``value`` is in ``choices``.

    For a function argument (e.g. an annotation format); parameter classes declare
    ``_constraints`` and call :func:`usvpipe.constraints.check_params` instead.
    """
    if value not in choices:
        raise ConfigError(label, f"{value!r} is not one of {', '.join(choices)}", f"use one of {', '.join(choices)}")


def params_from_mapping(cls, mapping: Mapping[str, Any] | None = None, *, section: str = "", **overrides):
    """Build the frozen dataclass ``cls`` from a mapping (e.g. a TOML section) plus overrides.

    Unknown keys raise :class:`ConfigError` listing the valid ones; ``None`` overrides are
    ignored (an unset CLI option keeps the config/default value).
    """
    where = f"[{section}]" if section else cls.__name__
    if mapping is not None and not isinstance(mapping, Mapping):
        raise ConfigError(f"{where} must be a section (a TOML table: [{section or cls.__name__}] followed by "
                          f"key = value lines), got {mapping!r}")
    data = dict(mapping or {})
    data.update({k: v for k, v in overrides.items() if v is not None})
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # pragma: no cover - exotic annotations
        hints = {}
    kwargs = {k: _coerce(v, hints.get(k, fields[k].type), f"{where}.{k}") for k, v in data.items()}
    for k, v in kwargs.items():  # also for classes whose __post_init__ does not call check_params
        for x in (v if isinstance(v, (tuple, list)) else (v,)):
            if isinstance(x, float) and not math.isfinite(x):
                raise ConfigError(f"{where}.{k}", f"{v!r} is not a finite number", f"set {k} to a finite number")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def params_to_dict(obj) -> dict:
    """Plain, JSON-serialisable dictionary of a parameter dataclass (tuples become lists)."""
    def conv(v):
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        if dataclasses.is_dataclass(v):
            return params_to_dict(v)
        return v
    return {f.name: conv(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def params_digest(*objs) -> str:
    """Short stable hash of one or more parameter dataclasses (or dicts); used for up-to-date checks."""
    payload = [params_to_dict(o) if dataclasses.is_dataclass(o) else o for o in objs]
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def load_config(path) -> dict:
    """Read a ``usvpipe.toml`` file into a dict of sections.

    Raises
    ------
    ConfigError
        If the file is missing or is not valid TOML (the message names the file and line).
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(path, "config file not found", f"create one with `usvpipe init {path}`") from None
    except IsADirectoryError:
        raise ConfigError(path, "is a folder, not a config file", "pass the path of a usvpipe.toml") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "not a text file", "pass a usvpipe.toml written by `usvpipe init`") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    for key, value in data.items():
        if not isinstance(value, dict):
            # `run = 3` instead of a [run] section: every reader would fail on it later
            raise ConfigError(path, f"{key} = {value!r} is not a section",
                              f"write [{key}] on its own line, then its key = value lines")
    return data
