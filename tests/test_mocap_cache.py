"""The benchmark cache: subsampling, motion filter, crc32 split, determinism, atomic output, CLI errors."""

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from elepose.data.cache import load_manifest, load_split, write_cache
from elepose.data.cameras import CameraOptions
from elepose.data.mocap import (
    BuildOptions,
    assign_splits,
    build_from_clips,
    content_group,
    dataset_label,
    detection_noise,
    motion_filter,
    render_clip,
    subsample_indices,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# A person standing at the origin facing world +X (Z up, metres).
STANDING = np.array(
    [
        [0, 0, 1.0],
        [0, -0.1, 1.0],
        [0, -0.1, 0.55],
        [0, -0.1, 0.1],
        [0, 0.1, 1.0],
        [0, 0.1, 0.55],
        [0, 0.1, 0.1],
        [0, 0, 1.25],
        [0, 0, 1.5],
        [0.05, 0, 1.6],
        [0, 0, 1.75],
        [0, 0.2, 1.45],
        [0, 0.25, 1.2],
        [0, 0.27, 0.95],
        [0, -0.2, 1.45],
        [0, -0.25, 1.2],
        [0, -0.27, 0.95],
    ]
)


@dataclass
class Clip:
    positions: np.ndarray
    fps: float
    name: str


def walking_clip(name: str, frames: int = 150, fps: float = 30.0, speed: float = 1.2) -> Clip:
    """Walks along +X at ``speed`` m/s swinging the arms (enough travel for several windows)."""
    time = np.arange(frames) / fps
    positions = np.repeat(STANDING[None], frames, axis=0)
    positions[:, :, 0] += speed * time[:, None]
    swing = 0.25 * np.sin(2 * np.pi * time)
    positions[:, [12, 13], 0] += swing[:, None]
    positions[:, [15, 16], 0] -= swing[:, None]
    return Clip(positions, fps, name)


@pytest.fixture(scope="module")
def cli():
    from elepose.cli import _register_all, app

    if not any(group.name == "data" for group in app.registered_groups):
        _register_all()
    return CliRunner(), app


def test_subsample_to_10_fps():
    np.testing.assert_array_equal(subsample_indices(10, 30.0), [0, 3, 6, 9])
    np.testing.assert_array_equal(subsample_indices(25, 120.0), [0, 12, 24])
    np.testing.assert_array_equal(subsample_indices(3, 10.0), [0, 1, 2])


def test_motion_filter_keeps_frames_that_moved_40_mm():
    # Joint 13 (left wrist) moves along x relative to the pelvis; the whole body also translates
    # by a metre a frame, which must not count (pelvis-relative).
    offsets = [0.0, 0.02, 0.039, 0.041, 0.06, 0.10, 0.139, 0.15]
    positions = np.repeat(STANDING[None], len(offsets), axis=0)
    positions[:, 13, 0] += offsets
    positions[:, :, 0] += np.arange(len(offsets))[:, None]
    # kept: 0 (first); 3 (0.041 - 0 >= 0.04); 5 (0.10 - 0.041); 7 (0.15 - 0.10); 6 is 0.039 from 5
    np.testing.assert_array_equal(motion_filter(positions), [0, 3, 5, 7])


def test_motion_filter_takes_the_largest_joint_distance():
    positions = np.repeat(STANDING[None], 3, axis=0)
    positions[1, 2, 1] += 0.03  # one joint 30 mm: dropped
    positions[2, 5, 2] += 0.05  # another joint 50 mm from frame 0: kept
    np.testing.assert_array_equal(motion_filter(positions), [0, 2])


def test_test_clips_are_not_motion_filtered():
    still = Clip(np.repeat(STANDING[None], 30, axis=0), 30.0, "still")
    train = render_clip(still, "train", "synthetic", BuildOptions())
    test = render_clip(still, "test", "synthetic", BuildOptions())
    np.testing.assert_array_equal(np.unique(train.frame), [0])
    np.testing.assert_array_equal(np.unique(test.frame), np.arange(0, 30, 3))


def test_crc32_split_every_fifth_per_dataset_and_content():
    walk1 = [f"dataset-1_walk_style{i}_001" for i in range(12)]
    walk2 = [f"dataset-2_walk_style{i}_001" for i in range(4)]  # fewer than 5: all train
    run1 = [f"dataset-1_run_style{i}_001" for i in range(5)]
    splits = assign_splits(walk1 + walk2 + run1, "bandai")
    for group in (walk1, walk2, run1):
        crc = np.array([zlib.crc32(s.encode("utf-8")) for s in group], dtype=np.int64)
        rank = np.argsort(np.argsort(crc))  # position of each clip in its group sorted by crc
        expected = {s: ("test" if r in (4, 9, 14) else "train") for s, r in zip(group, rank)}
        assert {s: splits[s] for s in group} == expected
    assert sum(v == "test" for v in splits.values()) == 2 + 0 + 1


def test_non_bandai_names_form_one_group_per_source():
    stems = ["02_01", "05_06", "131_01", "131_02", "131_03"]
    assert {content_group(s, "cmu") for s in stems} == {"cmu"}
    assert dataset_label("dataset-2_run_active_001", "bandai") == "bandai-2"
    crc = [zlib.crc32(s.encode()) for s in stems]
    last = stems[int(np.argmax(crc))]  # five clips: the 5th by crc32 is the test clip
    assert [s for s, v in assign_splits(stems, "cmu").items() if v == "test"] == [last]


def test_detection_noise_jitter_and_outliers():
    rng = np.random.default_rng(0)
    jitter = detection_noise(rng, (20000, 17), BuildOptions(outlier_prob=0.0))
    assert jitter.std() == pytest.approx(4.0, rel=0.02)
    outliers = detection_noise(rng, (2000,), BuildOptions(noise_px=0.0, outlier_prob=1.0))
    np.testing.assert_allclose(np.linalg.norm(outliers, axis=-1), 25.0)
    mixed = detection_noise(rng, (20000, 17), BuildOptions(noise_px=0.0))
    assert (np.linalg.norm(mixed, axis=-1) > 0).mean() == pytest.approx(0.02, abs=0.003)


def test_views_with_a_joint_outside_the_image_are_dropped():
    close = BuildOptions(cameras=CameraOptions(distance=1.2, elevation_std_deg=20.0))  # person fills the frame
    rendered = render_clip(walking_clip("near", frames=60), "test", "synthetic", close)
    assert 0 < len(rendered.frame) < 20 * 4
    assert ((rendered.poses_2d >= 0) & (rendered.poses_2d < 1000)).all()


def _build(clips, splits, seed=0):
    return build_from_clips([(c, splits[c.name], "synthetic") for c in clips], BuildOptions(seed=seed))


def test_poses_are_consistent_with_the_recorded_cameras():
    clip = walking_clip("walker")
    cache = _build([clip, walking_clip("other", frames=30)], {"walker": "test", "other": "train"})
    split = cache.test
    assert len(split) > 0 and len(split.camera_K) % 4 == 0 and len(split.camera_K) >= 8  # 6 m walked: > 1 window
    world = clip.positions[split.frame]
    R, t, K = split.camera_R[split.view], split.camera_t[split.view], split.camera_K[split.view]
    cam = np.einsum("nij,nkj->nki", R.astype(np.float64), world) + t[:, None]
    np.testing.assert_allclose(split.poses_3d, cam, atol=1e-4)
    uv = cam[..., :2] / cam[..., 2:] * K[:, None, [0, 1], [0, 1]] + K[:, None, [0, 1], [2, 2]]
    np.testing.assert_allclose(split.poses_2d, uv, atol=1e-2)
    assert ((split.poses_2d >= 0) & (split.poses_2d < 1000)).all()


def test_same_seed_gives_identical_bytes(tmp_path):
    clips = [walking_clip(f"clip{i}", frames=60 + 15 * i) for i in range(3)]
    splits = {"clip0": "train", "clip1": "test", "clip2": "train"}
    write_cache(tmp_path / "a", _build(clips, splits))
    write_cache(tmp_path / "b", _build(clips, splits))
    write_cache(tmp_path / "c", _build(clips, splits, seed=1))
    for name in ("train.npz", "test.npz", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "train.npz").read_bytes() != (tmp_path / "c" / "train.npz").read_bytes()
    manifest = load_manifest(tmp_path / "a")
    assert manifest["counts"]["train"]["poses"] == len(load_split(tmp_path / "a" / "train.npz"))
    assert len(manifest["bone_ratios"]) == 16


def test_a_subset_builds_the_same_cameras_and_poses_for_a_shared_clip():
    clips = [walking_clip(f"clip{i}", frames=90) for i in range(3)]
    splits = {c.name: "train" for c in clips}
    full = _build(clips, splits).train
    alone = _build([clips[1]], splits).train
    in_full = full.camera_clip == list(full.clip_names).index("clip1")
    np.testing.assert_array_equal(full.camera_R[in_full], alone.camera_R)
    np.testing.assert_array_equal(full.camera_t[in_full], alone.camera_t)
    pose_in_full = full.pose_clip == list(full.clip_names).index("clip1")
    np.testing.assert_array_equal(full.poses_2d_detected[pose_in_full], alone.poses_2d_detected)


def test_write_cache_replaces_an_existing_folder_only_on_success(tmp_path):
    out = tmp_path / "cache"
    out.mkdir()
    (out / "old.txt").write_text("old")
    clips = [walking_clip("a", frames=30), walking_clip("b", frames=30)]
    write_cache(out, _build(clips, {"a": "train", "b": "test"}))
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "test.npz", "train.npz"]
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]  # no temporary folders left


