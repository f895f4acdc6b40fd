"""Exceptions with one-line, actionable messages.

Every error a user can cause (bad file, bad parameter, missing column) is raised as a
:class:`UsvpipeError`. The CLI prints ``usvpipe: error: <message>`` and exits with a
non-zero status; the Python API lets it propagate.
"""
from __future__ import annotations

import os


class UsvpipeError(Exception):
    """Base class for user-facing errors; ``str(err)`` is a single line.

    One shape for every error: ``UsvpipeError(path, reason, fix)`` reads
    ``"<path>: <reason> (fix: <fix>)"`` and keeps the three parts as attributes (``path``
    names what is wrong: a file, or a parameter such as ``[mmd].alpha``). A single
    argument is taken as the whole message (``path`` and ``fix`` are then ``None``).
    """

    def __init__(self, path_or_message="", reason: str | None = None, fix: str | None = None):
        if reason is None:
            self.path, self.reason, self.fix = None, str(path_or_message), None
            msg = str(path_or_message)
        else:
            self.path = os.fspath(path_or_message)
            self.reason, self.fix = reason, fix
            msg = f"{self.path}: {reason}" + (f" (fix: {fix})" if fix else "")
        super().__init__(msg.replace("\n", " "))


class ConfigError(UsvpipeError, ValueError):
    """An invalid parameter value, config key or config file (``path`` e.g. ``[mmd].alpha``)."""


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
        super().__init__(path, reason, fix)


class OutputError(UsvpipeError):
    """An output location that cannot be written (read-only, no space, ...)."""
