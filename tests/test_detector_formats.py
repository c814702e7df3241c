"""What detectors and annotation tools write: AlphaPose / Halpe, COCO dataset files, COCO-WholeBody,
VideoPose3D's h36m layout, track ids; on fixtures written here and on the real files in
``../shared/real2d`` (skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from elepose.data.keypoints import read_keypoints

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real2d"
real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real2d is absent")

RNG = np.random.default_rng(0)


def _halpe26() -> np.ndarray:
    """One Halpe-26 person (26, 2) px with its own head top, neck and pelvis away from COCO's guesses."""
    k = RNG.uniform(100, 400, (26, 2))
    k[17] = [250.0, 40.0]  # Head (top of the head)
    k[18] = [250.0, 120.0]  # Neck
    k[19] = [250.0, 260.0]  # Hip (pelvis)
    return k


def test_halpe26_results_use_halpes_own_head_neck_and_pelvis(tmp_path):
    k = _halpe26()
    entry = {"image_id": "0.jpg", "category_id": 1, "keypoints": np.c_[k, np.ones(26)].ravel().tolist(), "idx": 7}
    (tmp_path / "alphapose-results.json").write_text(json.dumps([entry]))
    d = read_keypoints(tmp_path / "alphapose-results.json")
    assert d.layout == "halpe26" and d.track.tolist() == [7]
    np.testing.assert_allclose(d.keypoints[0, 0], k[19], rtol=1e-6)  # pelvis = Halpe Hip
    np.testing.assert_allclose(d.keypoints[0, 8], k[18], rtol=1e-6)  # thorax = Halpe Neck
    np.testing.assert_allclose(d.keypoints[0, 10], k[17], rtol=1e-6)  # head = Halpe Head
    np.testing.assert_allclose(d.keypoints[0, 7], (k[19] + k[18]) / 2, rtol=1e-6)  # spine
    np.testing.assert_allclose(d.keypoints[0, 1], k[12], rtol=1e-6)  # right hip as COCO's
    np.testing.assert_allclose(d.keypoints[0, 9], k[0], rtol=1e-6)  # neck/nose = the nose


def test_halpe136_and_wholebody133_take_their_body_joints(tmp_path):
    body = _halpe26()
    halpe136 = np.r_[body, RNG.uniform(0, 500, (110, 2))]
    wholebody = np.r_[body[:17], RNG.uniform(0, 500, (116, 2))]
    for name, keypoints in (("h", halpe136), ("w", wholebody)):
        content = [{"frame_id": 0, "instances": [{"keypoints": keypoints.tolist(), "keypoint_scores": [1.0] * len(keypoints)}]}]  # fmt: skip
        (tmp_path / f"{name}.json").write_text(json.dumps(content))
    h, w = read_keypoints(tmp_path / "h.json"), read_keypoints(tmp_path / "w.json")
    assert (h.layout, w.layout) == ("halpe136", "wholebody133")
    np.testing.assert_allclose(h.keypoints[0, 10], body[17], rtol=1e-6)
    np.testing.assert_allclose(w.keypoints[0, 10], (body[1] + body[2]) / 2, rtol=1e-6)  # COCO's mid-eyes


def test_mixed_layouts_and_wrong_counts_are_refused(tmp_path):
    a = {"image_id": 0, "category_id": 1, "keypoints": [1.0] * 51}
    b = {"image_id": 1, "category_id": 1, "keypoints": [1.0] * 78}
    (tmp_path / "mixed.json").write_text(json.dumps([a, b]))
    with pytest.raises(ValueError, match=r"mixed.json: \[1\].keypoints: a halpe26 person among coco17"):
        read_keypoints(tmp_path / "mixed.json")
    (tmp_path / "bad.json").write_text(json.dumps([{"image_id": 0, "category_id": 1, "keypoints": [1.0] * 75}]))
    with pytest.raises(ValueError, match=r"bad.json: \[0\].keypoints: expected 51 .* 78 \(Halpe-26\).*\(75,\)"):
        read_keypoints(tmp_path / "bad.json")