def test_cli_empty_folder_fails_cleanly(cli, tmp_path):
    runner, app = cli
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["data", "build", "--source", str(tmp_path / "empty"), "--out", str(out), "--workers", "1"]
    )
    assert result.exit_code != 0
    assert "error:" in result.output and "empty" in result.output
    assert not out.exists()


def test_cli_bad_file_names_it_and_keeps_the_old_cache(cli, tmp_path):
    pytest.importorskip("elepose.data.bvh")
    runner, app = cli
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "broken.bvh").write_text("HIERARCHY\nROOT Hips\n{\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    args = ["data", "build", "--source", str(folder), "--out", str(out), "--workers", "1", "--overwrite"]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "error:" in result.output and "broken.bvh" in result.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips", "out"]


def test_cli_bad_mapping_fails_cleanly(cli, tmp_path):
    pytest.importorskip("elepose.data.mocap_mapping")
    runner, app = cli
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "a.bvh").write_text("HIERARCHY\n")
    result = runner.invoke(
        app, ["data", "build", "--source", str(folder), "--mapping", "no-such-skeleton", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code != 0 and "error:" in result.output and "--mapping" in result.output
    assert not (tmp_path / "out").exists()


def test_cli_builds_three_real_bandai_clips_reproducibly(cli, tmp_path):
    if not (DATA / "bandai").is_dir():
        pytest.skip("shared motion-capture data absent")
    pytest.importorskip("elepose.data.mocap_mapping")
    runner, app = cli
    args = ["data", "build", "--source", "bandai", "--data-root", str(DATA), "--limit-clips", "3"]
    first = runner.invoke(app, args + ["--out", str(tmp_path / "a"), "--workers", "2"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, args + ["--out", str(tmp_path / "b"), "--workers", "1"])
    assert second.exit_code == 0, second.output
    for name in ("train.npz", "test.npz", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    manifest = load_manifest(tmp_path / "a")
    assert manifest["counts"]["train"]["clips"] + manifest["counts"]["test"]["clips"] == 3
    train = load_split(tmp_path / "a" / "train.npz")
    assert set(train.clip_source.tolist()) <= {"bandai-1", "bandai-2"}
    # A Bandai person is about 1.7 m tall: pelvis-to-head around 0.6-0.8 m in 3D.
    head = np.linalg.norm(train.poses_3d[:, 10] - train.poses_3d[:, 0], axis=-1)
    assert 0.5 < np.median(head) < 0.9
    summary = runner.invoke(app, ["data", "summary", str(tmp_path / "a")])
    assert summary.exit_code == 0 and "bone ratios" in summary.output
