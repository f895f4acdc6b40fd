"""Exceptions with one-line, actionable messages.

Every error a user can cause (bad file, bad parameter, missing column) is raised as a
:class:`UsvpipeError`. The CLI prints ``usvpipe: error: <message>`` and exits with a
non-zero status; the Python API lets it propagate.
"""
from __future__ import annotations

import os


class UsvpipeError(Exception):
    """Base class for user-facing errors; ``str(err)`` is a single line."""


class ConfigError(UsvpipeError, ValueError):
    """An invalid parameter value, config key or config file."""


class InputFileError(UsvpipeError):
    """An input file that cannot be used, with the reason and how to fix it.

    Parameters
    ----------
    path : str or path-like
        The offending file.
    reason : str
        What is wrong, e.g. ``"truncated WAV (header says 10 s, 2.1 s present)"``.
    fix : str, optional
        What the user should do about it.
    """

    def __init__(self, path, reason: str, fix: str | None = None):
        self.path = os.fspath(path)
        self.reason = reason
        self.fix = fix
        msg = f"{self.path}: {reason}"
        if fix:
            msg += f" (fix: {fix})"
        super().__init__(msg.replace("\n", " "))


class OutputError(UsvpipeError):
    """An output location that cannot be written (read-only, no space, ...)."""