def test_coco_dataset_files_group_by_image_and_skip_crowds_and_empty_people(tmp_path):
    person = np.c_[RNG.uniform(100, 300, (17, 2)), np.full(17, 2.0)]
    person[1, 2] = 0  # the left eye is not labelled
    content = {
        "images": [{"id": 5, "file_name": "a.jpg"}, {"id": 9, "file_name": "b.jpg"}, {"id": 2, "file_name": "c.jpg"}],
        "annotations": [
            {"image_id": 9, "keypoints": person.ravel().tolist(), "num_keypoints": 16, "iscrowd": 0},
            {"image_id": 9, "keypoints": person.ravel().tolist(), "num_keypoints": 16, "iscrowd": 1},
            {"image_id": 5, "keypoints": [0.0] * 51, "num_keypoints": 0, "iscrowd": 0},
            {"image_id": 5, "keypoints": person.ravel().tolist(), "num_keypoints": 16, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "person"}],
    }
    (tmp_path / "person_keypoints_val.json").write_text(json.dumps(content))
    d = read_keypoints(tmp_path / "person_keypoints_val.json")
    assert d.source_format == "coco-dataset" and d.frame_names == ("a.jpg", "b.jpg", "c.jpg")
    assert d.frame.tolist() == [0, 1] and len(d) == 2
    assert d.scores[0, 10] == 0.0 and d.scores[0, 9] == 1.0  # head = mid-eyes: missing with an eye
    assert d.missing(0.3)[0].tolist().count(True) == 1 and "visibility" in d.notes[0]


def test_videopose3d_h36m_layout_and_a_third_channel_that_is_no_confidence(tmp_path):
    poses = RNG.uniform(100, 900, (1, 5, 17, 3)).astype(np.float32)
    poses[..., 2] = RNG.uniform(1e-4, 0.04, (1, 5, 17))
    positions = {"S1": {"Directions 1": poses}}
    np.savez(tmp_path / "skater.npz", positions_2d=np.array(positions), metadata=np.array({"layout_name": "h36m", "num_joints": 17}))  # fmt: skip
    d = read_keypoints(tmp_path / "skater.npz")
    assert d.layout == "h36m" and len(d) == 5 and d.frame_names[0] == "S1/Directions 1/0"
    np.testing.assert_allclose(d.keypoints, poses[0, ..., :2])  # H36M order kept
    assert (d.scores == 1).all() and "not a 0-1 confidence" in d.notes[0]
    poses[..., 2] = RNG.uniform(0.0, 1.0, (1, 5, 17))
    np.savez(tmp_path / "cpn.npz", positions_2d=np.array({"S1": {"Walk": [poses[0]]}}), metadata=np.array({"layout_name": "h36m"}))  # fmt: skip
    d = read_keypoints(tmp_path / "cpn.npz")
    np.testing.assert_allclose(d.scores, poses[0, ..., 2], rtol=1e-6)
    assert d.notes == ()


def test_track_ids_of_mmpose_and_openpose_are_kept(tmp_path):
    pose = RNG.uniform(100, 300, (17, 2)).tolist()
    content = [{"frame_id": 0, "instances": [{"keypoints": pose, "keypoint_scores": [1.0] * 17, "track_id": 3}]}]
    (tmp_path / "v.json").write_text(json.dumps(content))
    assert read_keypoints(tmp_path / "v.json").track.tolist() == [3]
    op = {"people": [{"person_id": [-1], "pose_keypoints_2d": RNG.uniform(1, 300, 75).tolist()}]}
    (tmp_path / "f_keypoints.json").write_text(json.dumps(op))
    assert read_keypoints(tmp_path / "f_keypoints.json", "openpose").track.tolist() == [-1]


EXPECTED = {
    # file: (format, layout, people, frames)
    "alphapose-coco17-multiperson.json": ("coco", "coco17", 2730, 576),
    "alphapose-halpe26-single.json": ("coco", "halpe26", 44, 44),
    "coco-keypoints-annotations.json": ("coco-dataset", "coco17", 12, 4),
    "coco-wholebody-annotations.json": ("coco-dataset", "coco17", 12, 4),
    "halpe-annotations.json": ("coco-dataset", "halpe136", 12, 4),
    "openpose-body25-single.json": ("openpose", "body25", 1, 1),
    "videopose3d-h36m-layout.npz": ("videopose3d", "h36m", 591, 591),
}


@real
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_real_file_is_read_as_its_tool_wrote_it(name):
    d = read_keypoints(REAL / name)
    assert (d.source_format, d.layout, len(d), d.num_frames) == EXPECTED[name]
    assert np.isfinite(d.keypoints).all() and (d.scores >= 0).all()


@real
def test_real_coco_dataset_frames_are_named_by_file_name():
    d = read_keypoints(REAL / "coco-keypoints-annotations.json")
    assert all(name.endswith(".jpg") for name in d.frame_names)
