"""What ``elepose fit`` checks of its own result, with no 3D: is the fitted lifter better than its start?

A warm start (``fit --init RUN``) should only help. :func:`compare_with_start` scores the
fitted lifter and the lifter it started from on the fit's held-out 2D with the same figure,
the same flow, normalisation, elevation prior and random views (:func:`elepose.train.validation.
validate_without_3d`); the fit keeps the start when the fitted lifter is not better.

The figure is the held-out 2D reprojection of the ElePose cycle (``val_reprojection``): across
the benchmark's fits on Bandai dataset 1 (section 7) it was 0.12-0.15 for the fits near 60 mm
PA-MPJPE and 0.19-0.28 for those at 75-101 mm, the one held-out figure of those fits that sorted
them by accuracy.
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

__all__ = ["START_CHECK_FIGURE", "compare_with_start"]

START_CHECK_FIGURE = "val_reprojection"
"""The held-out figure a fit and its start are compared by (lower is better)."""


def compare_with_start(
    fitted: Path, start: Path, cache: Path, device: str = "cpu", samples: int = 4096
) -> dict[str, Any]:
    """:data:`START_CHECK_FIGURE` of the ``fitted`` lifter run and of its ``start`` on ``cache``'s held-out split.

    Both are scored under the fitted run's flow, 2D normalisation and elevation prior, on the
    same poses and views. Returns ``figure``, ``fitted``, ``start`` and ``better`` (the fitted
    one's figure is lower, and finite).
    """
    dev = pick_device(device)
    network, flow, record = load_lifter(fitted)
    start_network, _, _ = load_lifter(start)
    held_out = load_split(cache / "test.npz")
    prior = parse_elevation_prior(record.elevation_prior, elevation_branch=record.elevation_branch)
    flow.to(dev)
    scores = {}
    for name, lifter in (("fitted", network), ("start", start_network)):
        lifter.to(dev)
        checks = validate_without_3d(
            lifter, flow, held_out, record.normalisation, record.input, record.bone_ratios, prior, samples, dev
        )
        scores[name] = float(checks[START_CHECK_FIGURE])
    better = math.isfinite(scores["fitted"]) and scores["fitted"] < scores["start"]
    return {"figure": START_CHECK_FIGURE, **scores, "better": better}
