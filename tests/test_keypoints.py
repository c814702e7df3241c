"""Reading detector output: each format as the tools write it, round trips, detection, errors.

Expected H36M poses come from elepose.skeleton's converters on the coordinates, and expected
scores from the source tables written out below (derived joint = minimum of its sources).
"""

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from elepose.data.keypoints import Detections, convert_to_h36m, detect_format, read_keypoints
from elepose.skeleton import coco17_to_h36m, openpose_body25_to_h36m, openpose_coco18_to_h36m
from tests.keypoint_writers import (
    write_array,
    write_coco_json,
    write_mmpose_folder,
    write_mmpose_json,
    write_openpose_folder,
    write_videopose3d_npz,
)

# Source joints of each H36M joint (SPEC section 2; OpenPose names from doc/02_output.md).
COCO17_SOURCES = [
    (11, 12),
    (12,),
    (14,),
    (16,),
    (11,),
    (13,),
    (15,),
    (5, 6, 11, 12),
    (5, 6),
    (0,),
    (1, 2),
    (5,),
    (7,),
    (9,),
    (6,),
    (8,),
    (10,),
]
BODY25_SOURCES = [
    (8,),
    (9,),
    (10,),
    (11,),
    (12,),
    (13,),
    (14,),
    (1, 8),
    (1,),
    (0,),
    (15, 16),
    (5,),
    (6,),
    (7,),
    (2,),
    (3,),
    (4,),
]
COCO18_SOURCES = [
    (8, 11),
    (8,),
    (9,),
    (10,),
    (11,),
    (12,),
    (13,),
    (1, 8, 11),
    (1,),
    (0,),
    (14, 15),
    (5,),
    (6,),
    (7,),
    (2,),
    (3,),
    (4,),
]
PEOPLE_PER_FRAME = (2, 0, 3, 1)  # frame 1 is empty


def expected_scores(scores: np.ndarray, sources) -> np.ndarray:
    return np.stack([scores[..., list(s)].min(axis=-1) for s in sources], axis=-1)


def people(joints: int, seed: int = 0, counts=PEOPLE_PER_FRAME):
    rng = np.random.default_rng(seed)
    frames = [rng.uniform(0, 1000, (k, joints, 2)) for k in counts]
    scores = [rng.uniform(0.05, 1.0, (k, joints)) for k in counts]
    return frames, scores


def assert_people(detections: Detections, frames, scores, convert, sources) -> None:
    counts = [len(f) for f in frames]
    assert detections.num_frames == len(frames)
    np.testing.assert_array_equal(detections.frame, np.repeat(np.arange(len(frames)), counts))
    np.testing.assert_array_equal(detections.person, np.concatenate([np.arange(k) for k in counts]))
    np.testing.assert_allclose(detections.keypoints, convert(np.concatenate(frames)), atol=1e-3)
    np.testing.assert_allclose(detections.scores, expected_scores(np.concatenate(scores), sources), atol=1e-6)
    assert detections.keypoints.dtype == np.float32 and detections.scores.dtype == np.float32
    assert detections.frame.dtype == np.int32 and detections.person.dtype == np.int32


# ---------------------------------------------------------------------------- conversion


def test_derived_joint_scores_are_the_minimum_of_their_sources():
    scores = np.ones(17)
    scores[11] = 0.2  # COCO left hip
    scores[1] = 0.5  # COCO left eye
    xy = np.zeros((17, 2))
    _, h36m = convert_to_h36m(xy, scores, "coco17")
    assert h36m[0] == pytest.approx(0.2)  # pelvis = mid hips
    assert h36m[7] == pytest.approx(0.2)  # spine = mid pelvis, thorax
    assert h36m[4] == pytest.approx(0.2)  # left hip itself
    assert h36m[1] == 1.0 and h36m[8] == 1.0  # right hip, thorax untouched
    assert h36m[10] == pytest.approx(0.5)  # head = mid eyes


def test_conversion_coordinates_follow_the_skeleton_module():
    xy = np.random.default_rng(1).uniform(0, 100, (4, 25, 2))
    out, _ = convert_to_h36m(xy, np.ones((4, 25)), "body25")
    np.testing.assert_allclose(out, openpose_body25_to_h36m(xy))


# ---------------------------------------------------------------------------- round trips


