"""User-facing errors.

Every error a user can cause (bad input file, bad option, existing output) is raised as a
:class:`MrisrError` subclass whose message is one line saying what is wrong and how to fix it.
The CLI prints that line and exits non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class MrisrError(Exception):
    """Base class for errors caused by the user's input, with a one-line message."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # Keep messages to a single line: the CLI prints exactly this.
        super().__init__(" ".join(str(message).split()))


class InputError(MrisrError):
    """An input file or folder cannot be read or holds data mrisr cannot use."""


class OutputError(MrisrError):
    """An output cannot be written (exists already, missing folder, not writable)."""


class ConfigError(MrisrError):
    """An option or configuration value is invalid."""
