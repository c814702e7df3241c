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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn

from elepose.geometry import DEPTH_OFFSET, project, rotation_x, rotation_y, unproject
from elepose.losses import (
    bone_loss,
    deformation_loss,
    flow_loss,
    lift_3d_loss,
    reprojection_loss,
)
from elepose.models.lifter import LiftOutput

__all__ = [
    "TRAINING_MIN_DEPTH",
    "ElevationPrior",
    "CHEN_UNIFORM_PRIOR",
    "parse_elevation_prior",
    "LossWeights",
    "VirtualRotation",
    "virtual_rotation",
    "rotate",
    "elepose_losses",
]

TRAINING_MIN_DEPTH = 1.0
"""Depths ``w = d + 10`` are clipped to at least this during training (ElePose section 3)."""
_MIN_VARIANCE = 1e-12


@dataclass(frozen=True)
class ElevationPrior:
    """Distribution of the virtual camera's elevation ``e'`` (radians, looking down positive).

    ``kind``:
        ``"learned"`` (ElePose, Eq. 5-6): ``N(mu, sigma)`` with ``mu``, ``sigma`` the mean and
        unbiased standard deviation of the predicted elevations in the batch, sampled by
        reparametrisation ``mu + sigma * eps`` so gradients reach both.
        ``"uniform"``: ``U(low_rad, high_rad)``, fixed (Chen et al. / Yu et al. use
        ``U(-pi/9, pi/9)``, :data:`CHEN_UNIFORM_PRIOR`).
        ``"normal"``: ``N(mean_rad, std_rad)``, fixed.

    Example:
        >>> ElevationPrior.parse("normal:12,6").to_string()
        'normal:12,6'
        >>> round(ElevationPrior.parse("uniform:-20,20").high_rad, 4)
        0.3491
    """

    kind: Literal["learned", "uniform", "normal"] = "learned"
    low_rad: float = -math.pi / 9
    high_rad: float = math.pi / 9
    mean_rad: float = 0.0
    std_rad: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("learned", "uniform", "normal"):
            raise ValueError(
                f"ElevationPrior: kind must be 'learned', 'uniform' or 'normal', got {self.kind!r}"
            )
        if self.kind == "uniform" and not self.low_rad <= self.high_rad:
            raise ValueError(
                f"ElevationPrior: uniform needs low <= high, got {self.low_rad}, {self.high_rad}"
            )
        if self.kind == "normal" and not self.std_rad >= 0:
            raise ValueError(f"ElevationPrior: normal needs std >= 0, got {self.std_rad}")

    @classmethod
    def learned(cls) -> ElevationPrior:
        """ElePose's learned prior (the default)."""
        return cls("learned")

    @classmethod
    def uniform(cls, low_rad: float, high_rad: float) -> ElevationPrior:
        """Fixed ``U(low_rad, high_rad)``."""
        return cls("uniform", low_rad=low_rad, high_rad=high_rad)

    @classmethod
    def normal(cls, mean_rad: float, std_rad: float) -> ElevationPrior:
        """Fixed ``N(mean_rad, std_rad)``."""
        return cls("normal", mean_rad=mean_rad, std_rad=std_rad)

    @classmethod
    def parse(cls, text: str) -> ElevationPrior:
        """Parse ``"learned"``, ``"uniform:LO,HI"`` or ``"normal:MEAN,STD"`` (degrees)."""
        kind, _, args = text.strip().partition(":")
        try:
            values = [math.radians(float(v)) for v in args.split(",")] if args else []
        except ValueError:
            values = None
        if kind == "learned" and not values:
            return cls.learned()
        if kind in ("uniform", "normal") and values is not None and len(values) == 2:
            return cls.uniform(*values) if kind == "uniform" else cls.normal(*values)
        raise ValueError(
            f"elevation prior: expected 'learned', 'uniform:LO,HI' or 'normal:MEAN,STD' in "
            f"degrees, got {text!r}"
        )

    def to_string(self) -> str:
        """Inverse of :meth:`parse` (degrees)."""
        if self.kind == "learned":
            return "learned"
        if self.kind == "uniform":
            a, b = self.low_rad, self.high_rad
        else:
            a, b = self.mean_rad, self.std_rad
        return f"{self.kind}:{math.degrees(a):.6g},{math.degrees(b):.6g}"


