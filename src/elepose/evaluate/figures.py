"""Evaluation figures: NLL against PA-MPJPE (paper Fig. 5) and best / worst lifts (paper Fig. 3)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from elepose.metrics import procrustes_align  # noqa: E402
from elepose.skeleton import BONES, LEFT_JOINTS, RIGHT_JOINTS  # noqa: E402

__all__ = ["nll_bins", "plot_nll_vs_error", "plot_best_worst"]


def nll_bins(pa_mpjpe_mm: np.ndarray, nll: np.ndarray, start: float = 20.0, stop: float = 120.0, step: float = 5.0) -> list[tuple[float, np.ndarray]]:
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
    fig, ax = plt.subplots(figsize=(10, 4))
    data = [values if len(values) else np.array([np.nan]) for _, values in bins]
    labels = [f"{int(b)}" if i < len(bins) - 1 else f"{int(b)}+" for i, (b, _) in enumerate(bins)]
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(range(1, len(labels) + 1), labels)
    counts = [len(v) for _, v in bins]
    for i, c in enumerate(counts):
        ax.annotate(str(c), (i + 1, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=7, color="grey")
    ax.set_xlabel("PA-MPJPE bin (mm)")
    ax.set_ylabel("NLL (mean over virtual views)")
    ax.set_title(title or "Reliability: flow NLL against 3D error")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _draw(ax, pose: np.ndarray, style: str, alpha: float = 1.0) -> None:
    for a, b in BONES:
        colour = "tab:red" if b in RIGHT_JOINTS else "tab:blue" if b in LEFT_JOINTS else "black"
        # camera frame (x right, y down, z forward) drawn with z as depth and -y as up
        ax.plot([pose[a, 0], pose[b, 0]], [pose[a, 2], pose[b, 2]], [-pose[a, 1], -pose[b, 1]], style, color=colour, alpha=alpha)


def plot_best_worst(path: str | Path, pred: np.ndarray, gt: np.ndarray, pa_mpjpe_mm: np.ndarray, count: int = 4) -> None:
    """The ``count`` best and worst lifted poses (Procrustes-aligned, solid) over ground truth (dashed)."""
    order = np.argsort(pa_mpjpe_mm)
    chosen = list(order[:count]) + list(order[-count:])
    aligned = procrustes_align(pred[chosen], gt[chosen])
    fig = plt.figure(figsize=(3 * count, 6.4))
    for k, i in enumerate(chosen):
        ax = fig.add_subplot(2, count, k + 1, projection="3d")
        g = gt[i] - gt[i, :1]
        _draw(ax, g, "--", alpha=0.5)
        _draw(ax, aligned[k] - aligned[k, :1], "-")
        radius = np.abs(g).max() * 1.1
        ax.set_xlim(-radius, radius), ax.set_ylim(-radius, radius), ax.set_zlim(-radius, radius)
        ax.set_box_aspect((1, 1, 1))
        ax.set_xticks([]), ax.set_yticks([]), ax.set_zticks([])
        ax.set_title(("best" if k < count else "worst") + f" {pa_mpjpe_mm[i]:.0f} mm", fontsize=9)
    fig.suptitle("Lifted (solid, aligned) and ground truth (dashed); blue = left, red = right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
