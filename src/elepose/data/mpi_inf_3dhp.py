"""MPI-INF-3DHP (Mehta et al., 3DV 2017) -> the common pose cache.

Expected layout under ``root`` (as the dataset's ``get_dataset.sh`` / ``get_testset.sh`` unpack it)::

    S{1..8}/Seq{1,2}/annot.mat              MATLAB v5: annot2, annot3, univ_annot3, cameras, frames
    S{1..8}/Seq{1,2}/camera.calibration     optional: "Skeletool Camera Calibration File V1.0"
    mpi_inf_3dhp_test_set/TS{1..6}/annot_data.mat   MATLAB v7.3 (HDF5): annot2, annot3,
                                                    univ_annot3, valid_frame

Facts carried over (sources in comments): the 28-joint training order and the 17-joint test
order (``util/mpii_get_joint_set.m``), frame counts (``util/mpii_get_sequence_info.m``), the
"vnect" camera subset (``util/mpii_get_camera_set.m``), the calibration file format, and the
test cameras' intrinsics. Train = S1-S8, test = TS1-TS6 (valid frames only).

Joint mapping to H36M-17 (the common 3DHP -> H36M conversion, e.g. ``hp3d2h36m = [14, 8, 9, 10,
11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4]`` in public lifting repositories): H36M thorax =
3DHP ``neck``, H36M neck/nose = 3DHP ``head``, H36M head = 3DHP ``head_top``, spine = ``spine``.

Camera frame and elevation: ``annot3`` is already in each camera's frame (mm -> metres here).
With ``camera.calibration`` present, each view's world->camera rotation comes from its
extrinsics; the studio world is Y up (camera 0's extrinsic row 2 is about (0, -1, 0) and its
centre 1.5 m above y = 0), rotated here into our Z-up world. Without calibration (always for
the test set, which ships none) the up direction is estimated from the data: the mean
pelvis->thorax direction of the clip (:func:`torso_up`), and the manifest says so.

Example:
    >>> splits, metadata = load_3dhp(Path("data/mpi_inf_3dhp"))  # doctest: +SKIP
    >>> sorted(splits), metadata["bone_ratios"]["train_split"][:2]  # doctest: +SKIP
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io

from elepose.data.cache import PoseSplit
from elepose.data.cameras import camera_elevation_deg, pinhole_project, torso_up, z_up_basis
from elepose.data.mpi_inf_3dhp_files import (
    ALL_JOINT_NAMES,
    H36M_FROM_3DHP,
    TEST_JOINT_NAMES,
    TEST_TO_H36M,
    TRAIN_TO_H36M,
    Calibration,
    _load_mat_v5,
    _matlab_cells,
    fit_intrinsics,
    mpi17_to_h36m,
    mpi28_to_h36m,
    read_calibration,
)
from elepose.skeleton import MPI_INF_3DHP_BONE_RATIOS, bone_ratios

__all__ = [
    "SOURCE",
    "ALL_JOINT_NAMES",
    "TEST_JOINT_NAMES",
    "TRAIN_TO_H36M",
    "TEST_TO_H36M",
    "VNECT_CAMERAS",
    "SEQUENCE_INFO",
    "TEST_INTRINSICS",
    "TEST_IMAGE_SIZE",
    "BONE_RATIOS",
    "Calibration",
    "mpi28_to_h36m",
    "mpi17_to_h36m",
    "read_calibration",
    "fit_intrinsics",
    "load_3dhp",
]

SOURCE = "mpi-inf-3dhp"


# Source: util/mpii_get_camera_set.m, 'vnect' (0-based camera ids). Cameras 11-13 look from the
# ceiling, 9-10 from knee height; the vnect set is the one most lifting papers train on.
VNECT_CAMERAS: tuple[int, ...] = (0, 1, 2, 4, 5, 6, 7, 8)
NUM_CAMERAS = 14

# Source: util/mpii_get_sequence_info.m: (subject, sequence) -> (num_frames, fps). The README
# advises reading only the first num_frames rows of annot.mat.
SEQUENCE_INFO: dict[tuple[int, int], tuple[int, int]] = {
    (1, 1): (6416, 25),
    (1, 2): (12430, 50),
    (2, 1): (6502, 25),
    (2, 2): (6081, 25),
    (3, 1): (12488, 50),
    (3, 2): (12283, 50),
    (4, 1): (6171, 25),
    (4, 2): (6675, 25),
    (5, 1): (12820, 50),
    (5, 2): (12312, 50),
    (6, 1): (6188, 25),
    (6, 2): (6145, 25),
    (7, 1): (6239, 25),
    (7, 2): (6320, 25),
    (8, 1): (6468, 25),
    (8, 2): (6054, 25),
}

# Test cameras, pixels. TS1-4: 2048x2048 studio camera, TS5-6: 1920x1080 outdoor camera.
# Source: the test set's calibration as carried by public 3DHP loaders (focal 7.32506 mm and
# 8.770747185 mm on a 10 mm-wide sensor; e.g. the "TS56" entry of the widely copied
# mpi_inf_3dhp_cameras_intrinsic_params table and its TS1-4 counterpart
# [1500.172288, 1500.172288, 1017.38733568, 1043.03198208]). TS5-6 also has radial distortion
# (-0.2769, 0.1311, -0.0493), which annot2 includes; a pinhole K cannot model it, so expect a
# larger reprojection residual there (recorded in the metadata).
_K_STUDIO = ((1500.172288, 0.0, 1017.38733568), (0.0, 1500.172288, 1043.03198208), (0.0, 0.0, 1.0))
_K_OUTDOOR = ((1683.98345952, 0.0, 939.85754016), (0.0, 1683.98345952, 560.14074317), (0.0, 0.0, 1.0))
TEST_INTRINSICS: dict[str, tuple[tuple[float, ...], ...]] = {
    "TS1": _K_STUDIO,
    "TS2": _K_STUDIO,
    "TS3": _K_STUDIO,
    "TS4": _K_STUDIO,
    "TS5": _K_OUTDOOR,
    "TS6": _K_OUTDOOR,
}
TEST_IMAGE_SIZE: dict[str, tuple[int, int]] = {
    "TS1": (2048, 2048),
    "TS2": (2048, 2048),
    "TS3": (2048, 2048),
    "TS4": (2048, 2048),
    "TS5": (1920, 1080),
    "TS6": (1920, 1080),
}

BONE_RATIOS: tuple[float, ...] = MPI_INF_3DHP_BONE_RATIOS
"""The authors' MPI-INF-3DHP bone-ratio constants (ElePose code, commit c1620ec, commented out)."""

