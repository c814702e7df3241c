"""3DPW loader and the restricted unpickler, on pickles written in 3DPW's layout and format."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from elepose.data.cache import load_split, save_split
from elepose.data.safe_pickle import RefusedPickleClass, load_pickle, loads_restricted
from elepose.data.threedpw import load_3dpw, smpl24_to_h36m

# SMPL joint order (SMPL model / smplx joint_names), restated for independent checks.
SMPL = (
    "pelvis left_hip right_hip spine1 left_knee right_knee spine2 left_ankle right_ankle spine3 "
    "left_foot right_foot neck left_collar right_collar head left_shoulder right_shoulder "
    "left_elbow right_elbow left_wrist right_wrist left_hand right_hand"
).split()
# H36M-17 joint <- SMPL joint, by name (head top is derived, checked separately).
H36M_FROM_SMPL = {
    "pelvis": "pelvis",
    "right_hip": "right_hip",
    "right_knee": "right_knee",
    "right_ankle": "right_ankle",
    "left_hip": "left_hip",
    "left_knee": "left_knee",
    "left_ankle": "left_ankle",
    "spine": "spine2",
    "thorax": "neck",
    "neck": "head",
    "left_shoulder": "left_shoulder",
    "left_elbow": "left_elbow",
    "left_wrist": "left_wrist",
    "right_shoulder": "right_shoulder",
    "right_elbow": "right_elbow",
    "right_wrist": "right_wrist",
}
H36M = (
    "pelvis right_hip right_knee right_ankle left_hip left_knee left_ankle spine thorax neck head "
    "left_shoulder left_elbow left_wrist right_shoulder right_elbow right_wrist"
).split()
# OpenPose COCO-18 (OpenPose doc/02_output.md).
OP18 = (
    "Nose Neck RShoulder RElbow RWrist LShoulder LElbow LWrist RHip RKnee RAnkle LHip LKnee LAnkle REye LEye REar LEar"
).split()
K = np.array([[1961.0, 0.0, 540.0], [0.0, 1969.0, 960.0], [0.0, 0.0, 1.0]])


def _py2_dumps(obj) -> bytes:
    """A pickle as Python 2 wrote 3DPW's files: protocol 2, str buffers, numpy.core globals."""
    out = bytearray(b"\x80\x02")

    def string(b: bytes) -> None:
        out.extend(b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b)

    def emit(o) -> None:
        if isinstance(o, dict):
            out.extend(b"}(")
            for k, v in o.items():
                emit(k)
                emit(v)
            out.extend(b"u")
        elif isinstance(o, (list, tuple)):
            out.extend(b"](" if isinstance(o, list) else b"(")
            for x in o:
                emit(x)
            out.extend(b"e" if isinstance(o, list) else b"t")
        elif o is None:
            out.extend(b"N")
        elif isinstance(o, int):
            out.extend(b"J" + struct.pack("<i", o))
        elif isinstance(o, str):
            string(o.encode("latin1"))
        elif isinstance(o, np.ndarray):
            a = np.ascontiguousarray(o)
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n")
            emit((0,))
            string(b"b")
            out.extend(b"\x87R(J\x01\x00\x00\x00")
            emit(tuple(int(d) for d in a.shape))
            out.extend(b"cnumpy\ndtype\n")
            emit((a.dtype.str[1:], 0, 1))
            out.extend(b"R")
            emit((3, a.dtype.str[0], None, None, None, -1, -1, 0))
            out.extend(b"b\x89")
            string(a.tobytes())
            out.extend(b"tb")
        else:
            raise TypeError(type(o))

    emit(obj)
    return bytes(out + b".")


def _look_at(azimuth_deg: float, elevation_deg: float, distance: float, target: np.ndarray) -> np.ndarray:
    """4x4 world (Y up, metres) -> OpenCV camera, looking down by elevation_deg."""
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    forward = np.array([-np.sin(a) * np.cos(e), -np.sin(e), -np.cos(a) * np.cos(e)])
    centre = target - distance * forward
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    R = np.stack([right, np.cross(forward, right), forward])
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = R, -R @ centre
    return pose


