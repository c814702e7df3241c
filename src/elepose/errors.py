"""The error every layer raises for bad user input (the command line turns it into ``error: ...``)."""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad user input: the message names the file, the field and what was expected."""
