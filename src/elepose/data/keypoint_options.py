"""How ``fit`` and ``data build --source keypoints`` choose training poses from detections
(:class:`KeypointCacheOptions`); light to import, so the command line reads its defaults here."""

from __future__ import annotations

import re
from dataclasses import dataclass

from elepose.errors import InputError
from elepose.skeleton import NUM_JOINTS

__all__ = ["KeypointCacheOptions", "MISSING_CHOICES", "BONE_RATIO_CHOICES"]

MISSING_CHOICES = ("drop", "fill")
BONE_RATIO_CHOICES = ("2d", "h36m")


@dataclass(frozen=True)
class KeypointCacheOptions:
    """How detections become training poses (see the module doc); ``min_motion`` is a share of the pelvis-to-head distance.

    ``min_visible`` applies with ``missing="fill"``; ``"drop"`` needs all 17 joints.
    """

    min_score: float = 0.3
    min_visible: int = 12  # with missing="fill": a pose needs this many present joints
    stride: int = 1
    min_motion: float = 0.05
    validation_share: float = 0.2
    missing: str = "drop"  # drop poses with a missing joint, or "fill" them from a PCA of the complete poses
    bone_ratios: str = "2d"  # every bone measured on the training 2D, or "h36m" limbs with measured head bones
    group_by: str | None = None  # a regular expression naming each source's clip (None: drop camera tags)

    def __post_init__(self) -> None:
        if self.missing not in MISSING_CHOICES:
            raise InputError(f"--missing {self.missing}: expected one of {', '.join(MISSING_CHOICES)}")
        if not (0.0 <= self.min_score <= 1e6 and 2 <= self.min_visible <= NUM_JOINTS and self.stride >= 1):
            raise InputError("--min-score >= 0, --min-visible in 2..17 and --stride >= 1 expected")
        if self.bone_ratios not in BONE_RATIO_CHOICES:
            raise InputError(f"--bone-ratios {self.bone_ratios!r}: expected one of {', '.join(BONE_RATIO_CHOICES)}")
        if self.group_by is not None:
            try:
                re.compile(self.group_by)
            except re.error as error:
                raise InputError(f"--group-by {self.group_by!r}: expected a regular expression ({error})") from None
        if not (0.0 <= self.min_motion < 10.0 and 0.0 < self.validation_share < 1.0):
            raise InputError("--min-motion in [0, 10) and a validation share in (0, 1) expected")
