"""BVH reader, forward kinematics and the mapping to the 17 H36M joints."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from elepose.data.bvh import forward_kinematics, load_h36m_joints, parse_bvh, read_bvh
from elepose.data.mocap_mapping import BUILTIN_MAPPINGS, Y_UP_TO_Z_UP
from elepose.skeleton import BONES, JOINT_NAMES

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _euler(order: str, angles_deg: np.ndarray) -> np.ndarray:
    """Independent reference: scipy, uppercase axes = intrinsic, R = R_1 @ R_2 @ R_3."""
    return Rotation.from_euler(order.upper(), angles_deg, degrees=True).as_matrix()


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:.10g}" for v in values)


def _chain_bvh(root_order: str, child_order: str, motion: np.ndarray) -> str:
    """Root (3 positions + rotations in ``root_order``) -> Child (rotations) -> End Site."""
    rotations = [f"{a.upper()}rotation" for a in root_order]
    root_ch = " ".join(["Xposition", "Yposition", "Zposition"] + rotations)
    child_ch = " ".join(f"{a.upper()}rotation" for a in child_order)
    rows = "\n".join(_fmt(r) for r in motion)
    return (
        "HIERARCHY\nROOT Root\n{\n  OFFSET 0 0 0\n"
        f"  CHANNELS {3 + len(root_order)} {root_ch}\n"
        "  JOINT Child\n  {\n    OFFSET 1.5 -2 0.5\n"
        f"    CHANNELS {len(child_order)} {child_ch}\n"
        "    End Site\n    {\n      OFFSET 0 3 1\n    }\n  }\n}\n"
        f"MOTION\nFrames: {len(motion)}\nFrame Time: 0.0333333\n{rows}\n"
    )


@pytest.mark.parametrize(
    "root_order, child_order",
    [("zxy", "zxy"), ("zyx", "xyz"), ("xyz", "yzx"), ("yxz", "zyx")],
)
def test_fk_of_a_chain_matches_scipy_intrinsic_euler(root_order: str, child_order: str) -> None:
    rng = np.random.default_rng(0)
    frames = 5
    motion = np.concatenate([rng.normal(0, 10, (frames, 3)), rng.uniform(-170, 170, (frames, 6))], axis=1)
    bvh = parse_bvh(_chain_bvh(root_order, child_order, motion))
    got = forward_kinematics(bvh)

    r_root = _euler(root_order, motion[:, 3:6])
    r_child = _euler(child_order, motion[:, 6:9])
    root = motion[:, :3]
    child = root + r_root @ np.array([1.5, -2.0, 0.5])
    end = child + (r_root @ r_child) @ np.array([0.0, 3.0, 1.0])
    assert bvh.names == ("Root", "Child", "Child_end")
    np.testing.assert_allclose(got, np.stack([root, child, end], axis=1), atol=1e-9)


def test_six_channel_joint_mid_chain_replaces_offset_and_rotates_children() -> None:
    text = """HIERARCHY
