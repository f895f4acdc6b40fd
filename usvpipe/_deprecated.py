"""Old module paths kept for users' code: each name still resolves, with a ``DeprecationWarning`` naming
the new import and the release that removes the old path.

Used by the old top-level modules (``usvpipe.segment``, ``usvpipe.pipeline_segment``,
``usvpipe.spectrogram``), which hold nothing but a table ``name -> new module``. The warning is
raised on each use of a name (module ``__getattr__``, PEP 562), so it points at the user's line.
"""
from __future__ import annotations

import importlib
import warnings
from typing import Callable, Mapping

#: the release that deletes the old module paths
REMOVED_IN = "0.3"


def moved_names(old_module: str, table: Mapping[str, str]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``old_module`` whose names now live in the modules of ``table``."""
    names = sorted(table)

    def __getattr__(name: str):
        new_module = table.get(name)
        if new_module is None:
            raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
        warnings.warn(f"{old_module} is deprecated and will be removed in usvpipe {REMOVED_IN}: "
                      f"use `from {new_module} import {name}`", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(new_module), name)

    def __dir__():
        return names

    return __getattr__, __dir__
