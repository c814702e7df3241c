"""What lift writes for other tools: BVH, TRC and MMPose 3D JSON round trips, the upright frame,
tracks, smoothing, the interactive view, and every real detector file lifted as it is."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from elepose.data.bvh import forward_kinematics, parse_bvh, read_bvh
from elepose.lift.exports import (
    _rest_offsets,
    bone_lengths_for_height,
    bvh_text,
    link_tracks,
    mmpose_3d,
    read_mmpose_3d,
    read_trc,
    smooth,
    track_bone_lengths,
    track_sequence,
    trc_text,
    upright,
)
from elepose.lift.lifter import skeleton_height
from elepose.skeleton import BONES, H36M_BONE_RATIOS, JOINT_NAMES, PARENTS
from elepose.train.config import FlowConfig, TrainConfig
from elepose.train.loop import train_flow, train_lifter
from tests.synthetic import TEMPLATE, write_cache

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real2d"
RNG = np.random.default_rng(0)
# A standing person seen from the front, H36M-17 order, pixels (the synthetic template's x and up).
FRONT = np.c_[TEMPLATE[:, 0], -TEMPLATE[:, 2]] * 200.0 + [300.0, 400.0]


def _coco17(h36m: np.ndarray) -> np.ndarray:
    """An H36M-17 2D pose as a COCO-17 detector would report it (eyes and ears beside the head)."""
    coco = np.zeros((17, 2))
    head, nose = h36m[10], h36m[9]
    coco[0] = nose
    coco[1], coco[2] = head + [6.0, 0.0], head - [6.0, 0.0]
    coco[3], coco[4] = head + [12.0, 4.0], head - [12.0, -4.0]
    for c, j in zip(range(5, 17), (11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3)):
        coco[c] = h36m[j]
    return coco


def _posed(frames: int, bone_lengths: np.ndarray, seed: int = 0) -> np.ndarray:
    """``(F, 17, 3)`` poses of the T-pose skeleton under random joint rotations (independent FK)."""
    rng = np.random.default_rng(seed)
    rest = _rest_offsets(bone_lengths)
    poses = np.zeros((frames, 17, 3))
    for f in range(frames):
        world = [None] * 17
        for j in range(17):
            local = Rotation.from_rotvec(rng.normal(0, 0.6, 3)).as_matrix()
            if PARENTS[j] < 0:
                world[j], poses[f, j] = local, rng.normal(0, 1, 3)
            else:
                world[j] = world[PARENTS[j]] @ local
                poses[f, j] = poses[f, PARENTS[j]] + world[PARENTS[j]] @ rest[j]
    return poses


def test_bvh_read_back_by_elepose_recovers_the_written_positions_within_1_mm():
    lengths = bone_lengths_for_height(H36M_BONE_RATIOS, 1.75)
    poses = _posed(12, lengths)
    bvh = parse_bvh(bvh_text(poses, 30.0, lengths), "walk.bvh")
    assert bvh.fps == 30.0 and bvh.num_frames == 12
    positions = forward_kinematics(bvh) / 100.0  # the file is in centimetres
    index = [bvh.names.index(name) for name in JOINT_NAMES]
    assert np.abs(positions[:, index] - poses).max() < 1e-3


def _directions(poses: np.ndarray) -> np.ndarray:
    vectors = np.stack([poses[:, child] - poses[:, parent] for parent, child in BONES], axis=1)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def test_bvh_keeps_the_direction_of_every_bone_of_any_pose_the_pelvis_and_thorax_children_too():
    lengths = bone_lengths_for_height(H36M_BONE_RATIOS, 1.7)
    poses = _posed(3, lengths, seed=1) + RNG.normal(0, 0.02, (3, 17, 3))  # not of these bone lengths
    bvh = parse_bvh(bvh_text(poses, 25.0, lengths), "x.bvh")
    positions = forward_kinematics(bvh) / 100.0
    got = positions[:, [bvh.names.index(name) for name in JOINT_NAMES]]
    np.testing.assert_allclose(_directions(got), _directions(poses), atol=1e-6)
    assert "right_hip_link" in bvh.names and "neck_link" in bvh.names  # a zero-length joint per branch


def test_bvh_of_a_lifted_track_has_its_own_bone_lengths_and_returns_its_poses():
    # A track whose bones keep their lengths (in proportions far from H36M's), as a lift of one person does.
    lengths = bone_lengths_for_height(H36M_BONE_RATIOS, 1.7) * RNG.uniform(0.7, 1.4, 16)
    poses = _posed(20, lengths, seed=4)
    np.testing.assert_allclose(track_bone_lengths(poses), lengths, rtol=1e-9)
    bvh = parse_bvh(bvh_text(poses, 30.0), "track.bvh")  # lengths measured from the track itself
    got = (forward_kinematics(bvh) / 100.0)[:, [bvh.names.index(name) for name in JOINT_NAMES]]
    assert np.abs(got - poses).max() < 1e-5
    # Bone lengths that change over the frames: the median is kept, the directions still exact.
    wobbly = poses.copy()
    for f in range(len(poses)):
        scale = 1.0 + 0.05 * np.sin(f)
        for parent, child in BONES:  # lengthen every bone of frame f, keeping its direction
            descendants = [j for j in range(17) if _is_under(j, child)]
            wobbly[f, descendants] += (scale - 1.0) * (poses[f, child] - poses[f, parent])
    bvh = parse_bvh(bvh_text(wobbly, 30.0), "track.bvh")
    got = (forward_kinematics(bvh) / 100.0)[:, [bvh.names.index(name) for name in JOINT_NAMES]]
    np.testing.assert_allclose(_directions(got), _directions(wobbly), atol=1e-6)


def _is_under(joint: int, ancestor: int) -> bool:
    while joint >= 0:
        if joint == ancestor:
            return True
        joint = PARENTS[joint]
    return False


def test_bone_lengths_give_the_skeleton_height():
    lengths = bone_lengths_for_height(H36M_BONE_RATIOS, 1.8)
    poses = _posed(1, lengths)
    np.testing.assert_allclose(skeleton_height(poses), [1.8], rtol=1e-9)


def test_trc_round_trip_header_and_values(tmp_path):
    poses = RNG.normal(0, 0.5, (7, 17, 3))
    (tmp_path / "walk.trc").write_text(trc_text(poses, 50.0, "walk.trc", "m", first_frame=4))
    trc = read_trc(tmp_path / "walk.trc")
    assert trc["markers"] == list(JOINT_NAMES) and trc["fps"] == 50.0 and trc["units"] == "m"
    np.testing.assert_allclose(trc["positions"], poses, atol=1e-6)
    np.testing.assert_allclose(trc["time"], (4 + np.arange(7)) / 50.0, atol=1e-6)
    lines = (tmp_path / "walk.trc").read_text().splitlines()
    assert (
        lines[0].split("\t")[:3] == ["PathFileType", "4", "(X/Y/Z)"] and lines[5] == "" and lines[6].startswith("5\t")
    )


def test_mmpose_3d_round_trip_with_reliability_as_scores():
    frame, track = np.array([0, 0, 2]), np.array([4, 5, 4])
    poses, reliability = RNG.normal(0, 1, (3, 17, 3)), np.array([80.0, 12.5, np.nan])
    content = json.loads(json.dumps(mmpose_3d(("a", "b", "c"), frame, track, poses, reliability, np.zeros(3))))
    assert [len(f["instances"]) for f in content] == [2, 0, 1] and content[1]["frame_name"] == "b"
    back = read_mmpose_3d(content)
    np.testing.assert_allclose(back["keypoints"], poses, atol=1e-6)
    np.testing.assert_allclose(back["keypoint_scores"][:, 0], [0.8, 0.125, 0.0])
    assert back["frame"].tolist() == [0, 0, 2] and back["track"].tolist() == [4, 5, 4]


def test_upright_undoes_the_camera_elevation_and_puts_the_feet_on_the_floor():
    # A standing person in a level camera frame (y down), seen by cameras looking down by e.
    standing = np.array([[x, -y, 5.0 + z] for x, y, z in _t_pose_metres()])
    elevation = np.radians([0.0, 15.0, -10.0])
    seen = np.stack([standing @ Rotation.from_euler("x", e).as_matrix().T for e in elevation])
    up = upright(seen, elevation)
    spine = up[:, 8] - up[:, 0]
    np.testing.assert_allclose(spine / np.linalg.norm(spine, axis=-1, keepdims=True), [[0, 1, 0]] * 3, atol=1e-9)
    np.testing.assert_allclose(up[:, [3, 6], 1].min(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(up[0], up[1], atol=1e-9)


def _t_pose_metres() -> np.ndarray:
    """Joint positions of the T-pose skeleton, y up, metres."""
    rest = _rest_offsets(bone_lengths_for_height(H36M_BONE_RATIOS, 1.7))
    out = np.zeros((17, 3))
    for j in range(1, 17):
        out[j] = out[PARENTS[j]] + rest[j]
    return out


def test_smoothing_reduces_noise_per_track_and_keeps_tracks_apart():
    t = np.arange(60)
    truth = np.zeros((120, 17, 3))
    truth[:60] = np.sin(t / 10.0)[:, None, None]
    truth[60:] = 5.0 + np.cos(t / 10.0)[:, None, None]
    noisy = truth + RNG.normal(0, 0.05, truth.shape)
    frame, track = np.r_[t, t], np.r_[np.zeros(60, int), np.ones(60, int)]
    smoothed = smooth(noisy, track, frame, window=9)
    assert np.abs(smoothed - truth).mean() < 0.6 * np.abs(noisy - truth).mean()
    assert smoothed[60:].mean() > 4.0 and smoothed[:60].mean() < 1.0


def test_tracks_follow_the_pelvis_and_keep_the_inputs_own_ids():
    people = FRONT[None].repeat(2, 0) + np.array([[[0.0, 0.0]], [[400.0, 0.0]]])
    frames, keypoints = [], []
    for f in range(6):
        order = [1, 0] if f % 2 else [0, 1]  # the detector lists them in a changing order
        for p in order:
            frames.append(f)
            keypoints.append(people[p] + [5.0 * f * (1 if p == 0 else -1), 0.0])
    frame, keypoints = np.array(frames), np.array(keypoints)
    tracks = link_tracks(frame, keypoints, np.full(len(frame), -1))
    left = keypoints[:, 0, 0] < 500
    assert len(set(tracks[left])) == 1 and len(set(tracks[~left])) == 1 and set(tracks) == {0, 1}
    given = np.arange(len(frame)) % 3
    assert link_tracks(frame, keypoints, given).tolist() == given.tolist()


def test_a_track_sequence_holds_the_last_pose_over_missing_frames():
    poses = np.arange(3 * 17 * 3, dtype=float).reshape(3, 17, 3)
    sequence, first = track_sequence(poses, np.array([2, 2, 2]), np.array([3, 4, 7]), 2)
    assert first == 3 and len(sequence) == 5
    np.testing.assert_array_equal(sequence[[0, 1, 2, 3, 4]], poses[[0, 1, 1, 1, 2]])


# ----------------------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def lifter(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("exports")
    cache = write_cache(root / "cache", n_train=512, n_test=64)
    flow_config = FlowConfig(data=str(cache), out=str(root / "flow"), hidden=32, blocks=2, epochs=1, batch_size=128,
                             lr=1e-3, scale="pose", device="cpu", epoch_samples=256)  # fmt: skip
    train_flow(flow_config, progress=False)
    config = TrainConfig(data=str(cache), flow=str(root / "flow"), out=str(root / "lifter"), hidden=32, epochs=1,
                         batch_size=64, lr=1e-3, eval_samples=32, reliability_rotations=2, device="cpu",
                         epoch_samples=256, elevation_warmup_steps=1)  # fmt: skip
    train_lifter(config, progress=False)
    return root / "lifter"


def _cli(*args):
    from elepose.cli import _register_all, app

    _register_all()
    return CliRunner().invoke(app, [str(a) for a in args])


def _video(tmp_path: Path, frames: int = 12) -> Path:
    """An MMPose video JSON of two people walking apart (COCO-17 order), no track ids."""
    base = _coco17(FRONT)
    content = []
    for f in range(frames):
        people = [base + [3.0 * f, 0.0], base + [420.0 - 3.0 * f, 10.0]]
        content.append({"frame_id": f, "instances": [{"keypoints": p.tolist(), "keypoint_scores": [0.9] * 17} for p in people]})  # fmt: skip
    path = tmp_path / "video.json"
    path.write_text(json.dumps(content))
    return path


def test_lift_exports_every_format_per_track_in_the_upright_frame(lifter, tmp_path):
    video = _video(tmp_path)
    out = tmp_path / "res"
    args = ["lift", video, "--checkpoint", lifter, "--out", out, "--height", "1.7", "--fps", "30", "--device", "cpu",
            "--frame", "upright", "--smooth", "--export", "mmpose3d", "--export", "bvh", "--export", "trc"]  # fmt: skip
    result = _cli(*args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "res.json").read_text())
    assert report["frame"] == "upright" and report["smooth_window"] == 9
    tracks = sorted({p["track"] for f in report["frames"] for p in f["people"]})
    assert tracks == [0, 1]
    for t in tracks:
        bvh = read_bvh(tmp_path / f"res.track{t}.bvh")
        assert bvh.num_frames == 12 and abs(bvh.fps - 30.0) < 1e-6
        trc = read_trc(tmp_path / f"res.track{t}.trc")
        assert trc["positions"].shape == (12, 17, 3) and trc["units"] == "m"
        assert abs(trc["positions"][:, [3, 6], 1].min()) < 0.2  # feet near the floor (smoothed)
    mm = read_mmpose_3d(json.loads((tmp_path / "res.mmpose3d.json").read_text()))
    assert len(mm["keypoints"]) == 24 and set(mm["track"].tolist()) == {0, 1}
    arrays = np.load(tmp_path / "res.npz")
    np.testing.assert_allclose(arrays["poses_3d_metres"][0], mm["keypoints"][0], atol=1e-5)


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--export", "bvh", "--height", "1.7"], "--fps"),
        (["--export", "trc", "--fps", "30"], "--height"),
        (["--export", "fbx"], "--export fbx"),
        (["--frame", "sideways"], "--frame sideways"),
    ],
)
def test_export_problems_are_one_line_errors_and_write_nothing(lifter, tmp_path, extra, needle):
    video = _video(tmp_path, 3)
    result = _cli("lift", video, "--checkpoint", lifter, "--out", tmp_path / "res", "--device", "cpu", *extra)
    assert result.exit_code == 2 and needle in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["video.json"]


def test_exporting_a_sequence_with_nobody_is_refused(lifter, tmp_path):
    (tmp_path / "empty.json").write_text(
        json.dumps([{"frame_id": 0, "instances": []}, {"frame_id": 1, "instances": []}])
    )
    result = _cli("lift", tmp_path / "empty.json", "--format", "mmpose", "--checkpoint", lifter, "--out", tmp_path / "r",
                  "--export", "mmpose3d", "--device", "cpu")  # fmt: skip
    assert result.exit_code == 2 and "nobody was lifted" in result.output
    assert not list(tmp_path.glob("r*"))


def test_the_interactive_view_is_one_self_contained_file(lifter, tmp_path):
    video = _video(tmp_path, 5)
    result = _cli("lift", video, "--checkpoint", lifter, "--out", tmp_path / "res", "--render", tmp_path / "view.html", "--device", "cpu")  # fmt: skip
    assert result.exit_code == 0, result.output
    html = (tmp_path / "view.html").read_text()
    assert "Plotly.newPlot" in html and "<script src=" not in html  # the library is inlined: no network
    assert html.count('"name":"4"') >= 1  # one animation frame per video frame


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_the_interactive_view_draws_something_in_a_headless_browser(lifter, tmp_path):
    video = _video(tmp_path, 3)
    assert _cli("lift", video, "--checkpoint", lifter, "--out", tmp_path / "res", "--render", tmp_path / "v.html", "--device", "cpu").exit_code == 0  # fmt: skip
    shot, page = tmp_path / "shot.png", f"file://{tmp_path / 'v.html'}"
    # WebGL in software (SwiftShader); without it plotly shows a "WebGL is not supported" note.
    flags = ["chromium", "--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
             "--ignore-gpu-blocklist", "--window-size=900,700", "--virtual-time-budget=6000"]  # fmt: skip
    subprocess.run([*flags, f"--screenshot={shot}", page], capture_output=True, timeout=120, check=False)
    dom = subprocess.run([*flags, "--dump-dom", page], capture_output=True, text=True, timeout=120, check=False).stdout
    assert re.search(r"<canvas width=\"\d+\"", dom), "the 3D scene drew no WebGL canvas"
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pixels.std() > 5.0  # not a blank page
    track_blue = (np.abs(pixels - [31, 119, 180]).max(axis=-1) < 40).sum()  # the first track's colour
    assert track_blue > 100


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real2d is absent")
@pytest.mark.parametrize(
    "name", sorted(p.name for p in REAL.iterdir() if p.name != "README.md") if REAL.is_dir() else []
)
def test_every_real_file_lifts_with_no_conversion_by_hand(lifter, tmp_path, name):
    result = _cli("lift", REAL / name, "--checkpoint", lifter, "--out", tmp_path / "res", "--device", "cpu", "--export", "mmpose3d")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "res.json").read_text())
    assert sum(len(f["people"]) for f in report["frames"]) > 0
