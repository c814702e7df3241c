"""Rotations, perspective projection and 2D normalisation (SPEC section 3).

Conventions: camera frame x right, y down, z forward (OpenCV). 3D poses in metres (or in the
normalised units of the lifter), 2D poses in pixels or normalised units. The lifter works with a
fixed depth offset ``DEPTH_OFFSET = 10`` (Eq. 2-3 of ElePose). Every function here works on
torch tensors; the ``*_np`` helpers are thin numpy wrappers where data preparation needs them.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "DEPTH_OFFSET",
    "NORMALISED_SCALE",
    "rotation_x",
    "rotation_y",
    "project",
    "unproject",
    "centre_on_pelvis",
    "pelvis_head_distance",
    "normalise_2d",
    "pelvis_head_scale",
    "rms_scale",
]

DEPTH_OFFSET = 10.0
"""Constant depth D of Eq. 2 (ElePose, following Chen et al. and Yu et al.)."""
NORMALISED_SCALE = 0.1
"""Factor applied after dividing by the pose scale (authors' code, SPEC section 3)."""
_MIN_DEPTH = 1e-3


def rotation_x(angle: torch.Tensor) -> torch.Tensor:
    """Rotation about the camera x axis by ``angle (...)`` radians -> ``(..., 3, 3)``.

    Right-handed: ``Rx(a) @ [0, 1, 0] = [0, cos a, sin a]``. With y down and z forward, a
    positive angle turns the view so the camera looks down onto the subject (positive elevation).
    """
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack(
        [
            torch.stack([one, zero, zero], -1),
            torch.stack([zero, c, -s], -1),
            torch.stack([zero, s, c], -1),
        ],
        -2,
    )


def rotation_y(angle: torch.Tensor) -> torch.Tensor:
    """Rotation about the camera y axis by ``angle (...)`` radians -> ``(..., 3, 3)`` (azimuth)."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack(
        [
            torch.stack([c, zero, s], -1),
            torch.stack([zero, one, zero], -1),
            torch.stack([-s, zero, c], -1),
        ],
        -2,
    )


def project(poses_3d: torch.Tensor, depth_offset: float = DEPTH_OFFSET) -> torch.Tensor:
    """Perspective projection of Eq. 3 after adding ``depth_offset`` to z.

    ``poses_3d (..., J, 3)`` pelvis-centred -> ``(..., J, 2)`` normalised image coordinates
    ``(x / z, y / z)`` with ``z = poses_3d[..., 2] + depth_offset`` clamped to at least 1e-3
    (a guard against division by zero or a sign flip; the lifter keeps depths >= 1 anyway).
    """
    z = (poses_3d[..., 2:3] + depth_offset).clamp(min=_MIN_DEPTH)
    return poses_3d[..., :2] / z


def unproject(
    poses_2d: torch.Tensor,
    depth: torch.Tensor,
    depth_offset: float = DEPTH_OFFSET,
    min_depth: float | None = 1.0,
) -> torch.Tensor:
    """Lift 2D to 3D with per-joint depth offsets (Eq. 2), pelvis-centred.

    ``poses_2d (..., J, 2)`` normalised coordinates, ``depth (..., J)`` offsets ``d_j`` (the
    pelvis entry is ignored and set to 0). ``w_j = d_j + depth_offset`` is clipped to
    ``>= min_depth`` (``None``: no clip), then ``y_j = (u_j w_j, v_j w_j, w_j)`` and the pelvis
    (joint 0) is subtracted. Returns ``(..., J, 3)``.
    """
    depth = torch.cat([torch.zeros_like(depth[..., :1]), depth[..., 1:]], dim=-1)
    w = depth + depth_offset
    if min_depth is not None:
        w = w.clamp(min=min_depth)
    w = w.unsqueeze(-1)
    poses_3d = torch.cat([poses_2d * w, w], dim=-1)
    return poses_3d - poses_3d[..., :1, :]


def centre_on_pelvis(poses: torch.Tensor) -> torch.Tensor:
    """Subtract joint 0 (pelvis) from ``poses (..., J, D)``."""
    return poses - poses[..., :1, :]


def pelvis_head_distance(poses_2d: torch.Tensor) -> torch.Tensor:
    """Per-pose 2D distance from the pelvis (joint 0) to the head (joint 10), ``(..., 17, 2) -> (...)``."""
    return torch.linalg.norm(poses_2d[..., 10, :] - poses_2d[..., 0, :], dim=-1)


def pelvis_head_scale(poses_2d: np.ndarray | torch.Tensor) -> float:
    """Dataset scale: mean 2D pelvis-to-head distance over ``poses_2d (N, 17, 2)`` (authors' code)."""
    return float(pelvis_head_distance(torch.as_tensor(poses_2d, dtype=torch.float64)).mean())


def rms_scale(poses_2d: torch.Tensor) -> torch.Tensor:
    """Per-pose scale: RMS distance of the joints to the pelvis, ``(..., J, 2) -> (...)``."""
    centred = centre_on_pelvis(poses_2d)
    return centred.pow(2).sum(-1).mean(-1).sqrt()


def normalise_2d(poses_2d: torch.Tensor, scale: float | torch.Tensor | None = None) -> torch.Tensor:
    """Normalise 2D poses for the lifter: pelvis-centred, divided by a scale, times 0.1.

    ``poses_2d (..., 17, 2)`` pixels. ``scale``: a float (dataset scale, e.g.
    :func:`pelvis_head_scale` of the training set), a tensor ``(...)`` of per-pose scales, or
    ``None`` for the per-pose :func:`rms_scale`. Returns ``(..., 17, 2)``; the result is
    invariant to image translation, and to image scaling when the scale is per pose.
    """
    centred = centre_on_pelvis(poses_2d)
    if scale is None:
        scale = rms_scale(poses_2d)
    scale_t = torch.as_tensor(scale, dtype=poses_2d.dtype, device=poses_2d.device)
    if scale_t.ndim > 0:
        scale_t = scale_t[..., None, None]
    if bool((scale_t <= 0).any()):
        raise ValueError("normalise_2d: a pose has zero or negative scale (all joints on the pelvis?)")
    return centred / scale_t * NORMALISED_SCALE
