"""The benchmark's "Train on your own 2D" section: ``elepose fit`` on detector files, with no 3D.

What a user with their own videos gets, measured where the 3D is known:

- The Bandai benchmark's *detected* 2D of dataset 1's training clips is written as MMPose
  JSON, one file per clip and camera, as a COCO-17 detector would write it
  (:func:`export_mmpose`; 3D is never written). ``fit`` trains on those files alone, from
  scratch and with ``--init`` from a lifter trained on dataset 2 only, on 10 %, 30 % and all of
  the clips (:func:`clip_subset`, fixed by crc32 of the clip names), and with ``--init`` alone
  on 1 % (one clip: a user with one video; a fit from scratch refuses it), all with ``--distill off``;
  on 1 % also with ``--distill`` (the start's lifts of its own training cache kept:
  :mod:`elepose.train.distillation`), what ``fit --init`` does by default on so little 2D.
- Beside them: the dataset-2 lifter used as it is (someone else's model, other motions), the
  standard all-Bandai lifter, and a lifter trained on the same dataset-1 clips through the
  cache's own 2D path (its H36M-17 joints, the bone ratios of its 3D, its detected 2D as the
  fits have): how much the file route loses.
- Every lifter is scored on dataset 1's test split by :func:`elepose.evaluate.evaluation.evaluate_checkpoint`,
  as ``elepose evaluate`` scores it. A fit's record says it learnt COCO-17 joints (pelvis =
  mid-hips, thorax = mid-shoulders, head = mid-eyes), so its test 2D and 3D are taken through the
  same definitions (:func:`elepose.evaluate.evaluation.defined_as`); the other lifters are scored
  on the test split as it is, and the transferred one also on COCO-defined 2D and 3D.
- ``fit`` on the real AlphaPose file of ``../shared/real2d`` (when present), with fit's defaults:
  what it measured without 3D, and the reliability of those detections under the Bandai lifter
  and under the fit.

Results go to ``WORK/own2d/own2d.json``; finished fits and runs are kept and not trained again.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from elepose.atomic import write_json
from elepose.benchmark import rows
from elepose.benchmark.own2d_checks import held_out_figures_against_accuracy, own2d_checks
from elepose.benchmark.profiles import EvaluationBudget, Own2dBudget
from elepose.data.cache import PoseCache, PoseSplit, load_manifest, load_split, write_cache
from elepose.data.keypoint_cache import KeypointCacheOptions
from elepose.evaluate.evaluation import defined_as, evaluate_checkpoint
from elepose.evaluate.reliability import reliability_distribution, reliability_percentile
from elepose.lift.lifter import Lifter
from elepose.models.io import load_lifter, load_lifter_record
from elepose.runtime import pick_device
from elepose.skeleton import h36m_to_coco17
from elepose.train.config import FlowConfig, TrainConfig, lr_decay_per_epoch
from elepose.train.fit import DISTILL_AUTO_BELOW_POSES, FitConfig, fit
from elepose.train.loop import BEST_FOLDER

__all__ = [
    "export_mmpose",
    "score_lifter",
    "clip_subset",
    "REAL_ALPHAPOSE",
    "run_own2d",
]

REAL_ALPHAPOSE = "real2d/alphapose-coco17-multiperson.json"  # under ../shared


def clip_subset(clip_names: list[str], share: float) -> list[str]:
    """The first ``share`` of the clips (at least one) in crc32 order of their names: fixed, and nested by size."""
    ordered = sorted(clip_names, key=lambda name: (zlib.crc32(name.encode("utf-8")), name))
    return ordered[: max(1, round(share * len(ordered)))]


def export_mmpose(split: PoseSplit, folder: Path, clips: list[str]) -> list[Path]:
    """Write the detected 2D of ``clips`` as MMPose JSON, one file per clip and camera; returns the files.

    Each file is MMPose's video layout ``[{"frame_id", "instances": [{"keypoints", "keypoint_scores",
    "bbox", "bbox_score"}]}]`` with COCO-17 keypoints in pixels (:func:`h36m_to_coco17`) and
    scores 1. Nothing 3D is written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    wanted = set(clips)
    written = []
    for view in np.unique(split.view):
        clip = str(split.clip_names[split.camera_clip[view]])
        if clip not in wanted:
            continue
        rows = np.flatnonzero(split.view == view)
        rows = rows[np.argsort(split.frame[rows], kind="stable")]
        coco = h36m_to_coco17(split.poses_2d_detected[rows].astype(np.float64))
        frames = []
        for frame, xy in zip(split.frame[rows], coco):
            box = [*xy.min(axis=0).round(2).tolist(), *xy.max(axis=0).round(2).tolist()]
            instance = {"keypoints": xy.round(2).tolist(), "keypoint_scores": [1.0] * 17, "bbox": [box]}
            frames.append({"frame_id": int(frame), "instances": [{**instance, "bbox_score": 1.0}]})
        path = folder / f"{clip}_camera{int(view)}.json"
        write_json(path, frames, sort_keys=False)
        written.append(path)
    return written


