"""Loss terms of ElePose (section 3, Eq. 4 and 8-11; SPEC section 6 *(code)*).

Pure functions over batched tensors. Each returns a scalar: the mean over the batch of a
per-pose value. 3D poses are pelvis-centred in the lifter's normalised units, 2D poses in
normalised image units (see :mod:`elepose.geometry`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from elepose.skeleton import BONES

__all__ = [
    "flow_loss",
    "lift_3d_loss",
    "deformation_loss",
    "reprojection_loss",
    "bone_loss",
    "relative_bone_lengths",
    "track_bone_loss",
    "distillation_loss",
    "supervised_loss",
]

_BONE_PARENTS = [a for a, _ in BONES]
_BONE_CHILDREN = [b for _, b in BONES]
_MIN_MEAN_BONE = 1e-8


def _check_pair(name: str, a: torch.Tensor, b: torch.Tensor, dims: int) -> None:
    """Raise unless ``a`` and ``b`` share one shape ``(B, J, dims)``."""
    if a.shape != b.shape or a.ndim != 3 or a.shape[-1] != dims:
        raise ValueError(
            f"{name}: expected two tensors of one shape (B, J, {dims}), got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def flow_loss(nll: torch.Tensor) -> torch.Tensor:
    """``L_NF`` (Eq. 4): mean of the flow's negative log-likelihood ``nll (B,)``."""
    if nll.ndim != 1:
        raise ValueError(f"flow_loss: nll must have shape (B,), got {tuple(nll.shape)}")
    return nll.mean()


def lift_3d_loss(y2: torch.Tensor, y2_tilde: torch.Tensor) -> torch.Tensor:
    """``L_3D`` (Eq. 9): mean over the batch of ``||y2 - y2~||_2`` on the 51-vector.

    ``y2, y2_tilde: (B, 17, 3)``. A norm, not its square (authors' code).
    """
    _check_pair("lift_3d_loss", y2, y2_tilde, 3)
    return torch.linalg.vector_norm((y2 - y2_tilde).flatten(1), dim=1).mean()


def deformation_loss(y1: torch.Tensor, y1_tilde: torch.Tensor) -> torch.Tensor:
    """``L_def`` (Eq. 10) over the batch pairs (0, 1), (2, 3), ...

    ``y1, y1_tilde: (B, 17, 3)``, ``B >= 2``; an odd batch drops its last pose. Mean over pairs
    of ``||(y_a - y_b) - (y~_a - y~_b)||_2`` on the 51-vector.
    """
    _check_pair("deformation_loss", y1, y1_tilde, 3)
    pairs = y1.shape[0] // 2
    if pairs == 0:
        raise ValueError("deformation_loss: need a batch of at least 2 poses")
    a, b = slice(0, 2 * pairs, 2), slice(1, 2 * pairs, 2)
    difference = (y1[a] - y1[b]) - (y1_tilde[a] - y1_tilde[b])
    return torch.linalg.vector_norm(difference.flatten(1), dim=1).mean()


