"""Section 4: the predicted camera elevation against the truth, and the elevation branch's learning curves."""

from __future__ import annotations

import math
from typing import Any

from elepose.benchmark import rows
from elepose.benchmark.report.tables import fmt, table

__all__ = ["render_elevation", "elevation_curves"]


def render_elevation(r: dict[str, Any], figures: str) -> list[str]:
    """Section 4: r, MAE and spread of every run with an elevation branch; then the learning curves."""
    cache = r.get("cache", {})
    configured = cache.get("camera_elevation_configured_deg")
    truth = cache.get("camera_elevation_train_deg", {})
    drawn = f"drawn from N({configured['mean']:.0f}, {configured['std']:.0f}) deg; " if configured else ""
    lines = [
        "## 4. Elevation",
        "",
        f"![predicted vs true elevation]({figures}/elevation.png)",
        "",
        f"Cameras' true elevation: {drawn}training cameras {fmt(truth.get('mean'))} +- {fmt(truth.get('std'))} deg.",
        "",
    ]
    cells = []
    for name, lifter in r["lifters"].items():
        e = lifter["evaluation"]["gt"].get("elevation")
        if not e:
            continue
        learned = lifter["evaluation"]["learned_elevation"]
        cells.append(
            [
                r["labels"].get(name, name),
                fmt(e["correlation"], 3),
                fmt(e["mae_deg"], 2),
                f"{fmt(e['predicted_mean_deg'])} +- {fmt(e['predicted_std_deg'])}",
                f"{fmt(e['true_mean_deg'])} +- {fmt(e['true_std_deg'])}",
                fmt(learned["mu_deg"]),
                fmt(learned["sigma_deg"], 2),
            ]
        )
    header = [
        "run",
        "r (pred vs true)",
        "MAE deg",
        "predicted deg",
        "true deg (test)",
        "learned mu_e",
        "learned sigma_e",
    ]
    return lines + table(header, cells, empty="(no run with an elevation branch)") + elevation_curves(r)


def _shown(curve: list[dict[str, Any]], points: int) -> list[dict[str, Any]]:
    """At most ``points`` evenly spaced entries of ``curve``, the last always."""
    step = max(1, -(-len(curve) // points))
    shown = curve[step - 1 :: step]
    if shown[-1] is not curve[-1]:
        shown.append(curve[-1])
    return shown


def elevation_curves(
    r: dict[str, Any],
    points: int = 12,
    runs: tuple[str, ...] = (rows.MAIN,),
    compare: tuple[str, ...] = (rows.SUPERVISED, rows.FIXED_PRIOR_TRUE),
) -> list[str]:
    """Section 4's learning curves: per-epoch r, predicted spread and sigma_e against training
    samples of ``runs`` (ElePose, seed 0), at most ``points`` rows a run, the last always; the
    PA-MPJPE of the ``compare`` runs at the same epochs beside it, where they ran as long."""
    lines: list[str] = []
    for name, lifter in r["lifters"].items():
        curve = [c for c in lifter.get("curve") or [] if math.isfinite(c.get("elevation_r", math.nan))]
        if name not in runs or not curve:
            continue
        shown = _shown(curve, points)
        others = {
            other: {c["samples"]: c.get("pa_mpjpe") for c in r["lifters"][other].get("curve") or []}
            for other in compare
            if other in r["lifters"] and other != name
        }
        others = {k: v for k, v in others.items() if all(c["samples"] in v for c in shown)}
        if not lines:
            lines += [
                "### Learning curves of the elevation branch",
                "",
                "Per-epoch checks on the fixed test subset (ground-truth 2D): PA-MPJPE, r of predicted against true "
                "elevation, the spread (std) of the predictions against the cameras', and sigma_e over training poses.",
                "",
            ]
        header = ["training samples", "PA-MPJPE", "r", "predicted spread (deg)", "sigma_e (deg)"]
        header += [f"PA-MPJPE, {r['labels'].get(other, other)}" for other in others]
        cells = [
            [
                f"{c.get('samples', 0):,}",
                fmt(c.get("pa_mpjpe")),
                fmt(c.get("elevation_r"), 3),
                fmt(c.get("elevation_spread_deg"), 2),
                fmt(c.get("elevation_sigma_train_deg"), 2),
            ]
            + [fmt(values[c["samples"]]) for values in others.values()]
            for c in shown
        ]
        lines += [f"{r['labels'].get(name, name)}:", ""] + table(header, cells)
    return lines
