"""3DPW (von Marcard et al., ECCV 2018) -> the common pose cache, ElePose's "Train-Test" mode.

Expected layout under ``root`` (the unpacked ``sequenceFiles.zip``; ``root`` may also be the
``sequenceFiles`` folder itself)::

    sequenceFiles/train/*.pkl   sequenceFiles/validation/*.pkl   sequenceFiles/test/*.pkl

Each ``.pkl`` is a Python 2 pickle (read with ``encoding="latin1"`` through
:mod:`elepose.data.safe_pickle`) of a dict; the keys used here (3DPW readme.txt):
``sequence`` (name), ``jointPositions`` (per actor (F, 72): 24 SMPL joints x XYZ, world metres,
30 Hz, aligned with the images), ``poses2d`` (per actor (F, 3, 18): OpenPose COCO-18 x, y,
confidence; the readme calls it ``poses2D``, both spellings are accepted), ``cam_poses``
(F, 4, 4) world->camera, ``cam_intrinsics`` (3, 3), ``campose_valid`` (per actor (F,)).

Splits, as in the paper (Sec. 4.1, Table 3): train on ``train``, test on ``test``. Training 2D
is the re-projection of the 3D skeleton with the frame's camera ("To create training data for
the 3DPW dataset we reprojected the 3D skeletons to 2D"), for ``poses_2d`` and, by default, for
``poses_2d_detected``. Test ``poses_2d`` is the re-projection (ground truth) and
``poses_2d_detected`` the provided OpenPose 2D mapped by
:func:`elepose.skeleton.openpose_coco18_to_h36m`. Only ``campose_valid`` frames are used; a
pose whose detection misses a joint the mapping needs is dropped (counted in the metadata),
never lifted as if complete.

SMPL-24 -> H36M-17 (joint names from the SMPL model, e.g. smplx ``JOINT_NAMES``; the common
choice in 3DPW lifting loaders ``[0, 2, 5, 8, 1, 4, 7, 6, 12, 15, 16, 18, 20, 17, 19, 21]``):
pelvis 0, R hip/knee/ankle 2/5/8, L 1/4/7, spine = spine2 (6), thorax = neck (12), neck/nose =
head (15), L shoulder/elbow/wrist 16/18/20, R 17/19/21. SMPL has no head top: it is placed on
the line neck -> head, one neck->head length beyond the head joint (``head_top_extension=1``),
because H36M's thorax->neck/nose and neck/nose->head bones are about equally long (ratios
0.4481 and 0.4450, SPEC section 6).

World frame: 3DPW's world is not documented as gravity aligned, so each sequence's up axis is
estimated from its 3D (:func:`elepose.data.cameras.torso_up`) and snapped to the nearest
world axis when within ``snap_up_deg``; camera rotations are stored for a Z-up world and the
metadata records the axis and the estimate's deviation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from elepose.data.cache import PoseSplit
from elepose.data.cameras import camera_elevation_deg, pinhole_project, torso_up, z_up_basis
from elepose.data.safe_pickle import load_pickle
from elepose.skeleton import OPENPOSE_COCO18_NAMES, bone_ratios, openpose_coco18_to_h36m

__all__ = [
    "SOURCE",
    "SMPL_JOINT_NAMES",
    "SMPL_TO_H36M",
    "OPENPOSE_REQUIRED",
    "BONE_RATIOS",
    "smpl24_to_h36m",
    "read_sequence",
    "load_3dpw",
]

SOURCE = "3dpw"

# Source: SMPL joint order (e.g. smplx/joint_names.py, the first 24 entries).
SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)
SMPL_TO_H36M: tuple[int, ...] = (0, 2, 5, 8, 1, 4, 7, 6, 12, 15, -1, 16, 18, 20, 17, 19, 21)
"""SMPL joint per H36M-17 joint; -1 = head top, extended beyond SMPL head (15) from neck (12)."""
_SMPL_NECK, _SMPL_HEAD, _H36M_HEAD = 12, 15, 10

# OpenPose COCO-18 joints that openpose_coco18_to_h36m reads (all but the ears).
OPENPOSE_REQUIRED: tuple[int, ...] = tuple(i for i, n in enumerate(OPENPOSE_COCO18_NAMES) if n not in ("REar", "LEar"))

BONE_RATIOS: tuple[float, ...] | None = None
"""The authors published no 3DPW bone-ratio constants; use the metadata's ``train_split`` ratios."""

_COMPUTED_RATIOS_SOURCE = "elepose.skeleton.bone_ratios over this cache's training split (3D, camera frame)"
_REQUIRED_KEYS = ("jointPositions", "cam_poses", "cam_intrinsics", "campose_valid")


