"""Human3.6M in VideoPose3D's format -> cache splits, checked on a fixture written in that format.

The fixture mimics VideoPose3D's ``data/prepare_data_h36m.py``: ``np.savez_compressed`` of
pickled dicts, 32-joint world poses in metres, 2D as lists of four per-camera arrays. Its 2D is
made here by an independent pinhole projection (scipy quaternions, no lens distortion).
"""

import copy
import io
import os
import pickle
import zipfile

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from elepose.data.cache import load_split, save_split
from elepose.data.h36m import (
    H36M_EXTRINSICS,
    H36M_INTRINSICS,
    load_videopose3d_h36m,
    read_videopose3d_npz,
)

KEPT = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]  # VideoPose3D remove_joints
# Frames per sequence; test subjects' lengths exercise the every-64th subsampling edges.
LENGTHS = {
    "S1": {"Eating": 30, "Walking 1": 40},
    "S5": {"Walking": 20},
    "S6": {"Sitting 2": 25},
    "S7": {"Phoning": 22},
    "S8": {"Greeting": 18},
    "S9": {"Sitting": 130, "Walking 1": 200},
    "S11": {"Directions 1": 65, "Walking": 129},
}
GT_METADATA = {"num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
DET_METADATA = {"layout_name": "h36m", **GT_METADATA}


def scipy_camera(subject, cam):
    """World->camera by VideoPose3D's rule X_cam = Q^T (X - c), Q from scipy (scalar-last)."""
    w, x, y, z = H36M_EXTRINSICS[subject][cam]["orientation"]
    q = Rotation.from_quat([x, y, z, w]).as_matrix()
    centre = np.asarray(H36M_EXTRINSICS[subject][cam]["translation"]) / 1000.0
    return q, centre


def to_camera(world, subject, cam):
    q, centre = scipy_camera(subject, cam)
    return (world - centre) @ q  # row vectors: (Q^T (X - c))^T = (X - c)^T Q


def pinhole(points_cam, cam):
    (fx, fy), (cx, cy) = H36M_INTRINSICS[cam]["focal_length"], H36M_INTRINSICS[cam]["center"]
    return np.stack(
        [fx * points_cam[..., 0] / points_cam[..., 2] + cx, fy * points_cam[..., 1] / points_cam[..., 2] + cy], -1
    )


def walking_person(gen, frames):
    """A random standing 32-joint body (pelvis 0.9 m up) drifting across the capture area."""
    offsets = np.concatenate([gen.uniform(-0.25, 0.25, (32, 2)), gen.uniform(-0.85, 0.85, (32, 1))], axis=1)
    offsets[0] = 0.0
    start = np.array([*gen.uniform(-0.4, 0.4, 2), 0.9])
    step = np.array([*gen.uniform(-0.002, 0.002, 2), 0.0])
    pelvis = start + step * np.arange(frames)[:, None] + gen.normal(0, 0.01, (frames, 3))
    return (pelvis[:, None, :] + offsets[None] + gen.normal(0, 0.01, (frames, 32, 3))).astype(np.float32)


def make_fixture():
    gen = np.random.default_rng(7)
    world, gt, det = {}, {}, {}
    for subject, actions in LENGTHS.items():
        world[subject], gt[subject], det[subject] = {}, {}, {}
        for action, frames in actions.items():
            world[subject][action] = walking_person(gen, frames)
            views = [
                pinhole(to_camera(world[subject][action][:, KEPT].astype(np.float64), subject, c), c) for c in range(4)
            ]
            gt[subject][action] = [v.astype(np.float32) for v in views]
            det[subject][action] = [(v + gen.normal(0, 3.0, v.shape)).astype(np.float32) for v in views]
    # VideoPose3D's 2D can differ in length from the mocap: longer GT video for one camera,
    # shorter GT for a training clip, a shorter detection track for one test camera.
    gt["S9"]["Walking 1"][2] = np.concatenate([gt["S9"]["Walking 1"][2], gt["S9"]["Walking 1"][2][:3] + 1])
    gt["S1"]["Eating"] = [v[:28] for v in gt["S1"]["Eating"]]
    det["S9"]["Sitting"][1] = det["S9"]["Sitting"][1][:128]
    # A 2D-only action (VideoPose3D drops S11 "Directions" from the 3D file but not the 2D).
    gt["S11"]["Directions"] = [np.zeros((5, 17, 2), np.float32)] * 4
    det["S11"]["Directions"] = [np.zeros((5, 17, 2), np.float32)] * 4
    return world, gt, det


def write(folder, world, gt, det, gt_meta=GT_METADATA, det_meta=DET_METADATA):
    paths = folder / "data_3d_h36m.npz", folder / "data_2d_h36m_gt.npz", folder / "data_2d_h36m_cpn_ft_h36m_dbb.npz"
    np.savez_compressed(paths[0], positions_3d=world)
    np.savez_compressed(paths[1], positions_2d=gt, metadata=gt_meta)
    np.savez_compressed(paths[2], positions_2d=det, metadata=det_meta)
    return paths


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    world, gt, det = make_fixture()
    paths = write(tmp_path_factory.mktemp("h36m"), world, gt, det)
    return world, gt, det, paths, load_videopose3d_h36m(*paths)


def views_of(split):
    """(subject, action, camera index found from K, view index) for every view of a split."""
    for view in range(len(split.camera_K)):
        subject, action = str(split.clip_names[split.camera_clip[view]]).split("/")
        fx = split.camera_K[view, 0, 0]
        (cam,) = [c for c in range(4) if abs(H36M_INTRINSICS[c]["focal_length"][0] - fx) < 1e-3]
        yield subject, action, cam, view


def deep_equal(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype


# --- the restricted reader --------------------------------------------------------------------


def test_reader_returns_what_numpy_load_returns(fixture):
    *_, paths, _ = fixture
    for path, key in [
        (paths[0], "positions_3d"),
        (paths[1], "positions_2d"),
        (paths[1], "metadata"),
        (paths[2], "metadata"),
    ]:
        with np.load(path, allow_pickle=True) as data:
            assert deep_equal(read_videopose3d_npz(path, key), data[key].item())


class _MakesDirectory:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_reader_refuses_pickles_that_call_other_functions(tmp_path):
    target = tmp_path / "created-by-pickle"
    path = tmp_path / "evil.npz"
    np.savez(path, positions_3d={"S1": _MakesDirectory(str(target))})
    with pytest.raises(ValueError, match="evil.npz.*positions_3d.*refusing to load global"):
        read_videopose3d_npz(path, "positions_3d")
    assert not target.exists()


def test_reader_accepts_protocol_2_pickles_of_older_numpy(tmp_path):
    value = {"S1": {"Walking": np.arange(6, dtype=np.float32).reshape(1, 2, 3)}, "n": np.int64(3)}
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "|O", "fortran_order": False, "shape": ()})
    member.write(pickle.dumps(np.asanyarray(value), protocol=2))
    path = tmp_path / "old.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("positions_3d.npy", member.getvalue())
    assert deep_equal(read_videopose3d_npz(path, "positions_3d"), value)


