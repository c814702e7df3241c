"""Section 10, "Another domain": ``elepose fit`` on CMU motion capture, other cameras, from the
Bandai lifter, against the lifter transferred as it is, the supervised bound and lifting flat."""

from __future__ import annotations

from typing import Any

from elepose.benchmark.report.tables import distill_default_note, fmt, table

__all__ = ["render_domain"]

_REFERENCE_ROWS = (
    ("transfer", "Transferred: the Bandai lifter as it is, fed H36M-17 2D"),
    ("transfer_on_coco", "Transferred, fed COCO-defined 2D (what a detector gives it)"),
    ("supervised", "Supervised bound: trained on the target's 3D (its training segments, detected 2D)"),
)

_HEADER = [
    "lifter",
    "training poses",
    "PA-MPJPE, detected 2D",
    "PA-MPJPE, GT 2D",
    "N-MPJPE, detected",
    "r",
    "learned mu_e (deg)",
    "reliability",
    "flow epoch kept",
    "minutes",
    "checks failed",
]


def _row(label: str, entry: dict[str, Any]) -> list[str]:
    elevation = entry.get("elevation") or {}
    learned = (entry.get("learned_elevation") or {}).get("mu_deg")
    fitted = "start" in entry
    return [
        label,
        f"{entry['training_poses']:,}" if fitted else "-",
        fmt(entry["detected"]["pa_mpjpe"]),
        fmt(entry["gt"]["pa_mpjpe"]),
        fmt(entry["detected"]["n_mpjpe"]),
        fmt(elevation.get("correlation"), 2),
        fmt(learned),
        fmt(entry.get("reliability_median")),
        str(entry.get("flow_epoch_kept", "-")) if fitted else "-",
        fmt(entry.get("minutes")) if fitted else "-",
        (", ".join(entry["checks_failed"]) or "none") if fitted else "-",
    ]


def _distill_off(entry: dict[str, Any], auto_below: int) -> bool:
    """Whether ``entry`` is a plain ``fit --init`` row on fewer poses than ``auto_below``, where
    ``fit --init`` distils by default (so the row ran with ``--distill off``)."""
    return entry.get("start") == "init" and not entry.get("settings") and entry["training_poses"] < auto_below


def _label(name: str, entry: dict[str, Any], variants: dict[str, str], auto_below: int = 0) -> str:
    share = f"{round(100 * entry['share'])} % ({entry['segments']} segments)"
    if entry["start"] == "scratch":
        return f"fit from scratch, {share}"
    matching = [v for v in variants if name.startswith(f"fit-{v}-")]
    variant = max(matching, key=len) if matching else None  # "longer-10x" before "longer"
    label = f"fit --init, {share}" + ("" if variant is None else f"; {variants[variant]}")
    if _distill_off(entry, auto_below):
        label += "; --distill off"  # what fit --init does by default there is the distillation row
    if entry.get("start_kept"):
        itself = (entry.get("fitted_itself") or {}).get("detected")
        label += f"; start kept (the fitted lifter itself: {fmt(itself)})"
    return label


def _own_frames(domain: dict[str, Any]) -> list[str]:
    """The plain ``fit --init`` rows (and ``--distill``'s) on the last fifth of their own segments' frames,
    against the transferred lifter."""
    fits = sorted(
        ((n, e) for n, e in domain["lifters"].items() if "own_frames" in e), key=lambda item: item[1]["share"]
    )
    if not fits:
        return []
    cells = []
    for _, e in fits:
        own = e["own_frames"]
        fitted, transferred = own["fitted"]["pa_mpjpe"], own["transferred"]["pa_mpjpe"]
        cells.append(
            [
                ("--distill, " if (e.get("settings") or {}).get("distill") else "")
                + f"{round(100 * e['share'])} % ({e['segments']} segments)",
                f"{own['fitted']['poses']:,}",
                "its training 2D (held out by clip)" if e.get("held_out_by_motion") else "held out by fit",
                fmt(transferred),
                fmt(fitted),
                f"{100 * (fitted / transferred - 1):+.1f} %",
                fmt(e["detected"]["pa_mpjpe"]),
                "start" if e.get("start_kept") else "fitted",
            ]
        )
    header = ["fit --init on", "poses", "these frames are", "transferred", "fitted", "change",
              "test split (what fit kept)", "fit kept"]  # fmt: skip
    return [
        "### The fitted videos themselves",
        "",
        "The plain `fit --init` rows (and the `--distill` variant's) on the last fifth of the frames of their own training segments "
        "(detected 2D, COCO-defined; at 1 and 10 % these are the frames `fit` holds out, at 30 and 100 % its "
        "training 2D): a user who fits one video and lifts that video. Fitted and transferred: the lifters "
        "themselves, whichever `fit` kept.",
        "",
        *table(header, cells),
    ]


def render_domain(domain: dict[str, Any] | None) -> list[str]:
    """Section 10 from ``results["domain"]``."""
    if not domain:
        return []
    lines = ["## 10. Another domain", ""]
    t = domain["target"]
    cams = t["cameras"]
    lines += [
        f"The target: CMU motion capture ({t['clips']} clips: other people, studio and skeleton than Bandai's), "
        f"cut into {t['segments']['seconds']:g} s segments ({t['training_segments']} training, "
        f"{t['test_segments']} test: {t['segments']['test']}, less {t['segments']['test_gap_seconds']:g} s at "
        f"both ends), rendered at {t['target_fps']:g} fps by {cams['views_per_window']} cameras per window at "
        f"elevation N({cams['elevation_mean_deg']:g}, {cams['elevation_std_deg']:g}) deg, {cams['focal']:g} px "
        f"focal length, {cams['distance']:g} m (the source's: N(12, 6) deg, 1150 px, 5 m): "
        f"{t['training_poses']:,} training and {t['test_poses']:,} test views. `elepose fit` reads the training "
        "segments' detected 2D as COCO-17 MMPose files (no 3D), with `--init` from the benchmark's ElePose lifter "
        f"(all Bandai) or from scratch, {domain['samples']:,} samples per stage. All rows: the target's test split "
        "through COCO's joint definitions. Lifting flat (every depth 0): "
        f"{fmt(domain['lifters']['transfer_on_coco']['flat_detected'])} mm on detected 2D. Minutes: the fit's "
        "wall time on this machine; checks failed: `fit`'s own verdicts (no 3D).",
        "",
    ]
    if domain.get("rows_only"):
        lines += [
            f"This invocation fitted only {', '.join(f'`{r}`' for r in domain['rows_only'])} (`--only domain/ROW`); "
            "the section's other fits are not in this report.",
            "",
        ]
    cells = [_row(label, domain["lifters"][n]) for n, label in _REFERENCE_ROWS if n in domain["lifters"]]
    fits = [(n, e) for n, e in domain["lifters"].items() if "start" in e]
    fits.sort(key=lambda item: (item[1]["start"] != "scratch", bool(item[1].get("settings")), item[1]["share"]))
    auto_below = domain.get("distill_auto_below_poses", 0)
    cells += [_row(_label(n, e, domain.get("variants", {}), auto_below), e) for n, e in fits]
    lines += table(_HEADER, cells)
    if any(_distill_off(e, auto_below) for e in domain["lifters"].values()):
        lines += distill_default_note(auto_below, ", here Bandai's,", "distillation")
    lines += _own_frames(domain)
    return lines + ["The targets of this section are in the Targets table above.", ""]