ROOT A
{
  OFFSET 0 0 0
  CHANNELS 3 Yrotation Xrotation Zrotation
  JOINT B
  {
    OFFSET 100 200 300
    CHANNELS 6 Zrotation Xposition Yposition Zposition Xrotation Yrotation
    JOINT C
    {
      OFFSET 0 1 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 2 0 0
      }
      End Site
      {
        OFFSET 0 0 4
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.008333
10 20 30 40 1 2 3 50 60 70 80 90
-5 0 15 -25 0.5 -1 2 35 -45 0 10 -20
"""
    bvh = parse_bvh(text)
    m = bvh.motion
    got = forward_kinematics(bvh)
    r_a = _euler("yxz", m[:, 0:3])
    r_b = _euler("zxy", m[:, [3, 7, 8]])
    r_c = _euler("zxy", m[:, 9:12])
    a = np.zeros((2, 3))
    b = a + r_a @ np.array([0, 0, 0.0]) + np.einsum("fij,fj->fi", r_a, m[:, 4:7])
    c = b + (r_a @ r_b) @ np.array([0.0, 1.0, 0.0])
    end1 = c + (r_a @ r_b @ r_c) @ np.array([2.0, 0.0, 0.0])
    end2 = c + (r_a @ r_b @ r_c) @ np.array([0.0, 0.0, 4.0])
    assert bvh.names == ("A", "B", "C", "C_end", "C_end2")
    assert bvh.fps == 120.0
    np.testing.assert_allclose(got, np.stack([a, b, c, end1, end2], axis=1), atol=1e-9)


def test_hierarchy_keywords_may_share_lines() -> None:
    text = (
        "HIERARCHY ROOT R { OFFSET 0 0 0 CHANNELS 3 Xposition Yposition Zposition\n"
        "JOINT J {\tOFFSET 0 -4.25 0\tCHANNELS 1 Zrotation End Site { OFFSET 0 1 0 } } }\n"
        "MOTION\nFrames: 1\nFrame Time: .0083333\n1 2 3 90\n"
    )
    got = forward_kinematics(parse_bvh(text))
    np.testing.assert_allclose(got[0], [[1, 2, 3], [1, -2.25, 3], [0, -2.25, 3]], atol=1e-12)


# --- the 17-joint conversion on a small synthetic skeleton -------------------------------

_TOY_JOINTS = {  # name: (parent, offset), Y up, centimetres; the person faces +Z.
    "Hips": (None, (0, 100, 0)),
    "LHip": ("Hips", (10, -5, 0)),
    "LKnee": ("LHip", (0, -45, 0)),
    "LAnkle": ("LKnee", (0, -45, 0)),
    "RHip": ("Hips", (-10, -5, 0)),
    "RKnee": ("RHip", (0, -45, 0)),
    "RAnkle": ("RKnee", (0, -45, 0)),
    "Spine": ("Hips", (0, 25, 0)),
    "Chest": ("Spine", (0, 25, 0)),
    "Head": ("Chest", (0, 10, 0)),
    "LArm": ("Chest", (18, 0, 0)),
    "LElbow": ("LArm", (28, 0, 0)),
    "LWrist": ("LElbow", (25, 0, 0)),
    "RArm": ("Chest", (-18, 0, 0)),
    "RElbow": ("RArm", (-28, 0, 0)),
    "RWrist": ("RElbow", (-25, 0, 0)),
}
_TOY_MAPPING = {
    "units_to_metres": 0.01,
    "up": "y",
    "pelvis": "Hips",
    "right_hip": "RHip",
    "right_knee": "RKnee",
    "right_ankle": "RAnkle",
    "left_hip": "LHip",
    "left_knee": "LKnee",
    "left_ankle": "LAnkle",
    "spine": "Spine",
    "thorax": "Chest",
    "neck": {"mean": ["Chest", "Head"]},
    "head": {"extend": ["Chest", "Head"], "metres": 0.15},
    "left_shoulder": "LArm",
    "left_elbow": "LElbow",
    "left_wrist": "LWrist",
    "right_shoulder": "RArm",
    "right_elbow": "RElbow",
    "right_wrist": "RWrist",
}


def _toy_bvh(frames: int = 3, drop_joint: str | None = None) -> str:
    lines = ["HIERARCHY"]
    children: dict[str | None, list[str]] = {}
    for name, (parent, _) in _TOY_JOINTS.items():
        if name != drop_joint:
            children.setdefault(parent, []).append(name)
    columns = 0

    def emit(name: str, depth: int) -> None:
        nonlocal columns
        pad = "  " * depth
        kind = "ROOT" if _TOY_JOINTS[name][0] is None else "JOINT"
        channels = "3 Zrotation Xrotation Yrotation"
        if kind == "ROOT":
            channels = "6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"
        columns += 6 if kind == "ROOT" else 3
        offset = _fmt(np.array(_TOY_JOINTS[name][1], float))
        lines.extend([f"{pad}{kind} {name}", f"{pad}{{", f"{pad}  OFFSET {offset}"])
        lines.append(f"{pad}  CHANNELS {channels}")
        for child in children.get(name, []):
            emit(child, depth + 1)
        if not children.get(name):
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET 0 0 0", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    emit("Hips", 0)
    motion = np.zeros((frames, columns))
    motion[:, 0:3] = [[0, 100, 0]] * frames  # root position, cm
    motion[:, 0] = np.arange(frames) * 10.0  # walks along +x in the file frame
    lines += ["MOTION", f"Frames: {frames}", "Frame Time: 0.0333333"]
    lines += [_fmt(row) for row in motion]
    return "\n".join(lines) + "\n"


def test_mapping_gives_metres_z_up_with_mean_and_extend(tmp_path: Path) -> None:
    path = tmp_path / "toy_clip.bvh"
    path.write_text(_toy_bvh())
    clip = load_h36m_joints(path, _TOY_MAPPING)
    assert clip.name == "toy_clip" and clip.fps == 30.0
    assert clip.positions.shape == (3, 17, 3)
    p = clip.positions[0]
    # Y-up (x, y, z) cm -> Z-up (x, -z, y) m.
    np.testing.assert_allclose(p[JOINT_NAMES.index("pelvis")], [0, 0, 1.0], atol=1e-12)
    np.testing.assert_allclose(p[JOINT_NAMES.index("left_hip")], [0.10, 0, 0.95], atol=1e-12)
    np.testing.assert_allclose(p[JOINT_NAMES.index("thorax")], [0, 0, 1.5], atol=1e-12)
    np.testing.assert_allclose(p[JOINT_NAMES.index("neck")], [0, 0, 1.55], atol=1e-12)
    np.testing.assert_allclose(p[JOINT_NAMES.index("head")], [0, 0, 1.75], atol=1e-12)
    np.testing.assert_allclose(clip.positions[2, 0], [0.2, 0, 1.0], atol=1e-12)
    assert clip.source_joints == tuple(_TOY_JOINTS)


def test_y_up_to_z_up_is_a_proper_rotation() -> None:
    assert np.linalg.det(Y_UP_TO_Z_UP) == pytest.approx(1.0)
    np.testing.assert_allclose(Y_UP_TO_Z_UP @ Y_UP_TO_Z_UP.T, np.eye(3))
    np.testing.assert_allclose(Y_UP_TO_Z_UP @ [1.0, 2.0, 3.0], [1.0, -3.0, 2.0])


def test_mapping_file_with_drop_first_frames_and_z_up(tmp_path: Path) -> None:
    bvh_path = tmp_path / "toy.bvh"
    bvh_path.write_text(_toy_bvh(frames=4))
    mapping_path = tmp_path / "toy_mapping.json"
    mapping_path.write_text(json.dumps(dict(_TOY_MAPPING, up="z", drop_first_frames=1)))
    clip = load_h36m_joints(bvh_path, mapping_path)
    assert clip.positions.shape == (3, 17, 3)
    np.testing.assert_allclose(clip.positions[0, 0], [0.1, 1.0, 0.0], atol=1e-12)
    clip_str = load_h36m_joints(bvh_path, str(mapping_path))
    np.testing.assert_array_equal(clip_str.positions, clip.positions)


# --- bad input ----------------------------------------------------------------------------


def test_truncated_motion_rows_raise(tmp_path: Path) -> None:
    path = tmp_path / "short.bvh"
    path.write_text(_toy_bvh(frames=3).rstrip("\n").rsplit("\n", 1)[0] + "\n")
    with pytest.raises(ValueError, match=r"short\.bvh.*3 frames.*2 rows"):
        read_bvh(path)


def test_row_with_missing_values_raises(tmp_path: Path) -> None:
    path = tmp_path / "cut.bvh"
    path.write_text(_toy_bvh(frames=3).rstrip("\n").rsplit(" ", 2)[0] + "\n")
    with pytest.raises(ValueError, match=r"cut\.bvh.*channels"):
        read_bvh(path)


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1.0x"])
def test_non_finite_or_garbled_motion_raises(tmp_path: Path, bad: str) -> None:
    text = _toy_bvh(frames=2)
    head, body = text.split("Frame Time: 0.0333333\n")
    path = tmp_path / "bad.bvh"
    path.write_text(head + "Frame Time: 0.0333333\n" + body.replace("100", bad, 1))
    with pytest.raises(ValueError, match=r"bad\.bvh.*(non-finite|only numbers)"):
        read_bvh(path)


def test_hierarchy_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.bvh"
    path.write_text(_toy_bvh().replace("3 Zrotation Xrotation", "3 Zrotation Qrotation", 1))
    with pytest.raises(ValueError, match=r"broken\.bvh.*unknown channel"):
        read_bvh(path)
    path.write_text(_toy_bvh().split("MOTION")[0])
    with pytest.raises(ValueError, match=r"broken\.bvh.*MOTION"):
        read_bvh(path)


def test_missing_source_joint_raises(tmp_path: Path) -> None:
    path = tmp_path / "no_knee.bvh"
    path.write_text(_toy_bvh(drop_joint="LAnkle"))
    with pytest.raises(ValueError, match=r"no_knee\.bvh.*LAnkle"):
        load_h36m_joints(path, _TOY_MAPPING)


def test_unknown_skeleton_cannot_be_detected(tmp_path: Path) -> None:
    path = tmp_path / "toy.bvh"
    path.write_text(_toy_bvh())
    with pytest.raises(ValueError, match=r"toy\.bvh.*cannot tell the skeleton"):
        load_h36m_joints(path)


def test_unknown_builtin_name_raises(tmp_path: Path) -> None:
    path = tmp_path / "toy.bvh"
    path.write_text(_toy_bvh())
    with pytest.raises(ValueError, match=r"unknown mapping 'cmu-maya'.*bandai"):
        load_h36m_joints(path, "cmu-maya")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"nose": "Head"}, r"unknown key.*nose"),
        ({"left_wrist": None}, r"missing H36M joint.*left_wrist"),
        ({"head": {"extend": ["Chest"], "metres": 0.1}}, r"head: expected"),
        ({"head": {"extend": ["Chest", "Head"]}}, r"head: expected"),
        ({"up": "x"}, r"up: expected"),
        ({"units_to_metres": -1}, r"units_to_metres"),
    ],
)
def test_bad_mapping_file_raises_naming_it(tmp_path: Path, change: dict, message: str) -> None:
    bvh_path = tmp_path / "toy.bvh"
    bvh_path.write_text(_toy_bvh())
    raw = dict(_TOY_MAPPING, **change)
    raw = {k: v for k, v in raw.items() if v is not None}
    mapping_path = tmp_path / "my_mapping.json"
    mapping_path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"my_mapping\.json.*" + message):
        load_h36m_joints(bvh_path, mapping_path)


# --- the shared motion-capture files ------------------------------------------------------

# Bones that a 17-joint reduction cannot keep rigid (they span a joint the 17 skip), with the
# largest spread measured over the shared files; every other bone is a fixed parent-child
# link in the source skeleton and must stay constant to < 1 mm.
_ARTICULATED = {
    "bandai": {
        ("spine", "thorax"): 0.013,
        ("thorax", "left_shoulder"): 0.024,
        ("thorax", "right_shoulder"): 0.028,
    },
    "cmu-motionbuilder": {},
    "cmu-3dsmax": {("neck", "head"): 0.0033},
}


def _source(path: Path) -> str:
    if "bandai" in path.parts:
        return "bandai"
    return "cmu-3dsmax" if path.name.startswith("131_") else "cmu-motionbuilder"


@pytest.fixture(scope="module")
def shared_clips() -> dict[Path, tuple[int, object]]:
    if not DATA.is_dir():
        pytest.skip(f"shared motion-capture data not found at {DATA}")
    files = sorted(DATA.rglob("*.bvh"))
    if not files:
        pytest.skip(f"no BVH files under {DATA}")
    start = time.perf_counter()
    clips = {}
    for path in files:
        header = re.search(r"Frames:\s*(\d+)", path.read_text(encoding="utf-8"))
        clips[path] = (int(header.group(1)), load_h36m_joints(path))
    elapsed = time.perf_counter() - start
    print(f"\nloaded {len(files)} shared BVH files in {elapsed:.1f} s")
    return clips


def test_every_shared_file_loads_with_header_frame_count(shared_clips: dict) -> None:
    assert len(shared_clips) >= 900
    for path, (frames, clip) in shared_clips.items():
        drop = BUILTIN_MAPPINGS[_source(path)].get("drop_first_frames", 0)
        assert clip.positions.shape == (frames - drop, 17, 3), path
        assert np.isfinite(clip.positions).all(), path
        assert clip.fps == (30.0 if _source(path) == "bandai" else 120.0), path


def test_shared_bone_lengths_are_constant(shared_clips: dict) -> None:
    for path, (_, clip) in shared_clips.items():
        p = clip.positions
        articulated = _ARTICULATED[_source(path)]
        for a, b in BONES:
            length = np.linalg.norm(p[:, a] - p[:, b], axis=-1)
            spread = length.max() - length.min()
            limit = articulated.get((JOINT_NAMES[a], JOINT_NAMES[b]), 0.0) + 0.001
            bone = f"{JOINT_NAMES[a]}-{JOINT_NAMES[b]}"
            assert spread < limit, f"{path.name}: {bone} spread {spread * 1000:.2f} mm"


def test_shared_people_have_plausible_height(shared_clips: dict) -> None:
    # Stature along the skeleton, independent of the pose: ankle -> knee -> hip plus
    # pelvis -> spine -> thorax -> neck -> head top (the feet below the ankles are not
    # counted). Measured: Bandai 1.46-1.48 m, CMU MotionBuilder 1.37 m, CMU 3ds Max (subject 131)
    # 1.30 m. Both CMU conversions have short torsos: the neck and the clavicles start at
    # the top of the upper back (zero offset), so 1.25 m is the lower bound here.
    chain = [(2, 3), (1, 2), (0, 7), (7, 8), (8, 9), (9, 10)]
    for path, (_, clip) in shared_clips.items():
        p = clip.positions
        height = sum(np.median(np.linalg.norm(p[:, a] - p[:, b], axis=-1)) for a, b in chain)
        assert 1.25 < height < 2.0, f"{path.name}: height {height:.3f} m"
        # Z up: the head is well above the pelvis most of the time (bows and dances bend down).
        assert np.median(p[:, 10, 2] - p[:, 0, 2]) > 0.25, f"{path.name}: head not above pelvis"


@pytest.mark.parametrize(
    "relative, name, toes",
    [
        (
            "bandai/Bandai-Namco-Research-Motiondataset-1/data/dataset-1_walk_normal_001.bvh",
            "bandai",
            ("Toes_R", "Toes_L"),
        ),
        ("cmu/02_01.bvh", "cmu-motionbuilder", ("RightToeBase", "LeftToeBase")),
        ("cmu/131_01.bvh", "cmu-3dsmax", ("RightToe", "LeftToe")),
    ],
)
def test_left_stays_left_on_real_walks(relative: str, name: str, toes: tuple[str, str]) -> None:
    path = DATA / relative
    if not path.is_file():
        pytest.skip(f"{path} not found")
    # Map the wrists to the toes to see which way the feet point, in the output frame.
    mapping = dict(BUILTIN_MAPPINGS[name], right_wrist=toes[0], left_wrist=toes[1])
    p = load_h36m_joints(path, mapping).positions
    forward = (p[:, 16] - p[:, 3]) + (p[:, 13] - p[:, 6])
    forward[:, 2] = 0.0
    person_left = np.cross([0.0, 0.0, 1.0], forward)  # right-handed, Z up: left = up x forward
    hips = np.einsum("fi,fi->f", p[:, 4] - p[:, 1], person_left)
    shoulders = np.einsum("fi,fi->f", p[:, 11] - p[:, 14], person_left)
    assert (hips > 0).all() and (shoulders > 0).all()
    # And the feet point the way the person walks.
    travel = p[-1, 0] - p[0, 0]
    assert np.dot(travel[:2], forward.mean(0)[:2]) > 0


def test_fk_matches_scipy_on_a_real_file() -> None:
    path = DATA / "cmu" / "131_01.bvh"  # mixed ZYX and ZXY channel orders
    if not path.is_file():
        pytest.skip(f"{path} not found")
    bvh = read_bvh(path)
    got = forward_kinematics(bvh)[10]
    row = bvh.motion[10]
    world_pos, world_rot = {}, {}
    for j, joint in enumerate(bvh.joints):
        translation = joint.offset.copy()
        order, angles = "", []
        for k, channel in enumerate(joint.channels):
            value = row[joint.first_column + k]
            if channel.endswith("position"):
                translation["XYZ".index(channel[0])] = value
            else:
                order += channel[0]
                angles.append(value)
        local = Rotation.from_euler(order, angles, degrees=True) if order else Rotation.identity()
        if joint.parent < 0:
            world_pos[j], world_rot[j] = translation, local
        else:
            world_pos[j] = world_pos[joint.parent] + world_rot[joint.parent].apply(translation)
            world_rot[j] = world_rot[joint.parent] * local
    expected = np.stack([world_pos[j] for j in range(len(bvh.joints))])
    np.testing.assert_allclose(got, expected, atol=1e-9)