def _dataset_cache(source: Path, out: Path, train_dataset: str, test_dataset: str) -> Path:
    """A cache of the benchmark cache's ``train_dataset`` training poses and ``test_dataset``'s test poses."""
    if not (out / "manifest.json").is_file():
        train, test = load_split(source / "train.npz"), load_split(source / "test.npz")
        manifest = load_manifest(source)
        subset = PoseCache(
            train.subset(train.pose_source == train_dataset), test.subset(test.pose_source == test_dataset), manifest
        )
        write_cache(out, subset)
    return out


def score_lifter(
    folder: Path, train: PoseSplit, test: PoseSplit, samples: int | None, rotations: int, device: str
) -> dict:
    """PA-MPJPE and friends on ``test`` (ground-truth and detected 2D), r, and the test poses' reliability."""
    lifter, flow, record = load_lifter(folder)
    dev = pick_device(device)
    lifter.to(dev)
    report, per_pose = evaluate_checkpoint(lifter, flow, record, train, test, samples, rotations, dev)
    out = {kind: report[kind]["standard"] for kind in ("gt", "detected")}
    out["flat_detected"] = report["detected"]["baselines"]["flat"]["standard"]["pa_mpjpe"]
    out["elevation"] = report["gt"].get("elevation")
    out["learned_elevation"] = report["learned_elevation"]
    if record.reliability is not None:
        reliability = reliability_percentile(per_pose["nll"], record.reliability)
        out["reliability_median"] = float(np.median(reliability))
    out["epoch"] = record.epoch
    return out


def _real_file_reliability(lifter_folder: Path, path: Path, rotations: int) -> dict[str, float]:
    lifted = Lifter.load(lifter_folder).lift(path, rotations=rotations)
    spread = reliability_distribution(lifted.reliability)
    nan = float("nan")
    return {
        "people": int(len(lifted)),
        "reliability_median": nan if spread["median"] is None else spread["median"],
        "reliability_below_4": nan if spread["below_4"] is None else spread["below_4"],
    }


class _Section:
    """Section 7's shared state: the folders, the user's and the other dataset, the test splits."""

    def __init__(self, work: Path, cache: Path, evaluation: EvaluationBudget, device: str) -> None:
        self.work, self.cache, self.evaluation, self.device = work, cache, evaluation, device
        self.train = load_split(cache / "train.npz")
        self.datasets = sorted(set(self.train.pose_source.tolist()))

    def prepare(self) -> None:
        """The user's dataset (the first by name) and its test split as it is and through COCO's joints."""
        self.ours, self.other = self.datasets[0], self.datasets[1]
        test = load_split(self.cache / "test.npz")
        self.test = test.subset(test.pose_source == self.ours)
        self.test_coco = defined_as(self.test, "coco17")
        self.train_coco = defined_as(self.train.subset(self.train.pose_source == self.ours), "coco17")
        clips = np.unique(self.train.pose_clip[self.train.pose_source == self.ours])
        self.clips = sorted({str(self.train.clip_names[c]) for c in clips})

    def score(self, folder: Path, coco: bool = False) -> dict[str, Any]:
        """``coco``: feed an H36M-17 lifter COCO-defined 2D; a fit's record makes the evaluation redefine by itself."""
        train, test = (self.train_coco, self.test_coco) if coco else (self.train, self.test)
        return score_lifter(folder, train, test, self.evaluation.samples, self.evaluation.rotations, self.device)


def _cache_path_run(
    section: _Section, name: str, dataset: str, input_2d: str, samples: int, flow_config: FlowConfig,
    lifter_config: TrainConfig, train_run: Callable[[str, Any], None],
) -> Path:  # fmt: skip
    """A flow and lifter trained as the benchmark's are, on ``dataset``'s training clips through the cache."""
    work = section.work
    data = _dataset_cache(section.cache, work / f"cache-{name}", dataset, section.ours)
    flow, lifter = work / f"flow-{name}", work / f"lifter-{name}"
    n = int((section.train.pose_source == dataset).sum())
    epochs = max(1, round(samples / n))
    flow_run = replace(flow_config, data=str(data), out=str(flow), epochs=epochs, epoch_samples=None, input=input_2d)
    train_run("flow", flow_run)
    decay = lr_decay_per_epoch(lifter_config.epoch_samples, n)
    config = replace(lifter_config, data=str(data), flow=str(flow), out=str(lifter), lr_decay=decay, input=input_2d)
    train_run("lifter", config)
    return lifter


