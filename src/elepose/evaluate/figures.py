"""Figures: how a skeleton is drawn, NLL against PA-MPJPE (paper Fig. 5), best / worst lifts (paper Fig. 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from elepose.metrics import procrustes_align
from elepose.outputs import PNG_SOFTWARE
from elepose.skeleton import BONES, LEFT_JOINTS, NUM_JOINTS, RIGHT_JOINTS

__all__ = [
    "SIDE_COLOURS",
    "joint_side",
    "joint_colours",
    "bone_colours",
    "upright",
    "draw_skeleton",
    "new_figure",
    "save_png",
    "nll_bins",
    "plot_nll_vs_error",
    "plot_best_worst",
]


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A bare figure on an Agg canvas: no pyplot state, no window, whatever the session's backend."""
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Figure, path: str | Path, dpi: int = 100) -> None:
    """Write ``figure`` as a PNG marked as elepose's (:data:`elepose.outputs.PNG_SOFTWARE`)."""
    figure.savefig(path, format="png", dpi=dpi, metadata={"Software": PNG_SOFTWARE})


def nll_bins(
    pa_mpjpe_mm: np.ndarray, nll: np.ndarray, start: float = 20.0, stop: float = 120.0, step: float = 5.0
) -> list[tuple[float, np.ndarray]]:
    """Group ``nll`` by PA-MPJPE bins of ``step`` mm from ``start``; the last bin holds ``>= stop``.

    Poses below ``start`` join the first bin, as in the paper's figure (bins 20..120 mm).
    Returns ``[(bin_start_mm, nll_values), ...]``.
    """
    edges = np.arange(start, stop + step / 2, step)
    index = np.clip(np.floor((pa_mpjpe_mm - start) / step).astype(int), 0, len(edges) - 1)
    return [(float(edges[i]), nll[index == i]) for i in range(len(edges))]


def plot_nll_vs_error(path: str | Path, pa_mpjpe_mm: np.ndarray, nll: np.ndarray, title: str = "") -> None:
    """Box plot of NLL per 5 mm PA-MPJPE bin (paper Fig. 5), written to ``path`` (PNG)."""
    bins = nll_bins(pa_mpjpe_mm, nll)
    fig = new_figure((10, 4))
    ax = fig.add_subplot()
    data = [values if len(values) else np.array([np.nan]) for _, values in bins]
    labels = [f"{int(b)}" if i < len(bins) - 1 else f"{int(b)}+" for i, (b, _) in enumerate(bins)]
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(range(1, len(labels) + 1), labels)
    counts = [len(v) for _, v in bins]
    for i, c in enumerate(counts):
        ax.annotate(
            str(c), (i + 1, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=7, color="grey"
        )
    ax.set_xlabel("PA-MPJPE bin (mm)")
    ax.set_ylabel("NLL (mean over virtual views)")
    ax.set_title(title or "Reliability: flow NLL against 3D error")
    fig.tight_layout()
    save_png(fig, path, dpi=120)


SIDE_COLOURS: dict[str, str] = {"left": "#1f77b4", "right": "#d62728", "centre": "#404040"}


def joint_side(joint: int) -> str:
    """ "left", "right" or "centre" for an H36M joint index."""
    if joint in LEFT_JOINTS:
        return "left"
    if joint in RIGHT_JOINTS:
        return "right"
    return "centre"


def joint_colours() -> list[str]:
    """Colour of each of the 17 joints, by side."""
    return [SIDE_COLOURS[joint_side(j)] for j in range(NUM_JOINTS)]


def bone_colours() -> list[str]:
    """Colour of each bone in ``BONES`` order: the side of its child joint (hip bones included)."""
    return [SIDE_COLOURS[joint_side(child)] for _, child in BONES]


def upright(pose_3d: np.ndarray) -> np.ndarray:
    """Camera frame (x right, y down, z forward) -> plot axes (x right, depth in, up)."""
    return np.stack([pose_3d[..., 0], pose_3d[..., 2], -pose_3d[..., 1]], axis=-1)


def draw_skeleton(
    ax: Any, points: np.ndarray, missing: np.ndarray | None = None, linestyle: str = "-", alpha: float = 1.0
) -> None:
    """Bones and joints of one pose on ``ax``; ``points`` (17, 2) or (17, 3) in the axes' coordinates.

    Left limbs, right limbs and the trunk in :data:`SIDE_COLOURS`; joints marked ``missing (17,)``
    (filled in, not detected) are drawn hollow and their bones dashed.
    """
    missing = np.zeros(NUM_JOINTS, dtype=bool) if missing is None else missing
    for (a, b), colour in zip(BONES, bone_colours()):
        style = "--" if missing[a] or missing[b] else linestyle
        ax.plot(*points[[a, b]].T, color=colour, linestyle=style, linewidth=2.5, solid_capstyle="round", alpha=alpha)
    colours = joint_colours()
    for j in range(NUM_JOINTS):
        face = "white" if missing[j] else colours[j]
        ax.plot(
            *points[j : j + 1].T,
            marker="o",
            markersize=5,
            markerfacecolor=face,
            markeredgecolor=colours[j],
            linestyle="",
            alpha=alpha,
        )


def plot_best_worst(
    path: str | Path, pred: np.ndarray, gt: np.ndarray, pa_mpjpe_mm: np.ndarray, count: int = 4
) -> None:
    """The ``count`` best and worst lifted poses (Procrustes-aligned, solid) over ground truth (dashed)."""
    order = np.argsort(pa_mpjpe_mm)
    chosen = list(order[:count]) + list(order[-count:])
    aligned = procrustes_align(pred[chosen], gt[chosen])
    fig = new_figure((3 * count, 6.4))
    for k, i in enumerate(chosen):
        ax = fig.add_subplot(2, count, k + 1, projection="3d")
        g = gt[i] - gt[i, :1]
        draw_skeleton(ax, upright(g), linestyle="--", alpha=0.5)
        draw_skeleton(ax, upright(aligned[k] - aligned[k, :1]))
        radius = np.abs(g).max() * 1.1
        ax.set_xlim(-radius, radius), ax.set_ylim(-radius, radius), ax.set_zlim(-radius, radius)
        ax.set_box_aspect((1, 1, 1))
        ax.set_xticks([]), ax.set_yticks([]), ax.set_zticks([])
        ax.set_title(("best" if k < count else "worst") + f" {pa_mpjpe_mm[i]:.0f} mm", fontsize=9)
    fig.suptitle("Lifted (solid, aligned) and ground truth (dashed); blue = left, red = right")
    fig.tight_layout()
    save_png(fig, path, dpi=110)
