"""Run folders on disk: safetensors weights, JSON configs and resume state, written atomically.

A flow run folder: ``config.json`` (kind ``elepose-flow``), ``model.safetensors`` (coupling
blocks), ``pca.safetensors`` (PCA mean and components). A lifter run folder: ``config.json``
(kind ``elepose-lifter``, with the flow's config inside), ``model.safetensors`` (the lifter),
and a copy of the flow's ``flow.safetensors`` + ``pca.safetensors``, so a lifter checkpoint
alone is enough to lift and to score reliability. Training adds ``resume.pt`` (optimizer,
scheduler, random-number states, epoch), read back with ``weights_only=True`` (SPEC 9).
Every file is written to a temporary name, fsynced and renamed, so an interrupted write never
leaves a damaged file.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from elepose.atomic import atomic_write, write_json
from elepose.errors import InputError
from elepose.models.flow import PoseFlow
from elepose.models.lifter import LiftingNetwork
from elepose.models.records import FlowRecord, LifterRecord

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "save_weights",
    "load_weights",
    "save_config",
    "load_config",
    "save_resume_state",
    "load_resume_state",
    "FLOW_KIND",
    "LIFTER_KIND",
    "new_flow",
    "new_lifter",
    "save_flow",
    "load_flow",
    "save_lifter",
    "load_record",
    "load_lifter",
    "load_lifter_record",
    "load_lifter_weights",
]

FORMAT_VERSION = 2
"""Bumped whenever the meaning of a checkpoint's files changes; older checkpoints are refused.

Version 2: the learned elevation distribution moved from ``reliability`` to ``learned_elevation``."""


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


def save_config(path: str | Path, config: dict[str, Any], files: tuple[str, ...] = ()) -> None:
    """Write ``config`` (JSON-serialisable) with ``format_version`` added, atomically.

    ``files``: names of files beside ``path`` whose SHA-256 goes into the config
    (``checkpoint_files``), so :func:`load_config` can tell a folder whose save was interrupted
    (new weights, old config) from a consistent one. Write those files first, the config last.
    """
    folder = Path(path).parent
    payload: dict[str, Any] = {"format_version": FORMAT_VERSION, **config}
    if files:
        payload["checkpoint_files"] = {name: _sha256(folder / name) for name in files}
    write_json(path, payload)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: invalid JSON ({err}); expected a config.json written by elepose") from err
    except RecursionError:
        raise CheckpointError(f"{path}: nested too deeply; expected a config.json written by elepose") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(config).__name__}")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: field 'format_version' is {version!r}; this elepose reads version {FORMAT_VERSION}"
        )
    if kind is not None and config.get("kind") != kind:
        raise CheckpointError(f"{path}: field 'kind' is {config.get('kind')!r}, expected {kind!r}")
    _verify_files(path, config.get("checkpoint_files"))
    return config


def _verify_files(path: Path, files: Any) -> None:
    """Check the files ``config.json`` names against their recorded SHA-256."""
    if files is None:
        return
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise CheckpointError(f"{path}: field 'checkpoint_files': expected an object of file names and SHA-256 digests")
    for name, digest in files.items():
        file = path.parent / Path(str(name)).name
        if not file.is_file():
            raise CheckpointError(f"{file}: missing; expected the file {path.name} names")
        if _sha256(file) != digest:
            raise CheckpointError(
                f"{file}: does not match {path.name} (a save was interrupted?); expected the files of one epoch: "
                "`elepose train --resume` (or `elepose flow --resume`) finishes the run"
            )


def save_resume_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write training state (tensors, numbers, strings, nested dicts/lists) with ``torch.save``, atomically."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_resume_state(path: str | Path) -> dict[str, Any]:
    """Read a state written by :func:`save_resume_state` with ``weights_only=True``.

    Raises :class:`CheckpointError` for a missing, truncated or foreign file (never suggesting
    to load it unsafely).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no resume state (was the run started with this output folder?)")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols before refusing them
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: holds objects other than tensors and numbers; expected a resume.pt written by elepose"
        ) from None
    except Exception as err:  # torch raises RuntimeError, EOFError, zipfile errors for damaged files
        raise CheckpointError(
            f"{path}: damaged or truncated ({type(err).__name__}); expected a resume.pt written by elepose"
        ) from None
    needed = ("epoch", "optimizer", "scheduler", "rng", "global_step", "model")
    if not isinstance(state, dict) or any(key not in state for key in needed):
        raise CheckpointError(f"{path}: expected a resume state with {', '.join(needed)} (written by this elepose)")
    return state


FLOW_KIND = "elepose-flow"
LIFTER_KIND = "elepose-lifter"


def new_flow(record: FlowRecord) -> PoseFlow:
    """A fresh flow of ``record``'s sizes (PCA not yet fitted)."""
    return PoseFlow(pca_bases=record.pca_bases, blocks=record.blocks, hidden=record.hidden, seed=record.seed)