# --- splits -----------------------------------------------------------------------------------


def test_subjects_go_to_train_and_test_and_every_3d_action_becomes_a_clip(fixture):
    *_, splits = fixture
    clips = {
        name: {f"{s}/{a}" for s in subjects for a in LENGTHS[s]}
        for name, subjects in [("train", ["S1", "S5", "S6", "S7", "S8"]), ("test", ["S9", "S11"])]
    }
    for name, split in splits.items():
        assert set(split.clip_names.tolist()) == clips[name] and len(split.clip_names) == len(clips[name])
        assert set(split.clip_source.tolist()) == {"h36m"}
        assert len(split.camera_K) == 4 * len(clips[name])
        assert sorted(cam for *_, cam, _ in views_of(split)) == sorted(list(range(4)) * len(clips[name]))


def test_test_split_keeps_frames_0_64_128_of_the_common_length(fixture):
    *_, splits = fixture
    test = splits["test"]
    for subject, action, cam, view in views_of(test):
        length = 128 if (subject, action, cam) == ("S9", "Sitting", 1) else LENGTHS[subject][action]
        np.testing.assert_array_equal(test.frame[test.view == view], np.arange(0, length, 64))
    assert len(test) == 4 * (3 + 4 + 2 + 3) - 1  # S9 Sitting camera 1 loses frame 128