def test_mmpose_video_json_round_trip(tmp_path):
    frames, scores = people(17)
    write_mmpose_json(tmp_path / "video.json", frames, scores)
    d = read_keypoints(tmp_path / "video.json")
    assert d.source_format == "mmpose" and d.frame_names == ("0", "1", "2", "3")
    assert_people(d, frames, scores, coco17_to_h36m, COCO17_SOURCES)


def test_mmpose_folder_round_trip_keeps_empty_frames(tmp_path):
    frames, scores = people(17)
    write_mmpose_folder(tmp_path / "preds", frames, scores)
    d = read_keypoints(tmp_path / "preds")
    assert d.source_format == "mmpose" and d.frame_names == ("000000", "000001", "000002", "000003")
    assert_people(d, frames, scores, coco17_to_h36m, COCO17_SOURCES)


def test_coco_results_round_trip(tmp_path):
    frames, scores = people(17, counts=(2, 3, 1))  # the format cannot hold an empty image
    write_coco_json(tmp_path / "results.json", frames, scores)
    d = read_keypoints(tmp_path / "results.json")
    assert d.source_format == "coco" and d.frame_names == ("0", "1", "2")
    assert_people(d, frames, scores, coco17_to_h36m, COCO17_SOURCES)


@pytest.mark.parametrize(
    "joints,convert,sources",
    [(25, openpose_body25_to_h36m, BODY25_SOURCES), (18, openpose_coco18_to_h36m, COCO18_SOURCES)],
)
def test_openpose_folder_round_trip(tmp_path, joints, convert, sources):
    frames, scores = people(joints)
    write_openpose_folder(tmp_path / "json", frames, scores)
    d = read_keypoints(tmp_path / "json")
    assert d.source_format == "openpose" and d.frame_names[1] == "video_000000000001_keypoints"
    assert_people(d, frames, scores, convert, sources)


def test_videopose3d_npz_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    videos = {"walk.mp4": rng.uniform(0, 1000, (5, 17, 2)), "run.mp4": rng.uniform(0, 1000, (3, 17, 2))}
    write_videopose3d_npz(tmp_path / "data_2d_custom_mine.npz", videos)
    d = read_keypoints(tmp_path / "data_2d_custom_mine.npz")
    assert d.source_format == "videopose3d"
    assert d.frame_names == tuple(f"walk.mp4/{i}" for i in range(5)) + tuple(f"run.mp4/{i}" for i in range(3))
    frames = [v[i : i + 1] for v in videos.values() for i in range(len(v))]
    assert_people(d, frames, [np.ones((1, 17))] * 8, coco17_to_h36m, COCO17_SOURCES)


@pytest.mark.parametrize("name", ["poses.npy", "poses.csv"])
@pytest.mark.parametrize("with_scores", [False, True])
def test_array_round_trip(tmp_path, name, with_scores):
    rng = np.random.default_rng(3)
    poses = rng.uniform(0, 1000, (6, 17, 2))
    scores = rng.uniform(0, 1, (6, 17)) if with_scores else None
    write_array(tmp_path / name, poses, scores)
    d = read_keypoints(tmp_path / name)
    assert d.source_format == "array" and d.frame_names == tuple(str(i) for i in range(6))
    np.testing.assert_allclose(d.keypoints, poses, rtol=1e-6)
    np.testing.assert_allclose(d.scores, np.ones((6, 17)) if scores is None else scores, rtol=1e-6)
    np.testing.assert_array_equal(d.frame, np.arange(6))


def test_csv_without_header_is_read(tmp_path):
    poses = np.arange(2 * 34, dtype=float).reshape(2, 17, 2)
    (tmp_path / "p.csv").write_text("\n".join(",".join(str(v) for v in row) for row in poses.reshape(2, 34)))
    np.testing.assert_array_equal(read_keypoints(tmp_path / "p.csv").keypoints, poses)


# ---------------------------------------------------------------------------- literal files

# One COCO-17 person, hand-written (x, y): nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles.
PERSON = [
    [320, 100],
    [325, 95],
    [315, 95],
    [330, 98],
    [310, 98],
    [345, 140],
    [295, 140],
    [355, 190],
    [285, 190],
    [360, 235],
    [280, 235],
    [335, 240],
    [305, 240],
    [338, 320],
    [302, 320],
    [340, 400],
    [300, 400],
]


