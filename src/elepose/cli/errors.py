"""How the command line reports problems: one clear line on stderr, never a traceback.

Bad input (:class:`~elepose.errors.InputError`, ``ValueError``, ``KeyError``, a missing or
unwritable file, a damaged file the readers could not parse) prints ``error: FILE: field:
expected ...`` and exits with code 2. Anything else is a bug: it prints one line saying where
the full traceback was written (:func:`report_crash`) and exits with code 1.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path

import typer

from elepose.errors import InputError, TrainingDiverged

__all__ = ["InputError", "user_errors", "os_error_message", "report_crash"]

_DISK_ERRORS = {errno.ENOSPC: "the disk is full", errno.EFBIG: "the file is larger than this process may write"}


def os_error_message(err: OSError) -> str:
    """``PATH: what went wrong; expected ...`` for an operating-system error on a file."""
    path = err.filename if err.filename is not None else "output"
    reason = _DISK_ERRORS.get(err.errno or 0, err.strerror or str(err))
    if err.errno == errno.ENAMETOOLONG:
        return f"{path}: file name too long; expected a name of at most 255 bytes per path part"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{path}: {reason}; expected a path this user may write (or read)"
    if err.errno == errno.ENOTDIR:
        return f"{path}: a part of the path is a file; expected folders"
    if err.errno == errno.EISDIR:
        return f"{path}: is a folder; expected a file"
    if err.errno == errno.ENOENT:
        return f"{path}: no such file or folder"
    return f"{path}: {reason}"


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn bad input and file errors into ``error: ...`` and exit 2, a diverged training into exit 3."""
    try:
        yield
    except TrainingDiverged as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=3) from None
    except (InputError, ValueError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(code=2) from None
    except OSError as err:
        typer.echo(f"error: {os_error_message(err)}", err=True)
        raise typer.Exit(code=2) from None
    except RecursionError:
        typer.echo("error: input: nested too deeply to read; expected a file of ordinary structure", err=True)
        raise typer.Exit(code=2) from None
    except MemoryError:
        typer.echo("error: input: needs more memory than this machine has; expected smaller arrays", err=True)
        raise typer.Exit(code=2) from None


def report_crash(err: BaseException) -> Path | None:
    """Write the traceback of an unexpected ``err`` to a log file; returns its path (None when unwritable)."""
    folder = Path(os.environ.get("ELEPOSE_LOG_DIR", Path(tempfile.gettempdir()) / "elepose"))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{stamp}-{os.getpid()}.log"
        path.write_text("".join(traceback.format_exception(err)), encoding="utf-8")
    except OSError:
        return None
    return path
