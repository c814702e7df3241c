"""The one rule for every command that writes: never lose a file the command did not create.

- An output never lands on an input: an output path that is an input, holds an input, or lies
  inside an input folder is refused, with or without ``--overwrite``.
- An ``--out`` that exists and is not an output of the same kind is refused unless
  ``--overwrite`` is given: a cache folder is recognised by its ``manifest.json``, a run folder
  by its ``config.json`` kind, a ``lift`` output by its content. A file where a folder is
  expected (or a folder where a file is expected) is always refused.
- Commands build in a temporary sibling (``.NAME.<pid>.<random>.building``) and rename at the end;
  :func:`remove_stale_temporaries` removes those of processes that no longer run.

Every refusal is an :class:`~elepose.errors.InputError` naming the path and what was expected.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from elepose.errors import InputError

__all__ = [
    "CACHE_FILES",
    "RUN_FILES",
    "folder_kind",
    "check_not_an_input",
    "claim_folder",
    "claim_file",
    "clear_run_files",
    "PNG_SOFTWARE",
    "is_our_png",
    "starts_with_mark",
    "building_prefix",
    "remove_stale_temporaries",
]

CACHE_FILES = frozenset({"train.npz", "test.npz", "manifest.json"})
"""What ``elepose data build`` writes into a cache folder."""

RUN_FILES = frozenset(
    {
        "config.json",
        "run.json",
        "model.safetensors",
        "flow.safetensors",
        "pca.safetensors",
        "resume.pt",
        "metrics.csv",
        "tensorboard",
        "evaluation.json",
        "per_pose.npz",
        "fit-stage.json",
        "best",  # the epoch kept by --keep-best, a lifter folder of its own (and its swap names)
        "best.new",
        "best.old",
    }
)
"""What ``elepose flow`` / ``elepose train`` (and the benchmark's evaluation) write into a run folder."""


def folder_kind(folder: Path) -> str | None:
    """``"empty"``, ``"cache"``, the ``config.json`` kind of a run folder (``elepose-flow``,
    ``elepose-lifter``), or None for anything else (a folder of the user's)."""
    if not any(folder.iterdir()):
        return "empty"
    manifest = folder / "manifest.json"
    if manifest.is_file() and _json_field(manifest, "format") == "elepose-pose-cache":
        return "cache"
    config = folder / "config.json"
    if config.is_file():
        kind = _json_field(config, "kind")
        if isinstance(kind, str) and kind.startswith("elepose-"):
            return kind
    return None


def _json_field(path: Path, key: str) -> object:
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError, RecursionError):
        return None
    return value.get(key) if isinstance(value, dict) else None


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def check_not_an_input(output: Path, inputs: Iterable[Path], what: str = "--out") -> None:
    """Refuse an ``output`` that is one of ``inputs``, holds one, or lies inside an input folder."""
    out = Path(output).resolve()
    for given in inputs:
        source = Path(given).resolve()
        if out == source or _inside(source, out) or (source.is_dir() and _inside(out, source)):
            raise InputError(
                f"{what} {output}: is or holds the input {given}; expected an output path apart from the inputs"
            )


def claim_folder(
    out: Path,
    kind: str,
    overwrite: bool,
    inputs: Iterable[Path] = (),
    same_kind_ok: bool = True,
    what: str = "--out",
) -> str | None:
    """Check that the folder ``out`` may be written as ``kind`` (``cache`` or a run kind); returns what it holds now.

    A missing or empty folder may always be written; a folder of the same kind when
    ``same_kind_ok``; anything else only with ``overwrite``. Never a file, never an input.
    """
    check_not_an_input(out, inputs, what)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError(f"{what} {out}: is a file; expected a folder to write (or a new name)")
    if not out.exists():
        return None
    found = folder_kind(out)
    if found == "empty" or overwrite or (found == kind and same_kind_ok and _only_ours(out, kind)):
        return found
    if found == kind:
        if kind == "cache":
            others = sorted(p.name for p in out.iterdir() if p.name not in CACHE_FILES)
            detail = f"a cache that also holds {', '.join(others[:3])}"
        else:
            detail = f"a finished or started {kind} run"
        raise InputError(
            f"{what} {out}: already holds {detail}; expected a new folder (--resume continues a run, --overwrite replaces it)"
        )
    described = "files of another kind" if found is None else f"an {found} folder"
    raise InputError(f"{what} {out}: already holds {described}; expected a new or empty folder (or --overwrite)")


def _only_ours(folder: Path, kind: str) -> bool:
    own = CACHE_FILES if kind == "cache" else RUN_FILES
    return all(p.name in own for p in folder.iterdir())


def claim_file(
    path: Path, ours: Callable[[Path], bool], overwrite: bool, inputs: Iterable[Path] = (), what: str = "--out"
) -> None:
    """Check that the file ``path`` may be written: new, written by this command before (``ours``), or ``overwrite``."""
    check_not_an_input(path, inputs, what)
    if path.is_dir():
        raise InputError(f"{what} {path}: is a folder; expected a file name to write")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise InputError(f"{what} {path}: {parent} is a file, not a folder")
    if path.exists() and not overwrite and not ours(path):
        raise InputError(
            f"{what} {path}: exists and was not written by elepose; expected a new file name (or --overwrite)"
        )


PNG_SOFTWARE = "elepose"
"""The PNG ``Software`` text of every picture elepose draws, so a later run knows it may replace it."""


def is_our_png(path: Path) -> bool:
    """Whether ``path`` is a PNG whose ``Software`` text is :data:`PNG_SOFTWARE` (GIF and MP4 carry no mark)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.startswith(b"\x89PNG") and b"Software\x00" + PNG_SOFTWARE.encode("latin-1") in head


def starts_with_mark(path: Path, *marks: str) -> bool:
    """Whether the first 4 KiB of the text file ``path`` hold any of ``marks`` (how a command
    recognises an output it wrote before; unreadable or binary files hold none)."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
    return any(mark in head for mark in marks)


def clear_run_files(folder: Path) -> None:
    """Remove what a run writes (:data:`RUN_FILES`) from ``folder``, and nothing else."""
    for name in RUN_FILES:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def building_prefix(out: Path) -> str:
    """The name prefix of this process's temporary siblings of ``out``: ``.NAME.<pid>.``."""
    return f".{out.name[:80]}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(out: Path, suffixes: tuple[str, ...] = (".building", ".old")) -> list[Path]:
    """Remove ``.NAME.<pid>.*<suffix>`` siblings of ``out`` whose process no longer runs; returns them."""
    parent = out.parent
    if not parent.is_dir():
        return []
    removed = []
    head = f".{out.name[:80]}."
    for path in parent.iterdir():
        if not (path.name.startswith(head) and path.name.endswith(suffixes)):
            continue
        pid_text = path.name[len(head) :].split(".", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
