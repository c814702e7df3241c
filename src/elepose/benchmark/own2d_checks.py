"""Section 7's verdicts: the comparisons with the transferred lifter, and which held-out figure,
measured without 3D, sorts the section's fits by their accuracy."""

from __future__ import annotations

import math
from typing import Any

from scipy.stats import spearmanr

from elepose.benchmark import rows

__all__ = ["own2d_checks", "held_out_figures_against_accuracy", "HELD_OUT_FIGURES"]

HELD_OUT_FIGURES = ("val_reprojection", "val_nf", "val_deformation", "val_bone", "val_lift_3d")
"""The figures a fit measures on its own held-out 2D (no 3D): the 2D reprojection of the ElePose
cycle, the flow NLL of the virtual views, the deformation, bone and 3D-consistency terms."""


def _detected(entry: dict[str, Any]) -> float:
    return float(entry["detected"]["pa_mpjpe"])


def own2d_checks(
    lifters: dict[str, Any],
    shares: tuple[float, ...],
    init_only_shares: tuple[float, ...] = (),
    distill_shares: tuple[float, ...] = (),
    distill_auto_below: int = 0,
) -> list[dict[str, Any]]:
    """The section's comparisons on detected 2D (what a detector gives): ``check``, ``measured``, ``met``.

    For every share fitted both ways, the better fit beats the transferred lifter; for every
    share, ``fit --init`` (and ``--init --distill`` on ``distill_shares``) is not worse than the transferred
    lifter (a warm start may only help; a plain ``--init`` fit on fewer than ``distill_auto_below``
    poses, where ``fit --init`` distils by default, is called ``--distill off``);
    from scratch on all clips, within 1.15x of the cache-path lifter trained on the same clips.
    """
    checks = []
    transfer = _detected(lifters["transfer"])
    for share in shares:
        pct = round(100 * share)
        fits = {s: _detected(lifters[rows.fit_run(s, share)]) for s in ("scratch", "init")}
        best = min(fits, key=fits.__getitem__)
        checks.append(
            {
                "check": f"the better fit beats the transferred lifter, {pct} % of the clips",
                "measured": f"{best} {fits[best]:.1f} vs {transfer:.1f} mm",
                "met": fits[best] < transfer,
            }
        )
    warm = [("init", "fit --init", share) for share in sorted((*init_only_shares, *shares))]
    warm += [("init-distill", "fit --init --distill", share) for share in distill_shares]
    for start, label, share in warm:
        entry = lifters[rows.fit_run(start, share)]
        if start == "init" and entry.get("training_poses", distill_auto_below) < distill_auto_below:
            label += " --distill off"
        kept = " (the start kept)" if entry.get("start_kept") else ""
        checks.append(
            {
                "check": f"{label} is not worse than the transferred lifter, {round(100 * share)} % of the clips",
                "measured": f"{_detected(entry):.1f}{kept} vs {transfer:.1f} mm",
                "met": _detected(entry) <= transfer,
            }
        )
    scratch_all = _detected(lifters[rows.fit_run("scratch", max(shares))])
    reference = _detected(lifters["cache-path"])
    checks.append(
        {
            "check": "fit from scratch on all clips within 1.15x of the cache-path lifter on the same clips",
            "measured": f"{scratch_all / reference:.2f}x ({scratch_all:.1f} vs {reference:.1f} mm)",
            "met": scratch_all <= 1.15 * reference,
        }
    )
    return checks


def held_out_figures_against_accuracy(fits: list[tuple[dict[str, Any], float]]) -> dict[str, dict[str, Any]]:
    """Spearman's rank correlation of each of :data:`HELD_OUT_FIGURES` with PA-MPJPE (mm).

    ``fits``: one ``(metrics, pa_mpjpe)`` per fitted lifter, ``metrics`` its last epoch's held-out
    figures (``validation_without_3d``). All the figures are lower when better, so one that tracks
    accuracy has rho near +1. Returns, per figure, ``rho`` (None with fewer than three fits or a
    constant column) and ``fits`` (how many had the figure).
    """
    out: dict[str, dict[str, Any]] = {}
    for figure in HELD_OUT_FIGURES:
        pairs = [(float(m[figure]), float(e)) for m, e in fits if figure in m and math.isfinite(float(m[figure]))]
        rho = None
        if len(pairs) >= 3 and len({a for a, _ in pairs}) > 1 and len({b for _, b in pairs}) > 1:
            rho = float(spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic)
        out[figure] = {"rho": rho, "fits": len(pairs)}
    return out
