"""Checkpoints: safetensors weights + JSON config, resume state, all written atomically (SPEC 9).

A run folder holds ``config.json`` (what the run is: ``kind``, format version, the model and
data settings), one or more ``*.safetensors`` weight files, and ``resume.pt`` (optimizer,
scheduler, random-number states, epoch), which is read back with ``weights_only=True``.
Every file is written to a temporary name, fsynced and renamed, so an interrupted write never
leaves a damaged checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from elepose.atomic import atomic_write

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "save_weights",
    "load_weights",
    "save_config",
    "load_config",
    "save_resume_state",
    "load_resume_state",
]

FORMAT_VERSION = 1
"""Bumped whenever the meaning of a checkpoint's files changes; older checkpoints are refused."""


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged, of another kind or of another format version."""


def save_weights(path: str | Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write a state dict to a safetensors file atomically (tensors copied to contiguous CPU)."""
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(plain, tmp))


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file onto the CPU; :class:`CheckpointError` when absent or damaged."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        return load_file(str(path), device="cpu")
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from err


def save_config(path: str | Path, config: dict[str, Any]) -> None:
    """Write ``config`` (JSON-serialisable) with ``format_version`` added, atomically."""
    payload = {"format_version": FORMAT_VERSION, **config}
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def load_config(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read a ``config.json``; check its format version and, when given, its ``kind``.

    Raises :class:`CheckpointError` naming the file and what was expected.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint config here (expected a run folder with config.json)")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: invalid JSON ({err})") from err
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: field 'format_version' is {version!r}; this elepose reads version {FORMAT_VERSION}"
        )
    if kind is not None and config.get("kind") != kind:
        raise CheckpointError(f"{path}: field 'kind' is {config.get('kind')!r}, expected {kind!r}")
    return config


def save_resume_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write training state (tensors, numbers, strings, nested dicts/lists) with ``torch.save``, atomically."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_resume_state(path: str | Path) -> dict[str, Any]:
    """Read a state written by :func:`save_resume_state` with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no resume state (was the run started with this output folder?)")
    return torch.load(path, map_location="cpu", weights_only=True)
