"""Lifting people's own 2D detections to 3D with a trained ElePose checkpoint (the Python API).

Three lines from detector output to 3D poses and how far to trust them::

    from elepose.lift.lifter import Lifter
    lifter = Lifter.load("runs/lifter")
    result = lifter.lift("video_keypoints.json", height_m=1.75)

What :meth:`Lifter.lift` does, batched over every person of every frame:

1. reads the input (an ``(N, 17, 2|3)`` array in H36M order, :class:`~elepose.data.keypoints.Detections`,
   or a file / folder in any format of :mod:`elepose.data.keypoints`);
2. marks joints with score below ``min_score`` as missing, skips people with too few visible
   joints (or with the pelvis and both hips missing), and fills the rest from the flow's
   PCA subspace (:func:`elepose.filling.fill_missing_joints`);
3. normalises the 2D (``scale``, below), lifts it (Eq. 2 of ElePose) and predicts the camera
   elevation;
4. scores each lift by the flow's NLL averaged over ``rotations`` random virtual views (Sec. 4.3
   of ElePose) and turns it into a reliability percentile against the NLL of the training poses
   stored in the checkpoint (``100`` = less implausible than every training pose, ``0`` = more
   implausible than all of them).

``scale``: how a pose's pixels become network input. ``"checkpoint"`` uses the checkpoint's own
normalisation (for a ``"dataset"`` checkpoint: the mean pelvis-to-head distance in pixels of the
*training cameras*, only meaningful for 2D from similar cameras at similar distances).
``"per-pose"`` divides each pose by its own size measured the checkpoint's way
(:meth:`~elepose.models.normalisation.Normalisation.per_pose_scale_of`): the RMS joint distance
to the pelvis for a ``"pose"`` checkpoint (identical to ``"checkpoint"``), the pose's own
pelvis-to-head distance for a ``"dataset"`` checkpoint. The default is ``"per-pose"`` for a
pose-scale checkpoint, else ``"checkpoint"``.

Units: ``poses_3d`` are camera-frame (x right, y down, z forward), pelvis-centred, in the
lifter's normalised units (a pose about 10 units from the camera). With ``height_m`` each pose is
scaled so that its skeleton height (:func:`skeleton_height`) equals ``height_m`` metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from elepose.data.keypoints import Detections, read_keypoints
from elepose.data.tracks import link_tracks
from elepose.evaluate.reliability import reliability_nll, reliability_percentile
from elepose.filling import fill_missing_joints
from elepose.geometry import normalise_2d
from elepose.models.io import load_lifter
from elepose.models.lifter import predict
from elepose.models.records import ElevationStats, LifterRecord
from elepose.runtime import pick_device
from elepose.skeleton import JOINT_NAMES, NUM_JOINTS, PELVIS

__all__ = ["SCALE_CHOICES", "LiftResult", "Lifter", "skeleton_height"]

SCALE_CHOICES = ("checkpoint", "per-pose")
MAX_HEIGHT_M = 10.0
"""Largest ``height_m`` accepted: anything taller is a unit mistake (centimetres?)."""

# Joint chains of the skeleton height: each leg (ankle-knee-hip), then pelvis-spine-thorax-neck-head.
_LEGS = (((3, 2), (2, 1)), ((6, 5), (5, 4)))
_TRUNK = ((0, 7), (7, 8), (8, 9), (9, 10))
_LEFT_HIP, _RIGHT_HIP = 4, 1


def skeleton_height(poses_3d: np.ndarray) -> np.ndarray:
    """Ankle-to-head-top height along the skeleton ``(P,)`` of ``poses_3d (P, 17, 3)``.

    The mean of the two legs' ankle-knee-hip lengths plus the pelvis-spine-thorax-neck-head
    chain (H36M's joint 10 is the top of the head). The hip-to-pelvis bones, which run sideways,
    are left out; so is the foot below the ankle, so for a person standing straight this is
    a few centimetres under their height.
    """
    poses = np.asarray(poses_3d, dtype=np.float64)

    def chain(bones: tuple[tuple[int, int], ...]) -> np.ndarray:
        return sum(np.linalg.norm(poses[:, a] - poses[:, b], axis=-1) for a, b in bones)

    return 0.5 * (chain(_LEGS[0]) + chain(_LEGS[1])) + chain(_TRUNK)


@dataclass(frozen=True)
class LiftResult:
    """3D poses lifted from 2D detections, one row per lifted person.

    poses_3d: (P, 17, 3) camera frame, pelvis-centred, lifter's normalised units.
    poses_3d_metres: (P, 17, 3) metres (each pose scaled to ``height_m``), or None.
    elevation: (P,) predicted camera elevation, radians, looking down positive (0 without an
        elevation branch).
    nll: (P,) flow NLL averaged over random virtual views (lower = more plausible).
    reliability: (P,) percentile 0..100 of the pose against the training poses' NLL (higher =
        more reliable); NaN when the checkpoint holds no NLL calibration.
    missing: (P, 17) bool, joints that were below ``min_score`` and were filled.
    keypoints_2d: (P, 17, 2) the 2D input in pixels, filled joints included.
    frame: (P,) index into ``frame_names``; person: (P,) index of the person within its frame.
    frame_names: every frame of the input, frames with nobody included.
    skipped: ``(frame, person, reason)`` for every person that was not lifted.
    track: (P,) track id: the input's own where it has them, else linked frame to frame by the
        2D pelvis (:func:`elepose.lift.exports.link_tracks`).
    notes: what the reader did that a user should know (from :class:`Detections`).
    layout: the keypoint layout the input was read as (``coco17``, ``halpe26``, ``h36m``, ...).
    """

    poses_3d: np.ndarray
    poses_3d_metres: np.ndarray | None
    elevation: np.ndarray
    nll: np.ndarray
    reliability: np.ndarray
    missing: np.ndarray
    keypoints_2d: np.ndarray
    frame: np.ndarray
    person: np.ndarray
    frame_names: tuple[str, ...]
    skipped: list[tuple[int, int, str]] = field(default_factory=list)
    track: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    layout: str = "h36m"

    def __post_init__(self) -> None:
        if self.track is None:
            object.__setattr__(self, "track", np.zeros(len(self.frame), dtype=np.int32))

    def __len__(self) -> int:
        return int(self.poses_3d.shape[0])

    @property
    def elevation_deg(self) -> np.ndarray:
        """Predicted camera elevation ``(P,)`` in degrees."""
        return np.degrees(self.elevation)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain numpy arrays (no objects, loadable with ``allow_pickle=False``) for an ``.npz``.

        Keys: ``poses_3d``, ``poses_3d_metres`` (only with a height), ``elevation_deg``, ``nll``,
        ``reliability``, ``missing``, ``keypoints_2d``, ``frame``, ``person``, ``track``, ``frame_names``,
        ``joint_names`` and ``skipped_frame`` / ``skipped_person`` / ``skipped_reason``.
        """
        arrays = {
            "poses_3d": self.poses_3d.astype(np.float32),
            "elevation_deg": self.elevation_deg.astype(np.float32),
            "nll": self.nll.astype(np.float32),
            "reliability": self.reliability.astype(np.float32),
            "missing": self.missing.astype(bool),
            "keypoints_2d": self.keypoints_2d.astype(np.float32),
            "frame": self.frame.astype(np.int32),
            "person": self.person.astype(np.int32),
            "track": self.track.astype(np.int32),
            "frame_names": np.array(self.frame_names, dtype=str),
            "joint_names": np.array(JOINT_NAMES, dtype=str),
            "skipped_frame": np.array([s[0] for s in self.skipped], dtype=np.int32),
            "skipped_person": np.array([s[1] for s in self.skipped], dtype=np.int32),
            "skipped_reason": np.array([s[2] for s in self.skipped], dtype=str),
        }
        if self.poses_3d_metres is not None:
            arrays["poses_3d_metres"] = self.poses_3d_metres.astype(np.float32)
        return arrays

    def save(
        self,
        out: str | Path,
        frame: str = "camera",
        smooth_window: int | None = None,
        exports: tuple[str, ...] = (),
        fps: float | None = None,
        height_m: float | None = None,
        render: str | Path | None = None,
        overwrite: bool = False,
    ) -> list[Path]:
        """Write this result as ``elepose lift`` does: ``OUT.npz``, ``OUT.json``, the ``exports``
        (mmpose3d, bvh, trc: BVH and TRC need ``fps`` and ``height_m``) and a ``render`` picture,
        all or nothing, the 3D in ``frame`` (camera or upright) and smoothed per track over
        ``smooth_window`` frames when given; a BVH skeleton has each track's own bone lengths.
        Returns the paths written."""
        from elepose.lift.save import SaveOptions, arrange, save

        options = SaveOptions(
            exports=tuple(exports), fps=fps, height_m=height_m, render=None if render is None else Path(render),
            frame=frame, overwrite=overwrite, meta={"frame": frame, "smooth_window": smooth_window, "fps": fps},
        )  # fmt: skip
        return save(arrange(self, frame, smooth_window), Path(out), options)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: ``frames`` (every frame, its ``people`` list possibly empty) and ``skipped``.

        Each person: ``person``, ``track``, ``joints_3d`` (17 x [x, y, z], normalised units),
        ``joints_3d_metres`` (with a height), ``elevation_deg``, ``nll``, ``reliability``
        (null when uncalibrated), ``missing`` (17 bools, true = filled) and ``keypoints_2d`` px.
        """
        frames: list[dict[str, Any]] = [{"name": name, "people": []} for name in self.frame_names]
        for i in range(len(self)):
            person: dict[str, Any] = {
                "person": int(self.person[i]),
                "track": int(self.track[i]),
                "joints_3d": np.round(self.poses_3d[i], 6).tolist(),
                "elevation_deg": round(float(self.elevation_deg[i]), 4),
                "nll": round(float(self.nll[i]), 5),
                "reliability": None if np.isnan(self.reliability[i]) else round(float(self.reliability[i]), 3),
                "missing": self.missing[i].tolist(),
                "keypoints_2d": np.round(self.keypoints_2d[i], 3).tolist(),
            }
            if self.poses_3d_metres is not None:
                person["joints_3d_metres"] = np.round(self.poses_3d_metres[i], 6).tolist()
            frames[int(self.frame[i])]["people"].append(person)
        skipped = [
            {"frame": f, "frame_name": self.frame_names[f], "person": p, "reason": reason}
            for f, p, reason in self.skipped
        ]
        return {
            "joint_names": list(JOINT_NAMES),
            "layout": self.layout,
            "notes": list(self.notes),
            "frames": frames,
            "skipped": skipped,
        }


def _as_detections(keypoints: Any, format: str | None) -> Detections:
    """An array ``(N, 17, 2|3)`` H36M px, a :class:`Detections`, or a path -> :class:`Detections`."""
    if isinstance(keypoints, Detections):
        return keypoints
    if isinstance(keypoints, (str, Path)):
        return read_keypoints(keypoints, format)
    array = np.asarray(keypoints)
    if array.ndim != 3 or array.shape[1:] not in ((NUM_JOINTS, 2), (NUM_JOINTS, 3)):
        raise ValueError(
            f"keypoints: expected an array (N, 17, 2) or (N, 17, 3) in H36M order, got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"keypoints: expected numbers, got dtype {array.dtype}")
    if array.shape[0] == 0:
        raise ValueError("keypoints: holds no poses; expected (N, 17, 2|3) with N >= 1")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array[..., :2]).all(axis=-1)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"keypoints: pose {i} joint {j} is NaN or inf; expected finite pixel coordinates")
    scores = array[..., 2] if array.shape[2] == 3 else np.ones(array.shape[:2])
    bad = ~(np.isfinite(scores) & (scores >= 0))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"keypoints: pose {i} joint {j} has score {scores[i, j]}; expected a finite score >= 0")
    n = array.shape[0]
    return Detections(
        keypoints=array[..., :2].astype(np.float32),
        scores=scores.astype(np.float32),
        frame=np.arange(n, dtype=np.int32),
        person=np.zeros(n, dtype=np.int32),
        frame_names=tuple(str(i) for i in range(n)),
        source_format="array",
        path="<array>",
    )


def _check_lift_arguments(
    scale: str, min_score: float, height_m: float | None, rotations: int, min_visible: int
) -> None:
    """Raise ``ValueError`` naming the first argument of :meth:`Lifter.lift` out of its range."""
    if scale not in SCALE_CHOICES:
        raise ValueError(f"scale {scale!r} unknown; expected one of {SCALE_CHOICES}")
    if not (math.isfinite(min_score) and min_score >= 0):
        raise ValueError(f"min_score: expected a finite number >= 0, got {min_score}")
    if height_m is not None and not (math.isfinite(height_m) and 0 < height_m <= MAX_HEIGHT_M):
        raise ValueError(f"height_m: expected a person's height in metres, 0 < h <= {MAX_HEIGHT_M:g}, got {height_m}")
    if rotations < 1:
        raise ValueError(f"rotations: expected at least 1, got {rotations}")
    if not 2 <= min_visible <= NUM_JOINTS:
        raise ValueError(f"min_visible: expected 2..{NUM_JOINTS}, got {min_visible}")


class Lifter:
    """A trained lifter with its flow, ready to lift 2D detections (see the module doc).

    Args:
        network: the lifting network (:class:`elepose.models.lifter.LiftingNetwork`).
        flow: the flow (:class:`elepose.models.flow.PoseFlow`) it was trained with.
        record: the checkpoint's ``config.json`` (:class:`~elepose.models.records.LifterRecord`).
        device: where the networks run.

    Example:
        >>> lifter = Lifter.load("runs/lifter")  # doctest: +SKIP
        >>> result = lifter.lift(np.load("poses_2d.npy"), height_m=1.7)  # doctest: +SKIP
        >>> result.poses_3d_metres.shape, result.reliability.min() >= 0  # doctest: +SKIP
        ((100, 17, 3), True)
    """

    def __init__(
        self, network: torch.nn.Module, flow: torch.nn.Module, record: LifterRecord, device: torch.device | str = "cpu"
    ) -> None:
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.flow = flow.to(self.device).eval()
        self.record = record
        self.normalisation = record.normalisation
        self.learned_elevation = record.learned_elevation or ElevationStats(0.0, 0.0)
        has_pca = getattr(flow, "pca_bases", None) is not None
        self._pca = (
            tuple(b.detach().double().cpu() for b in (flow.pca_mean, flow.pca_components, flow.pca_variance_ratio))
            if has_pca
            else None
        )

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> Lifter:
        """Load a lifter run folder (``elepose train --out``); ``device``: "cpu", "cuda" or "auto".

        Raises :class:`elepose.models.io.CheckpointError` (a ``ValueError``) naming the file
        and the field when the folder is not a lifter checkpoint of this format version.
        """
        network, flow, record = load_lifter(path)
        dev = pick_device(device) if isinstance(device, str) else torch.device(device)
        return cls(network, flow, record, dev)

    @property
    def default_scale(self) -> str:
        """``"per-pose"`` for a pose-scale checkpoint, else ``"checkpoint"`` (see the module doc)."""
        return "per-pose" if self.normalisation.mode == "pose" else "checkpoint"

    def _scales(self, poses_px: torch.Tensor, scale: str) -> torch.Tensor:
        """Per-pose scale ``(P,)`` px of the normalisation chosen by ``scale``."""
        if scale == "checkpoint":
            return self.normalisation.scale_of(poses_px)
        if scale == "per-pose":
            return self.normalisation.per_pose_scale_of(poses_px)
        raise ValueError(f"scale {scale!r} unknown; expected one of {SCALE_CHOICES}")

    def lift(
        self,
        keypoints: np.ndarray | Detections | str | Path,
        min_score: float = 0.3,
        format: str | None = None,
        height_m: float | None = None,
        rotations: int = 16,
        scale: Literal["checkpoint", "per-pose"] | None = None,
        min_visible: int = 10,
        batch_size: int = 8192,
        seed: int = 0,
    ) -> LiftResult:
        """Lift 2D detections to 3D, with elevation, NLL and reliability (see the module doc).

        ``keypoints``: an array ``(N, 17, 2)`` or ``(N, 17, 3)`` (third channel = score) in H36M
        order, pixels, one person per frame; a :class:`Detections`; or a path read by
        :func:`elepose.data.keypoints.read_keypoints` (``format`` overrides detection).
        ``min_score``: joints scoring below it are missing and filled. ``min_visible``: people
        with fewer visible joints are skipped. ``rotations``: virtual views per NLL; ``seed``
        fixes them, so a pose's NLL does not depend on the other poses lifted with it.
        ``batch_size``: poses per lifter call (the NLL chunks its poses x views by itself).
        """
        scale = self.default_scale if scale is None else scale
        _check_lift_arguments(scale, min_score, height_m, rotations, min_visible)
        detections = _as_detections(keypoints, format)

        missing = detections.missing(min_score)
        keep, skipped = self._screen(detections, missing, min_visible)
        filled = detections.keypoints.astype(np.float64)
        if self._pca is not None and missing[keep].any():
            filled[keep] = fill_missing_joints(filled[keep], missing[keep], *self._pca)
        poses_px = torch.as_tensor(filled[keep])
        scales = self._scales(poses_px, scale) if len(poses_px) else torch.zeros(0, dtype=torch.float64)
        extent = (poses_px - poses_px.mean(dim=1, keepdim=True)).norm(dim=-1).amax(dim=-1) if len(poses_px) else scales
        degenerate = ~(torch.isfinite(scales) & (scales > 1e-6) & (extent > 1e-3)).numpy()
        for i in np.flatnonzero(keep)[degenerate]:
            skipped.append(
                (int(detections.frame[i]), int(detections.person[i]), "zero size: its joints lie on one point")
            )
        keep[np.flatnonzero(keep)[degenerate]] = False
        poses_px, scales = poses_px[~degenerate], scales[~degenerate]

        if len(poses_px):
            pred = predict(self.network, normalise_2d(poses_px, scales).float(), self.device, batch_size)
            poses_3d, elevation = pred.poses_3d, pred.elevation
        else:
            poses_3d, elevation = np.zeros((0, NUM_JOINTS, 3)), np.zeros(0)
        nll, reliability = self._score(poses_3d, elevation, rotations, seed)
        metres = None
        if height_m is not None:
            metres = poses_3d * (height_m / np.maximum(skeleton_height(poses_3d), 1e-12))[:, None, None]
        skipped.sort()
        return LiftResult(
            poses_3d=poses_3d,
            poses_3d_metres=metres,
            elevation=elevation,
            nll=nll,
            reliability=reliability,
            missing=missing[keep],
            keypoints_2d=filled[keep],
            frame=detections.frame[keep].copy(),
            person=detections.person[keep].copy(),
            frame_names=detections.frame_names,
            skipped=skipped,
            track=link_tracks(detections.frame[keep], filled[keep], detections.track[keep]),
            notes=detections.notes,
            layout=detections.layout,
        )

    def _score(
        self, poses_3d: np.ndarray, elevation: np.ndarray, rotations: int, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """NLL ``(P,)`` over ``rotations`` virtual views and reliability ``(P,)`` (NaN uncalibrated) of
        camera-frame poses ``(P, 17, 3)`` in the lifter's units with their elevations ``(P,)`` rad."""
        nll = reliability_nll(
            self.flow,
            torch.as_tensor(poses_3d),
            torch.as_tensor(elevation),
            self.learned_elevation,
            rotations,
            seed,
            self.device,
        ).numpy()
        if self.record.reliability is None:
            return nll, np.full(len(nll), np.nan)
        return nll, reliability_percentile(nll, self.record.reliability)

    def smooth(self, result: LiftResult, window: int = 9, rotations: int = 16, seed: int = 0) -> LiftResult:
        """``result`` (camera frame, as :meth:`lift` returns it) smoothed per track over ``window`` frames,
        its 3D and its elevation alike (:func:`elepose.lift.save.arrange`), and scored again: the NLL
        and the reliability are those of the smoothed poses."""
        import dataclasses

        from elepose.lift.save import arrange

        smoothed = arrange(result, "camera", window)
        if not len(smoothed):
            return smoothed
        nll, reliability = self._score(smoothed.poses_3d, smoothed.elevation, rotations, seed)
        return dataclasses.replace(smoothed, nll=nll, reliability=reliability)

    def _screen(
        self, detections: Detections, missing: np.ndarray, min_visible: int
    ) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
        """Which people can be lifted ``(P,)`` bool, and ``(frame, person, reason)`` for the rest."""
        visible = (~missing).sum(axis=1)
        few = visible < min_visible
        no_root = missing[:, PELVIS] & missing[:, _LEFT_HIP] & missing[:, _RIGHT_HIP]
        no_pca = missing.any(axis=1) & (self._pca is None)
        keep = ~(few | no_root | no_pca)
        skipped = []
        for i in np.flatnonzero(~keep):
            if few[i]:
                reason = f"only {visible[i]} of 17 joints visible (score >= min_score); need {min_visible}"
            elif no_root[i]:
                reason = "pelvis and both hips missing"
            else:
                reason = "joints missing and the checkpoint's flow has no PCA to fill them"
            skipped.append((int(detections.frame[i]), int(detections.person[i]), reason))
        return keep, skipped
