"""Lazy attribute access for packages whose public names live in heavy submodules.

``import usvpipe`` must stay cheap and work without a GPU or optional extras, so
public names are resolved on first use (PEP 562 module ``__getattr__``).
"""
from __future__ import annotations

import importlib
from typing import Callable, Iterable, Mapping


def lazy_exports(package: str, table: Mapping[str, str], also: Iterable[str] = ()) -> tuple[Callable, Callable]:
    """Return ``(__getattr__, __dir__)`` for ``package`` resolving ``name -> module`` from ``table``."""
    names = sorted({*table, *also})

    def __getattr__(name: str):
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__():
        return names

    return __getattr__, __dir__
