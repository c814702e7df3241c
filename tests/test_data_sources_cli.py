"""`elepose data build --source h36m|3dhp|3dpw` and `elepose data summary` on fixture trees.

The fixtures are written in each dataset's own layout by the helpers of the loader tests; the
expected counts are worked out by hand from those fixtures (comments give the arithmetic).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from elepose.cli import _register_all, app
from elepose.data.cache import load_manifest, load_split
from elepose.geometry import pelvis_head_scale
from elepose.skeleton import BONES, H36M_BONE_RATIOS, MPI_INF_3DHP_BONE_RATIOS
from tests.test_formats_h36m import make_fixture
from tests.test_formats_h36m import write as write_h36m
from tests.test_mpi_inf_3dhp import _write_test_sequence, _write_train_sequence
from tests.test_threedpw import OP18, _sequence
from tests.test_threedpw import _write as write_3dpw_pickle

_register_all()
RUNNER = CliRunner()


def run(*args: str):
    return RUNNER.invoke(app, ["data", *args])


def bone_ratio_reference(poses_3d: np.ndarray) -> np.ndarray:
    """Bone length / the pose's mean bone length, averaged over poses (independent of skeleton.bone_ratios)."""
    p = poses_3d.astype(np.float64)
    lengths = np.stack([np.sqrt(((p[:, a] - p[:, b]) ** 2).sum(-1)) for a, b in BONES], axis=1)
    return (lengths / lengths.mean(axis=1, keepdims=True)).mean(axis=0)


def assert_cache(out: Path, train_poses: int, test_poses: int, dataset: str) -> tuple:
    train, test = load_split(out / "train.npz"), load_split(out / "test.npz")
    manifest = load_manifest(out)
    assert (len(train), len(test)) == (train_poses, test_poses)
    for name, split in (("train", train), ("test", test)):
        counts = manifest["counts"][name]
        assert counts["poses"] == len(split)
        assert counts["per_dataset"] == {
            dataset: {"clips": len(split.clip_names), "frames": counts["frames"], "poses": len(split)}
        }
        assert set(split.clip_source.tolist()) == {dataset}
    assert manifest["scale_2d"] == pytest.approx(
        float(np.linalg.norm(train.poses_2d[:, 10] - train.poses_2d[:, 0], axis=-1).mean()), rel=1e-6
    )
    assert manifest["scale_2d"] == pytest.approx(pelvis_head_scale(train.poses_2d))
    assert np.allclose(manifest["bone_ratios"], bone_ratio_reference(train.poses_3d), atol=1e-5)
    assert manifest["bone_ratio_sets"]["train_split"]["values"] == manifest["bone_ratios"]
    assert manifest["software"]["elepose"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "test.npz", "train.npz"]
    return train, test, manifest