def new_lifter(record: LifterRecord, elevation_init_deg: float = 0.0) -> LiftingNetwork:
    """A fresh lifting network of ``record``'s layout (``elevation_init_deg``: see LiftingNetwork)."""
    return LiftingNetwork(
        hidden=record.hidden,
        variant=record.variant,  # type: ignore[arg-type]
        elevation=record.elevation_branch,
        elevation_init_deg=elevation_init_deg,
    )


def _split_pca(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    pca = {k: v for k, v in state.items() if k.startswith("pca_")}
    rest = {k: v for k, v in state.items() if not k.startswith("pca_")}
    return rest, pca


def _write_flow_weights(folder: Path, flow: PoseFlow, weights_name: str) -> None:
    rest, pca = _split_pca(flow.state_dict())
    save_weights(folder / weights_name, rest)
    save_weights(folder / "pca.safetensors", pca)


def _read_flow(folder: Path, record: FlowRecord, weights_name: str) -> PoseFlow:
    flow = new_flow(record)
    state = {**load_weights(folder / weights_name), **load_weights(folder / "pca.safetensors")}
    try:
        flow.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{folder / weights_name}: weights do not match the config ({err})") from err
    return flow.eval()


def save_flow(out: str | Path, flow: PoseFlow, record: FlowRecord) -> None:
    """Write a flow run folder (weights first, config last, each atomically)."""
    folder = Path(out)
    _write_flow_weights(folder, flow, "model.safetensors")
    save_config(
        folder / "config.json", {**record.to_dict(), "kind": FLOW_KIND}, files=("model.safetensors", "pca.safetensors")
    )


def _record(config: dict[str, Any], path: Path, reader: Any) -> Any:
    try:
        return reader(config, str(path))
    except InputError as err:
        raise CheckpointError(str(err)) from None


def load_flow(path: str | Path) -> tuple[PoseFlow, FlowRecord]:
    """Read a flow run folder, or the flow stored inside a lifter run folder -> ``(flow, record)``."""
    folder = Path(path)
    config = load_config(folder)
    config_path = folder / "config.json"
    if config.get("kind") == LIFTER_KIND:
        record = _record(config, config_path, LifterRecord.from_dict).flow
        return _read_flow(folder, record, "flow.safetensors"), record
    if config.get("kind") != FLOW_KIND:
        raise CheckpointError(
            f"{config_path}: field 'kind' is {config.get('kind')!r}, expected {FLOW_KIND!r} (a folder written by `elepose flow`)"
        )
    record = _record(config, config_path, FlowRecord.from_dict)
    return _read_flow(folder, record, "model.safetensors"), record


def save_lifter(out: str | Path, lifter: LiftingNetwork, flow: PoseFlow, record: LifterRecord) -> None:
    """Write a lifter run folder with its flow copied in (config written last)."""
    folder = Path(out)
    save_weights(folder / "model.safetensors", lifter.state_dict())
    _write_flow_weights(folder, flow, "flow.safetensors")
    save_config(
        folder / "config.json",
        {**record.to_dict(), "kind": LIFTER_KIND},
        files=("model.safetensors", "flow.safetensors", "pca.safetensors"),
    )


def load_lifter_weights(path: str | Path, lifter: LiftingNetwork) -> None:
    """Load ``model.safetensors`` of a lifter run folder into ``lifter`` (for resuming)."""
    folder = Path(path)
    try:
        lifter.load_state_dict(load_weights(folder / "model.safetensors"))
    except RuntimeError as err:
        raise CheckpointError(f"{folder / 'model.safetensors'}: weights do not match this lifter ({err})") from err


def load_lifter_record(path: str | Path) -> LifterRecord:
    """The :class:`LifterRecord` of a lifter run folder's ``config.json``."""
    folder = Path(path)
    return _record(load_config(folder, kind=LIFTER_KIND), folder / "config.json", LifterRecord.from_dict)


def load_record(path: str | Path) -> FlowRecord | LifterRecord:
    """The typed record of a flow or lifter run folder's ``config.json`` (its checksums verified)."""
    folder = Path(path)
    config = load_config(folder)
    reader = LifterRecord.from_dict if config.get("kind") == LIFTER_KIND else FlowRecord.from_dict
    if config.get("kind") not in (LIFTER_KIND, FLOW_KIND):
        raise CheckpointError(
            f"{folder / 'config.json'}: field 'kind' is {config.get('kind')!r}, expected {FLOW_KIND!r} or {LIFTER_KIND!r}"
        )
    return _record(config, folder / "config.json", reader)


def load_lifter(path: str | Path) -> tuple[LiftingNetwork, PoseFlow, LifterRecord]:
    """Read a lifter run folder -> ``(lifter, flow, record)``, both networks in eval mode on the CPU."""
    folder = Path(path)
    record = load_lifter_record(folder)
    lifter = new_lifter(record)
    load_lifter_weights(folder, lifter)
    flow = _read_flow(folder, record.flow, "flow.safetensors")
    return lifter.eval(), flow, record