def _share_files(section: _Section, share: float) -> tuple[list[str], Path, int]:
    """The clips of ``share``, written once as MMPose files: (clips, folder, files written)."""
    clips = clip_subset(section.clips, share)
    folder = section.work / "mmpose" / f"{round(100 * share)}pct"
    if not (folder / "done.json").is_file():
        files = export_mmpose(section.train, folder / "files", clips)
        write_json(folder / "done.json", {"clips": clips, "files": len(files)})
    return clips, folder / "files", json.loads((folder / "done.json").read_text(encoding="utf-8"))["files"]


def _fit_and_score(
    section: _Section, share: float, start: str, init: Path | None, samples: int, fit_hidden: tuple[int, int],
    say: Callable[[str], None], distill_weight: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One fit on ``share`` of the clips, scored at its last epoch and at its lowest held-out reprojection
    (``distill_weight``: with ``--init``, ``--distill`` the start's own training cache at this weight)."""
    clips, files, written = _share_files(section, share)
    name = rows.fit_run(start if distill_weight is None else f"{start}-distill", share)
    say(f"own 2D: {name}: fit on {len(clips)} clips ({written} MMPose files)")
    distill: dict[str, Any] = {"distill": None}  # the plain rows: --distill off, as before it was fit's default
    if distill_weight is not None and init is not None:
        distill = {"distill": load_lifter_record(init).data, "distill_weight": distill_weight}
    config = FitConfig(
        paths=(str(files),), out=str(section.work / name), samples=samples,
        init=None if init is None else str(init), device=section.device, hidden=fit_hidden[0],
        flow_hidden=fit_hidden[1], **distill,
    )  # fmt: skip
    record = fit(config, progress=False, say=lambda message: None)
    fitted_folder = section.work / name / "lifter"
    check = record.get("start_check")
    start_kept = check is not None and not check["better"]
    scored = section.score(Path(record["lifter"]))  # what `fit` points `lift` at
    fitted = section.score(fitted_folder) if start_kept else scored
    best_folder = fitted_folder / BEST_FOLDER
    best = section.score(best_folder)
    fitted_record = load_lifter_record(fitted_folder)
    scored.update(
        {
            "share": share,
            "start": start,
            "distill_weight": distill_weight,
            "clips": len(clips),
            "files": written,
            "training_poses": record["schedule"]["training_poses"],
            "epoch": fitted_record.epoch,
            "epochs": record["lifter_epochs_run"],
            "start_check": check,
            "start_kept": start_kept,
            "fitted_itself": {k: fitted[k]["pa_mpjpe"] for k in ("detected", "gt")},
            "validation_without_3d": fitted_record.metrics,
            "lowest_reprojection": {
                "epoch": best["epoch"],
                "pa_mpjpe_detected": best["detected"]["pa_mpjpe"],
                "pa_mpjpe_gt": best["gt"]["pa_mpjpe"],
                "val_reprojection": load_lifter_record(best_folder).metrics.get("val_reprojection"),
            },
        }
    )
    say(f"  {name}: PA-MPJPE {scored['detected']['pa_mpjpe']:.1f} mm (detected 2D)")
    return scored


def run_own2d(
    work: Path,
    cache: Path,
    flow_config: FlowConfig,
    lifter_config: TrainConfig,
    budget: Own2dBudget,
    evaluation: EvaluationBudget,
    device: str,
    train_run: Callable[[str, Any], None],
    shared: Path | None,
    say: Callable[[str], None],
    fit_hidden: tuple[int, int] = (512, 1024),
) -> dict[str, Any]:
    """Run (or resume) the whole section under ``work``; returns what ``own2d.json`` holds.

    The cache's first dataset (sorted by name: Bandai's dataset 1) plays the user's videos, its
    second the other motion capture. ``flow_config`` / ``lifter_config``: the benchmark's own
    settings for the cache-path runs (data, flow and out are set here); ``budget``: each fit's
    samples (per stage) and the shares of clips; ``train_run(kind, config)``: the benchmark's
    resumable trainer; ``shared``: the folder with ``real2d/`` (None or absent: that part is
    skipped); ``fit_hidden``: the fits' lifter and flow widths (``fit``'s defaults).
    """
    work.mkdir(parents=True, exist_ok=True)
    section = _Section(work, cache, evaluation, device)
    if len(section.datasets) < 2:
        found = len(section.datasets)
        result = {"skipped": f"the cache holds {found} dataset(s); this section needs two (Bandai 1 and 2)"}
        write_json(work / "own2d.json", result)
        return result
    section.prepare()
    samples, shares = budget.samples, budget.shares
    result: dict[str, Any] = {"samples": samples, "shares": list(shares), "clips": len(section.clips)}
    result["init_only_shares"] = list(budget.init_only_shares)
    result.update({"datasets": {"user": section.ours, "other": section.other}, "lifters": {}})
    say(f"own 2D: lifter on {section.other} only (the transferred model)")
    transfer = _cache_path_run(section, "transfer", section.other, "gt", samples, flow_config, lifter_config, train_run)
    say(f"own 2D: lifter on {section.ours}'s clips through the cache's 2D (the reference for the file route)")
    # On the detected 2D, as the fits are: the comparison is of the route, not of the 2D.
    reference = _cache_path_run(
        section, "cache-path", section.ours, "detected", samples, flow_config, lifter_config, train_run
    )
    lifters = result["lifters"]
    lifters["transfer"] = section.score(transfer)
    lifters["transfer_on_coco"] = section.score(transfer, coco=True)
    lifters["cache-path"] = section.score(reference)
    if (work.parent / rows.MAIN / "config.json").is_file():
        lifters["all-bandai"] = section.score(work.parent / rows.MAIN)
    for share in shares:
        for start, init in (("scratch", None), ("init", transfer)):
            lifters[rows.fit_run(start, share)] = _fit_and_score(section, share, start, init, samples, fit_hidden, say)
    for share in budget.init_only_shares:
        lifters[rows.fit_run("init", share)] = _fit_and_score(
            section, share, "init", transfer, samples, fit_hidden, say
        )
    for share in budget.distill_shares:
        lifters[rows.fit_run("init-distill", share)] = _fit_and_score(
            section, share, "init", transfer, samples, fit_hidden, say, distill_weight=budget.distill_weight
        )
    result["distill_weight"] = budget.distill_weight
    result["distill_auto_below_poses"] = DISTILL_AUTO_BELOW_POSES  # where fit --init distils by default
    result["checks"] = own2d_checks(
        lifters, shares, budget.init_only_shares, budget.distill_shares, DISTILL_AUTO_BELOW_POSES
    )
    fits = [e for e in lifters.values() if "fitted_itself" in e]
    result["figures_against_accuracy"] = held_out_figures_against_accuracy(
        [(e["validation_without_3d"], e["fitted_itself"]["detected"]) for e in fits]
    )
    real = None if shared is None else shared / REAL_ALPHAPOSE
    if real is not None and real.is_file():
        result["real"] = _real_fits(work, real, transfer, samples, device, say, fit_hidden)
    else:
        result["real"] = {"skipped": f"{REAL_ALPHAPOSE} not found"}
    write_json(work / "own2d.json", result, allow_nan=True)
    return result


def _real_fits(
    work: Path,
    real: Path,
    init: Path,
    samples: int,
    device: str,
    say: Callable[[str], None],
    fit_hidden: tuple[int, int],
) -> dict:
    """``fit`` (scratch and ``--init``) on the real AlphaPose file; reliability of its detections before and after."""
    out: dict[str, Any] = {"file": str(real)}
    bandai = work.parent / rows.MAIN
    if (bandai / "config.json").is_file():
        out["bandai_lifter"] = _real_file_reliability(bandai, real, 16)
    for start, source in (("scratch", None), ("init", bandai if (bandai / "config.json").is_file() else init)):
        name = rows.real_fit_run(start)
        say(f"own 2D: {name} on {real.name}")
        # Real detections miss joints: with every joint required this file keeps 166 training
        # poses, so its people are filled (at least 12 joints present) as the README suggests.
        record = fit(
            FitConfig(paths=(str(real),), out=str(work / name), samples=samples, device=device,
                      init=None if source is None else str(source), hidden=fit_hidden[0], flow_hidden=fit_hidden[1],
                      selection=KeypointCacheOptions(missing="fill")),
            progress=False, say=lambda message: None,
        )  # fmt: skip
        manifest = load_manifest(work / name / "cache")
        out[name] = {
            "init": None if source is None else str(source),
            "training_poses": manifest["counts"]["train"]["poses"],
            "validation_poses": manifest["counts"]["test"]["poses"],
            "bone_ratios": manifest["bone_ratios"],
            "lowest_reprojection_epoch": record.get("lowest_reprojection_epoch"),
            "epochs": record["lifter_epochs_run"],
            "validation_without_3d": load_lifter_record(record["lifter"]).metrics,
            **_real_file_reliability(Path(record["lifter"]), real, 16),
        }
    return out
