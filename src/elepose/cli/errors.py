"""How the command line reports bad input: one clear line on stderr and exit code 2."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from elepose.errors import InputError

__all__ = ["InputError", "user_errors"]


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn ``InputError``, ``ValueError``, ``KeyError`` and ``FileNotFoundError`` into ``error: ...`` and exit 2."""
    try:
        yield
    except (InputError, ValueError, KeyError, FileNotFoundError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(code=2) from None
