"""What ``elepose fit`` checks of its own result, with no 3D: is the fitted lifter better than its start?

A warm start (``fit --init RUN``) should only help. :func:`compare_with_start` scores the
fitted lifter and the lifter it started from on the fit's held-out 2D with the same figures,
the same flow, normalisation, elevation prior and random views (:func:`elepose.train.validation.
validate_without_3d`); the fit keeps the start when the fitted lifter is not better.

The figure is the flow NLL of the held-out poses' virtual views (``val_nf``): how plausible the
fit's flow finds the 2D views of each lifter's 3D. Measured on the benchmark's warm starts
(section 7: Bandai dataset 1 as MMPose files, ``--init`` from a dataset-2 lifter, 10 / 30 / 100 %
of the clips, where the fits were 1.6-4.6 mm PA-MPJPE better than their start): ``val_nf`` was
lower for the fit every time (-98.8 / -101.8 / -105.6 against -95.6 / -97.2 / -102.9), while the
cycle's 2D reprojection (``val_reprojection``, the first choice) was lower for the *start* every
time (0.154 / 0.139 / 0.136 against 0.170 / 0.155 / 0.153) and threw every gain away. A fit is
also refused when its mean predicted elevation moved more than :data:`MAX_ELEVATION_SHIFT_DEG`
from its start's: the fits that helped moved 0.7-6.2 degrees (the real AlphaPose file's 6.2); a
one-clip fit of a boxing video that lifted twice as badly as its start (reported by a user, not
measured here) had drifted to 49 degrees from about 12.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from elepose.data.cache import load_split
from elepose.models.io import load_lifter
from elepose.runtime import pick_device
from elepose.train.validation import validate_without_3d
from elepose.views import parse_elevation_prior

__all__ = ["START_CHECK_FIGURE", "MAX_ELEVATION_SHIFT_DEG", "compare_with_start", "start_verdict"]

START_CHECK_FIGURE = "val_nf"
"""The held-out figure a fit and its start are compared by (lower is better)."""

MAX_ELEVATION_SHIFT_DEG = 15.0
"""The largest change of the held-out poses' mean predicted elevation (degrees) a kept fit may make."""

_ELEVATION = "val_elevation_mean_deg"


def compare_with_start(
    fitted: Path, start: Path, cache: Path, device: str = "cpu", samples: int = 4096
) -> dict[str, Any]:
    """:data:`START_CHECK_FIGURE` of the ``fitted`` lifter run and of its ``start`` on ``cache``'s held-out split.

    Both are scored under the fitted run's flow, 2D normalisation and elevation prior, on the
    same poses and views. Returns ``figure``, ``fitted``, ``start``, ``elevation_shift_deg`` (the
    fitted minus the start's mean predicted elevation), ``figures`` (every held-out figure of
    both) and ``better``: the fitted one's figure is lower and finite, and its elevation moved by
    at most :data:`MAX_ELEVATION_SHIFT_DEG`.
    """
    dev = pick_device(device)
    network, flow, record = load_lifter(fitted)
    start_network, _, _ = load_lifter(start)
    held_out = load_split(cache / "test.npz")
    prior = parse_elevation_prior(record.elevation_prior, elevation_branch=record.elevation_branch)
    flow.to(dev)
    figures = {}
    for name, lifter in (("fitted", network), ("start", start_network)):
        lifter.to(dev)
        figures[name] = validate_without_3d(
            lifter, flow, held_out, record.normalisation, record.input, record.bone_ratios, prior, samples, dev
        )
    return {**start_verdict(figures["fitted"], figures["start"]), "figures": figures}


def start_verdict(fitted: dict[str, float], start: dict[str, float]) -> dict[str, Any]:
    """The decision of :func:`compare_with_start` from both lifters' held-out figures (as
    :func:`elepose.train.validation.validate_without_3d` returns them)."""
    scores = {"fitted": float(fitted[START_CHECK_FIGURE]), "start": float(start[START_CHECK_FIGURE])}
    shift = float(fitted[_ELEVATION] - start[_ELEVATION])
    better = math.isfinite(scores["fitted"]) and scores["fitted"] < scores["start"]
    better = better and math.isfinite(shift) and abs(shift) <= MAX_ELEVATION_SHIFT_DEG
    return {"figure": START_CHECK_FIGURE, **scores, "elevation_shift_deg": shift, "better": better}
