"""The report's figures, drawn from the collected results alone: the PCA sweep, the NLL against
PA-MPJPE and the predicted against the true elevation (from the main lifter's per-pose values),
and the learning curves of sections 1-6's lifters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from elepose.benchmark import rows
from elepose.evaluate.figures import new_figure, plot_nll_vs_error, save_png

__all__ = ["draw_figures"]


def _pca_sweep(r: dict[str, Any], folder: Path) -> None:
    sweep = [
        s for s in r.get("summary", {}).get("pca_sweep", []) if s["pca_bases"] is not None and s["pa_mpjpe"] is not None
    ]
    fig = new_figure((5, 3))
    ax = fig.add_subplot()
    if sweep:
        ax.plot([s["pca_bases"] for s in sweep], [s["pa_mpjpe"] for s in sweep], "o-")
    ax.set_xlabel("PCA bases")
    ax.set_ylabel("PA-MPJPE (mm)")
    ax.set_title("PCA bases sweep (Bandai)")
    fig.tight_layout()
    save_png(fig, folder / "pca_sweep.png", dpi=80)


def _per_pose(r: dict[str, Any], folder: Path) -> None:
    per_pose = r["lifters"].get(rows.MAIN, {}).get("evaluation", {}).get("per_pose")
    if not per_pose:
        return
    data = {k: np.asarray(v, dtype=np.float64) for k, v in per_pose.items()}
    title = "Reliability: NLL against PA-MPJPE (Bandai)"
    plot_nll_vs_error(folder / "nll_vs_error.png", data["pa_mpjpe"], data["nll"], title=title)
    fig = new_figure((4, 4))
    ax = fig.add_subplot()
    ax.scatter(data["elevation_true_deg"], data["elevation_pred_deg"], s=2, alpha=0.3)
    lo, hi = float(data["elevation_true_deg"].min()), float(data["elevation_true_deg"].max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("true camera elevation (deg)")
    ax.set_ylabel("predicted (deg)")
    ax.set_title("ElePose elevation")
    fig.tight_layout()
    save_png(fig, folder / "elevation.png", dpi=80)


def _learning_curves(r: dict[str, Any], folder: Path) -> None:
    fig = new_figure((6, 3.5))
    ax = fig.add_subplot()
    for name, lifter in r["lifters"].items():
        curve = [c for c in lifter["curve"] if c["pa_mpjpe"] is not None]
        if curve and rows.section(name) == "main":  # the PCA sweep and sections 8 and 9 have tables
            ax.plot([c["minutes"] for c in curve], [c["pa_mpjpe"] for c in curve], ".-", label=name, lw=1)
    ax.set_xlabel("training minutes")
    ax.set_ylabel("PA-MPJPE (mm, test subset)")
    ax.set_yscale("log")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    save_png(fig, folder / "learning_curves.png", dpi=80)


def draw_figures(r: dict[str, Any], folder: Path) -> None:
    """Every figure the results have the numbers for, into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    _pca_sweep(r, folder)
    _per_pose(r, folder)
    _learning_curves(r, folder)
