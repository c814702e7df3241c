"""From cache splits to network inputs: which 2D, which scale, and supervised targets.

The lifter and the flow see 2D poses normalised by :func:`elepose.geometry.normalise_2d`:
pelvis-centred, divided by a scale, times 0.1. The scale is either the training set's mean
pelvis-to-head distance in pixels (``"dataset"``, the authors' choice) or each pose's RMS joint
distance to the pelvis (``"pose"``), recorded in every checkpoint so lifting uses the same one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from elepose.data.cache import PoseSplit
from elepose.geometry import DEPTH_OFFSET, NORMALISED_SCALE, normalise_2d, pelvis_head_scale, rms_scale

__all__ = ["Normalisation", "INPUT_KINDS", "SCALE_MODES", "select_2d", "normalise", "supervised_targets"]

INPUT_KINDS = ("gt", "detected")
SCALE_MODES = ("dataset", "pose")


@dataclass(frozen=True)
class Normalisation:
    """How 2D pixels become network inputs: ``mode`` ("dataset" or "pose") and the dataset scale in px."""

    mode: Literal["dataset", "pose"]
    dataset_scale_px: float

    @classmethod
    def fit(cls, mode: str, train_poses_2d_px: np.ndarray) -> "Normalisation":
        """The normalisation of ``mode`` with the dataset scale of ``train_poses_2d_px (N, 17, 2)``."""
        if mode not in SCALE_MODES:
            raise ValueError(f"scale mode {mode!r} unknown; expected one of {SCALE_MODES}")
        return cls(mode=mode, dataset_scale_px=pelvis_head_scale(train_poses_2d_px))  # type: ignore[arg-type]

    def scale_of(self, poses_2d_px: torch.Tensor) -> torch.Tensor:
        """The scale used for each pose ``(N, 17, 2)`` px -> ``(N,)`` px."""
        if self.mode == "pose":
            return rms_scale(poses_2d_px)
        return torch.full(poses_2d_px.shape[:-2], self.dataset_scale_px, dtype=poses_2d_px.dtype)

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
