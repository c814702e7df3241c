"""Property-based fuzzing of everything that reads a user's file or writes where a user says.

For hostile or damaged input, each reader either returns a correct result or raises the one
error type the command line turns into ``error: FILE: field: expected ...`` (a ``ValueError``,
which :class:`~elepose.errors.InputError` and :class:`~elepose.models.io.CheckpointError` are);
never any other exception. The command line, given any output name, exits 0 or 2 and leaves no
partial output. Bounded (a few dozen examples each, no deadline) so the suite stays fast.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from elepose.data.bvh import forward_kinematics, parse_bvh
from elepose.data.keypoints import Detections, read_keypoints
from elepose.data.safe_pickle import load_pickle
from elepose.models import io as run_files
from elepose.models.normalisation import Normalisation
from elepose.models.records import FlowRecord, LifterRecord
from elepose.skeleton import NUM_JOINTS

# derandomize: the same examples on every run (a deterministic suite); no example database on disk.
FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)

KEYS = [
    "frame_id", "instances", "keypoints", "keypoint_scores", "bbox", "bbox_score", "image_id", "category_id",
    "score", "people", "pose_keypoints_2d", "version", "images", "annotations", "id", "file_name",
]  # fmt: skip
numbers = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, 0.5, 1e30, -1e30, 250.0]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=20), st.dictionaries(st.sampled_from(KEYS), children, max_size=6)
    ),
    max_leaves=60,
)


def _mmpose(coordinate, score) -> st.SearchStrategy:
    """MMPose video JSON whose values are drawn from ``coordinate`` and ``score``: close to valid, so it reaches the deep checks."""
    instance = st.fixed_dictionaries(
        {
            "keypoints": st.lists(st.lists(coordinate, min_size=2, max_size=2), min_size=16, max_size=18),
            "keypoint_scores": st.lists(score, min_size=16, max_size=18),
        }
    )
    frame = st.fixed_dictionaries({"frame_id": st.integers(0, 5), "instances": st.lists(instance, max_size=3)})
    return st.lists(frame, min_size=1, max_size=4)


def _must_be_clean(read, *args) -> object | None:
    """Call ``read``: a result, or a ``ValueError`` / ``FileNotFoundError``; anything else fails the test."""
    try:
        return read(*args)
    except (ValueError, FileNotFoundError):
        return None


def _check_detections(detections: Detections) -> None:
    assert detections.keypoints.shape[1:] == (NUM_JOINTS, 2)
    assert np.isfinite(detections.keypoints).all() and np.abs(detections.keypoints).max(initial=0) <= 1e7
    assert (detections.scores >= 0).all() and len(detections.frame_names) >= 1


@FUZZ
@given(content=json_values)
def test_keypoint_readers_take_any_json_cleanly(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "detections.json"
        path.write_text(json.dumps(content))
        result = _must_be_clean(read_keypoints, path)
    if result is not None:
        _check_detections(result)


@FUZZ
@given(content=_mmpose(st.one_of(numbers, scalars), st.one_of(numbers, scalars)))
def test_keypoint_readers_take_near_valid_mmpose_cleanly(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "video.json"
        path.write_text(json.dumps(content))
        result = _must_be_clean(read_keypoints, path, "mmpose")
    if result is not None:
        _check_detections(result)


@FUZZ
@given(data=st.binary(max_size=600), suffix=st.sampled_from([".json", ".npy", ".csv", ".npz", ""]))
def test_keypoint_readers_take_any_bytes_cleanly(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        result = _must_be_clean(read_keypoints, path)
    if result is not None:
        _check_detections(result)


@FUZZ
@given(data=st.binary(max_size=300))
def test_the_restricted_unpickler_takes_any_bytes_cleanly(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sequence.pkl"
        path.write_bytes(b"\x80\x02" + data)
        _must_be_clean(load_pickle, path)


# ----------------------------------------------------------------------------- configs and checkpoints


def _valid_lifter_config() -> dict:
    norm = Normalisation("pose", 100.0)
    flow = FlowRecord(pca_bases=6, blocks=2, hidden=8, normalisation=norm)
    record = LifterRecord(hidden=8, variant="shared", elevation_branch=True, normalisation=norm, flow=flow)
    return record.to_dict()


def _paths(config: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for key, value in config.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out += _paths(value, (*prefix, key))
    return out


@st.composite
def mutated_configs(draw) -> dict:
    config = _valid_lifter_config()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(config)))
        target = config
        for key in path[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            continue
        if draw(st.booleans()):
            target.pop(path[-1], None)
        else:
            target[path[-1]] = draw(json_values)
    return config


@FUZZ
@given(config=mutated_configs())
def test_lifter_records_take_any_config_cleanly(config):
    try:
        record = LifterRecord.from_dict(config, "config.json")
    except ValueError as err:
        assert str(err).startswith("config.json")
        return
    assert 1 <= record.hidden <= 65536 and record.variant in ("shared", "towers")


@pytest.fixture(scope="module")
def lifter_folder(tmp_path_factory) -> Path:
    """A lifter run folder with random weights (no training): what load_lifter reads."""
    folder = tmp_path_factory.mktemp("lifter")
    record = LifterRecord.from_dict(_valid_lifter_config(), "config.json")
    flow = run_files.new_flow(record.flow).fit_pca(torch.randn(64, 17, 2, dtype=torch.float64) * 0.1)
    run_files.save_lifter(folder, run_files.new_lifter(record), flow, record)
    return folder


@FUZZ
@given(config=mutated_configs(), version=st.sampled_from([2, 2, 2, 1, "2", None]))
def test_the_checkpoint_loader_takes_any_config_cleanly(lifter_folder, config, version):
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        shutil.copytree(lifter_folder, run)
        original = json.loads((run / "config.json").read_text())
        config = {**config, "kind": "elepose-lifter", "format_version": version, "checkpoint_files": original["checkpoint_files"]}  # fmt: skip
        (run / "config.json").write_text(json.dumps(config))
        _must_be_clean(run_files.load_lifter, run)


# ----------------------------------------------------------------------------- BVH


@st.composite
def bvh_texts(draw) -> str:
    """A valid BVH of a random chain, then up to three token edits (delete, duplicate, replace)."""
    depth = draw(st.integers(1, 4))
    channels = ["Zrotation", "Xrotation", "Yrotation"]
    tokens = ["HIERARCHY", "ROOT", "Hips", "{", "OFFSET", "0", "0", "0", "CHANNELS", "6"]
    tokens += ["Xposition", "Yposition", "Zposition", *channels]
    for i in range(depth):
        tokens += ["JOINT", f"j{i}", "{", "OFFSET", "0", "1", "0", "CHANNELS", "3", *channels]
    tokens += ["End", "Site", "{", "OFFSET", "0", "1", "0", "}"] + ["}"] * (depth + 1)
    frames = draw(st.integers(1, 3))
    columns = 6 + 3 * depth
    values = [draw(st.floats(-360, 360, allow_nan=False)) for _ in range(frames * columns)]
    tokens += ["MOTION", "Frames:", str(frames), "Frame", "Time:", "0.0333"]
    tokens += [repr(v) for v in values]
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(tokens) - 1))
        edit = draw(st.sampled_from(["delete", "duplicate", "replace"]))
        if edit == "delete":
            del tokens[i]
        elif edit == "duplicate":
            tokens.insert(i, tokens[i])
        else:
            tokens[i] = draw(
                st.sampled_from(["{", "}", "JOINT", "End", "nan", "1e309", "-5", "x", "CHANNELS", "MOTION"])
            )
    return " ".join(tokens) if draw(st.booleans()) else "\n".join(tokens)


@FUZZ
@given(text=bvh_texts())
def test_the_bvh_parser_takes_any_edit_cleanly(text):
    bvh = _must_be_clean(parse_bvh, text, "fuzz.bvh")
    if bvh is not None:
        positions = forward_kinematics(bvh)
        assert positions.shape == (bvh.num_frames, len(bvh.joints), 3) and np.isfinite(positions).all()


# ----------------------------------------------------------------------------- the command line's output paths

# Output names with separators, dots, odd characters and long parts (up to 480 characters).
names = st.lists(st.sampled_from(list("ab.-_ /\\:~é\u00a0*?") + ["..", "x" * 60]), min_size=1, max_size=8).map("".join)


@pytest.fixture(scope="module")
def lift_input(lifter_folder, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("poses")
    poses = np.random.default_rng(0).normal(500, 60, (3, 17, 2)).astype(np.float32)
    np.save(folder / "poses.npy", poses)
    return folder / "poses.npy"


@settings(max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names, render=st.sampled_from([None, ".png", ".gif", ".jpg"]))
def test_lift_output_paths_end_in_success_or_one_error_and_no_partial_output(lifter_folder, lift_input, name, render):
    from elepose.cli import _register_all, app

    _register_all()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "existing.json").write_text("{}")
        (root / "adir.json").mkdir()
        before = sorted(p.relative_to(root) for p in root.rglob("*"))
        out = root / name
        args = ["lift", "--checkpoint", str(lifter_folder), str(lift_input), "--out", str(out), "--device", "cpu"]
        if render is not None:
            args += ["--render", str(out) + "_pic" + render]
        result = CliRunner().invoke(app, args)
        assert result.exit_code in (0, 2), (result.output, result.exception)
        assert "Traceback" not in result.output
        after = sorted(p.relative_to(root) for p in root.rglob("*"))
        if result.exit_code == 2:
            assert after == before, (name, result.output)  # nothing written, nothing removed
        assert (root / "existing.json").read_text() == "{}"  # never replaced without --overwrite


def test_fuzz_strategies_reach_both_outcomes():
    """The near-valid MMPose strategy produces accepted files as well as refused ones (so the fuzzing bites)."""
    good = [[{"frame_id": 0, "instances": [{"keypoints": [[float(i), 2.0 * i] for i in range(17)], "keypoint_scores": [1.0] * 17}]}]]  # fmt: skip
    bad = [[{"frame_id": 0, "instances": [{"keypoints": [[math.nan, "1"]] * 17, "keypoint_scores": [1.0] * 17}]}]]
    with tempfile.TemporaryDirectory() as folder:
        for content, accepted in ((good, True), (bad, False)):
            path = Path(folder) / "v.json"
            path.write_text(json.dumps(content[0]))
            assert (_must_be_clean(read_keypoints, path, "mmpose") is not None) == accepted
