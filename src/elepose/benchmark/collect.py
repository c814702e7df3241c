"""Collecting a benchmark's results into the one dictionary ``results.json`` holds.

Every finished lifter is evaluated (:mod:`elepose.benchmark.scoring`), every finished flow read,
section 7's and section 5's results taken from their files, and the derived numbers (seeds,
PCA sweep, targets) added under ``summary``. The report renders from this alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from elepose.benchmark import rows
from elepose.benchmark.lookup import metric
from elepose.benchmark.plan import OPTION_VARIANTS, Run, camera_distributions
from elepose.benchmark.profiles import Profile
from elepose.benchmark.scoring import evaluate_run, time_to_accuracy
from elepose.benchmark.targets import evaluate_targets
from elepose.data.cache import PoseSplit, load_manifest, load_split
from elepose.models.io import load_flow
from elepose.train.runlog import read_metrics
from elepose.train.runstate import run_state

__all__ = ["PAPER_H36M", "collect", "finished"]

PAPER_H36M: dict[str, Any] = {
    "source": "Wandt et al., ElePose, CVPR 2022 (../shared/paper/elepose-cvpr2022.txt)",
    "table1_gt2d": {"pa_mpjpe": 36.7, "n_mpjpe": 64.0, "cps": 196.1},
    "table4_detected": {"pa_mpjpe": 50.2, "n_mpjpe": 74.4, "cps": 165.3},
    # Table 5 (PA-MPJPE, and the column the paper labels MPJPE)
    "table5": {
        "base": (77.9, 135.0),
        "base+bone": (48.1, 83.8),
        "base+bone+elevation": (45.5, 73.9),
        "base+bone+pca": (43.1, 83.8),
        "ours": (36.7, 64.0),
    },
}
"""Human3.6M numbers of the paper (another dataset: for orientation only)."""

_CURVE_ELEVATION = ("elevation_r", "elevation_spread_deg", "elevation_sigma_train_deg")
"""Per-epoch elevation checks carried into the curves (section 4's learning curves)."""


def finished(run: Run) -> bool:
    """Whether a flow or lifter run reached its planned epoch with the planned settings."""
    state = run_state(run.out, run.config)
    return state.status == "finished" and not state.changed


class _Splits:
    """The training and test split of each cache a run trained on, each read once."""

    def __init__(self) -> None:
        self._loaded: dict[Path, tuple[PoseSplit, PoseSplit]] = {}

    def __call__(self, folder: Path) -> tuple[PoseSplit, PoseSplit]:
        if folder not in self._loaded:
            self._loaded[folder] = (load_split(folder / "train.npz"), load_split(folder / "test.npz"))
        return self._loaded[folder]


def _cache_summary(profile: Profile, cache_dir: Path, train: PoseSplit, test: PoseSplit) -> dict[str, Any]:
    cams = load_manifest(cache_dir).get("options", {}).get("cameras", {})
    configured = None
    if "elevation_mean_deg" in cams:
        configured = {"mean": float(cams["elevation_mean_deg"]), "std": float(cams["elevation_std_deg"])}
    return {
        "path": str(cache_dir),
        "train_poses": len(train),
        "test_poses": len(test),
        "evaluated_poses": min(len(test), profile.evaluation.samples or len(test)),
        "camera_elevation_train_deg": {
            "mean": float(train.camera_elevation.mean()),
            "std": float(train.camera_elevation.std()),
        },
        "camera_elevation_configured_deg": configured,
    }


def _flow_entry(run: Run) -> dict[str, Any]:
    flow, record = load_flow(run.out)
    return {
        "pca_bases": run.config.pca_bases,
        "test_nll": record.metrics.get("test_nll"),
        "explained_variance": flow.explained_variance if flow.pca_bases is not None else None,
    }


def _lifter_entry(run: Run, evaluation: dict[str, Any], epoch_samples: int) -> dict[str, Any]:
    metrics_rows = read_metrics(run.out / "metrics.csv")
    return {
        "evaluation": evaluation,
        "time_to_accuracy": time_to_accuracy(metrics_rows),
        "train_samples_per_s": float(np.mean([r["samples_per_s"] for r in metrics_rows])) if metrics_rows else None,
        "precision": run.config.precision,
        "curve": [
            {
                "epoch": int(r["epoch"]),
                "samples": int(r["epoch"]) * (run.config.epoch_samples or epoch_samples),
                "minutes": r.get("train_seconds", 0.0) / 60.0,
                "pa_mpjpe": r.get("pa_mpjpe"),
                **{k: r[k] for k in _CURVE_ELEVATION if k in r},
            }
            for r in metrics_rows
        ],
    }


def collect(
    profile: Profile,
    runs: list[Run],
    work: Path,
    cache_dir: Path,
    device: str,
    status: dict[str, dict[str, Any]],
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The results of every finished run of ``runs``; an evaluation that fails is added to ``status``."""
    out: dict[str, Any] = {"labels": {r.name: r.label for r in runs}, "lifters": {}, "flows": {}}
    out["paper_h36m"] = PAPER_H36M
    if not (cache_dir / "manifest.json").is_file():
        return out
    splits = _Splits()
    train, test = splits(cache_dir)
    out["cache"] = _cache_summary(profile, cache_dir, train, test)
    for run in runs:
        if run.kind == "flow" and finished(run):
            out["flows"][run.name] = _flow_entry(run)
        if run.kind != "lifter" or not finished(run):
            continue
        try:
            say(f"evaluate {run.name}")
            run_train, run_test = splits(Path(run.config.data))
            evaluation = evaluate_run(run, profile.evaluation, run_train, run_test, device, run.name == rows.MAIN)
        except Exception as err:
            status[run.name + ":evaluate"] = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
            status[run.name + ":evaluate"]["seconds"] = 0.0
            say(f"evaluate {run.name} FAILED: {err}")
            continue
        out["lifters"][run.name] = _lifter_entry(run, evaluation, len(train.poses_2d))
    out["cameras"] = _camera_summary(profile, runs, out["lifters"], cache_dir, splits)
    out["options"] = [
        {"name": name, "run": rows.option_run(name), "label": label, "flow_scale": scale or "dataset",
         "settings": changes}
        for name, (scale, changes, label) in OPTION_VARIANTS.items()
        if rows.option_run(name) in out["lifters"]
    ]  # fmt: skip
    # Only the sections this profile runs: a work folder shared with another profile holds the others'.
    sections = (
        ("own2d", work / rows.OWN2D / "own2d.json", profile.own2d),
        ("domain", work / rows.DOMAIN / "domain.json", profile.domain),
        ("speed", work / "speed.json", profile.speed),
    )
    for key, path, budget in sections:
        if budget is None:
            continue
        if path.is_file():
            out[key] = json.loads(path.read_text(encoding="utf-8"))
            out[key].pop("key", None)
    out["summary"] = summary(out, profile)
    out["lifter_training_minutes"] = sum(
        lifter["curve"][-1]["minutes"] for lifter in out["lifters"].values() if lifter["curve"]
    )
    return out


def _camera_summary(
    profile: Profile,
    runs: list[Run],
    lifters: dict[str, Any],
    cache_dir: Path,
    splits: Callable[[Path], tuple[PoseSplit, PoseSplit]],
) -> list[dict[str, Any]]:
    """Section 8: per camera distribution, its cameras and the run names of its finished lifters."""
    by_name = {r.name: r for r in runs}
    entries = []
    for name, mean, std in camera_distributions(profile):
        folder = cache_dir if name == "default" else by_name[rows.camera_cache(name)].out
        entry: dict[str, Any] = {"name": name, "configured_deg": {"mean": mean, "std": std}, "runs": {}}
        if (folder / "manifest.json").is_file():
            elevation = splits(folder)[0].camera_elevation
            entry["train_cameras_deg"] = {
                "mean": float(elevation.mean()),
                "std": float(elevation.std()),
                "n": len(elevation),
            }
        for variant in rows.CAMERA_VARIANTS:
            if rows.camera_run(name, variant) in lifters:
                entry["runs"][variant] = rows.camera_run(name, variant)
        entries.append(entry)
    return entries


def _seeds(out: dict[str, Any], profile: Profile) -> dict[str, Any]:
    seeds = {}
    names = [rows.seed_run(s) for s in (0, *(s for s in profile.seeds if s != 0))]
    for key in ("pa_mpjpe", "n_mpjpe", "mpjpe"):
        values = [metric(out, r, key=key) for r in names if r in out["lifters"]]
        if values:
            seeds[key] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                "min": float(min(values)),
                "max": float(max(values)),
                "n": len(values),
            }
    return seeds


def _pca_sweep(out: dict[str, Any]) -> list[dict[str, Any]]:
    sweep = []
    for flow in sorted(out["flows"].values(), key=lambda f: (f["pca_bases"] is None, f["pca_bases"] or 0)):
        lifter = rows.pca_lifter(flow["pca_bases"])
        sweep.append(
            {
                "pca_bases": flow["pca_bases"],
                "pa_mpjpe": metric(out, lifter),
                "n_mpjpe": metric(out, lifter, key="n_mpjpe"),
                "flow_test_nll": flow["test_nll"],
                "explained_variance": flow["explained_variance"],
                "lifter": lifter,
            }
        )
    return sweep


def summary(out: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """Derived numbers: seeds, PCA sweep, bf16 against fp32, the gain over the fixed prior, targets."""
    result: dict[str, Any] = {"seeds": _seeds(out, profile), "pca_sweep": _pca_sweep(out)}
    prec = out.get("speed", {}).get("precisions", {})
    if "fp32" in prec and "bf16" in prec:
        result["bf16_speedup"] = prec["bf16"]["samples_per_s"] / prec["fp32"]["samples_per_s"]
    ele, fp32, fixed = metric(out, rows.MAIN), metric(out, rows.FP32), metric(out, rows.FIXED_PRIOR)
    if ele is not None and fp32 is not None:
        bf16 = profile.lifter.precision == "bf16"
        result["bf16_vs_fp32_pa_mpjpe"] = (ele - fp32) / fp32 if bf16 else (fp32 - ele) / ele
    if ele is not None and fixed is not None:
        result["elevation_gain_over_fixed"] = (fixed - ele) / fixed
    result["targets"] = evaluate_targets({**out, "profile": _profile_dict(profile)})
    return result


def _profile_dict(profile: Profile) -> dict[str, Any]:
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(profile)))