def smpl24_to_h36m(joints: np.ndarray, head_top_extension: float = 1.0) -> np.ndarray:
    """SMPL joints ``(..., 24, 3)`` -> H36M-17 ``(..., 17, 3)``; head top = head + ext * (head - neck)."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape[-2:] != (24, 3):
        raise ValueError(f"SMPL joints need shape (..., 24, 3), got {joints.shape}")
    out = joints[..., [max(i, 0) for i in SMPL_TO_H36M], :].copy()
    head, neck = joints[..., _SMPL_HEAD, :], joints[..., _SMPL_NECK, :]
    out[..., _H36M_HEAD, :] = head + head_top_extension * (head - neck)
    return out


@dataclass
class _Sequence:
    name: str
    joints_world: list[np.ndarray]  # per actor (F, 17, 3) metres
    poses_2d_openpose: list[np.ndarray | None]  # per actor (F, 18, 3) x, y, confidence
    valid: list[np.ndarray]  # per actor (F,) bool
    cam_poses: np.ndarray  # (F, 4, 4)
    K: np.ndarray  # (3, 3)


def _per_actor(value: Any, path: Path, key: str, frames: int | None, tail: tuple[int, ...]) -> list[np.ndarray]:
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, np.ndarray) and value.dtype != object and value.ndim == len(tail) + 2:
        items = list(value)  # actors stacked into one array
    else:
        items = [value]
    arrays = []
    for actor, item in enumerate(items):
        try:
            array = np.asarray(item, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: key {key!r}, actor {actor}: not a numeric array") from None
        if array.ndim != 1 + len(tail) or array.shape[1:] != tail or (frames is not None and array.shape[0] != frames):
            want = f"({frames if frames is not None else 'F'}{''.join(', ' + str(t) for t in tail)})"
            raise ValueError(f"{path}: key {key!r}, actor {actor}: shape {array.shape}, expected {want}")
        arrays.append(array)
    if not arrays:
        raise ValueError(f"{path}: key {key!r} lists no actor")
    return arrays


def read_sequence(path: Path, head_top_extension: float = 1.0, need_poses2d: bool = True) -> _Sequence:
    """Read and check one 3DPW ``.pkl`` (restricted unpickler); ValueError names file and key."""
    path = Path(path)
    data = load_pickle(path, encoding="latin1")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a 3DPW sequence dict, got {type(data).__name__}")
    key_2d = "poses2d" if "poses2d" in data else "poses2D"
    required = _REQUIRED_KEYS + ((key_2d,) if need_poses2d else ())
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}; a 3DPW sequence file holds {list(required)}")
    cam_poses = np.asarray(data["cam_poses"], dtype=np.float64)
    if cam_poses.ndim != 3 or cam_poses.shape[1:] != (4, 4):
        raise ValueError(f"{path}: key 'cam_poses' has shape {cam_poses.shape}, expected (F, 4, 4)")
    frames = cam_poses.shape[0]
    K = np.asarray(data["cam_intrinsics"], dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(
            f"{path}: key 'cam_intrinsics' must be a finite (3, 3) K with positive focal lengths, got shape {K.shape}"
        )
    joints = _per_actor(data["jointPositions"], path, "jointPositions", frames, (72,))
    valid = _per_actor(data["campose_valid"], path, "campose_valid", frames, ())
    if len(valid) != len(joints):
        raise ValueError(f"{path}: key 'campose_valid' lists {len(valid)} actors, 'jointPositions' {len(joints)}")
    poses_2d: list[np.ndarray | None] = [None] * len(joints)
    if key_2d in data:
        raw = _per_actor(data[key_2d], path, key_2d, frames, (3, 18))
        if len(raw) != len(joints):
            raise ValueError(f"{path}: key {key_2d!r} lists {len(raw)} actors, 'jointPositions' {len(joints)}")
        poses_2d = [np.swapaxes(p, 1, 2) for p in raw]
    name = data.get("sequence", path.stem)
    return _Sequence(
        name=str(name) if isinstance(name, str) else path.stem,
        joints_world=[smpl24_to_h36m(j.reshape(frames, 24, 3), head_top_extension) for j in joints],
        poses_2d_openpose=poses_2d,
        valid=[v > 0.5 for v in valid],
        cam_poses=cam_poses,
        K=K,
    )


def _world_up(seq: _Sequence, snap_deg: float) -> tuple[np.ndarray, float, str]:
    poses = np.concatenate([j[v] for j, v in zip(seq.joints_world, seq.valid)])
    estimate = torso_up(poses[np.isfinite(poses).all((1, 2))])
    axis = int(np.argmax(np.abs(estimate)))
    snapped = np.sign(estimate[axis]) * np.eye(3)[axis]
    deviation = float(np.degrees(np.arccos(np.clip(abs(estimate[axis]), -1.0, 1.0))))
    if deviation <= snap_deg:
        return snapped, deviation, ("+" if snapped[axis] > 0 else "-") + "xyz"[axis]
    return estimate, deviation, "torso estimate (no axis within snap_up_deg)"


@dataclass
class _Collected:
    poses_2d: list[np.ndarray]
    poses_2d_detected: list[np.ndarray]
    poses_3d: list[np.ndarray]
    view: list[np.ndarray]
    frame: list[np.ndarray]
    K: list[np.ndarray]
    R: list[np.ndarray]
    t: list[np.ndarray]
    camera_clip: list[np.ndarray]
    clips: list[str]
    dropped: dict[str, int]
    up: dict[str, dict[str, Any]]


def _collect(
    files: list[Path], detected: str, stride: int, min_confidence: float, head_top_extension: float, snap_up_deg: float
) -> _Collected:
    dropped = {"campose_invalid": 0, "behind_camera_or_nonfinite": 0, "missing_detection": 0}
    out = _Collected([], [], [], [], [], [], [], [], [], [], dropped, {})
    views = 0
    for path in files:
        seq = read_sequence(path, head_top_extension, need_poses2d=detected == "openpose")
        if not any(v.any() for v in seq.valid):
            raise ValueError(f"{path}: key 'campose_valid' marks no valid frame")
        try:
            up, deviation, axis = _world_up(seq, snap_up_deg)
        except ValueError as err:
            raise ValueError(f"{path}: key 'jointPositions': {err}") from None
        to_z_up = z_up_basis(up)
        frames = np.arange(0, seq.cam_poses.shape[0], stride)
        clip = len(out.clips)
        out.clips.append(seq.name)
        out.up[seq.name] = {"up_axis": axis, "torso_deviation_deg": round(deviation, 2)}
        used = np.zeros(seq.cam_poses.shape[0], dtype=bool)
        per_actor = []
        for actor, world in enumerate(seq.joints_world):
            f = frames[seq.valid[actor][frames]]
            out.dropped["campose_invalid"] += len(frames) - len(f)
            R, t = seq.cam_poses[f, :3, :3], seq.cam_poses[f, :3, 3]
            cam = np.einsum("fij,fkj->fki", R, world[f]) + t[:, None, :]
            gt_2d = pinhole_project(seq.K, cam)
            ok = np.isfinite(cam).all((1, 2)) & (cam[..., 2] > 1e-3).all(1) & np.isfinite(gt_2d).all((1, 2))
            out.dropped["behind_camera_or_nonfinite"] += int((~ok).sum())
            if detected == "openpose":
                op = seq.poses_2d_openpose[actor][f]
                complete = (op[:, OPENPOSE_REQUIRED, 2] > min_confidence).all(1) & np.isfinite(op).all((1, 2))
                out.dropped["missing_detection"] += int((ok & ~complete).sum())
                ok &= complete
                det_2d = openpose_coco18_to_h36m(op[..., :2])
            else:
                det_2d = gt_2d
            used[f[ok]] = True
            per_actor.append((f[ok], gt_2d[ok], det_2d[ok], cam[ok]))
        frame_view = np.full(seq.cam_poses.shape[0], -1)
        frame_view[used] = views + np.arange(int(used.sum()))
        views += int(used.sum())
        R_used = seq.cam_poses[used, :3, :3] @ to_z_up.T
        out.K.append(np.repeat(seq.K[None], int(used.sum()), axis=0))
        out.R.append(R_used)
        out.t.append(seq.cam_poses[used, :3, 3])
        out.camera_clip.append(np.full(int(used.sum()), clip))
        for f, gt_2d, det_2d, cam in per_actor:
            out.poses_2d.append(gt_2d)
            out.poses_2d_detected.append(det_2d)
            out.poses_3d.append(cam)
            out.view.append(frame_view[f])
            out.frame.append(f)
    return out


def _to_split(c: _Collected) -> PoseSplit:
    def cat(items: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.concatenate(items).astype(dtype) if items else np.zeros((0, *shape), dtype=dtype)

    R = cat(c.R, (3, 3), np.float64)
    return PoseSplit(
        poses_2d=cat(c.poses_2d, (17, 2), np.float32),
        poses_2d_detected=cat(c.poses_2d_detected, (17, 2), np.float32),
        poses_3d=cat(c.poses_3d, (17, 3), np.float32),
        view=cat(c.view, (), np.int32),
        frame=cat(c.frame, (), np.int32),
        camera_K=cat(c.K, (3, 3), np.float32),
        camera_R=R.astype(np.float32),
        camera_t=cat(c.t, (3,), np.float32),
        camera_elevation=camera_elevation_deg(R).astype(np.float32),
        camera_clip=cat(c.camera_clip, (), np.int32),
        clip_names=np.array(c.clips, dtype=str),
        clip_source=np.array([SOURCE] * len(c.clips), dtype=str),
    )


def _sequence_root(root: Path) -> Path:
    for candidate in (root / "sequenceFiles", root):
        if (candidate / "train").is_dir() or (candidate / "test").is_dir():
            return candidate
    raise ValueError(f"{root}: expected 3DPW's sequenceFiles/{{train,validation,test}}/*.pkl under it")


def _split_summary(folders: tuple[str, ...], sequences: int, c: _Collected, detected: str) -> dict[str, Any]:
    """The metadata entry of one split (JSON-ready): counts, drops, up axes, 2D sources."""
    return {
        "folders": list(folders),
        "sequences": sequences,
        "poses": int(sum(len(v) for v in c.view)),
        "views": int(sum(len(k) for k in c.K)),
        "dropped": c.dropped,
        "world_up": c.up,
        "poses_2d": "re-projection of the 3D skeleton with the frame's camera",
        "poses_2d_detected": (
            "provided OpenPose COCO-18 poses2d -> H36M-17" if detected == "openpose" else "= poses_2d (re-projection)"
        ),
    }


def load_3dpw(
    root: Path,
    train_folders: tuple[str, ...] = ("train",),
    test_folders: tuple[str, ...] = ("test",),
    train_detected: str = "reprojected",
    train_stride: int = 1,
    test_stride: int = 1,
    min_confidence: float = 0.0,
    head_top_extension: float = 1.0,
    snap_up_deg: float = 20.0,
) -> tuple[dict[str, PoseSplit], dict[str, Any]]:
    """Read 3DPW under ``root`` into ``{"train": PoseSplit, "test": PoseSplit}`` plus metadata.

    Args:
        root: the folder holding ``sequenceFiles`` (or ``sequenceFiles`` itself).
        train_folders, test_folders: sub-folders of ``sequenceFiles`` forming each split.
        train_detected: ``"reprojected"`` (the paper: training 2D = re-projected 3D) or
            ``"openpose"`` (the provided detections, incomplete ones dropped).
        train_stride, test_stride: keep every n-th frame (30 Hz source).
        min_confidence: an OpenPose joint with confidence <= this counts as missing.
        head_top_extension: head top = SMPL head + this * (head - neck).
        snap_up_deg: snap the estimated world up to the nearest axis within this angle.

    Returns ``(splits, metadata)``; metadata (JSON-ready) holds counts, drops, the per-sequence
    up axis, the joint mapping and the bone ratios computed from the training split.
    """
    root = Path(root)
    if train_detected not in ("reprojected", "openpose"):
        raise ValueError(f"train_detected must be 'reprojected' or 'openpose', got {train_detected!r}")
    if train_stride < 1 or test_stride < 1:
        raise ValueError(f"strides must be >= 1, got train_stride={train_stride}, test_stride={test_stride}")
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder; expected 3DPW's sequenceFiles/{{train,validation,test}}")
    base = _sequence_root(root)
    collected, summaries = {}, {}
    for split, folders, detected, stride in (
        ("train", train_folders, train_detected, train_stride),
        ("test", test_folders, "openpose", test_stride),
    ):
        files = sorted(p for folder in folders for p in (base / folder).glob("*.pkl"))
        if not files:
            raise ValueError(f"{base}: no .pkl files in {[str(base / f) for f in folders]} for the {split} split")
        c = _collect(files, detected, stride, min_confidence, head_top_extension, snap_up_deg)
        collected[split] = c
        summaries[split] = _split_summary(folders, len(files), c, detected)
    splits = {name: _to_split(c) for name, c in collected.items()}
    for name, split in splits.items():
        split.validate(f"{root} ({SOURCE} {name})")
        if len(split) == 0:
            raise ValueError(f"{root}: the {name} split has no usable pose (see campose_valid and poses2d)")
    metadata = {
        "source": SOURCE,
        "root": str(root),
        "options": {
            "train_folders": list(train_folders),
            "test_folders": list(test_folders),
            "train_detected": train_detected,
            "train_stride": train_stride,
            "test_stride": test_stride,
            "min_confidence": min_confidence,
            "head_top_extension": head_top_extension,
            "snap_up_deg": snap_up_deg,
        },
        "joint_mapping": {
            "smpl_to_h36m": list(SMPL_TO_H36M),
            "head_top": f"SMPL head + {head_top_extension} * (head - neck)",
            "source": "SMPL joint names; thorax=neck(12), neck/nose=head(15), spine=spine2(6)",
        },
        "splits": summaries,
        "bone_ratios": {
            "train_split": [round(float(r), 4) for r in bone_ratios(splits["train"].poses_3d.astype(np.float64))],
            "train_split_source": _COMPUTED_RATIOS_SOURCE,
            "authors": None,
            "authors_source": "none published for 3DPW",
        },
    }
    return splits, metadata
