"""The lifting network: 2D pose -> per-joint depth offsets and the camera elevation.

References: ElePose, Wandt, Little & Rhodin, CVPR 2022, section 3 ("Neural Network Structure",
Eq. 2); the residual MLP of Martinez et al., ICCV 2017. Layout per SPEC section 5 *(code)*.

Two layouts:

- ``"shared"`` (default, the authors' code): ``Linear(34, H)`` + LeakyReLU, one shared residual
  block + LeakyReLU, then two branches of two residual blocks (each + LeakyReLU) ending in a
  depth head ``Linear(H, 17)`` and an elevation head ``Linear(H, 1)``.
- ``"towers"`` (the paper's text): two separate towers, each ``Linear(34, H)`` + LeakyReLU and
  three residual blocks (each + LeakyReLU), one ending in the depth head, one in the
  elevation head.

The LeakyReLU after the input layer follows the paper ("upscaled to a dimension of 1024 by a
fully connected layer followed by a leaky ReLU"). A residual block is
``x + LReLU(L2(LReLU(L1 x)))``, LeakyReLU slope 0.01, no batch norm, no dropout.

Elevation convention (whole project): radians, **looking down is positive**, i.e. a camera
looking down by ``theta`` sees the world's down direction as ``rotation_x(theta) @ (0, 1, 0)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import nn

from elepose.geometry import DEPTH_OFFSET, unproject

__all__ = ["LEAKY_SLOPE", "LiftOutput", "ResidualBlock", "LiftingNetwork", "lift_poses", "Predictions", "predict"]

LEAKY_SLOPE = 0.01
"""Negative slope of every LeakyReLU in the lifter."""


class LiftOutput(NamedTuple):
    """Raw lifter output.

    ``depth``: ``(B, 17)`` depth offsets ``d_j`` (Eq. 2), pelvis entry exactly 0.
    ``elevation``: ``(B,)`` radians, looking down positive; ``None`` without an elevation branch.
    """

    depth: torch.Tensor
    elevation: torch.Tensor | None


class ResidualBlock(nn.Module):
    """``x + LReLU(L2(LReLU(L1 x)))`` with two ``Linear(width, width)`` layers.

    Example:
        >>> block = ResidualBlock(8)
        >>> block(torch.zeros(2, 8)).shape
        torch.Size([2, 8])
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(width, width)
        self.linear2 = nn.Linear(width, width)
        self.activation = nn.LeakyReLU(LEAKY_SLOPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.activation(self.linear2(self.activation(self.linear1(x))))


def _blocks(width: int, count: int) -> nn.Sequential:
    """``count`` residual blocks, each followed by a LeakyReLU."""
    layers: list[nn.Module] = []
    for _ in range(count):
        layers += [ResidualBlock(width), nn.LeakyReLU(LEAKY_SLOPE)]
    return nn.Sequential(*layers)


def _input_layer(in_features: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, width), nn.LeakyReLU(LEAKY_SLOPE))


