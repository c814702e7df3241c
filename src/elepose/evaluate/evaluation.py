"""Evaluation: lift a test split, score it under both protocols, baselines, elevation, reliability.

Lifted poses are in the lifter's normalised units. Every metric but MPJPE is scale-free or
aligns the scale itself (N-MPJPE, PA-MPJPE, N-PCK, AUC, CPS). For MPJPE the prediction is
multiplied by one least-squares scale fitted over the whole evaluated set (one number for all
poses, so pose-wise scale errors still count); the ``elepose-code`` protocol, which has no
alignment in CPS, is given the prediction scaled per pose by ``||gt|| / ||pred||`` as the
authors' N-MPJPE does.

A lifter trained on a detector's 2D (``elepose fit`` on COCO-17 files, say) predicts that
detector's joints: COCO's pelvis is the mid-hips, its head the mid-eyes. Its record says which
layout it learnt (``LifterRecord.keypoints``), and :func:`evaluate_checkpoint` scores it on the
test split's 2D and 3D taken through the same definitions (:func:`defined_as`); a lifter of
Human3.6M-17 joints is scored on the split as it is.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from elepose.data.cache import PoseSplit, random_subset
from elepose.evaluate.reliability import reliability_nll
from elepose.geometry import unproject
from elepose.metrics import PROTOCOLS, evaluate_poses, optimal_scale, per_pose_errors
from elepose.models.lifter import predict
from elepose.models.normalisation import Normalisation, normalise, select_2d, supervised_targets
from elepose.models.records import ElevationStats, LifterRecord
from elepose.skeleton import LAYOUT_DEFINITIONS, as_defined_by

__all__ = [
    "defined_as",
    "scoring_definitions",
    "evaluate_during_training",
    "global_scale",
    "score",
    "flat_baseline",
    "mean_depth_baseline",
    "elevation_agreement",
    "evaluate_checkpoint",
]


def defined_as(split: PoseSplit, layout: str | None) -> PoseSplit:
    """The split with its 2D (both kinds) and 3D joints as ``layout``'s detector defines them.

    See :func:`elepose.skeleton.as_defined_by`; give it a split of Human3.6M-17 joints, once (the
    head's redefinition does not repeat to the same point). A 3D midpoint projects within about a
    pixel of the 2D one at the benchmark's camera distances (perspective does not keep midpoints).
    """
    if not LAYOUT_DEFINITIONS.get(layout or "h36m", ()):
        as_defined_by(np.zeros((1, 17, 2)), layout)  # raises for an unknown layout
        return split

    def through(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else as_defined_by(values, layout).astype(values.dtype)

    return replace(
        split,
        poses_2d=through(split.poses_2d),
        poses_2d_detected=through(split.poses_2d_detected),
        poses_3d=through(split.poses_3d),
    )


def scoring_definitions(layout: str | None) -> dict[str, Any]:
    """What a report says of the joints it scored: the lifter's layout and the definitions applied."""
    rules = LAYOUT_DEFINITIONS.get(layout or "h36m", ())
    return {
        "layout": layout or "h36m",
        "definitions": list(rules),
        "note": (
            f"scored on the test split's 2D and 3D through {layout}'s joint definitions ({', '.join(rules)})"
            if rules
            else "scored on the test split's joints as they are"
        ),
    }


def global_scale(pred: np.ndarray, gt: np.ndarray) -> float:
    """One least-squares scale ``s`` minimising ``||s pred - gt||`` over all pelvis-centred poses."""
    p = pred - pred[:, :1]
    g = gt - gt[:, :1]
    return float((p * g).sum() / max((p * p).sum(), 1e-12))


def score(pred: np.ndarray, gt_metres: np.ndarray) -> dict[str, dict[str, float]]:
    """Metrics of ``pred (N, 17, 3)`` (any units) against ``gt_metres`` under both protocols."""
    results = {}
    for protocol in PROTOCOLS:
        if protocol == "standard":
            aligned = pred * global_scale(pred, gt_metres)
        else:
            centred = pred - pred[:, :1]
            aligned = centred * optimal_scale(pred, gt_metres, protocol)[:, None, None]
        results[protocol.replace("-", "_")] = evaluate_poses(aligned, gt_metres, protocol=protocol)
    return results


def flat_baseline(inputs: torch.Tensor) -> np.ndarray:
    """Trivial baseline: every depth offset zero, the pose flat in the image plane ``(N, 17, 3)``."""
    return unproject(inputs.double(), torch.zeros(inputs.shape[:-1], dtype=torch.float64), min_depth=None).numpy()


def mean_depth_baseline(inputs: torch.Tensor, train_depth_profile: np.ndarray) -> np.ndarray:
    """Trivial baseline: the training set's mean relative depth per joint ``(17,)`` for every pose."""
    depth = torch.as_tensor(train_depth_profile, dtype=torch.float64).expand(inputs.shape[0], -1)
    return unproject(inputs.double(), depth, min_depth=None).numpy()


def mean_depth_profile(train: PoseSplit, kind: str, norm: Normalisation) -> np.ndarray:
    """Mean relative depth per joint ``(17,)`` of the training split, in the lifter's units."""
    return supervised_targets(train, kind, norm)[..., 2].double().mean(0).numpy()


def elevation_agreement(predicted_rad: np.ndarray, true_deg: np.ndarray) -> dict[str, float]:
    """Pearson correlation and mean absolute error (degrees) of predicted vs true camera elevation."""
    pred_deg = np.degrees(predicted_rad)
    if np.std(pred_deg) < 1e-9 or np.std(true_deg) < 1e-9:
        r = float("nan")
    else:
        r = float(np.corrcoef(pred_deg, true_deg)[0, 1])
    return {
        "correlation": r,
        "mae_deg": float(np.mean(np.abs(pred_deg - true_deg))),
        "predicted_mean_deg": float(pred_deg.mean()),
        "predicted_std_deg": float(pred_deg.std()),
        "true_mean_deg": float(true_deg.mean()),
        "true_std_deg": float(true_deg.std()),
    }


def evaluate_during_training(
    lifter: torch.nn.Module,
    test: PoseSplit,
    norm: Normalisation,
    kind: str,
    samples: int | None,
    device: torch.device | str,
) -> dict[str, float]:
    """Quick per-epoch check on a fixed test subset: standard PA-MPJPE / N-MPJPE and elevation."""
    subset = random_subset(test, samples)
    pred = predict(lifter, normalise(select_2d(subset, kind), norm), device)
    errors = per_pose_errors(pred.poses_3d, subset.poses_3d.astype(np.float64), protocol="standard")
    values = {"pa_mpjpe": float(errors["pa_mpjpe"].mean()), "n_mpjpe": float(errors["n_mpjpe"].mean())}
    agreement = elevation_agreement(pred.elevation, subset.elevation_deg)
    values["elevation_r"] = agreement["correlation"]
    values["elevation_mae_deg"] = agreement["mae_deg"]
    values["elevation_spread_deg"] = agreement["predicted_std_deg"]  # against the cameras' spread
    return values


def evaluate_checkpoint(
    lifter: torch.nn.Module,
    flow: torch.nn.Module,
    record: LifterRecord,
    train: PoseSplit,
    test: PoseSplit,
    samples: int | None = None,
    rotations: int = 100,
    device: torch.device | str = "cpu",
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Full evaluation: both protocols, GT and detected 2D, baselines, elevation, reliability.

    ``train`` and ``test`` hold Human3.6M-17 joints; both are taken through the joint definitions
    of the lifter's keypoint layout first (:func:`defined_as`, reported under ``keypoints``).

    Returns the report (JSON-ready) and per-pose arrays for figures (``pa_mpjpe`` mm,
    ``nll``, ``pred``, ``gt``, ``inputs_px``) computed on ground-truth 2D.
    """
    norm = record.normalisation
    learned = record.learned_elevation or ElevationStats(0.0, 0.0)
    train, test = defined_as(train, record.keypoints), defined_as(random_subset(test, samples), record.keypoints)
    gt = test.poses_3d.astype(np.float64)
    profile = mean_depth_profile(train, record.input, norm)
    report: dict[str, Any] = {}
    per_pose: dict[str, np.ndarray] = {}
    for kind in ("gt", "detected"):
        inputs = normalise(select_2d(test, kind), norm)
        pred = predict(lifter, inputs, device)
        report[kind] = score(pred.poses_3d, gt)
        report[kind]["baselines"] = {
            "flat": score(flat_baseline(inputs), gt),
            "mean_depth": score(mean_depth_baseline(inputs, profile), gt),
        }
        if record.elevation_branch:
            report[kind]["elevation"] = elevation_agreement(pred.elevation, test.elevation_deg)
        if kind == "gt":
            nll = reliability_nll(
                flow, torch.as_tensor(pred.poses_3d), torch.as_tensor(pred.elevation), learned, rotations
            ).numpy()
            errors = per_pose_errors(pred.poses_3d, gt, protocol="standard")
            per_pose = {
                "pa_mpjpe": errors["pa_mpjpe"],
                "nll": nll,
                "pred": pred.poses_3d,
                "gt": gt,
                "inputs_px": test.poses_2d,
            }
    report["poses"] = len(test)
    report["keypoints"] = scoring_definitions(record.keypoints)
    report["learned_elevation"] = {
        "mu_deg": math.degrees(learned.mu_rad),
        "sigma_deg": math.degrees(learned.sigma_rad),
        "true_mean_deg": float(test.elevation_deg.mean()),
        "true_std_deg": float(test.elevation_deg.std()),
    }
    return report, per_pose
