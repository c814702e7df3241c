"""From cache splits to network inputs: which 2D, which scale, and supervised targets.

The lifter and the flow see 2D poses normalised by :func:`elepose.geometry.normalise_2d`:
pelvis-centred, divided by a scale, times 0.1. The scale ``mode`` is one of

- ``"dataset"``: the training set's mean pelvis-to-head distance in pixels, one number for
  every pose (the authors' choice);
- ``"pose"``: each pose's own RMS joint distance to the pelvis;
- ``"pose-head"``: each pose's own pelvis-to-head distance: the per-pose form of ``"dataset"``,
  which a network trained with a dataset scale sees the same input from on average (what
  ``elepose fit --init`` fine-tunes such a network with).

It is recorded in every checkpoint, so lifting uses the same one. ``per_pose_scale_of`` is
each pose measured by itself the checkpoint's way (its pelvis-to-head distance for a
``"dataset"`` checkpoint, its RMS for a ``"pose"`` one): what ``elepose lift --scale per-pose``
uses for 2D from cameras unlike the training ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from elepose.data.cache import PoseSplit
from elepose.errors import InputError, short_repr
from elepose.geometry import (
    DEPTH_OFFSET,
    NORMALISED_SCALE,
    normalise_2d,
    pelvis_head_distance,
    pelvis_head_scale,
    rms_scale,
)

__all__ = ["Normalisation", "INPUT_KINDS", "SCALE_MODES", "select_2d", "normalise", "supervised_targets"]

INPUT_KINDS = ("gt", "detected")
SCALE_MODES = ("dataset", "pose", "pose-head")


@dataclass(frozen=True)
class Normalisation:
    """How 2D pixels become network inputs: ``mode`` ("dataset" or "pose") and the dataset scale in px.

    Example:
        >>> norm = Normalisation.from_dict({"mode": "dataset", "dataset_scale_px": 100.0})
        >>> poses = torch.zeros(1, 17, 2, dtype=torch.float64); poses[0, 10, 1] = -50.0
        >>> float(norm.scale_of(poses)[0]), float(norm.per_pose_scale_of(poses)[0])
        (100.0, 50.0)
    """

    mode: Literal["dataset", "pose", "pose-head"]
    dataset_scale_px: float

    @classmethod
    def fit(cls, mode: str, train_poses_2d_px: np.ndarray) -> Normalisation:
        """The normalisation of ``mode`` with the dataset scale of ``train_poses_2d_px (N, 17, 2)``."""
        if mode not in SCALE_MODES:
            raise ValueError(f"scale mode {mode!r} unknown; expected one of {SCALE_MODES}")
        return cls(mode=mode, dataset_scale_px=pelvis_head_scale(train_poses_2d_px))  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, raw: Any, where: str = "normalisation") -> Normalisation:
        """Read ``{"mode": ..., "dataset_scale_px": ...}`` (a checkpoint's field); :class:`InputError` names ``where``."""
        if not isinstance(raw, dict) or set(raw) != {"mode", "dataset_scale_px"}:
            raise InputError(
                f"{where}: expected an object with exactly 'mode' and 'dataset_scale_px', got {short_repr(raw)}"
            )
        mode, scale = raw["mode"], raw["dataset_scale_px"]
        if mode not in SCALE_MODES:
            raise InputError(f"{where}: field 'mode': expected one of {', '.join(SCALE_MODES)}, got {short_repr(mode)}")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale > 0):
            raise InputError(
                f"{where}: field 'dataset_scale_px': expected a positive number of pixels, got {short_repr(scale)}"
            )
        return cls(mode=mode, dataset_scale_px=float(scale))

    def scale_of(self, poses_2d_px: torch.Tensor) -> torch.Tensor:
        """The scale used for each pose ``(N, 17, 2)`` px -> ``(N,)`` px."""
        if self.mode == "pose":
            return rms_scale(poses_2d_px)
        if self.mode == "pose-head":
            return pelvis_head_distance(poses_2d_px)
        return torch.full(poses_2d_px.shape[:-2], self.dataset_scale_px, dtype=poses_2d_px.dtype)

    def per_pose_scale_of(self, poses_2d_px: torch.Tensor) -> torch.Tensor:
        """Each pose's own size by this normalisation's measure ``(N, 17, 2)`` px -> ``(N,)`` px."""
        if self.mode == "pose":
            return rms_scale(poses_2d_px)
        return pelvis_head_distance(poses_2d_px)

    def to_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "dataset_scale_px": self.dataset_scale_px}


def select_2d(split: PoseSplit, kind: str) -> np.ndarray:
    """The 2D input of ``kind`` ("gt" or "detected") of ``split`` ``(N, 17, 2)`` pixels."""
    if kind not in INPUT_KINDS:
        raise ValueError(f"2D input {kind!r} unknown; expected one of {INPUT_KINDS}")
    return split.poses_2d if kind == "gt" else split.poses_2d_detected


def normalise(poses_2d_px: np.ndarray | torch.Tensor, norm: Normalisation) -> torch.Tensor:
    """Normalised network input ``(N, 17, 2)`` float32 from pixels ``(N, 17, 2)``."""
    poses = torch.as_tensor(np.asarray(poses_2d_px), dtype=torch.float64)
    return normalise_2d(poses, norm.scale_of(poses)).float()


def supervised_targets(split: PoseSplit, kind: str, norm: Normalisation) -> torch.Tensor:
    """3D targets for the supervised bound in the lifter's units ``(N, 17, 3)`` float32.

    The camera-frame pose, pelvis-centred, scaled by ``(10 / Z_pelvis) * (0.1 f / s)``: the
    scale at which lifting the normalised 2D with the true relative depths reproduces it
    (exact for a pelvis on the optical axis, the approximation the lifter itself makes).
    """
    poses_px = torch.as_tensor(select_2d(split, kind), dtype=torch.float64)
    scale_px = norm.scale_of(poses_px)
    focal = torch.as_tensor(split.camera_K[split.view, 0, 0], dtype=torch.float64)
    poses_3d = torch.as_tensor(split.poses_3d, dtype=torch.float64)
    pelvis_depth = poses_3d[:, 0, 2]
    factor = DEPTH_OFFSET / pelvis_depth * NORMALISED_SCALE * focal / scale_px
    return ((poses_3d - poses_3d[:, :1]) * factor[:, None, None]).float()