_AUTHORS_RATIOS_SOURCE = "ElePose authors' code, commit c1620ec (commented out); SPEC section 6"
_COMPUTED_RATIOS_SOURCE = "elepose.skeleton.bone_ratios over this cache's training split (3D, camera frame)"
# Y-up world (3DHP studio) -> our Z-up world: (x, y, z) -> (x, -z, y), det +1.
_Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


# ----------------------------------------------------------------------------- joint mapping


# ----------------------------------------------------------------------------- cameras


# ----------------------------------------------------------------------------- readers


def _rows(cell: np.ndarray, joints: int, dims: int, path: Path, key: str, camera: int) -> np.ndarray:
    if cell.ndim != 2 or cell.shape[1] != joints * dims:
        raise ValueError(
            f"{path}: key {key!r}, camera {camera}: expected (frames, {joints * dims}) values, got shape {cell.shape}"
        )
    return cell.reshape(cell.shape[0], joints, dims)


@dataclass
class _View:
    clip: str
    poses_2d: np.ndarray  # (n, 17, 2) px
    poses_3d: np.ndarray  # (n, 17, 3) m, camera frame
    frame: np.ndarray  # (n,)
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray  # metres
    intrinsics_source: str
    elevation_source: str
    reprojection_rms_px: float
    dropped: int