def assert_failed_cleanly(result, out: Path, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    for word in words:
        assert word in result.output, result.output
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no temp folder left


# ------------------------------------------------------------------------------------ Human3.6M


@pytest.fixture(scope="module")
def h36m_files(tmp_path_factory) -> tuple[Path, Path, Path]:
    world, gt, det = make_fixture()
    return write_h36m(tmp_path_factory.mktemp("h36m"), world, gt, det)


# Training: S1 Eating 28 (2D cut to 28) + Walking 1 40 + S5 20 + S6 25 + S7 22 + S8 18 = 153
# frames x 4 cameras. Test, frames 0, 64, ... of the common length per camera: S9 Sitting
# 130 frames (camera 1's detections 128): 3+2+3+3; S9 Walking 1 200: 4x4; S11 Directions 1 65:
# 2x4; S11 Walking 129: 3x4 -> 11 + 16 + 8 + 12.
H36M_TRAIN, H36M_TEST = 153 * 4, 11 + 16 + 8 + 12


def test_h36m_builds_the_cache_with_detections(h36m_files, tmp_path):
    path_3d, path_gt, path_det = h36m_files
    out = tmp_path / "h36m"
    result = run(
        "build",
        "--source",
        "h36m",
        "--h36m-3d",
        str(path_3d),
        "--h36m-2d",
        str(path_gt),
        "--h36m-detections",
        str(path_det),
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    train, test, manifest = assert_cache(out, H36M_TRAIN, H36M_TEST, "h36m")
    assert len(train.clip_names) == 6 and len(test.clip_names) == 4 and len(train.camera_K) == 24
    assert not np.allclose(test.poses_2d_detected, test.poses_2d)  # the detections file, not a copy
    (entry,) = manifest["sources"]
    assert entry["files"]["positions_2d_detected"] == str(path_det) and entry["test_stride"] == 64
    assert manifest["bone_ratio_sets"]["authors"]["values"] == list(H36M_BONE_RATIOS)
    summary = run("summary", str(out))
    assert summary.exit_code == 0, summary.output
    assert "h36m" in summary.output and "2D scale" in summary.output and "seed" not in summary.output


def test_h36m_train_stride_and_ground_truth_as_detections(h36m_files, tmp_path):
    path_3d, path_gt, _ = h36m_files
    out = tmp_path / "h36m"
    result = run(
        "build",
        "--source",
        "h36m",
        "--h36m-3d",
        str(path_3d),
        "--h36m-2d",
        str(path_gt),
        "--train-stride",
        "5",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    # ceil(n / 5) per training sequence: 6 + 8 + 4 + 5 + 5 + 4 = 32, x 4 cameras. Without the
    # detections file S9 Sitting keeps 130 frames on camera 1 too: one test pose more.
    train, test, _ = assert_cache(out, 32 * 4, H36M_TEST + 1, "h36m")
    assert np.array_equal(train.poses_2d_detected, train.poses_2d)


def test_h36m_missing_file_or_wrong_file_leaves_no_cache(h36m_files, tmp_path):
    path_3d, path_gt, _ = h36m_files
    out = tmp_path / "h36m"
    missing = tmp_path / "data_2d_h36m_gt_missing.npz"
    result = run("build", "--source", "h36m", "--h36m-3d", str(path_3d), "--h36m-2d", str(missing), "--out", str(out))
    assert_failed_cleanly(result, out, "data_2d_h36m_gt_missing.npz")
    # The 3D file given as the 2D one: it has no 'metadata' / 'positions_2d' key.
    result = run("build", "--source", "h36m", "--h36m-3d", str(path_3d), "--h36m-2d", str(path_3d), "--out", str(out))
    assert_failed_cleanly(result, out, "data_3d_h36m.npz", "metadata")
    result = run("build", "--source", "h36m", "--h36m-3d", str(path_3d), "--out", str(out))
    assert_failed_cleanly(result, out, "--h36m-2d")


# ------------------------------------------------------------------------------------ MPI-INF-3DHP


TS_VALID = {1: 9, 2: 4, 3: 4, 4: 4, 5: 7, 6: 5}  # frames per test sequence
TS_INVALID = {1: [2, 5], 6: [0]}


@pytest.fixture(scope="module")
def hp_root(tmp_path_factory) -> Path:
    """S1-S8 / Seq1-2 annot.mat (12 frames, 14 cameras; S1 calibrated) + TS1-TS6 annot_data.mat (v7.3)."""
    from elepose.data.mpi_inf_3dhp import TEST_INTRINSICS

    root = tmp_path_factory.mktemp("mpi_inf_3dhp")
    rng = np.random.default_rng(0)
    for s in range(1, 9):
        for q in (1, 2):
            _write_train_sequence(root / f"S{s}" / f"Seq{q}", rng, calibrate=(s == 1))
    for ts, frames in TS_VALID.items():
        valid = np.ones(frames, dtype=bool)
        valid[TS_INVALID.get(ts, [])] = False
        _write_test_sequence(
            root / "mpi_inf_3dhp_test_set" / f"TS{ts}", rng, np.array(TEST_INTRINSICS[f"TS{ts}"]), valid
        )
    return root


# Train: 8 subjects x 2 sequences x 8 "vnect" cameras x frames 0 and 10 of 12 (stride 10).
# Test: valid frames of TS1..TS6 = 7 + 4 + 4 + 4 + 7 + 4.
HP_TRAIN, HP_TEST = 8 * 2 * 8 * 2, 7 + 4 + 4 + 4 + 7 + 4


@pytest.mark.parametrize("form", ["positional", "option"])
def test_3dhp_builds_from_a_positional_root_or_path_option(hp_root, tmp_path, form):
    out = tmp_path / "hp"
    where = [str(hp_root)] if form == "positional" else ["--path", str(hp_root)]
    result = run("build", "--source", "3dhp", *where, "--out", str(out))
    assert result.exit_code == 0, result.output
    train, test, manifest = assert_cache(out, HP_TRAIN, HP_TEST, "mpi-inf-3dhp")
    assert list(test.clip_names) == [f"TS{i}" for i in range(1, 7)]
    assert manifest["bone_ratio_sets"]["authors"]["values"] == list(MPI_INF_3DHP_BONE_RATIOS)
    assert manifest["bone_ratio_sets"]["authors"]["train_option"] == "--bone-ratios 3dhp"
    assert not np.allclose(manifest["bone_ratios"], MPI_INF_3DHP_BONE_RATIOS, atol=1e-3)  # default = computed
    assert manifest["sources"][0]["metadata"]["root"] == str(hp_root)
    json.dumps(manifest)
    summary = run("summary", str(out))
    assert summary.exit_code == 0, summary.output
    assert "mpi-inf-3dhp" in summary.output and "authors" in summary.output and "0.4806" in summary.output


def test_3dhp_strides_reach_the_loader(hp_root, tmp_path):
    out = tmp_path / "hp"
    result = run(
        "build", "--source", "3dhp", str(hp_root), "--train-stride", "5", "--test-stride", "2", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    # Train: frames 0, 5, 10. Test: valid frames among 0, 2, 4, ...: TS1 0,4,6,8; TS2-4 0,2;
    # TS5 0,2,4,6; TS6 2,4 (frame 0 invalid).
    assert_cache(out, 8 * 2 * 8 * 3, 4 + 2 + 2 + 2 + 4 + 2, "mpi-inf-3dhp")


def test_3dhp_errors_leave_an_existing_cache_untouched(hp_root, tmp_path):
    out = tmp_path / "hp"
    out.mkdir()
    (out / "keep.txt").write_text("old cache")
    broken = tmp_path / "broken"
    for s in range(1, 9):
        for q in (1, 2):
            (broken / f"S{s}" / f"Seq{q}").mkdir(parents=True)
            (broken / f"S{s}" / f"Seq{q}" / "annot.mat").symlink_to(hp_root / f"S{s}" / f"Seq{q}" / "annot.mat")
    result = run("build", "--source", "3dhp", str(broken), "--out", str(out), "--overwrite")
    assert result.exit_code == 2 and "error:" in result.output
    assert "TS1/annot_data.mat" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "hp"]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_3dhp_needs_a_root_and_refuses_mocap_options(hp_root, tmp_path):
    out = tmp_path / "hp"
    assert_failed_cleanly(run("build", "--source", "3dhp", "--out", str(out)), out, "--path ROOT")
    assert_failed_cleanly(
        run("build", "--source", "3dhp", str(hp_root), "--seed", "3", "--out", str(out)), out, "--seed"
    )
    assert_failed_cleanly(
        run("build", "--source", "3dhp", str(hp_root), "--path", str(tmp_path), "--out", str(out)), out, "once"
    )
    assert_failed_cleanly(run("build", "--source", "bandai", str(hp_root), "--out", str(out)), out, "PATH")


# ------------------------------------------------------------------------------------ 3DPW


@pytest.fixture(scope="module")
def pw_root(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("pw") / "3DPW"
    files = root / "sequenceFiles"
    write_3dpw_pickle(files / "train" / "courtyard_a_00.pkl", _sequence(rng, "courtyard_a_00"))
    write_3dpw_pickle(files / "train" / "outdoors_b_00.pkl", _sequence(rng, "outdoors_b_00", actors=1))
    write_3dpw_pickle(files / "validation" / "val_c_00.pkl", _sequence(rng, "val_c_00"))
    test_seq = _sequence(rng, "downtown_d_00")
    test_seq["poses2d"][0][3, 2, OP18.index("LWrist")] = 0.0  # an undetected joint: pose dropped
    write_3dpw_pickle(files / "test" / "downtown_d_00.pkl", test_seq)
    return root


# 8 frames per sequence, one invalid camera pose per actor: train 2 x 7 + 1 x 7; test 2 x 7 - 1.
PW_TRAIN, PW_TEST = 21, 13


def test_3dpw_builds_the_cache_and_summary(pw_root, tmp_path):
    out = tmp_path / "pw"
    result = run("build", "--source", "3dpw", str(pw_root), "--out", str(out))
    assert result.exit_code == 0, result.output
    train, test, manifest = assert_cache(out, PW_TRAIN, PW_TEST, "3dpw")
    assert list(train.clip_names) == ["courtyard_a_00", "outdoors_b_00"]
    assert np.array_equal(train.poses_2d_detected, train.poses_2d)  # paper: training 2D = re-projection
    assert manifest["bone_ratio_sets"]["authors"]["values"] is None
    summary = run("summary", str(out))
    assert summary.exit_code == 0, summary.output
    assert "3dpw" in summary.output


def test_3dpw_path_option_and_wrong_dataset(pw_root, hp_root, tmp_path):
    out = tmp_path / "pw"
    result = run(
        "build", "--source", "3dpw", "--path", str(pw_root / "sequenceFiles"), "--test-stride", "2", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    # Test frames 0, 2, 4, 6 minus actor 1's invalid frame 2 (actor 0's are 0, 4, 6 + frame 2).
    assert_cache(out, PW_TRAIN, 4 + 3, "3dpw")
    other = tmp_path / "wrong"
    assert_failed_cleanly(run("build", "--source", "3dpw", str(hp_root), "--out", str(other)), other, "sequenceFiles")
    assert_failed_cleanly(
        run("build", "--source", "3dhp", str(pw_root), "--out", str(other)), other, "S1/Seq1/annot.mat"
    )
