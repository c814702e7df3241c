"""Lifting people's own 2D detections: formats, missing joints, skipped people, units, the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from elepose.evaluate.reliability import reliability_nll, reliability_percentile
from elepose.filling import NOISE_SHARE, fill_missing_joints
from elepose.geometry import rotation_x, rotation_y
from elepose.lift.lifter import Lifter, skeleton_height
from elepose.models.lifter import predict
from elepose.models.normalisation import Normalisation, normalise
from elepose.models.records import ElevationStats, ReliabilityCalibration
from elepose.skeleton import coco17_to_h36m, openpose_body25_to_h36m
from elepose.train.config import FlowConfig, TrainConfig
from elepose.train.loop import train_flow, train_lifter
from tests.keypoint_writers import (
    write_array,
    write_coco_json,
    write_mmpose_folder,
    write_mmpose_json,
    write_openpose_folder,
    write_videopose3d_npz,
)
from tests.synthetic import TEMPLATE, make_split, write_cache

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A tiny flow (pose scale, 26 PCA bases) and a lifter trained for one short epoch."""
    root = tmp_path_factory.mktemp("lift")
    cache = write_cache(root / "cache", n_train=1024, n_test=64)
    flow = root / "flow"
    train_flow(
        FlowConfig(
            data=str(cache),
            out=str(flow),
            hidden=64,
            blocks=4,
            epochs=2,
            batch_size=128,
            lr=1e-3,
            scale="pose",
            device="cpu",
        ),
        progress=False,
    )
    lifter = root / "lifter"
    train_lifter(
        TrainConfig(
            data=str(cache),
            flow=str(flow),
            out=str(lifter),
            epochs=1,
            batch_size=128,
            hidden=64,
            eval_samples=64,
            reliability_rotations=4,
            device="cpu",
            epoch_samples=512,
        ),
        progress=False,
    )
    return {"flow": flow, "lifter": lifter}


@pytest.fixture(scope="module")
def lifter(runs) -> Lifter:
    return Lifter.load(runs["lifter"])


@pytest.fixture(scope="module")
def split():
    return make_split(24, 4, seed=7)


def h36m_to_coco17(h36m: np.ndarray) -> np.ndarray:
    """COCO-17 keypoints whose named joints are the H36M ones (eyes around the head, ears beside it)."""
    coco = np.zeros(h36m.shape[:-2] + (17, 2))
    coco[..., 0, :] = h36m[..., 9, :]
    coco[..., 1, :] = h36m[..., 10, :] + [4.0, 0.0]
    coco[..., 2, :] = h36m[..., 10, :] - [4.0, 0.0]
    coco[..., 3, :] = h36m[..., 10, :] + [9.0, 3.0]
    coco[..., 4, :] = h36m[..., 10, :] - [9.0, -3.0]
    for c, h in {5: 11, 6: 14, 7: 12, 8: 15, 9: 13, 10: 16, 11: 4, 12: 1, 13: 5, 14: 2, 15: 6, 16: 3}.items():
        coco[..., c, :] = h36m[..., h, :]
    return coco


def h36m_to_body25(h36m: np.ndarray) -> np.ndarray:
    """OpenPose BODY_25 keypoints built from H36M joints (feet beside the ankles)."""
    body = np.zeros(h36m.shape[:-2] + (25, 2))
    for b, h in {
        0: 9,
        1: 8,
        2: 14,
        3: 15,
        4: 16,
        5: 11,
        6: 12,
        7: 13,
        8: 0,
        9: 1,
        10: 2,
        11: 3,
        12: 4,
        13: 5,
        14: 6,
    }.items():
        body[..., b, :] = h36m[..., h, :]
    body[..., 15:19, :] = h36m[..., 10:11, :] + np.array([[3.0, -2], [-3, -2], [7, 0], [-7, 0]])
    body[..., 19:22, :] = h36m[..., 6:7, :] + [5.0, 8.0]
    body[..., 22:25, :] = h36m[..., 3:4, :] + [5.0, 8.0]
    return body


def assert_same_lift(a, b, atol: float = 1e-5) -> None:
    np.testing.assert_allclose(a.poses_3d, b.poses_3d, atol=atol)
    np.testing.assert_allclose(a.elevation, b.elevation, atol=atol)
    np.testing.assert_allclose(a.nll, b.nll, rtol=1e-5, atol=1e-4)