def _train_views(
    seq_dir: Path, subject: int, sequence: int, cameras: tuple[int, ...], stride: int, universal: bool
) -> list[_View]:
    path = seq_dir / "annot.mat"
    keys = ("annot2", "annot3", "cameras", "frames") + (("univ_annot3",) if universal else ())
    data = _load_mat_v5(path, keys)
    cells = {k: _matlab_cells(data[k], path, k) for k in keys if k.startswith(("annot", "univ"))}
    camera_ids = [int(c) for c in np.asarray(data["cameras"]).ravel()]
    frames = np.asarray(data["frames"]).ravel().astype(np.int64)
    for key, value in cells.items():
        if len(value) != len(camera_ids):
            raise ValueError(
                f"{path}: key 'cameras' lists {len(camera_ids)} cameras but {key!r} has {len(value)} cells"
            )
    calibration_path = seq_dir / "camera.calibration"
    calibration = read_calibration(calibration_path) if calibration_path.is_file() else {}
    limit = SEQUENCE_INFO.get((subject, sequence), (len(frames), 0))[0]
    views = []
    for cam in cameras:
        if cam not in camera_ids:
            raise ValueError(f"{path}: key 'cameras' has no camera {cam} (it lists {camera_ids})")
        index = camera_ids.index(cam)
        joints = {
            key: mpi28_to_h36m(_rows(value[index], 28, 2 if key == "annot2" else 3, path, key, cam))
            for key, value in cells.items()
        }
        count = min(len(frames), limit, *(len(j) for j in joints.values()))
        all_2d = joints["annot2"][:count]
        all_3d = joints["annot3"][:count] / 1000.0  # mm -> m
        out_3d = joints["univ_annot3"][:count] / 1000.0 if universal else all_3d
        usable = np.isfinite(all_2d).all((1, 2)) & np.isfinite(all_3d).all((1, 2)) & np.isfinite(out_3d).all((1, 2))
        usable &= (all_3d[..., 2] > 0).all(1)
        if not usable.any():
            raise ValueError(f"{path}: key 'annot3', camera {cam}: no finite pose in front of the camera")
        keep = np.zeros(count, dtype=bool)
        keep[::stride] = True
        dropped = int((keep & ~usable).sum())
        keep &= usable
        if cam in calibration:
            K = calibration[cam].K
            R = calibration[cam].R @ _Y_UP_TO_Z_UP.T
            t = calibration[cam].t_mm / 1000.0
            sources = ("camera.calibration", "camera.calibration extrinsics (world Y up)")
        else:
            # annot3 reprojects onto annot2 (dataset README), so K is recoverable from the data.
            K, _ = fit_intrinsics(all_2d[usable], all_3d[usable])
            R, t = z_up_basis(_up_or_error(all_3d[usable], path, "annot3")).T, np.zeros(3)
            sources = ("least squares annot2 ~ annot3", "torso_up estimate")
        views.append(
            _View(
                clip=f"S{subject}/Seq{sequence}",
                poses_2d=all_2d[keep],
                poses_3d=out_3d[keep],
                frame=frames[:count][keep],
                K=K,
                R=R,
                t=t,
                intrinsics_source=sources[0],
                elevation_source=sources[1],
                reprojection_rms_px=_rms_px(K, all_3d[usable], all_2d[usable]),
                dropped=dropped,
            )
        )
    return views


def _up_or_error(poses: np.ndarray, path: Path, key: str) -> np.ndarray:
    try:
        return torso_up(poses)
    except ValueError as err:
        raise ValueError(f"{path}: key {key!r}: {err}") from None


def _rms_px(K: np.ndarray, poses_3d: np.ndarray, poses_2d: np.ndarray) -> float:
    residual = pinhole_project(K, poses_3d) - poses_2d
    return float(np.sqrt((residual**2).sum(-1).mean()))


def _orient(array: np.ndarray, frames: int, joints: int, dims: int, path: Path, key: str) -> np.ndarray:
    """Bring a MATLAB (F, 1, J, D) array to (F, J, D), whether stored transposed (v7.3) or not."""
    expected = [d for d in (frames, joints, dims) if d != 1]
    for candidate in (array.T, array):  # h5py shows MATLAB arrays transposed: try that first
        if [d for d in candidate.shape if d != 1] == expected:
            return np.ascontiguousarray(candidate).reshape(frames, joints, dims)
    raise ValueError(
        f"{path}: key {key!r} has shape {array.shape}; expected ({frames}, 1, {joints}, {dims}) "
        "in MATLAB order (or its transpose, as h5py reads v7.3 files)"
    )


def _read_test_arrays(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            arrays = {k: np.asarray(f[k]) for k in keys if k in f}
    except OSError:
        # Not HDF5: accept a MATLAB v5 re-save of the same file.
        try:
            data = scipy.io.loadmat(str(path))
        except Exception as err:  # scipy raises many types for non-MATLAB input
            raise ValueError(
                f"{path}: neither MATLAB v7.3 (HDF5) nor v5 annot_data.mat ({type(err).__name__}: {err})"
            ) from err
        arrays = {k: np.asarray(data[k]) for k in keys if k in data}
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}; an MPI-INF-3DHP annot_data.mat holds {list(keys)}")
    return arrays