def _sequence(rng: np.random.Generator, name: str, frames: int = 8, actors: int = 2) -> dict:
    """A 3DPW-style sequence dict: upright SMPL skeletons in a Y-up world, a moving camera."""
    joints, poses2d, valid = [], [], []
    cam_poses = np.stack([_look_at(10.0 * f, 4.0 + f, 4.0, np.array([0.0, 1.0, 0.0])) for f in range(frames)])
    for actor in range(actors):
        base = rng.uniform([-0.25, 0.0, -0.15], [0.25, 1.7, 0.15], size=(24, 3))
        base[SMPL.index("pelvis")] = (0.6 * actor, 0.95, 0.0)
        base[SMPL.index("neck")] = (0.6 * actor, 1.45, 0.0)
        base[SMPL.index("head")] = (0.6 * actor, 1.55, 0.02)
        world = base + rng.normal(0, 0.01, size=(frames, 24, 3))
        joints.append(world.reshape(frames, 72))
        op = np.concatenate(
            [rng.uniform(0, 1000, size=(frames, 2, 18)), rng.uniform(0.3, 0.9, size=(frames, 1, 18))], 1
        )
        poses2d.append(op)
        v = np.ones(frames)
        v[actor + 1] = 0  # one invalid camera pose per actor
        valid.append(v)
    return {
        "sequence": name,
        "jointPositions": joints,
        "poses2d": poses2d,
        "cam_poses": cam_poses,
        "cam_intrinsics": K,
        "campose_valid": valid,
        "img_frame_ids": np.arange(frames),
        "genders": ["m", "f"][:actors],
        "betas": [np.zeros(10)] * actors,
        "poses": [np.zeros((frames, 72))] * actors,
        "trans": [np.zeros((frames, 3))] * actors,
        "v_template_clothed": [np.zeros((5, 3))] * actors,
        "texture_maps": [np.zeros((2, 2, 3), dtype=np.uint8)] * actors,
    }


def _write(path: Path, data: dict, py2: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_py2_dumps(data) if py2 else pickle.dumps(data, protocol=2))


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "3DPW"
    _write(root / "sequenceFiles" / "train" / "courtyard_a_00.pkl", _sequence(rng, "courtyard_a_00"))
    _write(root / "sequenceFiles" / "train" / "outdoors_b_00.pkl", _sequence(rng, "outdoors_b_00", actors=1), py2=False)
    _write(root / "sequenceFiles" / "validation" / "val_c_00.pkl", _sequence(rng, "val_c_00"))
    test_seq = _sequence(rng, "downtown_d_00")
    test_seq["poses2d"][0][3, 2, OP18.index("LWrist")] = 0.0  # an undetected joint
    _write(root / "sequenceFiles" / "test" / "downtown_d_00.pkl", test_seq)
    return root


def _seq_of(split, name):
    return split.pose_clip == list(split.clip_names).index(name)


def test_smpl_mapping_by_joint_name_and_head_top_on_the_neck_head_line():
    joints = np.arange(24 * 3, dtype=float).reshape(24, 3) ** 1.5
    mapped = smpl24_to_h36m(joints)
    for h36m_name, smpl_name in H36M_FROM_SMPL.items():
        np.testing.assert_array_equal(mapped[H36M.index(h36m_name)], joints[SMPL.index(smpl_name)])
    neck, head = joints[SMPL.index("neck")], joints[SMPL.index("head")]
    np.testing.assert_allclose(mapped[H36M.index("head")], head + (head - neck))
    np.testing.assert_allclose(smpl24_to_h36m(joints, head_top_extension=0.5)[10], head + 0.5 * (head - neck))


def test_splits_come_from_train_and_test_folders(tree: Path):
    splits, metadata = load_3dpw(tree)
    assert sorted(splits["train"].clip_names) == ["courtyard_a_00", "outdoors_b_00"]
    assert list(splits["test"].clip_names) == ["downtown_d_00"]
    assert metadata["splits"]["train"]["sequences"] == 2
    assert set(np.unique(splits["test"].pose_source)) == {"3dpw"}


