"""The self-supervised ElePose cycle: lift, rotate to a virtual view, score, re-lift, rotate back.

Reference: ElePose, Wandt, Little & Rhodin, CVPR 2022, Fig. 2 and Eq. 5-13; SPEC sections 3
and 6. With ``x`` the normalised input 2D poses::

    y   = lift(x)                    Eq. 2, depth w clipped >= 1, pelvis-centred
    R   = Rx(e') @ Ry(a) @ Rx(-e)    Eq. 5-7 (see virtual_rotation for the sign)
    y2  = R y,   x2 = P(y2)          Eq. 3
    L_NF = nll(x2)                   Eq. 4, the frozen flow (a callable here)
    y2~ = lift(x2)                   the re-lift; the lifter gets gradient from both passes
    y1~ = R^T y2~,  x~ = P(y1~)
    L   = L_NF + L_2D + L_3D + L_def + 50 L_bone   Eq. 13

With ``same_person`` (``fit --track-pairs``; not in the paper) the batch's pairs (0, 1), (2, 3), ...
are two frames of one person: ``L_def`` then compares two times of one body, as Yu et al.'s
deformation loss does (the paper pairs any two poses only because it assumes no video), and
``+ 50 L_track`` (:func:`elepose.losses.track_bone_loss`) asks both frames for one set of bone
proportions.

Why ``x2`` is fed back to the lifter without re-normalising it: the input ``x`` is
pelvis-centred and scaled so that the pelvis-to-head distance is about 0.1 (pixels / dataset
scale * 0.1). Unprojecting at depth ``w ~ 10`` (Eq. 2) gives a 3D pose whose pelvis-to-head
distance is about ``0.1 * 10 = 1``, and projecting any rotation of it with the same depth offset
of 10 (Eq. 3) divides by ``~10`` again: ``x2`` has the pelvis at exactly 0 (``R`` keeps the
origin) and the same ~0.1 scale as ``x``. ``P(unproject(x, d)) == x`` exactly for any ``d``
(without clipping), so both passes live in one coordinate system. Re-normalising ``x2`` with a
per-pose scale would instead change the scale of ``y2~`` relative to ``y2`` and break ``L_3D``,
and the flow was fitted on 2D poses in these same normalised units. The authors' code also feeds
``x2`` directly; the paper does not mention any re-normalisation.

Randomness (azimuth, elevation samples) comes only from the ``torch.Generator`` passed in, so a
run is reproducible. Geometry (rotation, projection) runs in fp32 even under bf16 autocast: the
lifter's outputs are cast up and rotations use elementwise products, which autocast leaves alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from elepose.geometry import DEPTH_OFFSET, project
from elepose.losses import (
    bone_loss,
    deformation_loss,
    flow_loss,
    lift_3d_loss,
    reprojection_loss,
    track_bone_loss,
)
from elepose.models.lifter import lift_poses
from elepose.views import ElevationPrior, rotate, virtual_rotation

__all__ = [
    "TRAINING_MIN_DEPTH",
    "LossWeights",
    "ELEVATION_STATS",
    "ElevationWindow",
    "elepose_losses",
]

ELEVATION_STATS = ("batch", "detached", "window")
"""How the learned prior's ``mu_e``, ``sigma_e`` are taken: ``batch`` (the paper: this batch's
predicted elevations, with gradient), ``detached`` (the same, no gradient), ``window`` (this
batch's with gradient pooled with the last batches' without)."""


@dataclass
class ElevationWindow:
    """The predicted elevations (radians, no gradient) of the last ``batches`` training batches."""

    batches: int
    _kept: deque = field(default_factory=deque)

    def values(self) -> torch.Tensor | None:
        """``(H,)`` all kept elevations, or None while none are kept."""
        return torch.cat(list(self._kept)) if self._kept else None

    def push(self, elevation: torch.Tensor) -> None:
        self._kept.append(elevation.detach())
        while len(self._kept) > self.batches:
            self._kept.popleft()


TRAINING_MIN_DEPTH = 1.0
"""Depths ``w = d + 10`` are clipped to at least this during training (ElePose section 3)."""


@dataclass(frozen=True)
class LossWeights:
    """Weights of Eq. 13 (defaults: the paper's ``L = L_NF + 50 L_bone + L_3D + L_def + L_2D``)."""

    nf: float = 1.0
    bone: float = 50.0
    lift_3d: float = 1.0
    deformation: float = 1.0
    reprojection: float = 1.0
    track_bone: float = 50.0  # L_track, only where the batch is made of one person's frame pairs (as L_bone's)


def weighted_total(terms: dict[str, torch.Tensor], weights: LossWeights, use_bone_prior: bool = True) -> torch.Tensor:
    """Eq. 13's weighted sum of the scalar ``terms`` (keys as :func:`elepose_losses` returns them).

    ``L_bone`` enters only with ``use_bone_prior`` (the ablation leaves it out), ``L_track`` only
    where ``terms`` has it.
    """
    total = (
        weights.nf * terms["nf"]
        + weights.reprojection * terms["reprojection"]
        + weights.lift_3d * terms["lift_3d"]
        + weights.deformation * terms["deformation"]
    )
    if use_bone_prior:
        total = total + weights.bone * terms["bone"]
    if "track_bone" in terms:
        total = total + weights.track_bone * terms["track_bone"]
    return total


def elepose_losses(
    lifter: nn.Module,
    nll_fn: Callable[[torch.Tensor], torch.Tensor],
    poses_2d: torch.Tensor,
    bone_ratios: torch.Tensor | Sequence[float],
    prior: ElevationPrior,
    generator: torch.Generator,
    weights: LossWeights = LossWeights(),
    use_bone_prior: bool = True,
    hold_elevation_rad: float | None = None,
    detach_stats: bool = False,
    window: ElevationWindow | None = None,
    same_person: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One evaluation of the ElePose objective (Eq. 13) on a batch.

    ``lifter``: a module whose ``forward(poses_2d (B, 17, 2))`` returns a
    :class:`~elepose.models.lifter.LiftOutput` (e.g. ``LiftingNetwork``, possibly DDP-wrapped).
    ``nll_fn``: ``(B, 17, 2) -> (B,)`` negative log-likelihood of the frozen flow (PCA inside).
    ``poses_2d (B, 17, 2)``: normalised, pelvis-centred input ``x``, ``B >= 2``.
    ``bone_ratios (16,)``: relative bone-length constants. ``prior``: the virtual elevation's
    distribution; the learned prior needs the lifter's elevation branch. Without the branch
    there is no de-rotation (``e = 0``). ``use_bone_prior=False`` (ablation) leaves
    ``L_bone`` out of ``total`` but still reports it (detached).
    ``hold_elevation_rad``: warm-up; every pose's elevation is taken as this constant (no
    gradient reaches the elevation branch) and a learned prior collapses to it. The loss is
    nearly symmetric under "negate every depth and the elevation" (the mirror image), and a
    flat early lift drifts to the mirror unless the elevation is held while the depth forms.
    ``detach_stats``, ``window``: how the learned prior's statistics are taken
    (:data:`ELEVATION_STATS`; :func:`elepose.views.sample_views`); the window gets this batch's
    elevations after they are used (not while the elevation is held).
    ``same_person (B // 2,)`` bool: the batch is pairs of frames, and whether each pair is one
    person's; adds ``track_bone`` (``L_track``) to the terms and the total.

    Returns a dict of scalars: ``total`` (with gradient), ``nf``, ``bone``, ``lift_3d``,
    ``deformation``, ``reprojection`` (with gradient), ``track_bone`` (with ``same_person``),
    ``elevation_mu``, ``elevation_sigma`` (radians, detached).
    """
    if poses_2d.ndim != 3 or poses_2d.shape[-1] != 2 or poses_2d.shape[0] < 2:
        raise ValueError(f"elepose_losses: poses_2d must have shape (B >= 2, 17, 2), got {tuple(poses_2d.shape)}")
    x = poses_2d.float()
    y, elevation = lift_poses(lifter, x, min_depth=TRAINING_MIN_DEPTH)
    if elevation is not None and hold_elevation_rad is not None:
        elevation = torch.full_like(elevation, hold_elevation_rad).detach()
    if elevation is None and prior.kind == "learned":
        raise ValueError("elepose_losses: the learned elevation prior needs a lifter with an elevation branch")
    history = window.values() if window is not None and hold_elevation_rad is None else None
    rotation = virtual_rotation(
        elevation, prior, generator, batch_size=x.shape[0], device=x.device, detach_stats=detach_stats, history=history
    )
    if window is not None and elevation is not None and hold_elevation_rad is None:
        window.push(elevation)
    R = rotation.R
    y2 = rotate(R, y)
    x2 = project(y2, DEPTH_OFFSET)
    nll = nll_fn(x2)
    if nll.shape != (x.shape[0],):
        raise ValueError(f"elepose_losses: nll_fn must return shape ({x.shape[0]},), got {tuple(nll.shape)}")
    y2_tilde, _ = lift_poses(lifter, x2, min_depth=TRAINING_MIN_DEPTH)
    y1_tilde = rotate(R.transpose(-1, -2), y2_tilde)
    x_tilde = project(y1_tilde, DEPTH_OFFSET)

    terms = {
        "nf": flow_loss(nll.float()),
        "bone": bone_loss(y, bone_ratios),
        "lift_3d": lift_3d_loss(y2, y2_tilde),
        "deformation": deformation_loss(y, y1_tilde),
        "reprojection": reprojection_loss(x_tilde, x),
    }
    if same_person is not None:
        terms["track_bone"] = track_bone_loss(y, same_person)
    if not use_bone_prior:
        terms["bone"] = terms["bone"].detach()
    return {
        "total": weighted_total(terms, weights, use_bone_prior),
        **terms,
        "elevation_mu": rotation.mu.detach(),
        "elevation_sigma": rotation.sigma.detach(),
    }
