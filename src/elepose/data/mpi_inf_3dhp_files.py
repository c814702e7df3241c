"""MPI-INF-3DHP's files: its joint orders and their mapping to H36M-17, its camera calibration
files, intrinsics fitted from its own 2D and 3D, and its MATLAB (v5 and v7.3) arrays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from elepose.data.cameras import pinhole_project

__all__ = [
    "H36M_FROM_3DHP",
    "ALL_JOINT_NAMES",
    "Calibration",
    "TEST_JOINT_NAMES",
    "TEST_TO_H36M",
    "TRAIN_TO_H36M",
    "fit_intrinsics",
    "mpi17_to_h36m",
    "mpi28_to_h36m",
    "read_calibration",
]


# Source: MPI-INF-3DHP util/mpii_get_joint_set.m, 'all' (1-based there, 0-based here).
ALL_JOINT_NAMES: tuple[str, ...] = (
    "spine3",
    "spine4",
    "spine2",
    "spine",
    "pelvis",
    "neck",
    "head",
    "head_top",
    "left_clavicle",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "left_hand",
    "right_clavicle",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "right_hand",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_foot",
    "left_toe",
    "right_hip",
    "right_knee",
    "right_ankle",
    "right_foot",
    "right_toe",
)


# Source: mpii_get_joint_set.m, 'relevant' = all_joint_names([8 6 15 16 17 10 11 12 24 25 26
# 19 20 21 5 4 7]): the order of the test set's annot_data.mat.
TEST_JOINT_NAMES: tuple[str, ...] = (
    "head_top",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "pelvis",
    "spine",
    "head",
)


# 3DHP joint names feeding each H36M-17 joint (elepose.skeleton.JOINT_NAMES order).
H36M_FROM_3DHP: tuple[str, ...] = (
    "pelvis",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "spine",
    "neck",
    "head",
    "head_top",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
)


TRAIN_TO_H36M: tuple[int, ...] = tuple(ALL_JOINT_NAMES.index(n) for n in H36M_FROM_3DHP)
"""Index into the 28 training joints for each H36M joint: (4, 23, 24, 25, 18, 19, 20, 3, 5, 6, 7, 9, 10, 11, 14, 15, 16)."""


TEST_TO_H36M: tuple[int, ...] = tuple(TEST_JOINT_NAMES.index(n) for n in H36M_FROM_3DHP)
"""Index into the 17 test joints for each H36M joint: (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)."""


def mpi28_to_h36m(joints: np.ndarray) -> np.ndarray:
    """3DHP training joints ``(..., 28, C)`` -> H36M-17 ``(..., 17, C)``."""
    joints = np.asarray(joints)
    if joints.shape[-2] != len(ALL_JOINT_NAMES):
        raise ValueError(f"MPI-INF-3DHP training poses need 28 joints on axis -2, got shape {joints.shape}")
    return joints[..., TRAIN_TO_H36M, :]


def mpi17_to_h36m(joints: np.ndarray) -> np.ndarray:
    """3DHP test joints ``(..., 17, C)`` (MPI's test order) -> H36M-17 ``(..., 17, C)``."""
    joints = np.asarray(joints)
    if joints.shape[-2] != len(TEST_JOINT_NAMES):
        raise ValueError(f"MPI-INF-3DHP test poses need 17 joints on axis -2, got shape {joints.shape}")
    return joints[..., TEST_TO_H36M, :]


@dataclass(frozen=True)
class Calibration:
    """One camera of a ``camera.calibration`` file.

    ``K (3, 3)`` pixels, world->camera ``R (3, 3)`` and ``t_mm (3,)`` (Y-up studio world, mm),
    ``size`` = (width, height) pixels.
    """

    K: np.ndarray
    R: np.ndarray
    t_mm: np.ndarray
    size: tuple[int, int]


def read_calibration(path: Path) -> dict[int, Calibration]:
    """Parse a ``camera.calibration`` file into ``{camera id: Calibration}``.

    Format (Skeletool Camera Calibration File V1.0, as written by MPI's tools): a header line,
    then per camera ``name ID`` followed by ``sensor``, ``size W H``, ``animated``,
    ``intrinsic`` (16 numbers, 4x4 row-major) and ``extrinsic`` (16 numbers, 4x4 row-major
    world->camera, mm) lines, and ``radial``.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise ValueError(f"{path}: unreadable camera calibration ({err})") from err
    if not lines or not lines[0].strip().startswith("Skeletool Camera Calibration"):
        raise ValueError(f"{path}: not a Skeletool camera calibration file (expected its header line)")
    cameras: dict[int, dict[str, list[float]]] = {}
    current: dict[str, list[float]] | None = None
    for number, line in enumerate(lines[1:], start=2):
        parts = line.split()
        if not parts:
            continue
        key = parts[0]
        try:
            if key == "name":
                current = cameras.setdefault(int(parts[1]), {})
            elif current is not None:
                current[key] = [float(p) for p in parts[1:]]
        except (ValueError, IndexError):
            raise ValueError(f"{path}, line {number}: malformed {key!r} entry: {line.strip()!r}") from None
    result: dict[int, Calibration] = {}
    for cam, fields_ in cameras.items():
        for key, count in (("intrinsic", 16), ("extrinsic", 16), ("size", 2)):
            if len(fields_.get(key, [])) != count:
                raise ValueError(f"{path}: camera {cam} field {key!r} needs {count} numbers")
        intrinsic = np.array(fields_["intrinsic"]).reshape(4, 4)
        extrinsic = np.array(fields_["extrinsic"]).reshape(4, 4)
        w, h = (int(v) for v in fields_["size"])
        result[cam] = Calibration(K=intrinsic[:3, :3], R=extrinsic[:3, :3], t_mm=extrinsic[:3, 3], size=(w, h))
    return result


def fit_intrinsics(points_2d: np.ndarray, points_3d: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares pinhole ``K (3, 3)`` from ``points_2d (M, 2)`` px and ``points_3d (M, 3)`` camera frame.

    Solves ``u = fx x/z + cx`` and ``v = fy y/z + cy`` (no skew) independently; returns K and
    the RMS reprojection residual in pixels.
    """
    p2 = np.asarray(points_2d, dtype=np.float64).reshape(-1, 2)
    p3 = np.asarray(points_3d, dtype=np.float64).reshape(-1, 3)
    keep = np.isfinite(p2).all(1) & np.isfinite(p3).all(1) & (p3[:, 2] > 1e-6)
    p2, p3 = p2[keep], p3[keep]
    if p2.shape[0] < 3:
        raise ValueError(f"need at least 3 points in front of the camera to fit intrinsics, got {p2.shape[0]}")
    K = np.eye(3)
    for axis in (0, 1):
        design = np.stack([p3[:, axis] / p3[:, 2], np.ones(len(p3))], axis=1)
        (focal, centre), *_ = np.linalg.lstsq(design, p2[:, axis], rcond=None)
        K[axis, axis], K[axis, 2] = focal, centre
    residual = pinhole_project(K, p3) - p2
    return K, float(np.sqrt((residual**2).sum(-1).mean()))


def _matlab_cells(value: Any, path: Path, key: str) -> list[np.ndarray]:
    array = np.asarray(value)
    if array.dtype != object:
        raise ValueError(f"{path}: key {key!r} should be a MATLAB cell array (one per camera), got {array.dtype}")
    return [np.asarray(c, dtype=np.float64) for c in array.ravel()]


def _load_mat_v5(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    try:
        data = scipy.io.loadmat(str(path))
    except Exception as err:  # scipy raises many types for non-MATLAB input
        raise ValueError(f"{path}: not a MATLAB v5 annot.mat ({type(err).__name__}: {err})") from err
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}; an MPI-INF-3DHP annot.mat holds {list(keys)}")
    return data
