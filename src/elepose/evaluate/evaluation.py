"""Evaluation: lift a test split, score it under both protocols, baselines, elevation, reliability.

Lifted poses are in the lifter's normalised units. Every metric but MPJPE is scale-free or
aligns the scale itself (N-MPJPE, PA-MPJPE, N-PCK, AUC, CPS). For MPJPE the prediction is
multiplied by one least-squares scale fitted over the whole evaluated set (one number for all
poses, so pose-wise scale errors still count); the ``elepose-code`` protocol, which has no
alignment in CPS, is given the prediction scaled per pose by ``||gt|| / ||pred||`` as the
authors' N-MPJPE does.
"""

from __future__ import annotations

import math
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

__all__ = [
    "evaluate_during_training",
    "global_scale",
    "score",
    "flat_baseline",
    "mean_depth_baseline",
    "elevation_agreement",
    "evaluate_checkpoint",
]


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

    Returns the report (JSON-ready) and per-pose arrays for figures (``pa_mpjpe`` mm,
    ``nll``, ``pred``, ``gt``, ``inputs_px``) computed on ground-truth 2D.
    """
    norm = record.normalisation
    learned = record.learned_elevation or ElevationStats(0.0, 0.0)
    test = random_subset(test, samples)
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
    report["learned_elevation"] = {
        "mu_deg": math.degrees(learned.mu_rad),
        "sigma_deg": math.degrees(learned.sigma_rad),
        "true_mean_deg": float(test.elevation_deg.mean()),
        "true_std_deg": float(test.elevation_deg.std()),
    }
    return report, per_pose
