"""Atomic file writes: nothing half-written is ever left under the final name."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "temp_path",
    "commit",
    "atomic_write",
    "write_together",
    "json_text",
    "write_json",
    "replace_folder",
    "recover_folder",
]


def temp_path(path: str | Path) -> Path:
    """A fresh empty temporary file beside ``path`` with the same suffix (the folder is created).

    Its name is ``.STEM.<pid>.<random>.SUFFIX`` with the stem cut to 40 characters, so a long
    file name still leaves room for the temporary one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.stem[:40]}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=path.suffix[:16])
    os.close(fd)
    return Path(tmp)


def commit(tmp: str | Path, path: str | Path) -> None:
    """fsync ``tmp``, give it ordinary permissions (mkstemp makes 0600) and rename it to ``path``."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_name)``, then :func:`commit` it to ``path``; the temporary goes on failure."""
    tmp = temp_path(path)
    try:
        write(str(tmp))
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_together(writers: list[tuple[Path, Callable[[Path], None]]]) -> None:
    """All or nothing: each ``write(tmp)`` of ``(path, write)`` fills a temporary beside its path;
    only when every one succeeded are they renamed, in order. On any error no temporary is left and
    no path is touched (a failure during the renames themselves leaves the earlier ones renamed)."""
    temps: list[tuple[Path, Path]] = []
    try:
        for path, write in writers:
            temps.append((temp_path(path), Path(path)))
            write(temps[-1][0])
        for tmp, final in temps:
            commit(tmp, final)
    finally:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)


def json_text(obj: Any, indent: int = 2, sort_keys: bool = True, allow_nan: bool = True) -> str:
    """``obj`` as the JSON text every elepose file has: indented, newline-terminated.

    ``allow_nan=False`` refuses NaN and inf (``ValueError``), for files other programs read.
    """
    return json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan) + "\n"


def write_json(path: str | Path, obj: Any, indent: int = 2, sort_keys: bool = True, allow_nan: bool = True) -> None:
    """Write :func:`json_text` of ``obj`` to ``path`` atomically (the text is made first, so a
    failure leaves no file)."""
    text = json_text(obj, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan)

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def _siblings(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + ".new"), path.with_name(path.name + ".old")


def replace_folder(path: str | Path, write: Callable[[Path], None]) -> None:
    """Write the folder ``path`` whole: ``write(folder)`` fills ``PATH.new``, which then takes the name.

    The folder it replaces moves to ``PATH.old`` first and goes last. A kill at any point leaves
    ``path`` as it was or as written, except between the two renames, when only ``PATH.old``
    is there: :func:`recover_folder` (called here first) puts it back.
    """
    path = Path(path)
    recover_folder(path)
    new, old = _siblings(path)
    if new.exists():
        shutil.rmtree(new)
    new.mkdir(parents=True)
    try:
        write(new)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    if path.exists():
        os.rename(path, old)
    os.rename(new, path)
    shutil.rmtree(old, ignore_errors=True)


def recover_folder(path: str | Path) -> None:
    """Finish or undo a :func:`replace_folder` that was killed: ``path`` whole, no ``.new`` / ``.old`` left."""
    path = Path(path)
    new, old = _siblings(path)
    if not path.exists() and old.is_dir():
        os.rename(old, path)
    for leftover in (new, old):
        if leftover.is_dir():
            shutil.rmtree(leftover)
