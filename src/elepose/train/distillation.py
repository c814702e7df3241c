"""Distillation for ``fit --init --distill CACHE``: the start's own lifts of its own domain, kept.

A lifter fine-tuned on one short clip lifts that clip far better and other motions worse than
the lifter it started from (benchmark sections 7 and 10). Learning without forgetting (Li &
Hoiem, ECCV 2016) keeps the start's answers where the user's 2D says nothing: each training
step also lifts a batch of 2D poses of the start's domain and pays ``distill_weight`` times
:func:`elepose.losses.distillation_loss` for every difference from what the start predicted
there. Unlike ``--rehearse`` (which trains the ElePose cycle and the flow on those poses as
well) it asks nothing of the flow and does not let the source's 2D pull the fit's elevation
prior.

:func:`distillation_targets` draws the poses (a fixed random subset of the cache's training
split, its detected 2D where it has it, taken through the user's detector's joint definitions as
``--rehearse`` takes them: :func:`elepose.train.rehearsal.draw_source`) and lifts them once with the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from elepose.models.io import load_lifter_record, load_lifter_weights, new_lifter
from elepose.models.normalisation import Normalisation, normalise
from elepose.train.rehearsal import draw_source

__all__ = ["DistillationTargets", "distillation_targets"]

_CHUNK = 4096  # poses per forward pass of the start


@dataclass(frozen=True)
class DistillationTargets:
    """The start's lifts of the source's 2D.

    ``inputs (N, 17, 2)``: normalised 2D (the fit's normalisation); ``depth (N, 17)``: the start's
    depth offsets ``d_j``; ``elevation (N,)`` radians, or None without an elevation branch.
    """

    inputs: torch.Tensor
    depth: torch.Tensor
    elevation: torch.Tensor | None

    def to(self, device: torch.device | str) -> DistillationTargets:
        elevation = None if self.elevation is None else self.elevation.to(device)
        return DistillationTargets(self.inputs.to(device), self.depth.to(device), elevation)


def distillation_targets(
    start: str | Path, source_cache: str | Path, layout: str | None, norm: Normalisation, poses: int, seed: int = 0
) -> DistillationTargets:
    """``poses`` 2D poses of ``source_cache``'s training split lifted by the lifter run ``start``.

    ``layout``: the fit's keypoint layout (``keypoint_layout`` of its cache's manifest; None: the
    source's joints as they are); ``norm``: the fit's input normalisation, applied to both
    lifters' inputs (the start's is the same kind: ``fit --init`` keeps its scale mode).
    """
    drawn, _ = draw_source(source_cache, poses, layout, seed, "--distill")
    detected = drawn.poses_2d_detected if drawn.poses_2d_detected is not None else drawn.poses_2d
    inputs = normalise(detected, norm)
    record = load_lifter_record(start)
    teacher = new_lifter(record)
    load_lifter_weights(start, teacher)
    teacher.eval()
    depths, elevations = [], []
    with torch.no_grad():
        for chunk in torch.split(inputs, _CHUNK):
            out = teacher(chunk)
            depths.append(out.depth.float())
            if out.elevation is not None:
                elevations.append(out.elevation.float())
    return DistillationTargets(inputs, torch.cat(depths), torch.cat(elevations) if elevations else None)
