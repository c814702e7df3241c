"""Building, saving and loading the flow prior and the lifter as run folders.

A flow run folder: ``config.json`` (kind ``elepose-flow``), ``model.safetensors`` (coupling
blocks), ``pca.safetensors`` (PCA mean and components). A lifter run folder: ``config.json``
(kind ``elepose-lifter``, with the flow's config inside), ``model.safetensors`` (the lifter),
and a copy of the flow's ``flow.safetensors`` + ``pca.safetensors``, so a lifter checkpoint
alone is enough to lift and to score reliability.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from elepose import checkpoint
from elepose.models.flow import PosePrior
from elepose.models.lifter import LiftingNetwork

__all__ = [
    "FLOW_KIND",
    "LIFTER_KIND",
    "build_flow",
    "build_lifter",
    "save_flow",
    "load_flow",
    "save_lifter",
    "load_lifter",
    "load_lifter_weights",
]

FLOW_KIND = "elepose-flow"
LIFTER_KIND = "elepose-lifter"


def build_flow(pca_bases: int | None, blocks: int, hidden: int, seed: int) -> PosePrior:
    """A fresh flow prior (PCA not yet fitted)."""
    return PosePrior(pca_bases=pca_bases, blocks=blocks, hidden=hidden, seed=seed)


def build_lifter(hidden: int, variant: str, elevation: bool, elevation_init_deg: float = 0.0) -> LiftingNetwork:
    """A fresh lifting network (``elevation_init_deg``: starting elevation, see LiftingNetwork)."""
    return LiftingNetwork(hidden=hidden, variant=variant, elevation=elevation, elevation_init_deg=elevation_init_deg)


def _split_pca(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    pca = {k: v for k, v in state.items() if k.startswith("pca_")}
    rest = {k: v for k, v in state.items() if not k.startswith("pca_")}
    return rest, pca


def _write_flow_weights(folder: Path, prior: PosePrior, weights_name: str) -> None:
    rest, pca = _split_pca(prior.state_dict())
    checkpoint.save_weights(folder / weights_name, rest)
    checkpoint.save_weights(folder / "pca.safetensors", pca)


def _read_flow(folder: Path, config: dict[str, Any], weights_name: str) -> PosePrior:
    prior = build_flow(config["pca_bases"], config["blocks"], config["hidden"], config.get("seed", 0))
    state = {**checkpoint.load_weights(folder / weights_name), **checkpoint.load_weights(folder / "pca.safetensors")}
    try:
        prior.load_state_dict(state)
    except RuntimeError as err:
        raise checkpoint.CheckpointError(f"{folder / weights_name}: weights do not match the config ({err})") from err
    return prior.eval()


def save_flow(out: str | Path, prior: PosePrior, config: dict[str, Any]) -> None:
    """Write a flow run folder (weights first, config last, each atomically)."""
    folder = Path(out)
    _write_flow_weights(folder, prior, "model.safetensors")
    checkpoint.save_config(folder / "config.json", {**config, "kind": FLOW_KIND})


def load_flow(path: str | Path) -> tuple[PosePrior, dict[str, Any]]:
    """Read a flow run folder, or the flow stored inside a lifter run folder."""
    folder = Path(path)
    config = checkpoint.load_config(folder)
    if config.get("kind") == LIFTER_KIND:
        return _read_flow(folder, config["flow"], "flow.safetensors"), config["flow"]
    if config.get("kind") != FLOW_KIND:
        raise checkpoint.CheckpointError(
            f"{folder / 'config.json'}: field 'kind' is {config.get('kind')!r}, expected {FLOW_KIND!r} (a folder written by `elepose flow`)"
        )
    return _read_flow(folder, config, "model.safetensors"), config


def save_lifter(out: str | Path, lifter: LiftingNetwork, prior: PosePrior, config: dict[str, Any]) -> None:
    """Write a lifter run folder with its flow copied in (config written last)."""
    folder = Path(out)
    checkpoint.save_weights(folder / "model.safetensors", lifter.state_dict())
    _write_flow_weights(folder, prior, "flow.safetensors")
    checkpoint.save_config(folder / "config.json", {**config, "kind": LIFTER_KIND})


def load_lifter_weights(path: str | Path, lifter: LiftingNetwork) -> None:
    """Load ``model.safetensors`` of a lifter run folder into ``lifter`` (for resuming)."""
    folder = Path(path)
    try:
        lifter.load_state_dict(checkpoint.load_weights(folder / "model.safetensors"))
    except RuntimeError as err:
        raise checkpoint.CheckpointError(f"{folder / 'model.safetensors'}: weights do not match this lifter ({err})") from err


def load_lifter(path: str | Path) -> tuple[LiftingNetwork, PosePrior, dict[str, Any]]:
    """Read a lifter run folder -> ``(lifter, flow prior, config)``, both in eval mode on the CPU."""
    folder = Path(path)
    config = checkpoint.load_config(folder, kind=LIFTER_KIND)
    lifter = build_lifter(config["hidden"], config["variant"], config["elevation_branch"])
    load_lifter_weights(folder, lifter)
    prior = _read_flow(folder, config["flow"], "flow.safetensors")
    return lifter.eval(), prior, config
