"""Pictures: valid PNG / GIF files, content that follows the pose, side colours, clear errors."""

import shutil

import numpy as np
import pytest
from PIL import Image

import elepose.lift.render as render
from elepose.evaluate.figures import SIDE_COLOURS, bone_colours, joint_colours, joint_side
from elepose.lift.render import render_pose, render_sequence
from elepose.skeleton import BONES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def poses(frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random camera-frame poses 5 m in front of the camera and their pinhole projections (px)."""
    rng = np.random.default_rng(seed)
    poses_3d = rng.normal(0.0, 0.3, (frames, 17, 3)) + [0.0, 0.0, 5.0]
    keypoints_2d = 1000.0 * poses_3d[..., :2] / poses_3d[..., 2:] + 500.0
    return keypoints_2d, poses_3d


def test_joint_sides_follow_the_skeleton_names():
    assert joint_side(4) == "left" and joint_side(13) == "left"  # left hip, left wrist
    assert joint_side(1) == "right" and joint_side(16) == "right"  # right hip, right wrist
    assert joint_side(0) == "centre" and joint_side(10) == "centre"  # pelvis, head
    assert joint_colours()[11] == SIDE_COLOURS["left"] and joint_colours()[14] == SIDE_COLOURS["right"]


def test_bone_colours_mark_left_and_right_limbs():
    colours = dict(zip(BONES, bone_colours()))
    assert colours[(0, 4)] == colours[(12, 13)] == SIDE_COLOURS["left"]  # left hip bone, left forearm
    assert colours[(0, 1)] == colours[(15, 16)] == SIDE_COLOURS["right"]  # right hip bone, right forearm
    assert colours[(0, 7)] == colours[(9, 10)] == SIDE_COLOURS["centre"]  # spine, head
    assert SIDE_COLOURS["left"] != SIDE_COLOURS["right"]
    assert sorted(bone_colours().count(SIDE_COLOURS[s]) for s in ("left", "right", "centre")) == [4, 6, 6]


def test_render_pose_writes_a_png_that_changes_with_the_pose(tmp_path):
    (a2, b2), (a3, b3) = poses(2)
    render_pose(tmp_path / "a.png", a2, a3, title="a")
    render_pose(tmp_path / "b.png", b2, b3, title="a")
    for name in ("a.png", "b.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC
    a = np.asarray(Image.open(tmp_path / "a.png").convert("RGB"))
    b = np.asarray(Image.open(tmp_path / "b.png").convert("RGB"))
    assert a.shape == b.shape and a.shape[0] > 100
    assert (a != b).any(axis=-1).mean() > 0.001
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]  # no temporary left


def test_render_pose_shows_left_and_right_colours(tmp_path):
    keypoints_2d, poses_3d = poses(1)
    render_pose(tmp_path / "p.png", keypoints_2d[0], poses_3d[0])
    pixels = np.asarray(Image.open(tmp_path / "p.png").convert("RGB")).reshape(-1, 3)
    for side in ("left", "right"):
        rgb = np.array([int(SIDE_COLOURS[side][i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels - rgb).sum(axis=1) < 10).sum() > 50, side


def test_missing_joints_change_the_picture(tmp_path):
    (k2,), (p3,) = poses(1)
    render_pose(tmp_path / "a.png", k2, p3)
    render_pose(tmp_path / "b.png", k2, p3, missing=np.arange(17) == 13)
    a = np.asarray(Image.open(tmp_path / "a.png").convert("RGB"))
    b = np.asarray(Image.open(tmp_path / "b.png").convert("RGB"))
    assert (a != b).any()


def test_render_pose_rejects_wrong_shapes_and_nan(tmp_path):
    (k2,), (p3,) = poses(1)
    with pytest.raises(ValueError, match=r"keypoints_2d.*\(17, 2\)"):
        render_pose(tmp_path / "x.png", k2[:16], p3)
    bad = p3.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="pose_3d.*NaN"):
        render_pose(tmp_path / "x.png", k2, bad)
    with pytest.raises(ValueError, match=r"missing.*\(17,\)"):
        render_pose(tmp_path / "x.png", k2, p3, missing=np.zeros(16, dtype=bool))
    assert not any(tmp_path.iterdir())


def test_render_sequence_writes_a_gif_with_one_frame_per_pose(tmp_path):
    keypoints_2d, poses_3d = poses(4)
    render_sequence(tmp_path / "s.gif", keypoints_2d, poses_3d, fps=5)
    with Image.open(tmp_path / "s.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 4
    assert [p.name for p in tmp_path.iterdir()] == ["s.gif"]


def test_mp4_without_ffmpeg_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    keypoints_2d, poses_3d = poses(2)
    with pytest.raises(ValueError, match="install ffmpeg or use .gif"):
        render_sequence(tmp_path / "s.mp4", keypoints_2d, poses_3d)
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_mp4_is_written_when_ffmpeg_is_installed(tmp_path):
    keypoints_2d, poses_3d = poses(3)
    render_sequence(tmp_path / "s.mp4", keypoints_2d, poses_3d)
    assert (tmp_path / "s.mp4").read_bytes()[4:8] == b"ftyp"


def test_render_sequence_rejects_other_suffixes_and_mismatched_lengths(tmp_path):
    keypoints_2d, poses_3d = poses(3)
    with pytest.raises(ValueError, match=r"\.gif or \.mp4"):
        render_sequence(tmp_path / "s.avi", keypoints_2d, poses_3d)
    with pytest.raises(ValueError, match=r"poses_3d.*\(3, 17, 3\)"):
        render_sequence(tmp_path / "s.gif", keypoints_2d, poses_3d[:2])
