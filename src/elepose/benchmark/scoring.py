"""The benchmark's scores of one finished lifter run, kept in its ``evaluation.json``.

Both protocols on ground-truth and detected 2D, the trivial baselines, the elevation agreement
and the reliability ROC (:func:`elepose.evaluate.evaluation.evaluate_checkpoint`); for the main
ElePose row also the scores per source dataset and the per-pose figures the report draws.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from elepose.atomic import write_json
from elepose.benchmark.plan import Run
from elepose.benchmark.profiles import EvaluationBudget
from elepose.data.cache import PoseSplit, random_subset
from elepose.evaluate.evaluation import evaluate_checkpoint, score
from elepose.evaluate.reliability import reliability_roc
from elepose.models.io import load_lifter
from elepose.models.lifter import predict
from elepose.models.normalisation import normalise, select_2d
from elepose.runtime import pick_device

__all__ = ["evaluate_run", "time_to_accuracy", "FIGURE_DIGITS"]

FIGURE_DIGITS = 2
"""Decimals of the per-pose values kept in ``results.json`` for the figures."""


def evaluate_run(
    run: Run, budget: EvaluationBudget, train: PoseSplit, test: PoseSplit, device: str, per_dataset: bool
) -> dict[str, Any]:
    """Evaluate a finished lifter run (kept in ``evaluation.json`` for the same epoch and sizes).

    ``per_dataset``: also score each source dataset of the test subset and keep the per-pose
    PA-MPJPE (mm), NLL and elevations (deg) under ``per_pose``."""
    cached_path = run.out / "evaluation.json"
    lifter, flow, record = load_lifter(run.out)
    key = {
        "epoch": record.epoch,
        "samples": budget.samples,
        "rotations": budget.rotations,
        "per_dataset": per_dataset,
        "per_pose": per_dataset,
    }
    if cached_path.is_file():
        cached = json.loads(cached_path.read_text(encoding="utf-8"))
        if cached.get("key") == key:
            return cached
    dev = pick_device(device)
    lifter.to(dev)
    subset = random_subset(test, budget.samples)
    report, per_pose = evaluate_checkpoint(lifter, flow, record, train, subset, None, budget.rotations, dev)
    report["reliability"] = reliability_roc(per_pose["nll"], per_pose["pa_mpjpe"])
    if per_dataset:
        norm = record.normalisation
        sources = subset.pose_source
        report["per_dataset"] = {}
        for kind in ("gt", "detected"):
            pred = predict(lifter, normalise(select_2d(subset, kind), norm), dev)
            for dataset in sorted(set(sources.tolist())):
                mask = sources == dataset
                scored = score(pred.poses_3d[mask], subset.poses_3d[mask].astype(np.float64))
                report["per_dataset"].setdefault(dataset, {"poses": int(mask.sum())})[kind] = scored
        elevation = np.degrees(predict(lifter, normalise(subset.poses_2d, norm), dev).elevation)
        figures = {
            "pa_mpjpe": per_pose["pa_mpjpe"],
            "nll": per_pose["nll"],
            "elevation_pred_deg": elevation,
            "elevation_true_deg": subset.elevation_deg,
        }
        report["per_pose"] = {
            k: np.round(np.asarray(v, np.float64), FIGURE_DIGITS).tolist() for k, v in figures.items()
        }
    report["key"] = key
    write_json(cached_path, report)
    return json.loads(json.dumps(report))


def time_to_accuracy(rows: list[dict[str, float]], within: float = 0.10) -> dict[str, float] | None:
    """Minutes of training until PA-MPJPE first came within ``within`` of the run's final value.

    ``rows``: per-epoch ``metrics.csv`` rows with ``pa_mpjpe`` and cumulative ``train_seconds``.
    Resolution is one epoch. Returns ``minutes``, ``epoch``, ``final_pa_mpjpe``, ``total_minutes``.
    """
    rows = [r for r in rows if math.isfinite(r.get("pa_mpjpe", float("nan"))) and "train_seconds" in r]
    if not rows:
        return None
    final = rows[-1]["pa_mpjpe"]
    for row in rows:
        if row["pa_mpjpe"] <= final * (1.0 + within):
            return {
                "minutes": row["train_seconds"] / 60.0,
                "epoch": int(row["epoch"]),
                "final_pa_mpjpe": final,
                "total_minutes": rows[-1]["train_seconds"] / 60.0,
                "epochs": int(rows[-1]["epoch"]),
            }
    return None
