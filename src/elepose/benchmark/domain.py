"""The benchmark's cross-domain section: ``elepose fit`` where the people, studio, skeleton, motion
and cameras are all new to the lifter it starts from.

- **Source**: the benchmark's ElePose lifter (:data:`elepose.benchmark.rows.MAIN`), trained on
  all of Bandai: one retargeted body, cameras at elevation N(12, 6) deg, 1150 px focal length, 5 m.
- **Target**: the CMU clips of ``DATA_ROOT/cmu`` (subjects 2, 5 and 131 walking, dancing, hopping;
  another studio, other people, a 31-joint or 3ds Max skeleton), rendered by
  :func:`elepose.data.mocap.render_clip` with :data:`TARGET_OPTIONS`: every frame of their 120 fps
  (the 40 mm motion filter thins the training frames), 8 cameras per window at elevation
  N(25, 8) deg, 800 px focal length, 4 m.
- **Split**: each clip is cut into :data:`SEGMENT_SECONDS` segments, the "videos" (clips whose
  shares the fits get); within each clip the segments at positions 2, 7, 12, ... are test, less
  :data:`TEST_GAP_SECONDS` at both ends so that no test frame neighbours a training frame.
  A split by clip (the benchmark's rule) would put one of five clips in test: CMU's only dance,
  a motion that no fit would have seen.
- **Rows**: the source lifter transferred as it is (fed the test split's H36M-17 2D and, as a
  user's detector gives it, COCO-defined 2D); ``fit --init`` from the source on 1 / 10 / 30 /
  100 % of the training segments (MMPose COCO-17 files of their detected 2D, as in section 7);
  ``fit`` from scratch on all of them; the variants of :data:`VARIANTS` (``fit --init`` with one
  setting changed) on 10 % and 100 %; the supervised bound (a lifter trained on the target's 3D
  and detected 2D, COCO-defined, through the cache); lifting flat. Each is scored on the target's
  test split through COCO's joint definitions (what the fits learn).

Each plain ``fit --init`` (and the ``distill`` variant) is also scored on the last fifth of its own segments' frames
(:func:`last_frames`), the frames ``fit`` holds out when its 2D has fewer than 5 clips: what a
user who fits one video and lifts that video gets, against the transferred lifter on the same frames.

Results go to ``WORK/domain/domain.json``; finished fits and runs are kept and not trained again.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from elepose.atomic import write_json
from elepose.benchmark import rows
from elepose.benchmark.own2d import clip_subset, export_mmpose, score_lifter
from elepose.benchmark.profiles import DomainBudget, EvaluationBudget
from elepose.data.bvh import load_h36m_joints
from elepose.data.cache import PoseCache, load_manifest, load_split, write_cache
from elepose.data.cameras import CameraOptions
from elepose.data.mocap import BuildOptions, build_from_clips, find_clip_files
from elepose.evaluate.evaluation import defined_as
from elepose.models.io import load_lifter_record
from elepose.train.config import FlowConfig, TrainConfig, lr_decay_per_epoch
from elepose.train.fit import DISTILL_AUTO_BELOW_POSES, FitConfig, fit

__all__ = [
    "TARGET_OPTIONS",
    "SEGMENT_SECONDS",
    "TEST_GAP_SECONDS",
    "VARIANTS",
    "SOURCE_CACHE",
    "Segment",
    "segment_clip",
    "last_frames",
    "build_target_cache",
    "check_rows",
    "run_domain",
]

TARGET_OPTIONS = BuildOptions(
    cameras=CameraOptions(
        elevation_mean_deg=25.0, elevation_std_deg=8.0, focal=800.0, distance=4.0, views_per_window=8
    ),
    target_fps=120.0,
)
"""The target's cameras and frame rate (the source's: N(12, 6) deg, 1150 px, 5 m, 10 fps, 4 views)."""

SEGMENT_SECONDS = 1.0
TEST_GAP_SECONDS = 0.2
_TEST_EVERY, _TEST_POSITION = 5, 2

SOURCE_CACHE = "SOURCE_CACHE"
"""In a variant's settings: the source lifter's training cache (the benchmark's Bandai cache)."""

_RATES = "the flow's rate drops at two thirds of them, the lifter's falls 0.95 per 100k"

VARIANTS: dict[str, tuple[dict[str, Any], str, tuple[float, ...] | None]] = {
    "track-pairs": (
        {"track_pairs": True},
        "batches of frame pairs of one person (L_def across time, 50 L_track on their bone proportions)", None,
    ),
    "init-flow": (
        {"init_flow": True}, "the source's flow fine-tuned on the target's 2D (held-out early stop)", None,
    ),
    "rehearse": (
        {"rehearse": SOURCE_CACHE, "rehearse_poses": 10_000},
        "rehearsal: flow and lifter on the target's 2D pooled with 10,000 source poses", None,
    ),
    "distill": (
        {"distill": SOURCE_CACHE, "distill_weight": 1000.0, "distill_poses": 20_000},
        "distillation: the source's lifts of 20,000 of its training poses kept (weight 1000)", (0.01, 0.1, 0.3),
    ),
    "longer": ({"samples": 3}, f"3x the samples per stage ({_RATES})", (1.0,)),
    "longer-10x": ({"samples": 10}, f"10x the samples per stage ({_RATES})", (1.0,)),
}  # fmt: skip
"""``fit --init`` variants: name -> (FitConfig changes, label, shares; None: the budget's
``variant_shares``). ``samples`` is a multiple of the budget's; :data:`SOURCE_CACHE` is replaced."""


@dataclass(frozen=True)
class Segment:
    """A piece of a clip: ``positions (F, 17, 3)`` world metres, ``fps``, ``name`` (``{clip}-s{k:02d}``)."""

    positions: np.ndarray
    fps: float
    name: str


def segment_clip(
    positions: np.ndarray, fps: float, name: str, seconds: float = SEGMENT_SECONDS, gap: float = TEST_GAP_SECONDS
) -> list[tuple[Segment, str]]:
    """Cut ``positions (F, 17, 3)`` into ``seconds``-long segments, each with its split.

    Segment ``k`` holds frames ``[k * n, (k + 1) * n)`` with ``n = round(seconds * fps)``; those
    with ``k % 5 == 2`` are test and lose ``round(gap * fps)`` frames at both ends. A segment left
    with fewer than 2 frames is dropped.
    """
    per, trim = max(1, round(seconds * fps)), round(gap * fps)
    out = []
    for k, start in enumerate(range(0, len(positions), per)):
        piece = positions[start : start + per]
        split = "test" if k % _TEST_EVERY == _TEST_POSITION else "train"
        if split == "test":
            piece = piece[trim : len(piece) - trim]
        if len(piece) >= 2:
            out.append((Segment(piece, fps, f"{name}-s{k:02d}"), split))
    return out


OWN_FRAMES_SHARE = 0.2
"""The share of each segment's frames scored as "its own held-out frames" (``fit``'s rule for fewer than 5 clips)."""


def last_frames(frame: np.ndarray, group: np.ndarray, share: float = OWN_FRAMES_SHARE) -> np.ndarray:
    """A mask ``(N,)`` of the poses in the last ``share`` of their group's frame range.

    ``frame (N,)`` frame numbers, ``group (N,)`` any labels (segments); within a group spanning
    frames ``lo..hi`` a pose is kept when ``frame >= lo + ceil((1 - share) * (hi - lo + 1))``.
    """
    mask = np.zeros(len(frame), dtype=bool)
    for label in np.unique(group):
        members = group == label
        lo, hi = int(frame[members].min()), int(frame[members].max())
        mask |= members & (frame >= lo + int(np.ceil((1.0 - share) * (hi - lo + 1) - 1e-9)))
    return mask


def build_target_cache(data_root: Path, out: Path, options: BuildOptions = TARGET_OPTIONS) -> dict[str, Any]:
    """The target's cache at ``out`` (built once; kept when its options match); returns its manifest."""
    if (out / "manifest.json").is_file():
        manifest = load_manifest(out)
        if manifest.get("segments", {}).get("seconds") == SEGMENT_SECONDS:
            return manifest
    files, label = find_clip_files("cmu", data_root)
    if not files:
        raise FileNotFoundError(f"{Path(data_root) / 'cmu'}: no .bvh files (the cross-domain section's target)")
    clips = []
    for path in files:
        clip = load_h36m_joints(path)
        clips += [(segment, split, label) for segment, split in segment_clip(clip.positions, clip.fps, clip.name)]
    source = {"source": "cmu", "label": label, "data_root": str(data_root), "files_used": len(files)}
    cache = build_from_clips(clips, options, [source])
    cache.manifest["segments"] = {"seconds": SEGMENT_SECONDS, "test_gap_seconds": TEST_GAP_SECONDS,
                                  "test": f"positions {_TEST_POSITION} mod {_TEST_EVERY} of each clip"}  # fmt: skip
    write_cache(out, cache)
    return cache.manifest


class _Target:
    """The target's splits (COCO-defined for scoring), its training segments and the folders."""

    def __init__(self, work: Path, cache: Path, evaluation: EvaluationBudget, device: str) -> None:
        self.work, self.cache, self.evaluation, self.device = work, cache, evaluation, device
        self.train, self.test = load_split(cache / "train.npz"), load_split(cache / "test.npz")
        self.train_coco, self.test_coco = defined_as(self.train, "coco17"), defined_as(self.test, "coco17")
        self.segments = sorted({str(self.train.clip_names[c]) for c in np.unique(self.train.pose_clip)})
        self._pose_segment = self.train_coco.clip_names[self.train_coco.pose_clip]
        self._last_fifth = last_frames(self.train_coco.frame, self._pose_segment)

    def score(self, folder: Path, coco: bool = True) -> dict[str, Any]:
        """Scores on the test split, COCO-defined (``coco``) or as H36M-17 joints."""
        train, test = (self.train_coco, self.test_coco) if coco else (self.train, self.test)
        return score_lifter(folder, train, test, self.evaluation.samples, self.evaluation.rotations, self.device)

    def score_own_frames(self, folder: Path, segments: list[str]) -> dict[str, Any]:
        """Scores (COCO-defined) on the last fifth of the frames of ``segments`` (training segments)."""
        mask = self._last_fifth & np.isin(self._pose_segment, segments)
        own = self.train_coco.subset(mask)
        scored = score_lifter(folder, self.train_coco, own, None, self.evaluation.rotations, self.device)
        return {"poses": int(mask.sum()), "pa_mpjpe": scored["detected"]["pa_mpjpe"]}

    def share_files(self, share: float) -> tuple[list[str], Path]:
        """The segments of ``share`` and the folder of their MMPose files (written once)."""
        segments = clip_subset(self.segments, share)
        folder = self.work / "mmpose" / f"{round(100 * share)}pct"
        if not (folder / "done.json").is_file():
            files = export_mmpose(self.train, folder / "files", segments)
            write_json(folder / "done.json", {"segments": segments, "files": len(files)})
        return segments, folder / "files"


def _fit(
    target: _Target, name: str, share: float, init: Path | None, samples: int, changes: dict[str, Any],
    fit_hidden: tuple[int, int], say: Callable[[str], None], init_score: dict[str, Any] | None = None,
    own_frames: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """One fit on ``share`` of the training segments, timed, scored as ``lift`` would use it
    (``init_score``: the init's own scores, reused when ``fit`` keeps the start; ``own_frames``: also
    score it and the init on the last fifth of its segments' frames)."""
    segments, files = target.share_files(share)
    say(f"domain: {name}: fit on {len(segments)} segments")
    changes = {"distill": None, **changes}  # distillation only where a variant asks (fit's auto: below 2,000 poses)
    config = FitConfig(
        paths=(str(files),), out=str(target.work / name), samples=samples, init=None if init is None else str(init),
        device=target.device, hidden=fit_hidden[0], flow_hidden=fit_hidden[1], **changes,
    )  # fmt: skip
    done = (target.work / name / "fit.json").is_file()
    started = time.perf_counter()
    record = fit(config, progress=False, say=lambda message: None)
    start_kept = bool(record.get("start_check") and not record["start_check"]["better"])
    fitted = target.score(target.work / name / "lifter")
    scored = copy.deepcopy(init_score) if start_kept and init_score is not None else fitted
    if start_kept and init_score is None:
        scored = target.score(Path(record["lifter"]))
    scored.update(
        {
            "share": share,
            "segments": len(segments),
            "training_poses": record["schedule"]["training_poses"],
            "epochs": record["lifter_epochs_run"],
            "flow_epoch_kept": record.get("flow_epoch_kept"),
            "flow_nll": record.get("flow_nll"),
            "start_kept": start_kept,
            "start_check": {k: v for k, v in (record.get("start_check") or {}).items() if k != "figures"},
            "fitted_itself": {k: fitted[k]["pa_mpjpe"] for k in ("detected", "gt")},
            "held_out_by_motion": bool(record.get("split", {}).get("by_motion")),
            "checks_failed": [c["check"] for c in record.get("checks", []) if not c["passed"]],
            "validation_without_3d": load_lifter_record(target.work / name / "lifter").metrics,
            # the fit's own record of its training time (this call's wall time when it ran here)
            "minutes": record.get("minutes_used") if done else (time.perf_counter() - started) / 60.0,
        }
    )
    if own_frames and init is not None:
        scored["own_frames"] = {
            "fitted": target.score_own_frames(target.work / name / "lifter", segments),
            "transferred": target.score_own_frames(init, segments),
        }
    say(f"  {name}: PA-MPJPE {scored['detected']['pa_mpjpe']:.1f} mm (detected 2D)")
    return scored


def _supervised_bound(
    target: _Target, flow_config: FlowConfig, lifter_config: TrainConfig, train_run: Callable[[str, Any], None]
) -> Path:
    """A lifter trained on the target's 3D and detected 2D (COCO-defined), at the benchmark's budget."""
    data = target.work / "cache-coco"
    if not (data / "manifest.json").is_file():
        write_cache(data, PoseCache(target.train_coco, target.test_coco, load_manifest(target.cache)))
    flow, lifter = target.work / "flow-target", target.work / "lifter-supervised"
    n = len(target.train_coco.poses_2d)
    train_run("flow", replace(flow_config, data=str(data), out=str(flow), input="detected"))
    decay = lr_decay_per_epoch(lifter_config.epoch_samples, n)
    config = replace(lifter_config, data=str(data), flow=str(flow), out=str(lifter), lr_decay=decay,
                     input="detected", supervised=True)  # fmt: skip
    train_run("lifter", config)
    return lifter


def _planned_fits(
    source: Path, source_cache: Path, budget: DomainBudget
) -> list[tuple[str, float, Path | None, dict[str, Any]]]:
    """The section's fits in order: ``(row name, share, init or None, FitConfig changes)``."""
    runs = [(rows.fit_run("init", s), s, source, {}) for s in budget.init_shares]
    runs += [(rows.fit_run("scratch", s), s, None, {}) for s in budget.scratch_shares]
    for variant, (settings, _, shares) in VARIANTS.items():
        changes = {k: str(source_cache) if v == SOURCE_CACHE else v for k, v in settings.items()}
        if "samples" in changes:
            changes["samples"] = changes["samples"] * budget.samples
        shares = budget.variant_shares if shares is None else tuple(s for s in shares if s in budget.variant_shares)
        runs += [(f"fit-{variant}-{round(100 * s)}pct", s, source, changes) for s in shares]
    return runs


def check_rows(budget: DomainBudget, names: list[str]) -> None:
    """Raise ValueError unless every one of ``names`` is a fit row of the section at ``budget``."""
    known = [run[0] for run in _planned_fits(Path(), Path(), budget)]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"--only domain/{unknown[0]}: expected one of the section's rows: {', '.join(known)}")


def run_domain(
    work: Path,
    source: Path,
    source_cache: Path,
    data_root: Path,
    flow_config: FlowConfig,
    lifter_config: TrainConfig,
    budget: DomainBudget,
    evaluation: EvaluationBudget,
    device: str,
    train_run: Callable[[str, Any], None],
    say: Callable[[str], None],
    fit_hidden: tuple[int, int] = (512, 1024),
    only_rows: list[str] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the section under ``work``; returns what ``domain.json`` holds.

    ``source``: the lifter run transferred and fine-tuned; ``source_cache``: the cache it was trained
    on (the rehearsal variant's source 2D); ``flow_config`` / ``lifter_config``: the
    benchmark's settings for the supervised bound (data, flow and out are set here); ``budget``:
    each fit's samples per stage and the shares; ``train_run(kind, config)``: the benchmark's
    resumable trainer; ``fit_hidden``: the fits' lifter and flow widths; ``only_rows``: fit just
    these rows (the references are always scored; ``domain.json`` then names them in
    ``rows_only``, which :func:`elepose.benchmark.report.merge.merge_sections` merges row by row).
    Raises ValueError (:func:`check_rows`) for a row the budget does not have.
    """
    runs = _planned_fits(source, source_cache, budget)
    if only_rows:
        check_rows(budget, only_rows)
        runs = [run for run in runs if run[0] in only_rows]
    work.mkdir(parents=True, exist_ok=True)
    say("domain: the target's cache (CMU, 1 s segments, cameras N(25, 8) deg, 800 px, 4 m)")
    manifest = build_target_cache(data_root, work / "cache")
    target = _Target(work, work / "cache", evaluation, device)
    result: dict[str, Any] = {
        "samples": budget.samples,
        "init_shares": list(budget.init_shares),
        "scratch_shares": list(budget.scratch_shares),
        "variant_shares": list(budget.variant_shares),
        "target": {
            "clips": manifest["sources"][0]["files_used"],
            "training_segments": len(target.segments),
            "test_segments": len(np.unique(target.test.pose_clip)),
            "training_poses": len(target.train.poses_2d),
            "test_poses": len(target.test.poses_2d),
            "cameras": manifest["options"]["cameras"],
            "target_fps": manifest["options"]["target_fps"],
            "segments": manifest["segments"],
            "camera_elevation_deg": {s: manifest["counts"][s]["camera_elevation_deg"] for s in ("train", "test")},
        },
        "source": str(source),
        "lifters": {},
    }
    lifters = result["lifters"]
    lifters["transfer"] = target.score(source, coco=False)
    lifters["transfer_on_coco"] = target.score(source)
    say(f"domain: transferred {lifters['transfer_on_coco']['detected']['pa_mpjpe']:.1f} mm (COCO-defined 2D)")
    say("domain: the supervised bound (the target's 3D)")
    lifters["supervised"] = target.score(_supervised_bound(target, flow_config, lifter_config, train_run))
    if only_rows:
        result["rows_only"] = [run[0] for run in runs]
    for name, share, init, changes in runs:
        samples = changes.get("samples", budget.samples)
        others = {k: v for k, v in changes.items() if k != "samples"}
        kept = lifters["transfer_on_coco"] if init == source else None
        plain = init == source and not changes
        own = plain or (init == source and changes.get("distill") is not None)  # what a one-video user compares
        lifters[name] = _fit(target, name, share, init, samples, others, fit_hidden, say, kept, own_frames=own)
        lifters[name]["settings"] = changes  # the samples as this variant asked them
        lifters[name]["start"] = "scratch" if init is None else "init"
    result["variants"] = {name: label for name, (_, label, _) in VARIANTS.items()}
    result["distill_auto_below_poses"] = DISTILL_AUTO_BELOW_POSES  # the plain rows below it: --distill off
    write_json(work / "domain.json", result, allow_nan=True)
    return result