def _test_view(ts_dir: Path, name: str, stride: int, universal: bool) -> _View:
    path = ts_dir / "annot_data.mat"
    keys = ("annot2", "annot3", "valid_frame") + (("univ_annot3",) if universal else ())
    arrays = _read_test_arrays(path, keys)
    valid = arrays["valid_frame"].ravel() > 0.5
    frames = valid.shape[0]
    all_2d = mpi17_to_h36m(_orient(arrays["annot2"].astype(np.float64), frames, 17, 2, path, "annot2"))
    all_3d = mpi17_to_h36m(_orient(arrays["annot3"].astype(np.float64), frames, 17, 3, path, "annot3")) / 1000.0
    out_3d = all_3d
    if universal:
        universal_3d = _orient(arrays["univ_annot3"].astype(np.float64), frames, 17, 3, path, "univ_annot3")
        out_3d = mpi17_to_h36m(universal_3d) / 1000.0
    finite = np.isfinite(all_2d).all((1, 2)) & np.isfinite(all_3d).all((1, 2)) & np.isfinite(out_3d).all((1, 2))
    usable = valid & finite & (all_3d[..., 2] > 0).all(1)
    if not usable.any():
        raise ValueError(f"{path}: key 'valid_frame' marks no usable frame")
    keep = np.zeros(frames, dtype=bool)
    keep[::stride] = True
    dropped = int((keep & valid & ~usable).sum())
    keep &= usable
    if name in TEST_INTRINSICS:
        K, intrinsics_source = np.array(TEST_INTRINSICS[name]), "published test-set intrinsics"
    else:
        K, _ = fit_intrinsics(all_2d[usable], all_3d[usable])
        intrinsics_source = "least squares annot2 ~ annot3"
    return _View(
        clip=name,
        poses_2d=all_2d[keep],
        poses_3d=out_3d[keep],
        frame=np.flatnonzero(keep),
        K=K,
        R=z_up_basis(_up_or_error(all_3d[usable], path, "annot3")).T,
        t=np.zeros(3),
        intrinsics_source=intrinsics_source,
        elevation_source="torso_up estimate",
        reprojection_rms_px=_rms_px(K, all_3d[usable], all_2d[usable]),
        dropped=dropped,
    )


def _to_split(views: list[_View]) -> PoseSplit:
    clips = sorted({v.clip for v in views}, key=lambda c: [int(x) for x in re.findall(r"\d+", c)] or [0])
    Rs = np.stack([v.R for v in views])
    return PoseSplit(
        poses_2d=np.concatenate([v.poses_2d for v in views]).astype(np.float32),
        poses_2d_detected=np.concatenate([v.poses_2d for v in views]).astype(np.float32),
        poses_3d=np.concatenate([v.poses_3d for v in views]).astype(np.float32),
        view=np.concatenate([np.full(len(v.frame), i) for i, v in enumerate(views)]).astype(np.int32),
        frame=np.concatenate([v.frame for v in views]).astype(np.int32),
        camera_K=np.stack([v.K for v in views]).astype(np.float32),
        camera_R=Rs.astype(np.float32),
        camera_t=np.stack([v.t for v in views]).astype(np.float32),
        camera_elevation=camera_elevation_deg(Rs).astype(np.float32),
        camera_clip=np.array([clips.index(v.clip) for v in views], dtype=np.int32),
        clip_names=np.array(clips),
        clip_source=np.array([SOURCE] * len(clips)),
    )


def _summary(views: list[_View]) -> dict[str, Any]:
    rms = np.array([v.reprojection_rms_px for v in views])
    return {
        "views": len(views),
        "poses": int(sum(len(v.frame) for v in views)),
        "clips": sorted({v.clip for v in views}),
        "dropped_unusable": int(sum(v.dropped for v in views)),
        "intrinsics_source": sorted({v.intrinsics_source for v in views}),
        "elevation_source": sorted({v.elevation_source for v in views}),
        "reprojection_rms_px": {"median": float(np.median(rms)), "max": float(rms.max())},
    }


def _check_options(
    root: Path,
    cameras: tuple[int, ...],
    train_stride: int,
    test_stride: int,
    subjects: tuple[int, ...],
    test_sequences: tuple[int, ...],
) -> None:
    """Raise ``ValueError`` naming the first argument of :func:`load_3dhp` that cannot be read."""
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder; expected the MPI-INF-3DHP root with S1..S8 and mpi_inf_3dhp_test_set")
    if train_stride < 1 or test_stride < 1:
        raise ValueError(f"strides must be >= 1, got train_stride={train_stride}, test_stride={test_stride}")
    if not subjects or not test_sequences:
        raise ValueError(
            f"need at least one training subject and one test sequence, got {subjects} and {test_sequences}"
        )
    bad = [c for c in cameras if not 0 <= c < NUM_CAMERAS]
    if bad or not cameras:
        raise ValueError(f"cameras must be a non-empty subset of 0..13, got {tuple(cameras)}")