def test_splits_round_trip_through_the_cache_and_metadata_is_json(tree: Path, tmp_path: Path):
    splits, metadata = load_3dpw(tree)
    for name, split in splits.items():
        save_split(tmp_path / "cache" / f"{name}.npz", split)
        again = load_split(tmp_path / "cache" / f"{name}.npz")
        np.testing.assert_array_equal(again.poses_3d, split.poses_3d)
        np.testing.assert_array_equal(again.camera_elevation, split.camera_elevation)
    assert json.loads(json.dumps(metadata))["source"] == metadata["source"]


def test_only_valid_camera_poses_are_used(tree: Path):
    splits, metadata = load_3dpw(tree)
    train = splits["train"]
    a = _seq_of(train, "courtyard_a_00")
    # actor 0 invalid at frame 1, actor 1 at frame 2: 2 x 7 poses of 8 frames.
    assert a.sum() == 14
    assert np.bincount(train.frame[a], minlength=8).tolist() == [2, 1, 1, 2, 2, 2, 2, 2]
    assert metadata["splits"]["train"]["dropped"]["campose_invalid"] == 2 + 1


def test_ground_truth_2d_is_the_pinhole_reprojection_of_the_3d(tree: Path):
    splits, _ = load_3dpw(tree)
    data = pickle.loads((tree / "sequenceFiles" / "train" / "outdoors_b_00.pkl").read_bytes(), encoding="latin1")
    train = splits["train"]
    b = _seq_of(train, "outdoors_b_00")
    frames = train.frame[b]
    world = smpl24_to_h36m(data["jointPositions"][0].reshape(-1, 24, 3))[frames]
    pose = data["cam_poses"][frames]
    cam = np.einsum("fij,fkj->fki", pose[:, :3, :3], world) + pose[:, None, :3, 3]
    np.testing.assert_allclose(train.poses_3d[b], cam, atol=1e-5)
    u = K[0, 0] * cam[..., 0] / cam[..., 2] + K[0, 2]
    v = K[1, 1] * cam[..., 1] / cam[..., 2] + K[1, 2]
    np.testing.assert_allclose(train.poses_2d[b], np.stack([u, v], -1), atol=1e-2)
    # Training "detected" 2D is the re-projection too (the paper's recipe).
    np.testing.assert_array_equal(train.poses_2d_detected, train.poses_2d)


def test_test_detections_are_provided_openpose_mapped_and_incomplete_ones_dropped(tree: Path):
    splits, metadata = load_3dpw(tree)
    test = splits["test"]
    data = load_pickle(tree / "sequenceFiles" / "test" / "downtown_d_00.pkl")
    # Actor 0: campose invalid at 1, wrist undetected at 3; actor 1: invalid at 2.
    np.testing.assert_array_equal(test.frame, [0, 2, 4, 5, 6, 7, 0, 1, 3, 4, 5, 6, 7])
    assert metadata["splits"]["test"]["dropped"]["missing_detection"] == 1
    for index, actor, frame in ((0, 0, 0), (9, 1, 4)):
        op = data["poses2d"][actor][frame]  # (3, 18)
        det = test.poses_2d_detected[index]
        mid_hips = 0.5 * (op[:2, OP18.index("RHip")] + op[:2, OP18.index("LHip")])
        np.testing.assert_allclose(det[H36M.index("pelvis")], mid_hips, atol=1e-3)
        np.testing.assert_allclose(det[H36M.index("thorax")], op[:2, OP18.index("Neck")], atol=1e-3)
        np.testing.assert_allclose(det[H36M.index("right_wrist")], op[:2, OP18.index("RWrist")], atol=1e-3)
        np.testing.assert_allclose(det[H36M.index("left_knee")], op[:2, OP18.index("LKnee")], atol=1e-3)
    # Ground truth stays the re-projection, not the detection.
    assert not np.allclose(test.poses_2d, test.poses_2d_detected)


def test_elevation_follows_the_moving_camera(tree: Path):
    splits, metadata = load_3dpw(tree)
    train = splits["train"]
    views = np.unique(train.view[_seq_of(train, "outdoors_b_00")])
    frames = [int(train.frame[train.view == v][0]) for v in views]
    np.testing.assert_allclose(train.camera_elevation[views], [4.0 + f for f in frames], atol=1e-3)
    assert metadata["splits"]["train"]["world_up"]["outdoors_b_00"]["up_axis"] == "+y"
    np.testing.assert_allclose(np.linalg.det(train.camera_R.astype(np.float64)), 1.0, atol=1e-5)


