"""MPI-INF-3DHP loader, on tiny trees written in the dataset's own layout and file formats."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from elepose.data import mpi_inf_3dhp as hp
from elepose.data.cache import load_split, save_split
from elepose.data.mpi_inf_3dhp import TEST_INTRINSICS, fit_intrinsics, load_3dhp, mpi28_to_h36m, read_calibration
from elepose.skeleton import BONES, MPI_INF_3DHP_BONE_RATIOS

# Facts restated from the public sources, so the tests do not read them from the module:
# util/mpii_get_joint_set.m 'all' (28 joints) and 'relevant' (test order), and the common
# 3DHP -> H36M index lists (hp3d2h36m / H36CompatibleJoints in public lifting code).
MPI28 = (
    "spine3 spine4 spine2 spine pelvis neck head head_top left_clavicle left_shoulder left_elbow "
    "left_wrist left_hand right_clavicle right_shoulder right_elbow right_wrist right_hand left_hip "
    "left_knee left_ankle left_foot left_toe right_hip right_knee right_ankle right_foot right_toe"
).split()
EXPECTED_TRAIN = [4, 23, 24, 25, 18, 19, 20, 3, 5, 6, 7, 9, 10, 11, 14, 15, 16]
EXPECTED_TEST = [14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4]
RELEVANT = [8, 6, 15, 16, 17, 10, 11, 12, 24, 25, 26, 19, 20, 21, 5, 4, 7]  # 1-based into MPI28
K_TRAIN = np.array([[1497.7, 0.0, 1024.7], [0.0, 1497.1, 1051.4], [0.0, 0.0, 1.0]])


def _pinhole(K: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Independent reference: u = fx X/Z + cx, v = fy Y/Z + cy."""
    return np.stack([K[0, 0] * X[..., 0] / X[..., 2] + K[0, 2], K[1, 1] * X[..., 1] / X[..., 2] + K[1, 2]], -1)


def _person_world(rng: np.random.Generator, frames: int) -> np.ndarray:
    """(F, 28, 3) mm in a Y-up world: an upright 'person' (pelvis 0.9 m, neck 1.45 m up)."""
    base = rng.uniform([-250, 0, -150], [250, 1700, 150], size=(28, 3))
    base[MPI28.index("pelvis")] = (0, 900, 0)
    base[MPI28.index("neck")] = (0, 1450, 0)
    return base + rng.normal(0, 15, size=(frames, 28, 3))