def load_3dhp(
    root: Path,
    cameras: tuple[int, ...] = VNECT_CAMERAS,
    train_stride: int = 10,
    test_stride: int = 1,
    subjects: tuple[int, ...] = tuple(range(1, 9)),
    test_sequences: tuple[int, ...] = tuple(range(1, 7)),
    universal: bool = False,
) -> tuple[dict[str, PoseSplit], dict[str, Any]]:
    """Read MPI-INF-3DHP under ``root`` into ``{"train": PoseSplit, "test": PoseSplit}`` plus metadata.

    Args:
        root: folder holding ``S1..S8/Seq1..2/annot.mat`` and ``mpi_inf_3dhp_test_set/TS1..6``.
        cameras: training cameras (0-13); default the "vnect" subset of mpii_get_camera_set.m.
        train_stride: keep every n-th training frame (25/50 fps source; 10 is common practice).
        test_stride: keep every n-th valid test frame (1 = all, the standard protocol).
        subjects, test_sequences: which S* and TS* to read (every one must be present).
        universal: use ``univ_annot3`` (skeleton rescaled to a universal height) instead of
            ``annot3`` for the 3D; the 2D then no longer matches the 3D's projection.

    Returns ``(splits, metadata)``: every split's ``poses_2d_detected`` is a copy of the
    ground-truth 2D (3DHP ships no detections); metadata (JSON-ready) lists counts, the joint
    mapping, intrinsics/elevation sources with reprojection residuals, and bone ratios: the
    authors' constants and those computed from the training split.
    """
    root = Path(root)
    _check_options(root, cameras, train_stride, test_stride, subjects, test_sequences)
    train_views: list[_View] = []
    for subject in subjects:
        for sequence in (1, 2):
            seq_dir = root / f"S{subject}" / f"Seq{sequence}"
            if not (seq_dir / "annot.mat").is_file():
                raise ValueError(
                    f"{seq_dir / 'annot.mat'}: missing; expected MPI-INF-3DHP training layout S*/Seq*/annot.mat"
                )
            train_views += _train_views(seq_dir, subject, sequence, tuple(cameras), train_stride, universal)
    test_views: list[_View] = []
    for number in test_sequences:
        ts_dir = root / "mpi_inf_3dhp_test_set" / f"TS{number}"
        if not (ts_dir / "annot_data.mat").is_file():
            raise ValueError(
                f"{ts_dir / 'annot_data.mat'}: missing; expected the test set as mpi_inf_3dhp_test_set/TS*/annot_data.mat"
            )
        test_views.append(_test_view(ts_dir, f"TS{number}", test_stride, universal))
    splits = {"train": _to_split(train_views), "test": _to_split(test_views)}
    for name, split in splits.items():
        split.validate(f"{root} ({SOURCE} {name})")
    metadata = {
        "source": SOURCE,
        "root": str(root),
        "options": {
            "cameras": list(cameras),
            "train_stride": train_stride,
            "test_stride": test_stride,
            "subjects": list(subjects),
            "test_sequences": list(test_sequences),
            "pose_3d_key": "univ_annot3" if universal else "annot3",
        },
        "joint_mapping": {
            "h36m_from_3dhp_names": list(H36M_FROM_3DHP),
            "train_28_indices": list(TRAIN_TO_H36M),
            "test_17_indices": list(TEST_TO_H36M),
            "source": "util/mpii_get_joint_set.m; H36M thorax=neck, neck/nose=head, head=head_top",
        },
        "poses_2d_detected": "copy of the ground-truth 2D (MPI-INF-3DHP provides no detections)",
        "splits": {"train": _summary(train_views), "test": _summary(test_views)},
        "bone_ratios": {
            "train_split": [round(float(r), 4) for r in bone_ratios(splits["train"].poses_3d.astype(np.float64))],
            "train_split_source": _COMPUTED_RATIOS_SOURCE,
            "authors": list(BONE_RATIOS),
            "authors_source": _AUTHORS_RATIOS_SOURCE,
        },
    }
    return splits, metadata