CHEN_UNIFORM_PRIOR = ElevationPrior.uniform(-math.pi / 9, math.pi / 9)
"""The fixed prior of Chen et al. (2019) and Yu et al. (2021): elevation ~ U(-20 deg, 20 deg)."""


def parse_elevation_prior(text: str, elevation_branch: bool = True) -> ElevationPrior:
    """:meth:`ElevationPrior.parse` (degrees) that also rejects ``"learned"`` for a lifter
    without an elevation branch (the "no elevation" ablation needs a fixed prior)."""
    prior = ElevationPrior.parse(text)
    if prior.kind == "learned" and not elevation_branch:
        raise ValueError(
            "elevation prior: 'learned' needs the lifter's elevation branch; without it use a "
            "fixed prior such as 'uniform:-20,20' or 'normal:12,6' (degrees)"
        )
    return prior


@dataclass(frozen=True)
class LossWeights:
    """Weights of Eq. 13 (defaults: the paper's ``L = L_NF + 50 L_bone + L_3D + L_def + L_2D``)."""

    nf: float = 1.0
    bone: float = 50.0
    lift_3d: float = 1.0
    deformation: float = 1.0
    reprojection: float = 1.0


class VirtualRotation(NamedTuple):
    """``R (B, 3, 3)`` to the virtual view; ``mu``, ``sigma`` (scalars, radians) of the
    distribution the virtual elevation was drawn from (batch statistics for the learned prior,
    with gradient; the fixed prior's mean and std otherwise)."""

    R: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor


def virtual_rotation(
    elevation: torch.Tensor | None,
    prior: ElevationPrior,
    generator: torch.Generator,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
) -> VirtualRotation:
    """Sample rotations to virtual views (Eq. 5-7): ``R = Rx(e') @ Ry(a) @ Rx(-e)``.

    ``elevation (B,)``: predicted elevations ``e``, radians, looking down positive (``None``:
    no elevation branch, ``e = 0``, and then ``batch_size`` is required and ``prior`` must be
    fixed). ``a ~ U(-pi, pi)`` (azimuth); ``e'`` from ``prior`` (``mu + sigma * eps`` for the
    learned prior). Draws, in this order, ``B`` azimuths then ``B`` elevation variates from
    ``generator``.

    Sign: SPEC section 3 writes ``R = Rx(-mu + sigma*eps) @ Ry(a) @ Rx(e)`` with the authors'
    elevation, which is looking-*up* positive. Here the learned variable is looking-down
    positive under :func:`elepose.geometry.rotation_x` (a camera looking down by ``theta`` sees
    the world's down direction as ``Rx(theta) @ (0, 1, 0)``), so ``Rx(-e)`` de-rotates a pose
    to upright, ``Ry(a)`` turns it about the vertical axis and ``Rx(e')`` tilts it to the sampled
    elevation: the SPEC's formula with the sign of the learned variable flipped (``eps`` is
    symmetric). In the paper's notation ``R = Re^T Ra R~e`` (Eq. 7).
    """
    if elevation is None:
        if batch_size is None:
            raise ValueError("virtual_rotation: batch_size is required when elevation is None")
        if prior.kind == "learned":
            raise ValueError(
                "virtual_rotation: the learned elevation prior needs predicted elevations; "
                "use a fixed prior (uniform or normal) without an elevation branch"
            )
        dtype = torch.float32
        device = torch.device(device) if device is not None else torch.device("cpu")
    else:
        if elevation.ndim != 1:
            raise ValueError(
                f"virtual_rotation: elevation must have shape (B,), got {tuple(elevation.shape)}"
            )
        batch_size = elevation.shape[0]
        dtype = torch.promote_types(elevation.dtype, torch.float32)
        device = elevation.device
        elevation = elevation.to(dtype)
    if prior.kind == "learned" and batch_size < 2:
        raise ValueError(
            "virtual_rotation: the learned elevation prior needs a batch of at least 2"
        )

    def draw(kind: str) -> torch.Tensor:
        sampler = torch.rand if kind == "uniform" else torch.randn
        sample = sampler(batch_size, generator=generator, device=generator.device, dtype=dtype)
        return sample.to(device)

    azimuth = (2.0 * draw("uniform") - 1.0) * math.pi
    if prior.kind == "learned":
        assert elevation is not None
        mu = elevation.mean()
        # Unbiased std; the clamp only guards the gradient when all elevations are equal.
        sigma = elevation.var(correction=1).clamp(min=_MIN_VARIANCE).sqrt()
        sampled = mu + sigma * draw("normal")
    elif prior.kind == "uniform":
        low, high = prior.low_rad, prior.high_rad
        sampled = low + (high - low) * draw("uniform")
        mu = torch.tensor((low + high) / 2, dtype=dtype, device=device)
        sigma = torch.tensor((high - low) / math.sqrt(12.0), dtype=dtype, device=device)
    else:
        sampled = prior.mean_rad + prior.std_rad * draw("normal")
        mu = torch.tensor(prior.mean_rad, dtype=dtype, device=device)
        sigma = torch.tensor(prior.std_rad, dtype=dtype, device=device)

    R = _compose(rotation_x(sampled), rotation_y(azimuth))
    if elevation is not None:
        R = _compose(R, rotation_x(-elevation))
    return VirtualRotation(R, mu, sigma)