def test_mmpose_image_json_as_the_inferencer_writes_it(tmp_path):
    instance = {
        "keypoints": PERSON,
        "keypoint_scores": [0.9] * 11 + [0.3] + [0.9] * 5,
        "bbox": [[270.0, 90.0, 370.0, 410.0]],
        "bbox_score": 0.98,
    }
    other = {
        "keypoints": [[x + 400, y] for x, y in PERSON],
        "keypoint_scores": [0.8] * 17,
        "bbox": [[670.0, 90.0, 770.0, 410.0]],
        "bbox_score": 0.95,
    }
    (tmp_path / "000000000785.json").write_text(json.dumps([instance, other], indent="  "))
    d = read_keypoints(tmp_path / "000000000785.json")
    assert d.source_format == "mmpose" and d.frame_names == ("000000000785",)
    np.testing.assert_array_equal(d.person, [0, 1])
    np.testing.assert_allclose(d.keypoints[0, 0], [320, 240])  # pelvis = mid hips
    np.testing.assert_allclose(d.keypoints[0, 8], [320, 140])  # thorax = mid shoulders
    np.testing.assert_allclose(d.keypoints[0, 7], [320, 190])  # spine
    np.testing.assert_allclose(d.keypoints[0, 10], [320, 95])  # head = mid eyes
    np.testing.assert_allclose(d.keypoints[0, 3], [300, 400])  # right ankle
    np.testing.assert_allclose(d.keypoints[1, 13], [760, 235])  # second person's left wrist
    assert d.scores[0, 0] == pytest.approx(0.3) and d.scores[0, 4] == pytest.approx(0.3)  # left hip 0.3


def test_mmpose_video_json_as_the_inferencer_writes_it(tmp_path):
    instance = '{{"keypoints": {}, "keypoint_scores": {}, "bbox": [[1.0, 2.0, 3.0, 4.0]], "bbox_score": 0.9}}'
    text = f"""[
  {{"frame_id": 0, "instances": [{instance.format(PERSON, [1.0] * 17)}]}},
  {{"frame_id": 1, "instances": []}},
  {{"frame_id": 2, "instances": [{instance.format(PERSON, [0.5] * 17)}]}}
]"""
    (tmp_path / "clip.json").write_text(text)
    d = read_keypoints(tmp_path / "clip.json")
    assert d.frame_names == ("0", "1", "2")
    np.testing.assert_array_equal(d.frame, [0, 2])
    np.testing.assert_allclose(d.scores[1], 0.5)


def test_mmpose_folder_with_an_empty_image_keeps_it_in_name_order(tmp_path):
    (tmp_path / "img_10.json").write_text(json.dumps([{"keypoints": PERSON, "keypoint_scores": [1] * 17}]))
    (tmp_path / "img_2.json").write_text("[]")
    (tmp_path / "img_1.json").write_text(json.dumps([{"keypoints": PERSON, "keypoint_scores": [1] * 17}]))
    (tmp_path / "img_1.jpg").write_bytes(b"not json, ignored")
    (tmp_path / "._img_1.json").write_bytes(b"\x00\x05 hidden (macOS metadata), ignored")
    d = read_keypoints(tmp_path)
    assert d.frame_names == ("img_1", "img_2", "img_10")  # numbers compared as numbers
    np.testing.assert_array_equal(d.frame, [0, 2])


def test_coco_results_as_alphapose_writes_them_grouped_by_first_appearance(tmp_path):
    flat = [v for (x, y) in PERSON for v in (x, y, 0.8)]
    text = json.dumps(
        [
            {"image_id": "1.jpg", "category_id": 1, "keypoints": flat, "score": 2.9, "box": [1, 2, 3, 4], "idx": [0]},
            {"image_id": "0.jpg", "category_id": 1, "keypoints": flat, "score": 2.7, "box": [1, 2, 3, 4], "idx": [0]},
            {"image_id": "1.jpg", "category_id": 1, "keypoints": flat, "score": 2.1, "box": [1, 2, 3, 4], "idx": [1]},
        ]
    )
    (tmp_path / "alphapose-results.json").write_text(text)
    d = read_keypoints(tmp_path / "alphapose-results.json")
    assert d.source_format == "coco" and d.frame_names == ("1.jpg", "0.jpg")
    np.testing.assert_array_equal(d.frame, [0, 0, 1])
    np.testing.assert_array_equal(d.person, [0, 1, 0])
    np.testing.assert_allclose(d.keypoints[0, 0], [320, 240])
    np.testing.assert_allclose(d.scores, 0.8, rtol=1e-6)


