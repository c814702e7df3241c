"""Lifted sequences for other tools: tracks, the upright frame, smoothing, MMPose 3D JSON, BVH, TRC.

All functions are pure: arrays in, arrays or text out; the command line writes the files.

- tracks: :func:`elepose.data.tracks.link_tracks` (re-exported here).
- :func:`upright`: ElePose's de-rotation (``Rx(-e)`` by the predicted elevation ``e``), then
  Y up (x right, y up, z towards the camera) with the lower ankle on ``y = 0``.
- :func:`smooth`: a Savitzky-Golay filter (SciPy) over each track's frames.
- :func:`mmpose_3d` / :func:`read_mmpose_3d`: MMPose's 3D result layout (``frame_id``,
  ``instances`` with ``keypoints`` [17][3] and ``keypoint_scores``), elepose's reliability
  (0-1) where MMPose's lifters put ones.
- :func:`bvh_text`: one H36M-17 skeleton with fixed bone lengths, joint rotations solved from
  the positions (Kabsch at branching joints, the shortest swing elsewhere), centimetres.
- :func:`trc_text` / :func:`read_trc`: OpenSim's marker file, metres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import savgol_filter
from scipy.spatial.transform import Rotation

from elepose.data.tracks import link_tracks
from elepose.errors import InputError
from elepose.skeleton import BONES, JOINT_NAMES, NUM_JOINTS, PARENTS, PELVIS

__all__ = [
    "EXPORT_FORMATS",
    "link_tracks",
    "upright",
    "smooth",
    "track_sequence",
    "bone_lengths_for_height",
    "track_bone_lengths",
    "mmpose_3d",
    "read_mmpose_3d",
    "bvh_text",
    "trc_text",
    "read_trc",
]

EXPORT_FORMATS = ("mmpose3d", "bvh", "trc")
_ANKLES = (3, 6)
_HEAD = 10


# ----------------------------------------------------------------------------- frames and smoothing


def _rotation_x(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    zeros, ones = np.zeros_like(angle), np.ones_like(angle)
    return np.stack([ones, zeros, zeros, zeros, c, -s, zeros, s, c], axis=-1).reshape(*angle.shape, 3, 3)


def upright(poses_3d: np.ndarray, elevation_rad: np.ndarray) -> np.ndarray:
    """Camera-frame poses ``(P, 17, 3)`` -> upright ``(P, 17, 3)``: y up (gravity along -y), feet on y = 0.

    De-rotates each pose by its predicted elevation (looking down positive, the ``Rx(-e)`` of
    ElePose's virtual views), turns the camera's y-down, z-forward axes into y up, z towards
    the camera (180 degrees about x, so still right-handed) and shifts the lower ankle to 0.
    Same units as the input.
    """
    poses = np.asarray(poses_3d, dtype=np.float64)
    level = np.einsum("pij,pkj->pki", _rotation_x(-np.asarray(elevation_rad, dtype=np.float64)), poses)
    out = level * np.array([1.0, -1.0, -1.0])
    out[..., 1] -= out[:, _ANKLES, 1].min(axis=1, keepdims=True)
    return out


def smooth(poses_3d: np.ndarray, track: np.ndarray, frame: np.ndarray, window: int = 9, order: int = 2) -> np.ndarray:
    """Savitzky-Golay smoothing ``(P, 17, 3)`` of each track over its frames (in frame order).

    ``window`` (odd, frames) shrinks to the track's length; tracks shorter than ``order + 2``
    frames are left as they are. The filter fits a degree-``order`` polynomial in each window,
    so motion slower than the window keeps its shape.
    """
    if window < 3 or window % 2 == 0 or not 1 <= order < window:
        raise InputError(f"--smooth-window {window}: expected an odd number of frames >= 3, above the order {order}")
    out = np.array(poses_3d, dtype=np.float64, copy=True)
    for t in np.unique(track):
        rows = np.flatnonzero(track == t)
        rows = rows[np.argsort(frame[rows], kind="stable")]
        length = min(window, len(rows) if len(rows) % 2 else len(rows) - 1)
        if length >= order + 2:
            out[rows] = savgol_filter(out[rows], length, order, axis=0, mode="interp")
    return out


def track_sequence(poses: np.ndarray, track: np.ndarray, frame: np.ndarray, t: int) -> tuple[np.ndarray, int]:
    """The poses ``(F, 17, 3)`` of track ``t`` from its first to its last frame, and that first frame.

    A frame where the person was not lifted holds the last pose before it (BVH and TRC need
    every frame).
    """
    rows = np.flatnonzero(track == t)
    rows = rows[np.argsort(frame[rows], kind="stable")]
    first, last = int(frame[rows[0]]), int(frame[rows[-1]])
    out = np.empty((last - first + 1, NUM_JOINTS, 3))
    k = 0
    for f in range(first, last + 1):
        while k + 1 < len(rows) and frame[rows[k + 1]] <= f:
            k += 1
        out[f - first] = poses[rows[k]]
    return out, first


# ----------------------------------------------------------------------------- MMPose 3D JSON


def mmpose_3d(
    frame_names: Sequence[str],
    frame: np.ndarray,
    track: np.ndarray,
    poses_3d: np.ndarray,
    reliability: np.ndarray,
    elevation_deg: np.ndarray,
) -> list[dict[str, Any]]:
    """MMPose's 3D result layout: ``[{"frame_id", "frame_name", "instances": [...]}]``, every frame.

    Each instance: ``keypoints`` [17][3] (the given poses, H36M-17 order), ``keypoint_scores``
    [17] = the pose's reliability / 100 (MMPose's lifters write ones; NaN reliability -> 0),
    ``track_id``, ``reliability`` (0-100) and ``elevation_deg``.
    """
    out: list[dict[str, Any]] = [{"frame_id": i, "frame_name": n, "instances": []} for i, n in enumerate(frame_names)]
    for i in range(len(frame)):
        score = 0.0 if math.isnan(reliability[i]) else float(reliability[i]) / 100.0
        out[int(frame[i])]["instances"].append(
            {
                "keypoints": np.round(poses_3d[i], 6).tolist(),
                "keypoint_scores": [round(score, 5)] * NUM_JOINTS,
                "track_id": int(track[i]),
                "reliability": None if math.isnan(reliability[i]) else round(float(reliability[i]), 3),
                "elevation_deg": round(float(elevation_deg[i]), 4),
            }
        )
    return out


def read_mmpose_3d(content: Any, path: str = "<mmpose 3d>") -> dict[str, np.ndarray]:
    """Parse :func:`mmpose_3d`'s layout (also MMPose's own 3D results) -> ``keypoints (P, 17, 3)``,
    ``keypoint_scores (P, 17)``, ``frame (P,)``, ``track (P,)`` (-1 where absent)."""
    if not isinstance(content, list):
        raise InputError(f"{path}: top level: expected a list of frames [{{'frame_id', 'instances'}}]")
    keypoints, scores, frames, tracks = [], [], [], []
    for i, entry in enumerate(content):
        if not isinstance(entry, dict) or not isinstance(entry.get("instances"), list):
            raise InputError(f"{path}: [{i}]: expected {{'frame_id', 'instances': [...]}}")
        for k, inst in enumerate(entry["instances"]):
            try:
                xyz = np.asarray(inst["keypoints"], dtype=np.float64)
                score = np.asarray(inst.get("keypoint_scores", [1.0] * NUM_JOINTS), dtype=np.float64)
            except (KeyError, TypeError, ValueError):
                raise InputError(f"{path}: [{i}].instances[{k}]: expected keypoints [17][3] and 17 scores") from None
            if xyz.shape != (NUM_JOINTS, 3) or score.shape != (NUM_JOINTS,):
                raise InputError(f"{path}: [{i}].instances[{k}].keypoints: expected [17][3], got shape {xyz.shape}")
            keypoints.append(xyz)
            scores.append(score)
            frames.append(i)
            tracks.append(int(inst.get("track_id", -1)))
    return {
        "keypoints": np.array(keypoints).reshape(-1, NUM_JOINTS, 3),
        "keypoint_scores": np.array(scores).reshape(-1, NUM_JOINTS),
        "frame": np.array(frames, dtype=np.int32),
        "track": np.array(tracks, dtype=np.int32),
    }


# ----------------------------------------------------------------------------- skeleton of BVH and TRC


def bone_lengths_for_height(bone_ratios: Sequence[float], height_m: float) -> np.ndarray:
    """Bone lengths ``(16,)`` metres (BONES order) in the proportions ``bone_ratios`` whose skeleton
    height (:func:`elepose.lift.lifter.skeleton_height`: mean leg + pelvis-to-head chain) is ``height_m``."""
    ratios = np.asarray(bone_ratios, dtype=np.float64)
    index = {child: b for b, (_, child) in enumerate(BONES)}
    legs = 0.5 * sum(ratios[index[j]] for j in (2, 3, 5, 6))
    trunk = sum(ratios[index[j]] for j in (7, 8, 9, 10))
    return ratios * (height_m / (legs + trunk))


# Rest pose (a T-pose, y up, facing +z, so the person's left is +x): each bone's direction.
_REST_DIRECTIONS = {
    1: (-1, 0, 0), 2: (0, -1, 0), 3: (0, -1, 0), 4: (1, 0, 0), 5: (0, -1, 0), 6: (0, -1, 0),
    7: (0, 1, 0), 8: (0, 1, 0), 9: (0, 1, 0), 10: (0, 1, 0),
    11: (1, 0, 0), 12: (1, 0, 0), 13: (1, 0, 0), 14: (-1, 0, 0), 15: (-1, 0, 0), 16: (-1, 0, 0),
}  # fmt: skip
_CHILDREN = {j: [c for c in range(NUM_JOINTS) if PARENTS[c] == j] for j in range(NUM_JOINTS)}
_END_SITE_SHARE = 0.1  # end sites stick out by this share of the last bone, along its rest direction


def _rest_offsets(bone_lengths: np.ndarray) -> np.ndarray:
    """``(17, 3)`` offset of each joint from its parent in the rest pose (pelvis: 0)."""
    offsets = np.zeros((NUM_JOINTS, 3))
    for b, (_, child) in enumerate(BONES):
        offsets[child] = bone_lengths[b] * np.asarray(_REST_DIRECTIONS[child], dtype=np.float64)
    return offsets


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _kabsch(rest: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Rotation ``R (3, 3)`` minimising ``sum ||R rest_i - observed_i||^2`` (det +1)."""
    u, _, vt = np.linalg.svd(observed.T @ rest)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The shortest rotation taking unit vector ``a`` onto unit vector ``b``."""
    axis = np.cross(a, b)
    sin, cos = np.linalg.norm(axis), float(np.dot(a, b))
    if sin < 1e-12:
        if cos > 0:
            return np.eye(3)
        helper = np.eye(3)[int(np.argmin(np.abs(a)))]
        axis = _unit(np.cross(a, helper))
        return Rotation.from_rotvec(math.pi * axis).as_matrix()
    return Rotation.from_rotvec(axis / sin * math.atan2(sin, cos)).as_matrix()


_BRANCHING = tuple(j for j in range(NUM_JOINTS) if len(_CHILDREN[j]) > 1)  # the pelvis and the thorax


def track_bone_lengths(poses: np.ndarray) -> np.ndarray:
    """Each bone's length ``(16,)`` (BONES order, the poses' units): its median over the frames ``(F, 17, 3)``."""
    poses = np.asarray(poses, dtype=np.float64)
    parents, children = zip(*BONES)
    return np.median(np.linalg.norm(poses[:, list(children)] - poses[:, list(parents)], axis=-1), axis=0)


def _world_rotations(pose: np.ndarray, rest: np.ndarray) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """World rotations posing the rest skeleton along ``pose (17, 3)``: ``(17, 3, 3)`` per joint and,
    for each child of a branching joint, the rotation of the zero-length link joint leading to it.

    A branching joint (pelvis, thorax) turns as the best rotation of all its child bones at once
    (Kabsch); the link joint before each child then swings that bone onto its observed direction,
    and every other joint swings its one bone. So every bone keeps its direction exactly.
    """
    world = np.zeros((NUM_JOINTS, 3, 3))
    links: dict[int, np.ndarray] = {}
    for j in range(NUM_JOINTS):  # parents come before children in H36M order
        children = _CHILDREN[j]
        parent = np.eye(3) if PARENTS[j] < 0 else links.get(j, world[PARENTS[j]])
        if len(children) > 1:
            world[j] = _kabsch(_unit(rest[children]), _unit(pose[children] - pose[j]))
            for c in children:
                links[c] = _swing(_unit(world[j] @ rest[c]), _unit(pose[c] - pose[j])) @ world[j]
        elif len(children) == 1:
            c = children[0]
            world[j] = _swing(_unit(parent @ rest[c]), _unit(pose[c] - pose[j])) @ parent
        else:
            world[j] = parent
    return world, links


_CHANNEL_ORDER = "ZXY"  # BVH "Zrotation Xrotation Yrotation": R = Rz @ Rx @ Ry
_LINK_SUFFIX = "_link"  # the zero-length joint between a branching joint and each of its children


def bvh_text(poses_m: np.ndarray, fps: float, bone_lengths_m: np.ndarray | None = None) -> str:
    """A BVH file (centimetres) of one person's sequence ``poses_m (F, 17, 3)`` metres, y up.

    The skeleton is H36M-17 with ``bone_lengths_m (16,)`` (BONES order; default the track's own,
    :func:`track_bone_lengths`) in a T-pose rest; the root (pelvis) has position and rotation
    channels, every other joint rotations (``Zrotation Xrotation Yrotation``); ankles, wrists and
    the head carry a short End Site. Each child of the pelvis and of the thorax hangs from its
    own zero-length joint (``right_hip_link``, ...), so that each bone has a joint of its own to
    turn it. Each frame's rotations are solved from its positions (:func:`_world_rotations`):
    every bone keeps its direction, and a pose comes back exactly where its bone lengths are the
    skeleton's (the rest of the gap is the lift's own bone-length change over the frames).
    """
    poses = np.asarray(poses_m, dtype=np.float64) * 100.0
    if poses.ndim != 3 or poses.shape[1:] != (NUM_JOINTS, 3) or len(poses) == 0:
        raise InputError(f"bvh: expected poses (F >= 1, 17, 3), got {poses.shape}")
    if not (math.isfinite(fps) and fps > 0):
        raise InputError(f"--fps: expected a positive frame rate, got {fps}")
    lengths = track_bone_lengths(poses) if bone_lengths_m is None else np.asarray(bone_lengths_m) * 100.0
    rest = _rest_offsets(np.asarray(lengths, dtype=np.float64))
    lines = ["HIERARCHY"]
    channels = "CHANNELS 3 Zrotation Xrotation Yrotation"

    def block(j: int, depth: int) -> None:
        pad = "  " * depth
        if PARENTS[j] in _BRANCHING:  # the link joint first, at the parent's position
            lines.extend([f"{pad}JOINT {JOINT_NAMES[j]}{_LINK_SUFFIX}", f"{pad}{{", f"{pad}  OFFSET 0 0 0"])
            lines.append(f"{pad}  {channels}")
            pad, depth = pad + "  ", depth + 1
        kind = "ROOT" if j == PELVIS else "JOINT"
        lines.append(f"{pad}{kind} {JOINT_NAMES[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {' '.join(f'{v:.6f}' for v in rest[j])}")
        position = "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"
        lines.append(f"{pad}  {position if j == PELVIS else channels}")
        for c in _CHILDREN[j]:
            block(c, depth + 1)
        if not _CHILDREN[j]:
            tip = " ".join(f"{v:.6f}" for v in _END_SITE_SHARE * rest[j])
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {tip}", f"{pad}  }}"])
        lines.append(f"{pad}}}")
        if PARENTS[j] in _BRANCHING:
            lines.append(f"{pad[:-2]}}}")

    block(PELVIS, 0)
    order = _joint_order()
    lines += ["MOTION", f"Frames: {len(poses)}", f"Frame Time: {1.0 / fps:.8f}"]
    for pose in poses:
        world, links = _world_rotations(pose, rest)
        values = list(pose[PELVIS])
        for j in order:
            if j in links:  # the link turns from the branching joint; the joint from its link
                local_link = world[PARENTS[j]].T @ links[j]
                values += list(Rotation.from_matrix(local_link).as_euler(_CHANNEL_ORDER, degrees=True))
                parent = links[j]
            else:
                parent = world[PARENTS[j]] if PARENTS[j] >= 0 else np.eye(3)
            local = parent.T @ world[j]
            values += list(Rotation.from_matrix(local).as_euler(_CHANNEL_ORDER, degrees=True))
        lines.append(" ".join(f"{v:.6f}" for v in values))
    return "\n".join(lines) + "\n"


def _joint_order() -> list[int]:
    """Joints in the order the hierarchy writes them (depth first from the pelvis)."""
    order: list[int] = []

    def visit(j: int) -> None:
        order.append(j)
        for c in _CHILDREN[j]:
            visit(c)

    visit(PELVIS)
    return order


# ----------------------------------------------------------------------------- TRC


def trc_text(poses: np.ndarray, fps: float, name: str, units: str = "m", first_frame: int = 0) -> str:
    """OpenSim's TRC marker file of ``poses (F, 17, 3)`` (one marker per H36M joint, in ``units``).

    Header as OpenSim reads it (``PathFileType 4 (X/Y/Z)``, then ``DataRate CameraRate NumFrames
    NumMarkers Units OrigDataRate OrigDataStartFrame OrigNumFrames``, the marker names and
    ``X1 Y1 Z1 ...``); rows ``Frame# Time x y z ...``, frames numbered from ``first_frame + 1``.
    """
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (NUM_JOINTS, 3) or len(poses) == 0:
        raise InputError(f"trc: expected poses (F >= 1, 17, 3), got {poses.shape}")
    if not (math.isfinite(fps) and fps > 0):
        raise InputError(f"--fps: expected a positive frame rate, got {fps}")
    frames = len(poses)
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{fps:g}\t{fps:g}\t{frames}\t{NUM_JOINTS}\t{units}\t{fps:g}\t{first_frame + 1}\t{frames}",
        "Frame#\tTime\t" + "\t\t\t".join(JOINT_NAMES) + "\t\t",
        "\t\t" + "\t".join(f"X{k}\tY{k}\tZ{k}" for k in range(1, NUM_JOINTS + 1)),
        "",
    ]
    for f, pose in enumerate(poses):
        cells = "\t".join(f"{v:.6f}" for v in pose.ravel())
        lines.append(f"{first_frame + f + 1}\t{(first_frame + f) / fps:.6f}\t{cells}")
    return "\n".join(lines) + "\n"


def read_trc(path: str | Path) -> dict[str, Any]:
    """Read a TRC file -> ``markers`` (names), ``positions (F, M, 3)``, ``time (F,)``, ``fps``, ``units``."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if len(lines) < 6 or not lines[0].startswith("PathFileType"):
        raise InputError(f"{path}: expected a TRC file starting with 'PathFileType'")
    keys, values = lines[1].split("\t"), lines[2].split("\t")
    header = dict(zip(keys, values))
    markers = [m for m in lines[3].split("\t")[2:] if m]
    rows = [line.split("\t") for line in lines[5:] if line.strip()]
    data = np.array([[float(v) for v in row[2:]] for row in rows])
    return {
        "markers": markers,
        "positions": data.reshape(len(rows), len(markers), 3),
        "time": np.array([float(row[1]) for row in rows]),
        "fps": float(header["DataRate"]),
        "units": header["Units"],
    }