def _compose(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for ``(B, 3, 3)`` matrices, elementwise so that autocast keeps fp32."""
    return (a[:, :, :, None] * b[:, None, :, :]).sum(-2)


def rotate(rotation: torch.Tensor, poses_3d: torch.Tensor) -> torch.Tensor:
    """Apply ``rotation (B, 3, 3)`` to every joint of ``poses_3d (B, J, 3)`` -> ``(B, J, 3)``.

    Elementwise products and a sum (not ``matmul``), so bf16 autocast keeps it in fp32.
    """
    return (rotation[:, None, :, :] * poses_3d[:, :, None, :]).sum(-1)


def _lift(lifter: nn.Module, poses_2d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Call the lifter's ``forward`` (so DDP wrappers work) and unproject in fp32."""
    out: LiftOutput = lifter(poses_2d)
    depth = out.depth.float()
    poses_3d = unproject(poses_2d, depth, depth_offset=DEPTH_OFFSET, min_depth=TRAINING_MIN_DEPTH)
    elevation = out.elevation.float() if out.elevation is not None else None
    return poses_3d, elevation


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

    Returns a dict of scalars: ``total`` (with gradient), ``nf``, ``bone``, ``lift_3d``,
    ``deformation``, ``reprojection`` (with gradient), ``elevation_mu``, ``elevation_sigma``
    (radians, detached).
    """
    if poses_2d.ndim != 3 or poses_2d.shape[-1] != 2 or poses_2d.shape[0] < 2:
        raise ValueError(
            "elepose_losses: poses_2d must have shape (B >= 2, 17, 2), "
            f"got {tuple(poses_2d.shape)}"
        )
    x = poses_2d.float()
    y, elevation = _lift(lifter, x)
    if elevation is not None and hold_elevation_rad is not None:
        elevation = torch.full_like(elevation, hold_elevation_rad).detach()
    if elevation is None and prior.kind == "learned":
        raise ValueError(
            "elepose_losses: the learned elevation prior needs a lifter with an elevation branch"
        )
    rotation = virtual_rotation(elevation, prior, generator, batch_size=x.shape[0], device=x.device)
    R = rotation.R
    y2 = rotate(R, y)
    x2 = project(y2, DEPTH_OFFSET)
    nll = nll_fn(x2)
    if nll.shape != (x.shape[0],):
        raise ValueError(
            f"elepose_losses: nll_fn must return shape ({x.shape[0]},), got {tuple(nll.shape)}"
        )
    y2_tilde, _ = _lift(lifter, x2)
    y1_tilde = rotate(R.transpose(-1, -2), y2_tilde)
    x_tilde = project(y1_tilde, DEPTH_OFFSET)

    terms = {
        "nf": flow_loss(nll.float()),
        "bone": bone_loss(y, bone_ratios),
        "lift_3d": lift_3d_loss(y2, y2_tilde),
        "deformation": deformation_loss(y, y1_tilde),
        "reprojection": reprojection_loss(x_tilde, x),
    }
    if not use_bone_prior:
        terms["bone"] = terms["bone"].detach()
    total = (
        weights.nf * terms["nf"]
        + weights.reprojection * terms["reprojection"]
        + weights.lift_3d * terms["lift_3d"]
        + weights.deformation * terms["deformation"]
    )
    if use_bone_prior:
        total = total + weights.bone * terms["bone"]
    return {
        "total": total,
        **terms,
        "elevation_mu": rotation.mu.detach(),
        "elevation_sigma": rotation.sigma.detach(),
    }