OPENPOSE_FRAME = """{"version":1.3,"people":[{"person_id":[-1],"pose_keypoints_2d":[
320,100,0.9, 320,140,0.9, 295,140,0.8, 285,190,0.8, 280,235,0.7, 345,140,0.8, 355,190,0.8, 0,0,0,
320,240,0.9, 305,240,0.8, 302,320,0.8, 300,400,0.8, 335,240,0.6, 338,320,0.8, 340,400,0.8,
315,95,0.9, 325,95,0.9, 310,98,0.5, 330,98,0.5,
345,410,0.4, 350,410,0.4, 338,405,0.4, 295,410,0.4, 290,410,0.4, 302,405,0.4],
"face_keypoints_2d":[],"hand_left_keypoints_2d":[],"hand_right_keypoints_2d":[],
"pose_keypoints_3d":[],"face_keypoints_3d":[],"hand_left_keypoints_3d":[],"hand_right_keypoints_3d":[]}]}"""


def test_openpose_body25_as_openpose_writes_it(tmp_path):
    (tmp_path / "clip_000000000000_keypoints.json").write_text(OPENPOSE_FRAME)
    (tmp_path / "clip_000000000001_keypoints.json").write_text('{"version":1.3,"people":[]}')
    d = read_keypoints(tmp_path)
    assert d.source_format == "openpose" and d.num_frames == 2 and len(d) == 1
    np.testing.assert_allclose(d.keypoints[0, 0], [320, 240])  # pelvis = MidHip
    np.testing.assert_allclose(d.keypoints[0, 8], [320, 140])  # thorax = Neck
    np.testing.assert_allclose(d.keypoints[0, 7], [320, 190])  # spine = mid MidHip, Neck
    np.testing.assert_allclose(d.keypoints[0, 10], [320, 95])  # head = mid eyes
    np.testing.assert_allclose(d.keypoints[0, 16], [280, 235])  # right wrist
    assert d.scores[0, 13] == 0.0  # left wrist written as (0, 0, 0): undetected
    assert d.scores[0, 4] == pytest.approx(0.6)  # left hip
    assert d.missing(0.1).sum() == 1


def test_videopose3d_npz_as_prepare_data_2d_custom_writes_it(tmp_path):
    positions = np.array(PERSON, dtype=np.float32)[None].repeat(4, axis=0)
    metadata = {
        "layout_name": "coco",
        "num_joints": 17,
        "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]],
        "video_metadata": {"input.mp4": {"w": np.int64(1920), "h": np.int64(1080)}},
    }
    np.savez_compressed(
        tmp_path / "data_2d_custom_myvideos.npz", positions_2d={"input.mp4": {"custom": [positions]}}, metadata=metadata
    )
    d = read_keypoints(tmp_path / "data_2d_custom_myvideos.npz")
    assert d.num_frames == 4 and d.frame_names[0] == "input.mp4/0"
    np.testing.assert_allclose(d.keypoints[:, 0], [[320, 240]] * 4)


# ---------------------------------------------------------------------------- detection and override


@pytest.mark.parametrize("kind", ["mmpose", "coco", "openpose", "videopose3d", "array"])
def test_format_is_detected_by_content_whatever_the_file_name(tmp_path, kind):
    frames, scores = people(17, counts=(1, 2))
    target = tmp_path / "detections.dat"
    if kind == "mmpose":
        write_mmpose_json(target, frames, scores)
    elif kind == "coco":
        write_coco_json(target, frames, scores)
    elif kind == "openpose":
        target = tmp_path / "frames"
        write_openpose_folder(target, people(25, counts=(1, 2))[0])
    elif kind == "videopose3d":
        write_videopose3d_npz(tmp_path / "v.npz", {"v": frames[1]})
        (tmp_path / "v.npz").rename(target)
    else:
        write_array(tmp_path / "a.npy", np.ones((3, 17, 2)))
        (tmp_path / "a.npy").rename(target)
    assert detect_format(target) == kind
    assert read_keypoints(target).source_format == kind


def test_format_override_reads_an_empty_image_list(tmp_path):
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(ValueError, match="empty.json.*empty JSON list"):
        read_keypoints(tmp_path / "empty.json")
    d = read_keypoints(tmp_path / "empty.json", format="mmpose")
    assert d.frame_names == ("empty",) and len(d) == 0 and d.keypoints.shape == (0, 17, 2)


