"""The cross-domain section's figures for its targets (issue #22): the reference a fit must beat,
the best ``fit --init`` per share, ``fit`` from scratch on all segments, lifting flat.

All numbers are PA-MPJPE in mm on the target's detected 2D (COCO-defined), read from what
``domain.json`` holds (:func:`elepose.benchmark.domain.run_domain`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["reference", "best_init", "init_shares", "scratch_all", "flat", "worst_init_against_reference"]


def _detected(entry: dict[str, Any]) -> float:
    return float(entry["detected"]["pa_mpjpe"])


def reference(domain: dict[str, Any]) -> tuple[float, str]:
    """The transferred lifter at its better input (H36M-17 or COCO-defined 2D): ``(mm, which)``."""
    lifters = domain["lifters"]
    options = {name: _detected(lifters[name]) for name in ("transfer", "transfer_on_coco") if name in lifters}
    which = min(options, key=options.__getitem__)
    return options[which], which


def init_shares(domain: dict[str, Any]) -> list[float]:
    """The shares fitted with ``--init`` (any variant), ascending."""
    return sorted({e["share"] for e in domain["lifters"].values() if e.get("start") == "init"})


def best_init(domain: dict[str, Any], share: float) -> tuple[float, str] | None:
    """The best ``fit --init`` (plain or a variant) on ``share``: ``(mm, run name)``; None if none ran."""
    fits = {n: _detected(e) for n, e in domain["lifters"].items() if e.get("start") == "init" and e["share"] == share}
    if not fits:
        return None
    name = min(fits, key=fits.__getitem__)
    return fits[name], name


def worst_init_against_reference(domain: dict[str, Any]) -> tuple[float, str] | None:
    """The largest ratio of a plain ``fit --init`` (any share) to the reference: ``(ratio, run name)``."""
    ref, _ = reference(domain)
    plain = {
        n: _detected(e) / ref
        for n, e in domain["lifters"].items()
        if e.get("start") == "init" and not e.get("settings")
    }
    if not plain:
        return None
    name = max(plain, key=plain.__getitem__)
    return plain[name], name


def scratch_all(domain: dict[str, Any]) -> tuple[float, str] | None:
    """``fit`` from scratch on the largest share it ran on: ``(mm, run name)``."""
    fits = {n: e for n, e in domain["lifters"].items() if e.get("start") == "scratch"}
    if not fits:
        return None
    name = max(fits, key=lambda n: fits[n]["share"])
    return _detected(fits[name]), name


def flat(domain: dict[str, Any]) -> float:
    """Lifting flat (every depth 0) on the target's detected test 2D, COCO-defined."""
    return float(domain["lifters"]["transfer_on_coco"]["flat_detected"])