def test_train_split_keeps_all_frames_or_every_stride_th(fixture):
    *_, paths, splits = fixture
    strided = load_videopose3d_h36m(*paths, train_stride=5)["train"]
    for split, stride in [(splits["train"], 1), (strided, 5)]:
        for subject, action, _cam, view in views_of(split):
            length = 28 if (subject, action) == ("S1", "Eating") else LENGTHS[subject][action]
            np.testing.assert_array_equal(split.frame[split.view == view], np.arange(0, length, stride))


def test_camera_frame_3d_matches_an_independent_rotation(fixture):
    world, *_, splits = fixture
    for split in splits.values():
        for subject, action, cam, view in views_of(split):
            rows = split.view == view
            expected = to_camera(world[subject][action][split.frame[rows]][:, KEPT].astype(np.float64), subject, cam)
            np.testing.assert_allclose(split.poses_3d[rows], expected, atol=1e-5)


def test_camera_rotation_translation_and_intrinsics_follow_the_published_parameters(fixture):
    *_, splits = fixture
    for split in splits.values():
        for subject, _action, cam, view in views_of(split):
            q, centre = scipy_camera(subject, cam)
            R, t, K = (x[view].astype(np.float64) for x in (split.camera_R, split.camera_t, split.camera_K))
            np.testing.assert_allclose(R, q.T, atol=1e-6)
            np.testing.assert_allclose(R @ centre + t, 0.0, atol=1e-5)  # camera centre -> origin
            (fx, fy), (cx, cy) = H36M_INTRINSICS[cam]["focal_length"], H36M_INTRINSICS[cam]["center"]
            np.testing.assert_allclose(K, [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], rtol=1e-6)


def test_ground_truth_2d_is_the_pinhole_projection_of_the_camera_frame_3d(fixture):
    *_, splits = fixture
    for split in splits.values():
        p = np.einsum("nij,nkj->nki", split.camera_K[split.view].astype(np.float64), split.poses_3d.astype(np.float64))
        np.testing.assert_allclose(split.poses_2d, p[..., :2] / p[..., 2:], atol=1e-2)


def test_pelvis_is_4_to_6_m_in_front_of_every_camera(fixture):
    *_, splits = fixture
    for split in splits.values():
        depth = split.poses_3d[:, 0, 2]
        assert depth.min() > 3.5 and depth.max() < 6.5, (depth.min(), depth.max())


def test_elevation_is_the_optical_axis_below_the_horizon_and_cameras_look_down(fixture):
    *_, splits = fixture
    for split in splits.values():
        for subject, _, cam, view in views_of(split):
            q, _ = scipy_camera(subject, cam)
            axis_world = q @ np.array([0.0, 0.0, 1.0])  # camera +z in Z-up world coordinates
            expected = np.degrees(np.arctan2(-axis_world[2], np.hypot(axis_world[0], axis_world[1])))
            assert split.camera_elevation[view] == pytest.approx(expected, abs=1e-3)
        # Human3.6M's cameras hang above head height and look slightly down (about 10-16 deg).
        assert (split.camera_elevation > 5).all() and (split.camera_elevation < 20).all()


def test_detected_2d_comes_from_the_detections_file_or_copies_the_ground_truth(fixture):
    _, gt, det, paths, splits = fixture
    for split in splits.values():
        for subject, action, cam, view in views_of(split):
            rows = split.view == view
            np.testing.assert_array_equal(split.poses_2d_detected[rows], det[subject][action][cam][split.frame[rows]])
            np.testing.assert_array_equal(split.poses_2d[rows], gt[subject][action][cam][split.frame[rows]])
    gt_only = load_videopose3d_h36m(paths[0], paths[1])
    for split in gt_only.values():
        np.testing.assert_array_equal(split.poses_2d_detected, split.poses_2d)


