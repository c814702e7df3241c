"""Validation that needs no 3D: what a lifter trained on a user's own 2D can be judged by.

On a held-out 2D split, with the flow frozen and the views drawn from a fixed seed (so epochs
are comparable): the ElePose objective's terms (Eq. 13) without gradient, the mean flow NLL of
the virtual views (``val_nf``), the cycle's 2D reprojection error (``val_reprojection``: lift,
rotate to a virtual view, project, re-lift, rotate back, project, against the input), the 3D
consistency of the re-lift (``val_lift_3d``), and the predicted elevations' mean and spread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from elepose.data.cache import PoseSplit, random_subset
from elepose.models.lifter import predict
from elepose.models.normalisation import Normalisation, normalise, select_2d
from elepose.train.objective import elepose_losses
from elepose.views import ElevationPrior

__all__ = ["validate_without_3d"]


@torch.no_grad()
def validate_without_3d(
    lifter: torch.nn.Module,
    flow: torch.nn.Module,
    split: PoseSplit,
    norm: Normalisation,
    kind: str,
    bone_ratios: Sequence[float],
    elevation_prior: ElevationPrior,
    samples: int | None = 4096,
    device: torch.device | str = "cpu",
    batch_size: int = 1024,
    seed: int = 0,
) -> dict[str, float]:
    """Mean ElePose terms over (up to ``samples``) poses of ``split`` and the predicted elevations' statistics (degrees)."""
    subset = random_subset(split, samples, seed)
    x = normalise(select_2d(subset, kind), norm)
    lifter.eval()
    generator = torch.Generator().manual_seed(seed)
    ratios = torch.tensor(list(bone_ratios), device=device)
    sums: dict[str, float] = {}
    count = 0
    for chunk in x.split(batch_size):
        if len(chunk) < 2:
            continue
        terms = elepose_losses(lifter, flow.nll, chunk.to(device), ratios, elevation_prior, generator)
        for key in ("nf", "reprojection", "lift_3d", "deformation", "bone"):
            sums[key] = sums.get(key, 0.0) + float(terms[key]) * len(chunk)
        count += len(chunk)
    values = {f"val_{k}": v / max(count, 1) for k, v in sums.items()}
    elevation = torch.as_tensor(predict(lifter, x, device).elevation)
    values["val_elevation_mean_deg"] = math.degrees(float(elevation.mean())) if len(elevation) else float("nan")
    values["val_elevation_spread_deg"] = math.degrees(float(elevation.std())) if len(elevation) > 1 else 0.0
    return values