def test_format_override_is_obeyed(tmp_path):
    frames, scores = people(17, counts=(1,))
    write_coco_json(tmp_path / "r.json", frames, scores)
    with pytest.raises(ValueError, match=r"r.json.*\[0\]\.keypoints.*17 \(COCO\)"):
        read_keypoints(tmp_path / "r.json", format="mmpose")
    with pytest.raises(ValueError, match="unknown keypoint format 'yolo'"):
        read_keypoints(tmp_path / "r.json", format="yolo")


def test_a_headed_csv_given_any_name_is_read_as_an_array(tmp_path):
    write_array(tmp_path / "p.csv", np.ones((2, 17, 2)))
    (tmp_path / "p.csv").rename(tmp_path / "p.txt")
    assert read_keypoints(tmp_path / "p.txt").source_format == "array"


# ---------------------------------------------------------------------------- errors


def check_error(path: Path, *fragments: str, format: str | None = None) -> None:
    with pytest.raises(ValueError) as info:
        read_keypoints(path, format=format)
    message = str(info.value)
    for fragment in (path.name, *fragments):
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_folder_mixing_openpose_and_mmpose_is_refused(tmp_path):
    write_openpose_folder(tmp_path, people(25, counts=(1,))[0])
    (tmp_path / "z.json").write_text(json.dumps([{"keypoints": PERSON, "keypoint_scores": [1] * 17}]))
    check_error(tmp_path, "mixes formats", "openpose", "mmpose")


def test_unknown_json_layout_is_refused(tmp_path):
    (tmp_path / "x.json").write_text('{"annotations": []}')
    check_error(tmp_path / "x.json", "unknown JSON layout")