def _look_at(
    azimuth_deg: float, elevation_deg: float, distance: float, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """World (Y up, mm) -> OpenCV camera rotation and translation, looking down by elevation_deg."""
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    forward = np.array([-np.sin(a) * np.cos(e), -np.sin(e), -np.cos(a) * np.cos(e)])
    centre = target - distance * forward
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    return R, -R @ centre


def _write_calibration(path: Path, cameras: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    lines = ["Skeletool Camera Calibration File V1.0"]
    for cam, (K, R, t) in sorted(cameras.items()):
        intrinsic = np.eye(4)
        intrinsic[:3, :3] = K
        extrinsic = np.eye(4)
        extrinsic[:3, :3], extrinsic[:3, 3] = R, t
        lines += [
            f"name          {cam}",
            "  sensor      10 10",
            "  size        2048 2048",
            "  animated    0",
            "  intrinsic   " + " ".join(f"{v:.10g}" for v in intrinsic.ravel()),
            "  extrinsic   " + " ".join(f"{v:.10g}" for v in extrinsic.ravel()),
            "  radial      0",
        ]
    path.write_text("\n".join(lines) + "\n")


def _write_train_sequence(
    seq_dir: Path, rng: np.random.Generator, frames: int = 12, calibrate: bool = True, drop_key: str | None = None
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """annot.mat (MATLAB v5, cells (14, 1)) + camera.calibration for 14 cameras."""
    seq_dir.mkdir(parents=True, exist_ok=True)
    world = _person_world(rng, frames)
    cams, a2, a3, u3 = (
        {},
        np.empty((14, 1), dtype=object),
        np.empty((14, 1), dtype=object),
        np.empty((14, 1), dtype=object),
    )
    for cam in range(14):
        R, t = _look_at(
            azimuth_deg=cam * 25.0,
            elevation_deg=-5.0 + cam * 2.0,
            distance=4000.0 + 50 * cam,
            target=np.array([0.0, 1000.0, 0.0]),
        )
        cams[cam] = (K_TRAIN, R, t)
        cam3 = world @ R.T + t  # (F, 28, 3) mm
        a3[cam, 0] = cam3.reshape(frames, 84)
        a2[cam, 0] = _pinhole(K_TRAIN, cam3).reshape(frames, 56)
        u3[cam, 0] = (cam3 * 0.9).reshape(frames, 84)
    content = {
        "annot2": a2,
        "annot3": a3,
        "univ_annot3": u3,
        "cameras": np.arange(14).reshape(1, 14),
        "frames": np.arange(frames).reshape(frames, 1),
    }
    if drop_key:
        content.pop(drop_key)
    scipy.io.savemat(seq_dir / "annot.mat", content)
    if calibrate:
        _write_calibration(seq_dir / "camera.calibration", cams)
    return cams


def _write_test_sequence(
    ts_dir: Path, rng: np.random.Generator, K: np.ndarray, valid: np.ndarray, drop_key: str | None = None
) -> np.ndarray:
    """annot_data.mat as MATLAB v7.3 writes it: HDF5 datasets stored transposed. Returns annot3 (F, 17, 3) mm."""
    ts_dir.mkdir(parents=True, exist_ok=True)
    frames = len(valid)
    world = _person_world(rng, frames)[:, np.array(RELEVANT) - 1]  # 17 joints, test order
    R, t = _look_at(30.0, 10.0, 3500.0, np.array([0.0, 1000.0, 0.0]))
    annot3 = world @ R.T + t
    annot3[~valid] = np.nan  # invalid frames carry junk; the loader must not use them
    annot2 = _pinhole(K, annot3)
    data = {
        "annot2": annot2[:, None],  # MATLAB (F, 1, 17, 2)
        "annot3": annot3[:, None],
        "univ_annot3": annot3[:, None] * 0.9,
        "valid_frame": valid.astype(np.float64)[:, None],  # (F, 1)
    }
    if drop_key:
        data.pop(drop_key)
    with h5py.File(ts_dir / "annot_data.mat", "w") as f:
        for key, value in data.items():
            f.create_dataset(key, data=np.ascontiguousarray(value.T))  # v7.3 stores column-major
    return annot3


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for s in (1, 2):
        for q in (1, 2):
            _write_train_sequence(tmp_path / f"S{s}" / f"Seq{q}", rng, calibrate=(s == 1))
    valid = np.ones(9, dtype=bool)
    valid[[2, 5]] = False
    _write_test_sequence(tmp_path / "mpi_inf_3dhp_test_set" / "TS1", rng, np.array(TEST_INTRINSICS["TS1"]), valid)
    _write_test_sequence(
        tmp_path / "mpi_inf_3dhp_test_set" / "TS5", rng, np.array(TEST_INTRINSICS["TS5"]), np.ones(7, bool)
    )
    return tmp_path


def _load(root: Path, **kwargs):
    kwargs.setdefault("subjects", (1, 2))
    kwargs.setdefault("test_sequences", (1, 5))
    return load_3dhp(root, **kwargs)


def test_training_joint_mapping_matches_the_public_index_list():
    joints = np.arange(28 * 3, dtype=float).reshape(28, 3)
    mapped = mpi28_to_h36m(joints)
    np.testing.assert_array_equal(mapped, joints[EXPECTED_TRAIN])
    # By name: H36M thorax <- 3DHP neck, neck/nose <- head, head <- head_top.
    assert [MPI28[i] for i in EXPECTED_TRAIN][8:11] == ["neck", "head", "head_top"]


def test_test_joint_mapping_matches_the_public_index_list():
    joints = np.arange(17 * 2, dtype=float).reshape(17, 2)
    np.testing.assert_array_equal(hp.mpi17_to_h36m(joints), joints[EXPECTED_TEST])
    # The test order is 'relevant' of the 28 joints; both routes must agree.
    full = np.arange(28 * 3, dtype=float).reshape(28, 3)
    np.testing.assert_array_equal(hp.mpi17_to_h36m(full[np.array(RELEVANT) - 1]), mpi28_to_h36m(full))


def test_mapping_rejects_wrong_joint_count():
    with pytest.raises(ValueError, match="28 joints"):
        mpi28_to_h36m(np.zeros((5, 17, 3)))


def test_splits_hold_training_subjects_and_test_sequences(tree: Path):
    splits, metadata = _load(tree)
    assert set(splits) == {"train", "test"}
    assert list(splits["train"].clip_names) == ["S1/Seq1", "S1/Seq2", "S2/Seq1", "S2/Seq2"]
    assert list(splits["test"].clip_names) == ["TS1", "TS5"]
    assert metadata["splits"]["train"]["views"] == 4 * 8  # vnect cameras by default
    assert set(np.unique(splits["train"].pose_source)) == {"mpi-inf-3dhp"}


def test_splits_round_trip_through_the_cache_and_metadata_is_json(tree: Path, tmp_path: Path):
    splits, metadata = _load(tree)
    for name, split in splits.items():
        save_split(tmp_path / "cache" / f"{name}.npz", split)
        again = load_split(tmp_path / "cache" / f"{name}.npz")
        np.testing.assert_array_equal(again.poses_3d, split.poses_3d)
        np.testing.assert_array_equal(again.camera_elevation, split.camera_elevation)
    assert json.loads(json.dumps(metadata))["source"] == metadata["source"]


def test_training_poses_are_annot_rows_mapped_to_h36m_in_metres(tree: Path):
    splits, _ = _load(tree, cameras=(4,), train_stride=5)
    raw = scipy.io.loadmat(tree / "S2" / "Seq1" / "annot.mat")
    rows = np.arange(0, 12, 5)  # frames 0, 5, 10
    annot3 = raw["annot3"][4, 0].reshape(-1, 28, 3)[rows][:, EXPECTED_TRAIN] / 1000.0
    annot2 = raw["annot2"][4, 0].reshape(-1, 28, 2)[rows][:, EXPECTED_TRAIN]
    train = splits["train"]
    clip = list(train.clip_names).index("S2/Seq1")
    mine = train.pose_clip == clip
    np.testing.assert_array_equal(train.frame[mine], rows)
    np.testing.assert_allclose(train.poses_3d[mine], annot3, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(train.poses_2d[mine], annot2, rtol=1e-6, atol=1e-3)
    np.testing.assert_array_equal(train.poses_2d_detected, train.poses_2d)


def test_test_split_keeps_only_valid_frames(tree: Path):
    splits, metadata = _load(tree)
    test = splits["test"]
    ts1 = test.pose_clip == list(test.clip_names).index("TS1")
    np.testing.assert_array_equal(test.frame[ts1], [0, 1, 3, 4, 6, 7, 8])
    assert np.isfinite(test.poses_3d).all()
    assert metadata["splits"]["test"]["poses"] == 7 + 7


def test_test_split_reads_v73_transposed_storage(tree: Path):
    splits, _ = _load(tree)
    with h5py.File(tree / "mpi_inf_3dhp_test_set" / "TS5" / "annot_data.mat", "r") as f:
        annot3 = np.asarray(f["annot3"]).T[:, 0]  # back to MATLAB (F, 17, 3)
    test = splits["test"]
    ts5 = test.pose_clip == list(test.clip_names).index("TS5")
    np.testing.assert_allclose(test.poses_3d[ts5], annot3[:, EXPECTED_TEST] / 1000.0, rtol=1e-6)


def test_reprojection_with_stored_intrinsics_matches_the_2d(tree: Path):
    splits, metadata = _load(tree)
    for split in splits.values():
        K = split.camera_K[split.view].astype(np.float64)
        X = split.poses_3d.astype(np.float64)
        u = K[:, 0, 0, None] * X[..., 0] / X[..., 2] + K[:, 0, 2, None]
        v = K[:, 1, 1, None] * X[..., 1] / X[..., 2] + K[:, 1, 2, None]
        np.testing.assert_allclose(np.stack([u, v], -1), split.poses_2d, atol=0.05)
    ts5 = list(splits["test"].clip_names).index("TS5")
    np.testing.assert_allclose(splits["test"].camera_K[ts5], TEST_INTRINSICS["TS5"], rtol=1e-6)
    assert metadata["splits"]["train"]["reprojection_rms_px"]["max"] < 0.05


def test_intrinsics_are_recovered_by_least_squares_without_calibration(tree: Path):
    splits, metadata = _load(tree)
    train = splits["train"]
    s2 = train.camera_clip == list(train.clip_names).index("S2/Seq2")  # written without camera.calibration
    np.testing.assert_allclose(train.camera_K[s2], np.broadcast_to(K_TRAIN, (8, 3, 3)), rtol=1e-4, atol=1e-2)
    assert "least squares annot2 ~ annot3" in metadata["splits"]["train"]["intrinsics_source"]


def test_fit_intrinsics_on_exact_projections():
    rng = np.random.default_rng(1)
    X = rng.uniform([-1, -1, 3], [1, 1, 6], size=(50, 3))
    K, rms = fit_intrinsics(_pinhole(K_TRAIN, X), X)
    np.testing.assert_allclose(K, K_TRAIN, atol=1e-8)
    assert rms < 1e-8


def test_elevation_from_calibration_matches_the_built_cameras(tree: Path):
    splits, _ = _load(tree)
    train = splits["train"]
    s1 = np.flatnonzero(train.camera_clip == list(train.clip_names).index("S1/Seq1"))
    expected = [-5.0 + cam * 2.0 for cam in (0, 1, 2, 4, 5, 6, 7, 8)]
    np.testing.assert_allclose(train.camera_elevation[s1], expected, atol=1e-4)
    R = train.camera_R.astype(np.float64)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-5)


def test_elevation_estimated_from_torso_without_calibration(tree: Path):
    splits, metadata = _load(tree)
    train = splits["train"]
    s2 = np.flatnonzero(train.camera_clip == list(train.clip_names).index("S2/Seq2"))
    expected = np.array([-5.0 + cam * 2.0 for cam in (0, 1, 2, 4, 5, 6, 7, 8)])
    # The fixture's torso is exactly vertical up to 15 mm noise over 55 cm.
    np.testing.assert_allclose(train.camera_elevation[s2], expected, atol=3.0)
    assert "torso_up estimate" in metadata["splits"]["test"]["elevation_source"]


def test_read_calibration_parses_intrinsic_and_extrinsic(tmp_path: Path):
    R, t = _look_at(40.0, 12.0, 4000.0, np.zeros(3))
    _write_calibration(tmp_path / "camera.calibration", {0: (K_TRAIN, R, t)})
    cam = read_calibration(tmp_path / "camera.calibration")[0]
    np.testing.assert_allclose(cam.K, K_TRAIN)
    np.testing.assert_allclose(cam.R, R, atol=1e-9)
    np.testing.assert_allclose(cam.t_mm, t, atol=1e-6)
    assert cam.size == (2048, 2048)


def test_bone_ratios_recorded_from_training_split_and_authors(tree: Path):
    splits, metadata = _load(tree)
    ratios = metadata["bone_ratios"]
    assert ratios["authors"] == list(MPI_INF_3DHP_BONE_RATIOS)
    assert "c1620ec" in ratios["authors_source"]
    # Independent computation straight from the annot.mat files (vnect cameras, stride 10).
    poses = []
    for s in (1, 2):
        for q in (1, 2):
            raw = scipy.io.loadmat(tree / f"S{s}" / f"Seq{q}" / "annot.mat")
            for cam in (0, 1, 2, 4, 5, 6, 7, 8):
                poses.append(raw["annot3"][cam, 0].reshape(-1, 28, 3)[::10][:, EXPECTED_TRAIN])
    poses = np.concatenate(poses)
    lengths = np.stack([np.linalg.norm(poses[:, b] - poses[:, a], axis=-1) for a, b in BONES], -1)
    expected = (lengths / lengths.mean(-1, keepdims=True)).mean(0)
    np.testing.assert_allclose(ratios["train_split"], expected, atol=1e-4)


def test_universal_option_reads_univ_annot3(tree: Path):
    plain, _ = _load(tree)
    universal, metadata = _load(tree, universal=True)
    np.testing.assert_allclose(universal["test"].poses_3d, plain["test"].poses_3d * 0.9, rtol=1e-5)
    assert metadata["options"]["pose_3d_key"] == "univ_annot3"


def test_annot_mat_without_annot2_names_file_and_key(tmp_path: Path):
    _write_train_sequence(tmp_path / "S1" / "Seq1", np.random.default_rng(2), drop_key="annot2")
    with pytest.raises(ValueError, match=r"S1/Seq1/annot\.mat.*annot2"):
        load_3dhp(tmp_path, subjects=(1,), test_sequences=(1,))


def test_a_3dpw_pickle_given_as_annot_mat_is_refused(tmp_path: Path):
    seq = tmp_path / "S1" / "Seq1"
    seq.mkdir(parents=True)
    with open(seq / "annot.mat", "wb") as f:
        pickle.dump({"sequence": "courtyard_basketball_00", "jointPositions": [np.zeros((3, 72))]}, f, protocol=2)
    with pytest.raises(ValueError, match=r"annot\.mat.*not a MATLAB v5"):
        load_3dhp(tmp_path, subjects=(1,), test_sequences=(1,))


def test_missing_sequence_folder_is_named(tmp_path: Path):
    with pytest.raises(ValueError, match=r"S1/Seq1/annot\.mat: missing"):
        load_3dhp(tmp_path)


def test_test_file_without_valid_frame_names_key(tmp_path: Path):
    rng = np.random.default_rng(3)
    _write_train_sequence(tmp_path / "S1" / "Seq1", rng)
    _write_train_sequence(tmp_path / "S1" / "Seq2", rng)
    _write_test_sequence(
        tmp_path / "mpi_inf_3dhp_test_set" / "TS1",
        rng,
        np.array(TEST_INTRINSICS["TS1"]),
        np.ones(4, bool),
        drop_key="valid_frame",
    )
    with pytest.raises(ValueError, match=r"TS1/annot_data\.mat.*valid_frame"):
        load_3dhp(tmp_path, subjects=(1,), test_sequences=(1,))


def test_test_file_with_wrong_joint_count_is_refused(tmp_path: Path):
    rng = np.random.default_rng(4)
    _write_train_sequence(tmp_path / "S1" / "Seq1", rng)
    _write_train_sequence(tmp_path / "S1" / "Seq2", rng)
    ts = tmp_path / "mpi_inf_3dhp_test_set" / "TS1"
    ts.mkdir(parents=True)
    with h5py.File(ts / "annot_data.mat", "w") as f:
        f["annot2"] = np.zeros((2, 14, 1, 5))
        f["annot3"] = np.zeros((3, 14, 1, 5))
        f["valid_frame"] = np.ones((1, 5))
    with pytest.raises(ValueError, match=r"annot_data\.mat: key 'annot2' has shape"):
        load_3dhp(tmp_path, subjects=(1,), test_sequences=(1,))