# --------------------------------------------------------------------------- the array path


def test_array_lift_equals_predicting_the_normalised_split(lifter, split):
    result = lifter.lift(split.poses_2d)
    reference = predict(lifter.network, normalise(split.poses_2d, lifter.normalisation))
    np.testing.assert_array_equal(result.poses_3d, reference.poses_3d)
    np.testing.assert_array_equal(result.elevation, reference.elevation)
    assert not result.missing.any() and result.skipped == []
    np.testing.assert_array_equal(result.frame, np.arange(len(split)))


def _nll_one_view_at_a_time(flow, poses_3d, elevation, mu, sigma, rotations, seed):
    """Independent reference: the views drawn as documented, scored one view at a time."""
    gen = torch.Generator().manual_seed(seed)
    azimuth = (torch.rand(rotations, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi
    tilt = mu + sigma * torch.randn(rotations, generator=gen, dtype=torch.float64)
    poses = torch.as_tensor(poses_3d, dtype=torch.float64)
    total = torch.zeros(len(poses), dtype=torch.float64)
    for k in range(rotations):
        for i in range(len(poses)):
            r = (
                rotation_x(tilt[k])
                @ rotation_y(azimuth[k])
                @ rotation_x(-torch.as_tensor(elevation[i], dtype=torch.float64))
            )
            y = poses[i] @ r.T
            x2 = y[:, :2] / (y[:, 2:] + 10.0)
            with torch.no_grad():
                total[i] += flow.nll(x2[None].float()).double()[0]
    return (total / rotations).numpy()


def test_nll_is_the_mean_flow_nll_over_the_documented_views(lifter, split):
    result = lifter.lift(split.poses_2d[:6], rotations=5)
    expected = _nll_one_view_at_a_time(
        lifter.flow,
        result.poses_3d,
        result.elevation,
        lifter.learned_elevation.mu_rad,
        lifter.learned_elevation.sigma_rad,
        5,
        0,
    )
    np.testing.assert_allclose(result.nll, expected, rtol=1e-4, atol=1e-3)


def test_a_pose_gets_the_same_nll_whatever_else_is_lifted_with_it(lifter, split):
    alone = lifter.lift(split.poses_2d[:1]).nll
    together = lifter.lift(split.poses_2d).nll[:1]
    np.testing.assert_allclose(alone, together, rtol=1e-5)


def test_array_files_equal_the_arrays_exactly(lifter, split, tmp_path):
    direct = lifter.lift(split.poses_2d)
    write_array(tmp_path / "poses.npy", split.poses_2d)
    np.testing.assert_array_equal(lifter.lift(tmp_path / "poses.npy").poses_3d, direct.poses_3d)
    write_array(tmp_path / "poses.csv", split.poses_2d, np.ones(split.poses_2d.shape[:2]))
    assert_same_lift(lifter.lift(tmp_path / "poses.csv"), direct, atol=1e-6)


# --------------------------------------------------------------------------- formats


def _frames_of(coco: np.ndarray) -> list[np.ndarray]:
    """Frames of 2, 0, 1, 2, ... people, so files hold several people and an empty frame."""
    frames, i, counts = [], 0, [2, 0, 1]
    while i < len(coco):
        n = counts[len(frames) % 3]
        frames.append(coco[i : i + n])
        i += n
    return frames


def _reference(lifter: Lifter, converted: np.ndarray):
    return lifter.lift(converted.astype(np.float32))


@pytest.mark.parametrize("kind", ["mmpose_json", "mmpose_folder", "coco"])
def test_coco_formats_lift_like_their_converted_arrays(lifter, split, tmp_path, kind):
    coco = h36m_to_coco17(split.poses_2d.astype(np.float64))
    frames = _frames_of(coco)
    path = tmp_path / ("in.json" if kind != "mmpose_folder" else "frames")
    {"mmpose_json": write_mmpose_json, "mmpose_folder": write_mmpose_folder, "coco": write_coco_json}[kind](
        path, frames
    )
    result = lifter.lift(path)
    assert_same_lift(result, _reference(lifter, coco17_to_h36m(coco)))
    counts = [len(f) for f in frames if kind != "coco" or len(f)]  # COCO results leave no trace of an empty frame
    assert np.bincount(result.frame, minlength=len(counts)).tolist() == counts
    assert [len(f["people"]) for f in result.to_json()["frames"]] == counts


def test_openpose_folder_lifts_like_its_converted_arrays(lifter, split, tmp_path):
    body = h36m_to_body25(split.poses_2d.astype(np.float64))
    frames = _frames_of(body)
    write_openpose_folder(tmp_path / "openpose", frames)
    result = lifter.lift(tmp_path / "openpose")
    assert_same_lift(result, _reference(lifter, openpose_body25_to_h36m(body)))
    assert len(result.frame_names) == len(frames) and (result.frame == 1).sum() == 0


def test_videopose3d_npz_lifts_like_its_converted_arrays(lifter, split, tmp_path):
    coco = h36m_to_coco17(split.poses_2d.astype(np.float64)).astype(np.float32)
    write_videopose3d_npz(tmp_path / "data_2d_custom_test.npz", {"walk.mp4": coco})
    result = lifter.lift(tmp_path / "data_2d_custom_test.npz")
    assert_same_lift(result, _reference(lifter, coco17_to_h36m(coco.astype(np.float64))))


def test_a_file_where_nobody_was_detected_lifts_to_empty_frames(lifter, tmp_path):
    write_mmpose_json(tmp_path / "empty.json", [np.zeros((0, 17, 2)), np.zeros((0, 17, 2))])
    result = lifter.lift(tmp_path / "empty.json")
    assert len(result) == 0 and result.poses_3d.shape == (0, 17, 3)
    assert [f["people"] for f in result.to_json()["frames"]] == [[], []]


# --------------------------------------------------------------------------- missing joints


def _numpy_fill(
    x: np.ndarray, missing: np.ndarray, mean: np.ndarray, components: np.ndarray, ratio: np.ndarray
) -> np.ndarray:
    """Independent reference: the two steps as augmented least squares with numpy, one pose."""
    rows = np.repeat(~missing, 2)
    flat = x.reshape(-1)
    ones_x, ones_y = np.tile([1.0, 0.0], 17), np.tile([0.0, 1.0], 17)
    basis = np.stack([ones_x, ones_y, mean], axis=1)
    (tx, ty, a), *_ = np.linalg.lstsq(basis[rows], flat[rows], rcond=None)
    y = (flat - np.tile([tx, ty], 17)) / a
    full = np.concatenate([basis, components.T], axis=1)
    prior_rows = np.concatenate([np.zeros((len(ratio), 3)), np.diag(np.sqrt(NOISE_SHARE / ratio))], axis=1)
    theta, *_ = np.linalg.lstsq(
        np.vstack([full[rows], prior_rows]), np.concatenate([y[rows], np.zeros(len(ratio))]), rcond=None
    )
    recon = (full @ theta * a + np.tile([tx, ty], 17)).reshape(17, 2)
    return np.where(missing[:, None], recon, x)


def test_dropped_joints_of_a_pose_in_the_pca_subspace_are_recovered(lifter, split):
    # Each synthetic limb swings rigidly, so a hidden joint is recoverable when one joint of its
    # limb stays visible (a whole hidden arm is not: its swing angle is unobservable).
    flow = lifter.flow
    normalised = normalise(split.poses_2d[:6], lifter.normalisation)
    in_subspace = flow.back_project(flow.project(normalised)).double().numpy()
    poses_px = in_subspace * 2500.0 + np.array([480.0, 420.0])  # 10 x a 250 px scale, somewhere in the image
    missing = np.zeros((6, 17), dtype=bool)
    for i, joints in enumerate([[2], [0], [3, 6], [13, 16], [0, 9, 10], [5, 15, 3]]):
        missing[i, joints] = True
    hidden = np.where(missing[..., None], -1e4, poses_px)  # values at missing joints must be ignored
    filled = fill_missing_joints(hidden, missing, flow.pca_mean, flow.pca_components, flow.pca_variance_ratio)
    spread = np.sqrt(((poses_px - poses_px.mean(axis=1, keepdims=True)) ** 2).sum(-1).mean(-1))  # (6,) px
    error = np.linalg.norm(filled - poses_px, axis=-1)
    assert np.all(error[~missing] == 0)
    assert np.all(error.max(axis=1) < 0.08 * spread), (error.max(axis=1), spread)
    mean_pose = fill_missing_joints(
        hidden, missing, flow.pca_mean, flow.pca_components, flow.pca_variance_ratio, noise_share=1e9
    )
    assert error[missing].mean() < 0.5 * np.linalg.norm(mean_pose - poses_px, axis=-1)[missing].mean()
    mean, components, ratio = (
        b.double().numpy() for b in (flow.pca_mean, flow.pca_components, flow.pca_variance_ratio)
    )
    for i in range(6):
        np.testing.assert_allclose(filled[i], _numpy_fill(hidden[i], missing[i], mean, components, ratio), atol=1e-6)


def test_filled_joints_are_marked_and_used(lifter, split):
    scores = np.ones((len(split), 17), dtype=np.float32)
    scores[0, [2, 12]] = 0.1
    array = np.concatenate([split.poses_2d, scores[..., None]], axis=-1)
    result = lifter.lift(array)
    assert result.missing[0].nonzero()[0].tolist() == [2, 12] and not result.missing[1:].any()
    assert np.linalg.norm(result.keypoints_2d[0, [2, 12]] - split.poses_2d[0, [2, 12]], axis=-1).max() < 25.0
    np.testing.assert_array_equal(result.keypoints_2d[1:], split.poses_2d[1:])


def test_people_without_enough_joints_are_skipped_with_reasons(lifter, split):
    scores = np.ones((len(split), 17), dtype=np.float32)
    scores[1, 9:] = 0.0  # 9 visible (the head and arms hidden)
    scores[3, [0, 1, 4]] = 0.0  # pelvis and both hips
    array = np.concatenate([split.poses_2d, scores[..., None]], axis=-1)
    result = lifter.lift(array)
    assert len(result) == len(split) - 2 and 1 not in result.frame and 3 not in result.frame
    reasons = {frame: reason for frame, _, reason in result.skipped}
    assert "9 of 17 joints visible" in reasons[1] and "pelvis and both hips" in reasons[3]
    assert len(lifter.lift(array, min_visible=9)) == len(split) - 1


# --------------------------------------------------------------------------- units and scores


def test_skeleton_height_by_hand():
    legs = 0.45 + 0.45
    trunk = 0.25 + 0.25 + np.hypot(0.05, 0.1) + np.hypot(0.05, 0.15)
    np.testing.assert_allclose(skeleton_height(TEMPLATE[None]), [legs + trunk])
    stretched = TEMPLATE.copy()
    stretched[3] = [-0.13, 0.0, 0.0]  # right shin 0.55 instead of 0.45: the legs' mean grows by 0.05
    np.testing.assert_allclose(skeleton_height(stretched[None]), [legs + trunk + 0.05])


def test_height_gives_poses_in_metres_of_that_height(lifter, split):
    result = lifter.lift(split.poses_2d, height_m=1.8)
    np.testing.assert_allclose(skeleton_height(result.poses_3d_metres), 1.8)

    def unit(poses):  # each pose divided by its norm: the same shape, whatever the scale
        return poses / np.linalg.norm(poses.reshape(len(poses), -1), axis=1)[:, None, None]

    np.testing.assert_allclose(unit(result.poses_3d_metres), unit(result.poses_3d), atol=1e-9)
    assert lifter.lift(split.poses_2d).poses_3d_metres is None


def test_reliability_is_100_minus_the_nll_percentile():
    quantiles = ReliabilityCalibration(tuple(np.arange(101.0)), rotations=16)  # percentile p of the training NLL is p
    np.testing.assert_allclose(
        reliability_percentile(np.array([25.0, 25.5, -3.0, 400.0]), quantiles), [75.0, 74.5, 100.0, 0.0]
    )


def test_reliability_lies_in_0_100_and_falls_as_nll_rises(lifter, split):
    result = lifter.lift(split.poses_2d_detected)
    assert np.all((result.reliability >= 0) & (result.reliability <= 100))
    order = np.argsort(result.nll)
    assert np.all(np.diff(result.reliability[order]) <= 1e-9)


def test_reliability_nll_batches_of_any_size_agree(lifter, split):
    result = lifter.lift(split.poses_2d)
    args = (
        lifter.flow,
        torch.as_tensor(result.poses_3d),
        torch.as_tensor(result.elevation),
        ElevationStats(0.2, 0.1),
        7,
        3,
    )
    np.testing.assert_allclose(
        reliability_nll(*args, batch_size=7).numpy(), reliability_nll(*args, batch_size=10_000).numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(reliability_nll(*args).numpy(), reliability_nll(*args, batch_size=7).numpy(), rtol=1e-6)


def test_pose_scale_is_invariant_to_image_zoom_and_checkpoint_dataset_scale_is_not(runs, split):
    lifter = Lifter.load(runs["lifter"])
    zoomed = split.poses_2d * 1.7 + np.float32(60.0)
    assert lifter.default_scale == "per-pose"
    assert_same_lift(lifter.lift(zoomed), lifter.lift(split.poses_2d), atol=1e-4)
    record = dataclasses.replace(lifter.record, normalisation=Normalisation("dataset", 120.0))
    dataset = Lifter(lifter.network, lifter.flow, record)
    assert dataset.default_scale == "checkpoint"
    assert not np.allclose(dataset.lift(zoomed).poses_3d, dataset.lift(split.poses_2d).poses_3d, atol=1e-3)
    assert_same_lift(dataset.lift(zoomed, scale="per-pose"), dataset.lift(split.poses_2d, scale="per-pose"), atol=1e-4)


def test_bad_arrays_are_refused_with_the_field(lifter, split):
    bad = split.poses_2d.copy()
    bad[2, 5, 0] = np.nan
    with pytest.raises(ValueError, match="pose 2 joint 5 is NaN"):
        lifter.lift(bad)
    with pytest.raises(ValueError, match=r"\(N, 17, 2\)"):
        lifter.lift(np.zeros((4, 16, 2)))
    with pytest.raises(ValueError, match="score"):
        lifter.lift(np.concatenate([split.poses_2d, -np.ones((len(split), 17, 1), np.float32)], -1))
    with pytest.raises(ValueError, match="scale"):
        lifter.lift(split.poses_2d, scale="camera")


def test_load_refuses_a_flow_folder_naming_file_and_field(runs):
    with pytest.raises(ValueError, match=r"config.json: field 'kind'"):
        Lifter.load(runs["flow"])


# --------------------------------------------------------------------------- command line


def _cli(args: list[str]):
    from elepose.cli import _register_all, app

    _register_all()
    return CliRunner().invoke(app, ["lift", *args])


def test_cli_writes_npz_and_json_with_the_documented_keys(runs, split, tmp_path):
    coco = h36m_to_coco17(split.poses_2d[:5].astype(np.float64))
    scores = np.ones((5, 17))
    scores[0, 9] = 0.0  # left wrist missing
    write_mmpose_json(tmp_path / "video.json", [coco[:2], coco[2:2], coco[2:5]], [scores[:2], scores[2:2], scores[2:5]])
    out = tmp_path / "out" / "walk"
    result = _cli(
        [
            str(tmp_path / "video.json"),
            "--checkpoint",
            str(runs["lifter"]),
            "--out",
            str(out),
            "--height",
            "1.7",
            "--device",
            "cpu",
        ]
    )
    assert result.exit_code == 0, result.output
    arrays = np.load(tmp_path / "out" / "walk.npz", allow_pickle=False)
    assert {
        "poses_3d",
        "poses_3d_metres",
        "elevation_deg",
        "nll",
        "reliability",
        "missing",
        "keypoints_2d",
        "frame",
        "person",
        "frame_names",
        "joint_names",
        "skipped_frame",
        "skipped_person",
        "skipped_reason",
    } <= set(arrays.files)
    assert arrays["poses_3d"].shape == (5, 17, 3) and arrays["missing"][0, 13]
    report = json.loads((tmp_path / "out" / "walk.json").read_text())
    assert [len(f["people"]) for f in report["frames"]] == [2, 0, 3]
    person = report["frames"][0]["people"][0]
    assert {
        "person",
        "joints_3d",
        "joints_3d_metres",
        "elevation_deg",
        "nll",
        "reliability",
        "missing",
        "keypoints_2d",
    } <= set(person)
    assert person["missing"][13] and sum(person["missing"]) == 1
    np.testing.assert_allclose(person["joints_3d"], arrays["poses_3d"][0], atol=1e-5)
    assert report["height_m"] == 1.7 and report["scale"] == "per-pose" and report["joint_names"][0] == "pelvis"
    assert report["layout"] == "coco17" and "keypoints read as coco17 (pelvis = mid-hips" in result.output
    assert "this lifter learnt h36m joints" in result.output  # the test lifter learnt H36M-17's
    assert "scale: per-pose, each pose measured by itself (the checkpoint's default)" in result.output
    assert report["lift_notes"][0].startswith("keypoints read as coco17")


def test_smoothing_smooths_3d_and_elevation_per_track_and_scores_the_smoothed_poses_again(lifter, split):
    rng = np.random.default_rng(3)
    poses = split.poses_2d[:24].astype(np.float64) + rng.normal(0, 2.0, (24, 17, 2))
    result = lifter.lift(poses, rotations=4)
    smoothed = lifter.smooth(result, window=5, rotations=4)
    assert np.abs(np.diff(smoothed.elevation)).mean() < np.abs(np.diff(result.elevation)).mean()
    assert not np.allclose(smoothed.poses_3d, result.poses_3d)
    # The NLL, computed here straight from the flow, is that of the smoothed poses, not the lift's.
    nll = reliability_nll(
        lifter.flow,
        torch.as_tensor(smoothed.poses_3d),
        torch.as_tensor(smoothed.elevation),
        lifter.learned_elevation,
        4,
        0,
    ).numpy()
    np.testing.assert_allclose(smoothed.nll, nll, rtol=1e-6)
    assert not np.allclose(smoothed.nll, result.nll)
    np.testing.assert_allclose(smoothed.reliability, reliability_percentile(nll, lifter.record.reliability))


def test_lift_notes_say_the_scale_and_warn_when_most_poses_are_implausible():
    from elepose.lift.notes import layout_line, reliability_line, scale_line

    assert layout_line("halpe26", None) == "keypoints read as halpe26"  # Halpe's joints are H36M's
    assert "learnt coco17" in layout_line("body25", "coco17")  # the thorax differs
    assert "try --scale per-pose" in scale_line("checkpoint", "dataset", asked=False)
    assert scale_line("checkpoint", "pose", asked=True) == "scale: checkpoint (as asked)"
    assert reliability_line(np.array([50.0, 2.0, 3.0]), "checkpoint").startswith("67 % of the people")
    assert "--scale per-pose or a lifter fitted" in reliability_line(np.array([0.0, 1.0]), "checkpoint")
    assert "--scale" not in reliability_line(np.array([0.0, 1.0]), "per-pose")
    assert reliability_line(np.array([50.0, 2.0, 60.0]), "checkpoint") is None  # a minority only
    assert reliability_line(np.array([np.nan]), "checkpoint") is None  # uncalibrated
    from elepose.evaluate.reliability import reliability_distribution

    spread = reliability_distribution(np.array([0.0, 10.0, 20.0, 30.0, 40.0, np.nan]))  # by hand: 0 is below 4
    assert spread == {"poses": 5, "median": 20.0, "quartile_1": 10.0, "quartile_3": 30.0, "below_4": 0.2}


def test_progress_labels_show_the_epoch_count_only_when_it_is_the_plan():
    from elepose.train.steps import epoch_label

    assert epoch_label("train", 0, 8, None) == "train 1/8"
    assert epoch_label("train", 2, 100_000, 2.5) == "train 3 (up to 2.5 min)"


def test_cli_renders_a_png_and_a_gif(runs, split, tmp_path):
    write_array(tmp_path / "poses.npy", split.poses_2d[:4])
    for picture in ("pose.png", "seq.gif"):
        result = _cli(
            [
                str(tmp_path / "poses.npy"),
                "--checkpoint",
                str(runs["lifter"]),
                "--out",
                str(tmp_path / picture[:3]),
                "--render",
                str(tmp_path / picture),
                "--frame",
                "2",
                "--device",
                "cpu",
            ]
        )
        assert result.exit_code == 0, result.output
    assert (tmp_path / "pose.png").read_bytes().startswith(PNG_MAGIC)
    assert (tmp_path / "seq.gif").read_bytes()[:6] in (b"GIF89a", b"GIF87a")


def _bad_inputs(runs: dict[str, Path], split, tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    good = tmp_path / "good.npy"
    write_array(good, split.poses_2d[:3])
    nan = split.poses_2d[:3].copy()
    nan[1, 4, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "joints16.npy", np.zeros((3, 16, 2), np.float32))
    edited = tmp_path / "edited"
    shutil.copytree(runs["lifter"], edited)
    config = json.loads((edited / "config.json").read_text())
    config["format_version"] = 99
    (edited / "config.json").write_text(json.dumps(config))
    lifter = str(runs["lifter"])
    return {
        "nan": ([str(tmp_path / "nan.npy"), "--checkpoint", lifter], "nan.npy: row 1: joint 4 is NaN"),
        "joints": (
            [str(tmp_path / "joints16.npy"), "--checkpoint", lifter],
            "joints16.npy: array: expected shape (N, 17, 2)",
        ),
        "flow": ([str(good), "--checkpoint", str(runs["flow"])], "config.json: field 'kind'"),
        "version": ([str(good), "--checkpoint", str(edited)], "config.json: field 'format_version'"),
        "render": ([str(good), "--checkpoint", lifter, "--render", str(tmp_path / "x.jpg")], "--render"),
        "frame": (
            [str(good), "--checkpoint", lifter, "--render", str(tmp_path / "x.png"), "--frame", "7"],
            "--frame 7",
        ),
    }


@pytest.mark.parametrize("case", ["nan", "joints", "flow", "version", "render", "frame"])
def test_cli_bad_input_exits_2_naming_the_problem_and_writes_nothing(runs, split, tmp_path, case):
    args, message = _bad_inputs(runs, split, tmp_path)[case]
    out = tmp_path / "out"
    out.mkdir()
    result = _cli([*args, "--out", str(out / "res"), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "error: " in result.output and message in result.output, result.output
    assert list(out.iterdir()) == [] and not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------- saving from Python


def test_lift_result_save_writes_what_the_command_writes_and_refuses_a_foreign_file(lifter, split, tmp_path):
    from elepose.errors import InputError
    from elepose.lift.save import LIFT_KIND

    result = lifter.lift(split.poses_2d, height_m=1.7)
    written = result.save(tmp_path / "walk", frame="upright", exports=("mmpose3d", "bvh"), fps=30.0, height_m=1.7)
    names = sorted(p.name for p in written)
    assert names == ["walk.bvh", "walk.json", "walk.mmpose3d.json", "walk.npz"]
    saved = json.loads((tmp_path / "walk.json").read_text())
    assert saved["kind"] == LIFT_KIND and saved["frame"] == "upright"
    with np.load(tmp_path / "walk.npz") as arrays:
        from elepose.lift.exports import upright

        np.testing.assert_allclose(arrays["poses_3d"], upright(result.poses_3d, result.elevation), atol=1e-5)
    (tmp_path / "mine.json").write_text("my own notes")
    with pytest.raises(InputError, match="mine.json"):
        result.save(tmp_path / "mine")
    assert (tmp_path / "mine.json").read_text() == "my own notes" and not (tmp_path / "mine.npz").exists()


def test_write_together_leaves_nothing_when_one_writer_fails(tmp_path):
    from elepose.atomic import write_together

    def fail(tmp):
        raise OSError("disk full")

    first = tmp_path / "a.txt"
    with pytest.raises(OSError):
        write_together([(first, lambda tmp: tmp.write_text("a")), (tmp_path / "b.txt", fail)])
    assert list(tmp_path.iterdir()) == []
    write_together([(first, lambda tmp: tmp.write_text("a")), (tmp_path / "b.txt", lambda tmp: tmp.write_text("b"))])
    assert first.read_text() == "a" and (tmp_path / "b.txt").read_text() == "b"