class LiftingNetwork(nn.Module):
    """Depth-offset and elevation network of ElePose (section 3, Eq. 2; SPEC section 5).

    Arguments:
        num_joints: joints per pose (17).
        hidden: width of every hidden layer (1024).
        variant: ``"shared"`` (authors' code: one shared block, two 2-block branches) or
            ``"towers"`` (paper: separate 3-block towers for depth and elevation).
        elevation: build the elevation branch; ``False`` for the "no elevation" ablation.
        elevation_init_deg: initial bias of the elevation head in degrees (looking down positive).

    Example:
        >>> net = LiftingNetwork(hidden=32)
        >>> out = net(torch.zeros(4, 17, 2))
        >>> out.depth.shape, out.elevation.shape
        (torch.Size([4, 17]), torch.Size([4]))
        >>> poses_3d, elevation = lift_poses(net, torch.zeros(4, 17, 2))
        >>> poses_3d.shape
        torch.Size([4, 17, 3])
    """

    def __init__(
        self,
        num_joints: int = 17,
        hidden: int = 1024,
        variant: Literal["shared", "towers"] = "shared",
        elevation: bool = True,
        elevation_init_deg: float = 0.0,
    ) -> None:
        super().__init__()
        if variant not in ("shared", "towers"):
            raise ValueError(f"LiftingNetwork: variant must be 'shared' or 'towers', got {variant!r}")
        if num_joints < 2 or hidden < 1:
            raise ValueError(f"LiftingNetwork: need num_joints >= 2 and hidden >= 1, got {num_joints}, {hidden}")
        self.num_joints = num_joints
        self.hidden = hidden
        self.variant = variant
        self.has_elevation = elevation
        in_features = 2 * num_joints
        if variant == "shared":
            self.trunk = nn.Sequential(_input_layer(in_features, hidden), *_blocks(hidden, 1))
            self.depth_branch = _blocks(hidden, 2)
            self.elevation_branch = _blocks(hidden, 2) if elevation else None
        else:
            self.trunk = None
            self.depth_branch = nn.Sequential(_input_layer(in_features, hidden), *_blocks(hidden, 3))
            self.elevation_branch = (
                nn.Sequential(_input_layer(in_features, hidden), *_blocks(hidden, 3)) if elevation else None
            )
        self.depth_head = nn.Linear(hidden, num_joints)
        self.elevation_head = nn.Linear(hidden, 1) if elevation else None
        if self.elevation_head is not None:
            # Symmetry breaker: the ElePose loss is (up to weak perspective) unchanged when every
            # depth and the elevation change sign together (the mirror-image solution), so the
            # starting elevation picks the basin. See README, "The mirror ambiguity".
            with torch.no_grad():
                self.elevation_head.bias.fill_(math.radians(elevation_init_deg))

    def forward(self, poses_2d: torch.Tensor) -> LiftOutput:
        """``poses_2d (B, J, 2)`` normalised, pelvis-centred -> :class:`LiftOutput`."""
        if poses_2d.ndim != 3 or poses_2d.shape[1:] != (self.num_joints, 2):
            raise ValueError(
                f"LiftingNetwork: poses_2d must have shape (B, {self.num_joints}, 2), got {tuple(poses_2d.shape)}"
            )
        x = poses_2d.reshape(poses_2d.shape[0], 2 * self.num_joints)
        features = self.trunk(x) if self.trunk is not None else x
        depth = self.depth_head(self.depth_branch(features))
        depth = torch.cat([torch.zeros_like(depth[:, :1]), depth[:, 1:]], dim=1)
        elevation = None
        if self.elevation_branch is not None and self.elevation_head is not None:
            elevation = self.elevation_head(self.elevation_branch(features)).squeeze(-1)
        return LiftOutput(depth, elevation)


def lift_poses(
    network: nn.Module, poses_2d: torch.Tensor, min_depth: float | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """2D -> 3D through ``network`` by Eq. 2: the one place where poses are lifted.

    ``network``: a :class:`LiftingNetwork` or a wrapper of one (DDP): it is called through
    its ``forward``, so a wrapper sees the call. ``poses_2d (B, J, 2)`` normalised. Returns
    ``poses_3d (B, J, 3)`` pelvis-centred in the lifter's normalised units (depth offset
    ``DEPTH_OFFSET = 10``) and ``elevation (B,)`` radians looking down positive (``None``
    without an elevation branch), both fp32 whatever the autocast precision. ``min_depth``:
    clip ``w_j = d_j + 10`` to at least this (training uses 1.0; ``None`` does not clip).
    """
    out: LiftOutput = network(poses_2d)
    poses_3d = unproject(poses_2d, out.depth.float(), depth_offset=DEPTH_OFFSET, min_depth=min_depth)
    elevation = out.elevation.float() if out.elevation is not None else None
    return poses_3d, elevation


@dataclass(frozen=True)
class Predictions:
    """Lifted poses ``(N, 17, 3)`` lifter units and elevations ``(N,)`` radians (zeros without a branch)."""

    poses_3d: np.ndarray
    elevation: np.ndarray


@torch.no_grad()
def predict(
    network: nn.Module, inputs: torch.Tensor, device: torch.device | str = "cpu", batch_size: int = 8192
) -> Predictions:
    """Lift normalised 2D ``inputs (N, 17, 2)`` in chunks of ``batch_size`` (eval mode, no depth clip), float64 on the CPU."""
    network.eval()
    poses, elevations = [], []
    for chunk in inputs.split(batch_size):
        chunk = chunk.to(device)
        poses_3d, elevation = lift_poses(network, chunk)
        if elevation is None:
            elevation = torch.zeros(len(chunk), device=chunk.device)
        poses.append(poses_3d.cpu())
        elevations.append(elevation.cpu())
    if not poses:
        return Predictions(np.zeros((0, inputs.shape[1], 3)), np.zeros(0))
    return Predictions(torch.cat(poses).double().numpy(), torch.cat(elevations).double().numpy())