def test_splits_round_trip_through_the_cache(fixture, tmp_path):
    *_, splits = fixture
    save_split(tmp_path / "test.npz", splits["test"])
    back = load_split(tmp_path / "test.npz")
    np.testing.assert_array_equal(back.poses_3d, splits["test"].poses_3d)
    np.testing.assert_array_equal(back.clip_names, splits["test"].clip_names)


# --- bad input --------------------------------------------------------------------------------


def _break_3d_shape(world, gt, det):
    world["S5"]["Walking"] = world["S5"]["Walking"][:, :17]


def _drop_subject(world, gt, det):
    del world["S11"]


def _drop_2d_action(world, gt, det):
    del gt["S9"]["Sitting"]


def _three_cameras(world, gt, det):
    det["S7"]["Phoning"] = det["S7"]["Phoning"][:3]


def _wrong_2d_joints(world, gt, det):
    gt["S6"]["Sitting 2"][0] = gt["S6"]["Sitting 2"][0][:, :16]


@pytest.mark.parametrize(
    "change, meta, file, words",
    [
        (_break_3d_shape, {}, "data_3d_h36m.npz", r"positions_3d.*S5/Walking.*\(F>0, 32, 3\)"),
        (_drop_subject, {}, "data_3d_h36m.npz", r"positions_3d.*lacks subjects \['S11'\]"),
        (_drop_2d_action, {}, "data_2d_h36m_gt.npz", r"positions_2d.*S9/'Sitting'"),
        (_three_cameras, {}, "cpn_ft_h36m_dbb.npz", r"positions_2d', S7/Phoning.*4 arrays"),
        (_wrong_2d_joints, {}, "data_2d_h36m_gt.npz", r"positions_2d', S6/Sitting 2, camera 0.*\(F>0, 17, 2\)"),
        (None, {"det_meta": {"layout_name": "coco", "num_joints": 17}}, "cpn_ft_h36m_dbb.npz", r"metadata.*'coco'"),
        (None, {"gt_meta": {"num_joints": 32}}, "data_2d_h36m_gt.npz", r"metadata.*32 joints"),
        (
            None,
            {"gt_meta": {"num_joints": 17, "keypoints_symmetry": [[1, 2, 3], [4, 5, 6]]}},
            "data_2d_h36m_gt.npz",
            "keypoints_symmetry",
        ),
    ],
)
def test_bad_files_raise_value_errors_naming_file_and_key(tmp_path, change, meta, file, words):
    world, gt, det = (copy.deepcopy(d) for d in make_fixture())
    if change is not None:
        change(world, gt, det)
    paths = write(tmp_path, world, gt, det, **meta)
    with pytest.raises(ValueError, match=rf"{file}.*{words}"):
        load_videopose3d_h36m(*paths)


def test_missing_keys_and_non_npz_files_are_reported(tmp_path):
    np.savez(tmp_path / "wrong_key.npz", poses={"S1": {}})
    with pytest.raises(ValueError, match=r"wrong_key.npz: missing key 'positions_3d' \(the file holds \['poses'\]\)"):
        read_videopose3d_npz(tmp_path / "wrong_key.npz", "positions_3d")
    np.savez(tmp_path / "plain.npz", positions_3d=np.zeros((3, 32, 3)))
    with pytest.raises(ValueError, match=r"plain.npz: key 'positions_3d' should hold a pickled dict"):
        read_videopose3d_npz(tmp_path / "plain.npz", "positions_3d")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"text.npz: not an .npz"):
        read_videopose3d_npz(tmp_path / "text.npz", "positions_3d")
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        read_videopose3d_npz(tmp_path / "absent.npz", "positions_3d")


def test_train_stride_must_be_a_positive_integer(fixture):
    *_, paths, _ = fixture
    with pytest.raises(ValueError, match="train_stride"):
        load_videopose3d_h36m(*paths, train_stride=0)
