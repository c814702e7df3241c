"""Reading numbers out of the collected results (the dictionary ``results.json`` holds)."""

from __future__ import annotations

from typing import Any

__all__ = ["metric"]


def metric(
    results: dict[str, Any], run: str, kind: str = "gt", protocol: str = "standard", key: str = "pa_mpjpe"
) -> float | None:
    """One metric of one lifter run (mm, or percent for N-PCK and AUC; None when the run is absent).

    ``kind``: ``gt`` or ``detected`` 2D; ``protocol``: ``standard`` or ``elepose_code``."""
    lifter = results["lifters"].get(run)
    if lifter is None:
        return None
    return lifter["evaluation"][kind][protocol][key]