def reprojection_loss(x_tilde: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``L_2D`` (Eq. 11): mean over the batch of ``sum |x~ - x|`` over ``(17, 2)`` values (L1)."""
    _check_pair("reprojection_loss", x_tilde, x, 2)
    return (x_tilde - x).abs().flatten(1).sum(1).mean()


def relative_bone_lengths(poses_3d: torch.Tensor) -> torch.Tensor:
    """``(B, 16)`` each pose's bone lengths (:data:`elepose.skeleton.BONES` order) over its mean bone length.

    ``poses_3d: (B, 17, 3)`` any units; scale-free, so poses lifted at different scales compare.
    """
    if poses_3d.ndim != 3 or poses_3d.shape[1] != len(BONES) + 1:
        raise ValueError(
            f"bone lengths: poses_3d must have shape (B, {len(BONES) + 1}, D), got {tuple(poses_3d.shape)}"
        )
    lengths = torch.linalg.vector_norm(poses_3d[:, _BONE_CHILDREN] - poses_3d[:, _BONE_PARENTS], dim=-1)
    return lengths / lengths.mean(dim=1, keepdim=True).clamp(min=_MIN_MEAN_BONE)


def bone_loss(poses_3d: torch.Tensor, ratios: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """``L_bone`` (negative log of Eq. 8 up to constants): relative bone-length prior.

    ``poses_3d: (B, 17, 3)`` any units; ``ratios: (16,)`` target bone / mean-bone ratios in
    :data:`elepose.skeleton.BONES` order (e.g. ``H36M_BONE_RATIOS``). Each pose's bone lengths are
    divided by that pose's mean bone length; squared error to ``ratios``, summed over bones,
    mean over the batch.
    """
    relative = relative_bone_lengths(poses_3d)
    target = torch.as_tensor(ratios, dtype=poses_3d.dtype, device=poses_3d.device)
    if target.shape != (len(BONES),):
        raise ValueError(f"bone_loss: ratios must have shape ({len(BONES)},), got {tuple(target.shape)}")
    return (relative - target).pow(2).sum(1).mean()


def track_bone_loss(poses_3d: torch.Tensor, same_person: torch.Tensor) -> torch.Tensor:
    """``L_track``: one person keeps their bone proportions from frame to frame (not in the paper).

    ``poses_3d: (B, 17, 3)``, ``B >= 2``, paired as :func:`deformation_loss` pairs them,
    (0, 1), (2, 3), ...; ``same_person: (B // 2,)`` bool, whether each pair is two frames of one
    person's track. Mean over those pairs of the squared difference of their
    :func:`relative_bone_lengths`, summed over bones (0 when no pair is one person's).
    """
    pairs = poses_3d.shape[0] // 2
    if pairs == 0 or same_person.shape != (pairs,):
        raise ValueError(
            f"track_bone_loss: expected B >= 2 poses and ({pairs},) pair flags, got {tuple(same_person.shape)}"
        )
    relative = relative_bone_lengths(poses_3d[: 2 * pairs])
    difference = (relative[0::2] - relative[1::2]).pow(2).sum(1)
    weight = same_person.to(difference.dtype)
    return (difference * weight).sum() / weight.sum().clamp(min=1.0)


def distillation_loss(
    depth: torch.Tensor,
    teacher_depth: torch.Tensor,
    elevation: torch.Tensor | None = None,
    teacher_elevation: torch.Tensor | None = None,
) -> torch.Tensor:
    """``L_distill``: the fitted lifter's outputs held to its start's on the start's own 2D (not in the paper).

    Learning without forgetting (Li & Hoiem, ECCV 2016) for ``fit --init --distill``: on 2D
    poses of the domain the start was trained on, the lifter being fitted is asked to predict
    what the start predicted. ``depth, teacher_depth: (B, J)``: relative depths ``d`` in the
    lifter's units (Eq. 2); ``elevation, teacher_elevation: (B,)`` radians or both None (no
    elevation branch). Mean squared depth difference over poses and joints, plus the mean squared
    elevation difference.
    """
    if depth.shape != teacher_depth.shape or depth.ndim != 2:
        raise ValueError(
            f"distillation_loss: expected two (B, J) depth tensors, got {tuple(depth.shape)} and "
            f"{tuple(teacher_depth.shape)}"
        )
    loss = (depth - teacher_depth).pow(2).mean()
    if (elevation is None) != (teacher_elevation is None):
        raise ValueError("distillation_loss: expected both elevations or neither")
    if elevation is not None and teacher_elevation is not None:
        if elevation.shape != (depth.shape[0],) or teacher_elevation.shape != elevation.shape:
            raise ValueError(
                f"distillation_loss: expected ({depth.shape[0]},) elevations, got {tuple(elevation.shape)}"
            )
        loss = loss + (elevation - teacher_elevation).pow(2).mean()
    return loss


def supervised_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Supervised L2 bound: mean over the batch of the squared error summed over joints and axes.

    ``pred, target: (B, 17, 3)`` in the same units and frame.
    """
    _check_pair("supervised_loss", pred, target, 3)
    return (pred - target).pow(2).flatten(1).sum(1).mean()