def test_wrong_joint_counts_are_refused(tmp_path):
    (tmp_path / "mm.json").write_text(json.dumps([{"keypoints": PERSON[:16], "keypoint_scores": [1] * 16}]))
    check_error(tmp_path / "mm.json", "[0].keypoints", "17", "(16, 2)")
    (tmp_path / "c.json").write_text(json.dumps([{"image_id": 1, "category_id": 1, "keypoints": [1.0] * 48}]))
    check_error(tmp_path / "c.json", "[0].keypoints", "51", "(48,)")
    (tmp_path / "op").mkdir()
    (tmp_path / "op" / "f_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 60}]}))
    check_error(tmp_path / "op", "people[0].pose_keypoints_2d", "75", "got 60")
    np.savez_compressed(tmp_path / "v.npz", positions_2d={"v": {"custom": [np.ones((3, 16, 2))]}})
    check_error(tmp_path / "v.npz", "positions_2d['v']['custom'][0]", "(F, 17, 2)", "(3, 16, 2)")
    np.save(tmp_path / "a.npy", np.ones((3, 16, 2)))
    check_error(tmp_path / "a.npy", "(N, 17, 2)", "(3, 16, 2)")
    (tmp_path / "a.csv").write_text("\n".join([",".join(["1"] * 30)] * 2))
    check_error(tmp_path / "a.csv", "line 1", "34", "got 30")


def test_openpose_models_mixed_within_a_folder_are_refused(tmp_path):
    write_openpose_folder(tmp_path, people(25, counts=(1,))[0], prefix="a")
    write_openpose_folder(tmp_path, people(18, counts=(1,))[0], prefix="b")
    check_error(tmp_path, "b_000000000000_keypoints.json", "coco18", "body25")


def test_nan_coordinates_are_refused(tmp_path):
    bad = [list(p) for p in PERSON]
    bad[5] = [float("nan"), 3.0]
    (tmp_path / "mm.json").write_text(json.dumps([{"keypoints": bad, "keypoint_scores": [1] * 17}]))
    check_error(tmp_path / "mm.json", "[0].keypoints", "joint 5", "NaN")
    poses = np.ones((3, 17, 2))
    poses[2, 4, 1] = np.nan
    np.save(tmp_path / "a.npy", poses)
    check_error(tmp_path / "a.npy", "row 2", "joint 4", "NaN")


def test_nan_in_a_folder_names_the_file(tmp_path):
    bad = [list(p) for p in PERSON]
    bad[0] = [float("inf"), 3.0]
    (tmp_path / "a.json").write_text(json.dumps([{"keypoints": PERSON, "keypoint_scores": [1] * 17}]))
    (tmp_path / "b.json").write_text(json.dumps([{"keypoints": bad, "keypoint_scores": [1] * 17}]))
    check_error(tmp_path, "b.json: [0].keypoints", "joint 0")


def test_negative_scores_are_refused(tmp_path):
    flat = [v for (x, y) in PERSON for v in (x, y, 0.5)]
    flat[3 * 7 + 2] = -0.1
    (tmp_path / "c.json").write_text(json.dumps([{"image_id": 1, "category_id": 1, "keypoints": flat}]))
    check_error(tmp_path / "c.json", "[0].keypoints", "joint 7", "-0.1", ">= 0")
    (tmp_path / "s.json").write_text(json.dumps([{"keypoints": PERSON, "keypoint_scores": [1] * 16 + [-1]}]))
    check_error(tmp_path / "s.json", "[0].keypoint_scores", "joint 16")


@pytest.mark.parametrize("name,content", [("e.json", b""), ("e.json", b"  \n"), ("e.npy", b""), ("e.csv", b"")])
def test_empty_files_are_refused(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    check_error(tmp_path / name, "empty")


def test_empty_folder_and_headers_without_rows_are_refused(tmp_path):
    (tmp_path / "d").mkdir()
    check_error(tmp_path / "d", "no .json files")
    write_array(tmp_path / "p.csv", np.ones((1, 17, 2)))
    (tmp_path / "p.csv").write_text((tmp_path / "p.csv").read_text().splitlines()[0] + "\n")
    check_error(tmp_path / "p.csv", "header but no poses")


def test_invalid_json_is_refused(tmp_path):
    (tmp_path / "t.json").write_text('[{"keypoints": [[1, 2], [3')
    check_error(tmp_path / "t.json", "invalid JSON")
    check_error(tmp_path / "t.json", "invalid JSON", format="coco")


def test_missing_fields_are_named(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps([{"keypoints": PERSON}]))
    check_error(tmp_path / "m.json", "[0]", "missing field 'keypoint_scores'")
    (tmp_path / "v.json").write_text(json.dumps([{"frame_id": 0, "instances": []}, {"instances": []}]))
    check_error(tmp_path / "v.json", "[1]", "missing field 'frame_id'")
    (tmp_path / "c.json").write_text(json.dumps([{"image_id": 1, "category_id": 2, "keypoints": [1] * 51}]))
    check_error(tmp_path / "c.json", "[0].category_id", "person")


def test_missing_path_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        read_keypoints(tmp_path / "nothing.json")


def test_folder_with_a_single_file_format_is_refused(tmp_path):
    write_mmpose_folder(tmp_path, people(17, counts=(1,))[0])
    check_error(tmp_path, "a folder", "'coco'", format="coco")


# ---------------------------------------------------------------------------- safe unpickling


class _TouchOnUnpickle:
    """Unpickling this would create ``marker``: stands for any code a pickle could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_videopose3d_npz_never_runs_code_from_its_pickle(tmp_path):
    marker = tmp_path / "ran"
    np.savez(tmp_path / "evil.npz", positions_2d=np.array({"v": {"custom": [_TouchOnUnpickle(marker)]}}, dtype=object))
    check_error(tmp_path / "evil.npz", "positions_2d", "refusing", "pathlib")
    assert not marker.exists()
    with zipfile.ZipFile(tmp_path / "evil.npz") as z, z.open("positions_2d.npy") as f:  # the pickle really would run it
        np.lib.format.read_array_header_1_0(f) if np.lib.format.read_magic(f) == (1, 0) else None
        pickle.load(f)
    assert marker.exists()


def test_videopose3d_npz_with_an_unexpected_structure_is_refused(tmp_path):
    np.savez(tmp_path / "list.npz", positions_2d=np.array([np.ones((2, 17, 2)), np.ones((2, 17, 2))], dtype=object))
    check_error(tmp_path / "list.npz", "positions_2d", "pickled dict")
    np.savez(tmp_path / "flat.npz", positions_2d=np.array({"v": np.ones((2, 17, 2))}, dtype=object))
    check_error(tmp_path / "flat.npz", "positions_2d['v']", "'custom'")
    np.savez(tmp_path / "none.npz", keypoints=np.ones((2, 17, 2)))
    check_error(tmp_path / "none.npz", "missing field 'positions_2d'")
    np.savez(
        tmp_path / "layout.npz",
        positions_2d=np.array({"v": {"custom": [np.ones((2, 17, 2))]}}),
        metadata=np.array({"layout_name": "mpii"}),
    )
    check_error(tmp_path / "layout.npz", "metadata.layout_name", "'coco' or 'h36m'")


def test_object_npy_array_is_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    check_error(tmp_path / "o.npy", "numeric array")
