"""The error every layer raises for bad user input (the command line turns it into ``error: ...``)."""

from __future__ import annotations

from typing import Any

__all__ = ["InputError", "TrainingDiverged", "short_repr"]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or inf; the last good checkpoint was left untouched (the command line exits 3)."""


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (with "..."), for quoting bad input in a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InputError(ValueError):
    """Bad user input: the message names the file, the field and what was expected."""