def test_bone_ratios_metadata_is_computed_from_training_3d(tree: Path):
    splits, metadata = load_3dpw(tree)
    poses = splits["train"].poses_3d.astype(np.float64)
    parents = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]
    lengths = np.stack(
        [np.linalg.norm(poses[:, j] - poses[:, p], axis=-1) for j, p in enumerate(parents) if p >= 0], -1
    )
    expected = (lengths / lengths.mean(-1, keepdims=True)).mean(0)
    np.testing.assert_allclose(metadata["bone_ratios"]["train_split"], expected, atol=1e-4)
    assert metadata["bone_ratios"]["authors"] is None


def test_openpose_training_option_uses_the_provided_detections(tree: Path):
    splits, metadata = load_3dpw(tree, train_detected="openpose")
    train = splits["train"]
    assert not np.allclose(train.poses_2d_detected, train.poses_2d)
    assert metadata["options"]["train_detected"] == "openpose"


def test_restricted_unpickler_refuses_code_execution(tmp_path: Path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo should-not-run",))

    path = tmp_path / "sequenceFiles" / "train" / "evil.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps({"sequence": Evil()}, protocol=2))
    with pytest.raises(RefusedPickleClass, match=r"evil\.pkl.*(posix|nt)\.system"):
        load_3dpw(tmp_path)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        loads_restricted(path.read_bytes())


def test_restricted_unpickler_refuses_builtins_that_run_code():
    blob = pickle.dumps(eval, protocol=2)  # a global reference to builtins.eval
    with pytest.raises(RefusedPickleClass, match=r"(__builtin__|builtins)\.eval"):
        loads_restricted(blob)


def test_restricted_unpickler_reads_python2_numpy_pickles():
    data = {"a": [np.arange(6.0).reshape(2, 3), np.array([1, 0], dtype=np.int32)], "name": "x"}
    loaded = loads_restricted(_py2_dumps(data))
    np.testing.assert_array_equal(loaded["a"][0], data["a"][0])
    assert loaded["a"][1].dtype == np.int32 and loaded["name"] == "x"


def test_missing_key_names_file_and_key(tmp_path: Path):
    seq = _sequence(np.random.default_rng(1), "s")
    del seq["cam_poses"]
    _write(tmp_path / "sequenceFiles" / "train" / "s.pkl", seq)
    with pytest.raises(ValueError, match=r"s\.pkl: missing key\(s\) \['cam_poses'\]"):
        load_3dpw(tmp_path)


def test_wrong_shape_names_file_and_key(tmp_path: Path):
    seq = _sequence(np.random.default_rng(2), "s")
    seq["jointPositions"][1] = np.zeros((8, 69))
    _write(tmp_path / "sequenceFiles" / "train" / "s.pkl", seq)
    with pytest.raises(ValueError, match=r"s\.pkl: key 'jointPositions', actor 1: shape \(8, 69\)"):
        load_3dpw(tmp_path)


def test_all_invalid_camera_poses_is_an_error(tmp_path: Path):
    seq = _sequence(np.random.default_rng(3), "s")
    seq["campose_valid"] = [np.zeros(8), np.zeros(8)]
    _write(tmp_path / "sequenceFiles" / "train" / "s.pkl", seq)
    with pytest.raises(ValueError, match=r"s\.pkl: key 'campose_valid' marks no valid frame"):
        load_3dpw(tmp_path)


def test_a_3dhp_mat_file_given_as_sequence_is_refused(tmp_path: Path):
    path = tmp_path / "sequenceFiles" / "train" / "annot.pkl"
    path.parent.mkdir(parents=True)
    scipy.io.savemat(path, {"annot2": np.zeros((2, 56))})
    with pytest.raises(ValueError, match=r"annot\.pkl: not a readable pickle"):
        load_3dpw(tmp_path)


def test_wrong_root_layout_is_explained(tmp_path: Path):
    with pytest.raises(ValueError, match="sequenceFiles"):
        load_3dpw(tmp_path)
