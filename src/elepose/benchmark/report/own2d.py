"""Section 7, "Train on your own 2D": ``elepose fit`` on detector files of dataset 1, with no 3D,
against the transferred and cache-path lifters, and fits on the real detector file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elepose.benchmark.report.tables import distill_default_note, fmt, table

__all__ = ["render_own2d"]

_REFERENCE_ROWS = (
    ("all-bandai", "ElePose on all Bandai (the standard lifter; dataset 1 seen)"),
    ("transfer", "Transferred: trained on dataset 2 only, used as it is"),
    ("transfer_on_coco", "Transferred, fed COCO-defined 2D (what a detector gives it)"),
    ("cache-path", "Dataset 1's clips through the cache (H36M-17 joints, detected 2D, bone ratios of its 3D)"),
)

_FIT_HEADER = [
    "lifter",
    "training poses",
    "PA-MPJPE, detected 2D",
    "PA-MPJPE, GT 2D",
    "N-MPJPE, detected",
    "r",
    "reliability",
    "epochs (val. 2D reprojection)",
    "epoch of the lowest val. 2D reprojection: PA-MPJPE detected (its val. reprojection)",
]


def _row(label: str, entry: dict[str, Any], poses: str) -> list[str]:
    elevation = entry.get("elevation") or {}
    low = entry.get("lowest_reprojection") or {}
    own = (entry.get("validation_without_3d") or {}).get("val_reprojection")
    lowest = (
        f"{low['epoch']}: {fmt(low.get('pa_mpjpe_detected'))} ({fmt(low.get('val_reprojection'), 3)})" if low else "-"
    )
    return [
        label,
        poses,
        fmt(entry["detected"]["pa_mpjpe"]),
        fmt(entry["gt"]["pa_mpjpe"]),
        fmt(entry["detected"]["n_mpjpe"]),
        fmt(elevation.get("correlation"), 2),
        fmt(entry.get("reliability_median")),
        f"{entry['epoch']} ({fmt(own, 3)})" if "epochs" in entry else "-",
        lowest,
    ]


def _fit_rows(own: dict[str, Any]) -> list[list[str]]:
    cells = [_row(label, own["lifters"][name], "-") for name, label in _REFERENCE_ROWS if name in own["lifters"]]
    fits = [e for e in own["lifters"].values() if "share" in e and "start" in e]
    auto_below = own.get("distill_auto_below_poses", 0)
    for entry in sorted(fits, key=lambda e: (e["start"] != "scratch", e.get("distill_weight") is not None, e["share"])):
        start = "--init" if entry["start"] == "init" else "from scratch"
        if start == "--init" and entry.get("distill_weight") is None and entry["training_poses"] < auto_below:
            start += " --distill off"  # what fit --init does by default there is the --distill row
        if entry.get("distill_weight") is not None:
            start += f" --distill (the start's cache, weight {entry['distill_weight']:g})"
        label = f"fit {start}, {round(100 * entry['share'])} % ({entry['clips']} clips, {entry['files']} files)"
        if entry.get("start_kept"):
            itself = entry["fitted_itself"]["detected"]
            label += f"; start kept (the fitted lifter itself: {fmt(itself)})"
        cells.append(_row(label, entry, f"{entry['training_poses']:,}"))
    return cells


def _real(real: dict[str, Any]) -> list[str]:
    if "skipped" in real:
        return [f"Real detections: skipped ({real['skipped']}).", ""]
    if not real:
        return []
    cells = []
    if "bandai_lifter" in real:
        b = real["bandai_lifter"]
        below = fmt(100 * b["reliability_below_4"]) + " %"
        cells.append(
            ["ElePose on all Bandai", "-", str(b["people"]), fmt(b["reliability_median"]), below, "-", "-", "-", "-"]
        )
    for name, label in (
        ("real-fit-scratch", "fit from scratch"),
        ("real-fit-init", "fit --init (the all-Bandai lifter)"),
    ):
        if name not in real:
            continue
        e = real[name]
        v = e.get("validation_without_3d") or {}
        kept = f"{e['lowest_reprojection_epoch']} of {e['epochs']}" if e.get("lowest_reprojection_epoch") else "-"
        cells.append(
            [label, f"{e['training_poses']:,}", str(e["people"]), fmt(e["reliability_median"]),
             fmt(100 * e["reliability_below_4"]) + " %", kept, fmt(v.get("val_reprojection"), 3),
             fmt(v.get("val_nf"), 1), fmt(v.get("elevation_mu_train_deg"))]
        )  # fmt: skip
    header = ["lifter", "training poses", "people", "reliability", "below 4", "lowest reprojection at epoch"]
    header += ["val. 2D reprojection", "val. flow NLL", "learned mu_e (deg)"]
    intro = (
        f"Real AlphaPose detections (`{Path(real['file']).name}`; no 3D, so no accuracy): reliability of the file's "
        "people (median percentile; share below 4) under each lifter (a fit's last epoch), the epoch of its lowest "
        "held-out 2D reprojection, and the last epoch's checks on the held-out 2D (2D reprojection in normalised "
        "units, the flow NLL of the virtual views) and learned mean elevation."
    )
    return [intro, ""] + table(header, cells)


def render_own2d(own: dict[str, Any] | None) -> list[str]:
    """Section 7 from ``results["own2d"]``."""
    lines = ["## 7. Train on your own 2D", ""]
    if not own:
        return lines + ["(not run)", ""]
    if "skipped" in own:
        return lines + [f"Skipped: {own['skipped']}.", ""]
    lines += [
        f"Dataset 1's training clips ({own['clips']}) exported as MMPose JSON, one file per clip and camera "
        "(detected 2D as COCO-17, no 3D), and `elepose fit` on those files alone, from scratch or with "
        f"`--init` from the dataset-2 lifter, {own['samples']:,} samples per stage. All rows: dataset 1's test "
        "split. Fits and the COCO row are scored against the 3D of COCO's joint definitions (pelvis = mid-hips, "
        "thorax = mid-shoulders); r = Pearson correlation of predicted and true camera elevation; reliability = "
        "median percentile of the test poses against the lifter's own calibration.",
        "",
    ]
    if own.get("distill_auto_below_poses"):
        lines += distill_default_note(own["distill_auto_below_poses"], "", "`--distill`")
    lines += table(_FIT_HEADER, _fit_rows(own))
    lines += [
        "A fit's row is its last epoch (`fit --keep last`, the default); the last column is the epoch "
        "`--keep best` would pick by the held-out 2D reprojection, measured without 3D.",
        "",
    ]
    checks = [[c["check"], c["measured"], "yes" if c["met"] else "**no**"] for c in own["checks"]]
    lines += table(["check", "measured", "met"], checks) + _figures_against_accuracy(own)
    return lines + _real(own.get("real", {}))


def _figures_against_accuracy(own: dict[str, Any]) -> list[str]:
    """Which held-out figure (no 3D) sorts the fits by PA-MPJPE: Spearman's rho per figure."""
    found = own.get("figures_against_accuracy")
    if not found:
        return []
    cells = [[f"`{name}`", fmt(v["rho"], 2), str(v["fits"])] for name, v in found.items()]
    used = {e["start_check"]["figure"] for e in own["lifters"].values() if e.get("start_check")}
    intro = (
        "Held-out figures against accuracy: Spearman's rank correlation of each figure a fit measures on its "
        "own held-out 2D (last epoch, no 3D) with the fitted lifter's PA-MPJPE on detected 2D, across this "
        "section's fits (all lower when better: +1 sorts the fits as their accuracy does)."
    )
    if used:
        intro += f" `fit` compared each warm start with its start by {', '.join(f'`{f}`' for f in sorted(used))}."
    return [intro, ""] + table(["held-out figure", "Spearman rho with PA-MPJPE", "fits"], cells)
