"""What a lift tells its user: the layout it read, the scale mode and why, and when to distrust it.

:func:`lift_notes` turns a :class:`~elepose.lift.lifter.LiftResult` and the lifter that made it
into short lines (``elepose lift`` prints them and records them in ``OUT.json``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from elepose.evaluate.reliability import LOW_RELIABILITY, reliability_distribution
from elepose.skeleton import LAYOUT_DEFINITIONS

__all__ = ["lift_notes", "layout_line", "scale_line", "reliability_line"]


def layout_line(layout: str, learnt: str | None) -> str:
    """The keypoint layout read, its joint definitions, and a word when the lifter learnt another one."""
    rules = LAYOUT_DEFINITIONS.get(layout, ())
    line = f"keypoints read as {layout}" + (f" ({', '.join(rules)})" if rules else "")
    learnt = learnt or "h36m"
    if LAYOUT_DEFINITIONS.get(learnt, ()) != rules:
        line += (
            f"; this lifter learnt {learnt} joints, so its pelvis, thorax and head are defined otherwise "
            "than yours (a lifter fitted to your detector's 2D, `elepose fit`, learns yours)"
        )
    return line


def scale_line(scale: str, checkpoint_mode: str, asked: bool) -> str:
    """Which 2D scale was used and why (``scale``: checkpoint or per-pose; ``asked``: given by the user)."""
    why = "as asked" if asked else "the checkpoint's default"
    if scale == "per-pose":
        return f"scale: per-pose, each pose measured by itself ({why})"
    if checkpoint_mode == "dataset":
        return (
            f"scale: checkpoint, its training set's mean pelvis-to-head size ({why}); 2D of another image size or "
            "distance lifts worse: try --scale per-pose"
        )
    return f"scale: checkpoint ({why})"


def reliability_line(reliability: np.ndarray, scale: str) -> str | None:
    """A warning when most poses score below :data:`LOW_RELIABILITY`, with what to try; None otherwise."""
    spread = reliability_distribution(reliability)
    if spread["below_4"] is None or spread["below_4"] <= 0.5:
        return None
    tries = ["--scale per-pose"] if scale != "per-pose" else []
    tries.append("a lifter fitted to this kind of video (`elepose fit --init CHECKPOINT`)")
    return (
        f"{100 * spread['below_4']:.0f} % of the people have reliability below {LOW_RELIABILITY:g} (median "
        f"{spread['median']:.1f}): the lifter finds these poses implausible; try {' or '.join(tries)}"
    )


def lift_notes(result: Any, lifter: Any, scale: str, asked: bool) -> list[str]:
    """Every line above for one lift (``scale``: the mode used; ``asked``: whether ``--scale`` was given)."""
    notes = [layout_line(result.layout, lifter.record.keypoints), scale_line(scale, lifter.normalisation.mode, asked)]
    low = reliability_line(result.reliability, scale)
    return notes + ([low] if low else [])
