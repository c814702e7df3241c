"""Section 1: accuracy of the main rows on both 2D inputs and both protocols, the trivial
baselines, the paper's Human3.6M numbers for orientation, per dataset, and Table 5's ablations."""

from __future__ import annotations

from typing import Any

from elepose.benchmark import rows
from elepose.benchmark.lookup import metric
from elepose.benchmark.report.tables import METRIC_COLUMNS, fmt, metric_cells, table

__all__ = ["render_accuracy"]

_BASELINES = (("flat", "Trivial: flat (all depths 0)"), ("mean_depth", "Trivial: training mean depth per joint"))
_INPUTS = (("gt", "ground-truth 2D"), ("detected", "detected 2D (noisy)"))


def _protocol_table(r: dict[str, Any], kind: str, protocol: str) -> list[str]:
    lifters = r["lifters"]
    cells = [
        [r["labels"].get(name, name)] + metric_cells(lifters[name]["evaluation"][kind][protocol])
        for name in rows.ACCURACY_ROWS
        if name in lifters
    ]
    if rows.MAIN in lifters:
        baselines = lifters[rows.MAIN]["evaluation"][kind]["baselines"]
        cells += [[label] + metric_cells(baselines[base][protocol]) for base, label in _BASELINES]
    header = ["method"] + [label for _, label in METRIC_COLUMNS]
    return table(header, cells, empty="(no finished runs)")


def _paper(r: dict[str, Any]) -> list[str]:
    paper = r["paper_h36m"]
    cells = [
        [label, fmt(paper[key]["pa_mpjpe"]), fmt(paper[key]["n_mpjpe"]), fmt(paper[key]["cps"])]
        for key, label in (
            ("table1_gt2d", "Table 1, ElePose, ground-truth 2D"),
            ("table4_detected", "Table 4, ElePose, detected 2D (CPN)"),
        )
    ]
    return [
        "### For orientation only: the paper's numbers on Human3.6M (another dataset)",
        "",
        "Not comparable with the Bandai rows above (different subjects, cameras, skeleton and training length).",
        "",
    ] + table(["paper row (Human3.6M)", "PA-MPJPE", "N-MPJPE", "CPS"], cells)


def _per_dataset(r: dict[str, Any]) -> list[str]:
    per_dataset = r["lifters"].get(rows.MAIN, {}).get("evaluation", {}).get("per_dataset")
    if not per_dataset:
        return []
    cells = []
    for dataset, values in per_dataset.items():
        for kind in ("gt", "detected"):
            m = values[kind]["standard"]
            cells.append(
                [dataset, kind, str(values["poses"])] + [fmt(m[k]) for k in ("mpjpe", "n_mpjpe", "pa_mpjpe", "cps")]
            )
    header = ["dataset", "2D", "poses", "MPJPE", "N-MPJPE", "PA-MPJPE", "CPS"]
    return ["### ElePose per dataset (standard protocol)", ""] + table(header, cells)


def _ablations(r: dict[str, Any]) -> list[str]:
    table5 = r["paper_h36m"]["table5"]
    cells = []
    for run, key in rows.ABLATIONS:
        pa_paper, mpjpe_paper = table5[key]
        label = key.replace("bone", "L_bone").replace("pca", "PCA")
        cells.append(
            [label, run, fmt(metric(r, run)), fmt(metric(r, run, key="n_mpjpe")), fmt(pa_paper), fmt(mpjpe_paper)]
        )
    header = ["configuration", "run", "PA-MPJPE", "N-MPJPE", "paper H36M PA-MPJPE", 'paper H36M "MPJPE"']
    return (
        ["### Ablations (paper Table 5), ground-truth 2D, standard protocol", ""]
        + table(header, cells)
        + [
            "The `base + L_bone + PCA` row is the fixed-prior run (no elevation branch, U(-20, 20) deg). "
            "The paper's Table 5 labels its second column MPJPE; we list our N-MPJPE beside it.",
            "",
        ]
    )


def render_accuracy(r: dict[str, Any]) -> list[str]:
    """Section 1."""
    cache = r.get("cache", {})
    lines = [
        "## 1. Accuracy",
        "",
        f"Test split of the Bandai benchmark: {cache.get('evaluated_poses', '-')} of {cache.get('test_poses', '-')} "
        "poses (a fixed random subset when fewer). Millimetres; N-PCK and AUC in percent. `standard` = SPEC "
        "section 7; `elepose_code` = the authors' evaluation (reflections allowed, norm-ratio scale, CPS without "
        "alignment).",
        "",
    ]
    for kind, kind_label in _INPUTS:
        for protocol in ("standard", "elepose_code"):
            lines += [f"### {kind_label}, {protocol} protocol", ""] + _protocol_table(r, kind, protocol)
    return lines + _paper(r) + _per_dataset(r) + _ablations(r)
