"""Sections 2 and 3: the PCA sweep (paper Fig. 4) and the reliability of the NLL (paper Fig. 5)."""

from __future__ import annotations

from typing import Any

from elepose.benchmark import rows
from elepose.benchmark.report.tables import fmt, table

__all__ = ["render_pca", "render_reliability"]


def render_pca(r: dict[str, Any], figures: str) -> list[str]:
    """Section 2: PA-MPJPE and the flow's test NLL for each number of PCA bases."""
    cells = [
        [
            str(s["pca_bases"]) if s["pca_bases"] is not None else "none (34-D)",
            s["lifter"],
            fmt(s["pa_mpjpe"]),
            fmt(s["n_mpjpe"]),
            fmt(s["flow_test_nll"], 2),
            fmt(None if s["explained_variance"] is None else 100 * s["explained_variance"], 3),
        ]
        for s in r.get("summary", {}).get("pca_sweep", [])
    ]
    header = ["PCA bases", "lifter run", "PA-MPJPE", "N-MPJPE", "flow test NLL", "variance kept %"]
    no_pca = rows.pca_lifter(None)
    return (
        ["## 2. PCA bases (paper Fig. 4)", "", f"![PCA sweep]({figures}/pca_sweep.png)", ""]
        + table(header, cells)
        + [f"The no-PCA lifter is `{no_pca}` (elevation branch, bone prior, no PCA).", ""]
    )


def render_reliability(r: dict[str, Any], figures: str) -> list[str]:
    """Section 3: how well the main lifter's NLL flags poses above 100 mm PA-MPJPE."""
    lines = ["## 3. Reliability (paper Fig. 5)", "", f"![NLL against PA-MPJPE]({figures}/nll_vs_error.png)", ""]
    rel = r["lifters"].get(rows.MAIN, {}).get("evaluation", {}).get("reliability")
    if not rel:
        return lines
    header = [
        f"ROC AUC (NLL flags PA-MPJPE > {rel['threshold_mm']:.0f} mm)",
        f"poses > {rel['threshold_mm']:.0f} mm",
        "median NLL < 50 mm",
        "50-100 mm",
        "> 100 mm",
    ]
    cells = [
        [
            fmt(rel["roc_auc"], 3),
            str(rel["positives"]),
            fmt(rel["median_nll_below_50mm"], 2),
            fmt(rel["median_nll_50_100mm"], 2),
            fmt(rel["median_nll_above_100mm"], 2),
        ]
    ]
    rotations = r["profile"]["evaluation"]["rotations"]
    return (
        lines
        + table(header, cells)
        + [f"NLL = flow NLL averaged over {rotations} virtual views per pose (paper: 100).", ""]
    )
