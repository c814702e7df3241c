"""Training on one's own 2D: the 2D-only cache from detector files, the split by file, the motion
filter, training and validation without 3D, and ``elepose fit`` end to end (resumed too), with no
3D anywhere: a test proves no code path reads ``poses_3d``."""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import elepose.data.cache as cache_module
from elepose.data.cache import load_split
from elepose.data.keypoint_cache import KeypointCacheOptions, build_keypoint_cache, clip_of, head_bone_ratios
from elepose.errors import InputError
from elepose.skeleton import BONES, H36M_BONE_RATIOS
from tests.keypoint_writers import (
    write_array,
    write_coco_json,
    write_mmpose_folder,
    write_mmpose_json,
    write_openpose_folder,
    write_videopose3d_npz,
)
from tests.synthetic import TEMPLATE


def _walk(frames: int, seed: int, offset: float = 0.0) -> np.ndarray:
    """``(F, 17, 2)`` px H36M-17: a person stepping and turning in front of the camera (every frame moves)."""
    rng = np.random.default_rng(seed)
    base = np.c_[TEMPLATE[:, 0], -TEMPLATE[:, 2]] * 180.0
    poses = []
    for f in range(frames):
        angle = 0.4 * np.sin(f / 5.0 + seed)
        pose = base.copy()
        pose[:, 0] = base[:, 0] * np.cos(angle) + TEMPLATE[:, 1] * 180.0 * np.sin(angle)
        pose[[3, 13], 1] += 40.0 * np.sin(f / 3.0)  # a foot and a hand swing
        poses.append(pose + [400.0 + offset + 2.0 * f, 450.0] + rng.normal(0, 1.0, (17, 2)))
    return np.array(poses)


def _coco(h36m: np.ndarray) -> np.ndarray:
    """COCO-17 keypoints whose conversion back to H36M-17 gives ``h36m`` on the joints COCO has."""
    coco = np.zeros((*h36m.shape[:-2], 17, 2))
    coco[..., 0, :] = h36m[..., 9, :]
    coco[..., 1, :], coco[..., 2, :] = h36m[..., 10, :] + [5, 0], h36m[..., 10, :] - [5, 0]
    coco[..., 3, :], coco[..., 4, :] = h36m[..., 10, :] + [9, 3], h36m[..., 10, :] - [9, -3]
    for c, j in zip(range(5, 17), (11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3)):
        coco[..., c, :] = h36m[..., j, :]
    return coco


def _body25(h36m: np.ndarray) -> np.ndarray:
    order = {0: 9, 1: 8, 2: 14, 3: 15, 4: 16, 5: 11, 6: 12, 7: 13, 8: 0, 9: 1, 10: 2, 11: 3, 12: 4, 13: 5, 14: 6}
    out = np.zeros((*h36m.shape[:-2], 25, 2))
    for b, j in order.items():
        out[..., b, :] = h36m[..., j, :]
    out[..., 15:19, :] = h36m[..., 10:11, :] + np.array([[4, 0], [-4, 0], [8, 2], [-8, 2]])
    out[..., 19:25, :] = h36m[..., [6, 6, 6, 3, 3, 3], :] + [0, 10]
    return out


def _write(kind: str, folder: Path, poses: np.ndarray) -> Path:
    """Write ``poses (F, 17, 2)`` H36M px in detector format ``kind``; returns the file or folder."""
    frames = [p[None] for p in _coco(poses)]
    if kind == "mmpose":
        write_mmpose_json(folder / "video.json", frames)
        return folder / "video.json"
    if kind == "mmpose-folder":
        write_mmpose_folder(folder / "preds", frames)
        return folder / "preds"
    if kind == "coco":
        write_coco_json(folder / "results.json", frames)
        return folder / "results.json"
    if kind == "openpose":
        write_openpose_folder(folder / "json", [p[None] for p in _body25(poses)])
        return folder / "json"
    if kind == "videopose3d":
        write_videopose3d_npz(folder / "data_2d_custom_v.npz", {"v": _coco(poses)})
        return folder / "data_2d_custom_v.npz"
    if kind == "csv":
        write_array(folder / "poses.csv", poses)
        return folder / "poses.csv"
    write_array(folder / "poses.npy", poses)
    return folder / "poses.npy"


@pytest.mark.parametrize("kind", ["mmpose", "mmpose-folder", "coco", "openpose", "videopose3d", "npy", "csv"])
def test_a_2d_only_cache_from_every_format_holds_no_3d(tmp_path, kind):
    source = _write(kind, tmp_path, _walk(120, 0))
    manifest = build_keypoint_cache([source], tmp_path / "cache", KeypointCacheOptions(min_motion=0.0))
    assert manifest["has_3d"] is False and manifest["recommended_scale"] == "pose"
    for name in ("train", "test"):
        with np.load(tmp_path / "cache" / f"{name}.npz") as arrays:
            assert "poses_3d" not in arrays.files and "camera_K" not in arrays.files
        split = load_split(tmp_path / "cache" / f"{name}.npz")
        assert not split.has_3d and len(split) > 0
    assert manifest["keypoint_layout"] in ("coco17", "body25", "h36m")


def test_the_split_is_by_source_file_by_crc32_never_by_frame(tmp_path):
    sources = []
    for i in range(10):
        folder = tmp_path / f"clip{i:02d}"
        folder.mkdir()
        sources.append(_write("npy", folder, _walk(40, i, offset=10.0 * i)))
    manifest = build_keypoint_cache(sources, tmp_path / "cache", KeypointCacheOptions(min_motion=0.0))
    train, val = (load_split(tmp_path / "cache" / f"{s}.npz") for s in ("train", "test"))
    assert set(train.clip_names) & set(val.clip_names) == set()
    # Same file names, so full paths; a clip is its path without ".npy".
    clips = sorted((str(p)[: -len(".npy")] for p in sources), key=lambda n: (zlib.crc32(n.encode()), n))
    assert {n[: -len(".npy")] for n in val.clip_names} == {clips[4], clips[9]}
    assert "every 5th clip" in manifest["split_rule"] and manifest["split"]["by_motion"] is True
    assert len(train) == 8 * 40 and len(val) == 2 * 40


def test_one_source_falls_back_to_a_split_by_time_and_says_so(tmp_path):
    warnings: list[str] = []
    source = _write("npy", tmp_path, _walk(100, 1))
    manifest = build_keypoint_cache(
        [source], tmp_path / "cache", KeypointCacheOptions(min_motion=0.0), warn=warnings.append
    )
    train, val = (load_split(tmp_path / "cache" / f"{s}.npz") for s in ("train", "test"))
    assert train.frame.max() < val.frame.min() and len(val) == 20
    assert warnings and "last 20%" in warnings[0] and "fewer than 5 clips" in manifest["split_rule"]
    assert "cannot be made by motion" in warnings[0] and manifest["split"]["by_motion"] is False


def test_each_tracked_person_of_a_video_is_a_view_of_their_own(tmp_path):
    left, right = _walk(50, 2), _walk(50, 3, offset=600.0)  # two people, 600 px apart, in every frame
    write_mmpose_json(tmp_path / "two.json", [np.stack(pair) for pair in zip(_coco(left), _coco(right))])
    build_keypoint_cache([tmp_path / "two.json"], tmp_path / "cache", KeypointCacheOptions(min_motion=0.0))
    for name in ("train", "test"):
        split = load_split(tmp_path / "cache" / f"{name}.npz")
        assert len(np.unique(split.view)) == 2 and list(split.camera_clip) == [0, 0]
        assert list(split.clip_names) == ["two.json"]
        for view in (0, 1):  # one person per view: all of it left of 700 px, or all right of it
            pelvis_x = split.poses_2d[split.view == view][:, 0, 0]
            assert (pelvis_x < 700).all() or (pelvis_x > 700).all()
        assert len(split) == (80 if name == "train" else 20)


def test_a_clip_is_the_file_name_without_its_camera_tag_or_the_group_by_match():
    assert clip_of("walk_camera3.json") == clip_of("walk_camera12.json") == "walk"
    assert clip_of("cam1/boxing.json") == clip_of("cam2/boxing.json") == "/boxing"
    assert clip_of("S1_View-2.npy") == "S1" and clip_of("walk.json") == "walk"
    assert clip_of("walk_camera3.json") != clip_of("run_camera3.json")
    assert clip_of("subject3_take07_left.json", r"take\d+") == "take07"
    assert clip_of("subject3_take07_left.json", r"^(subject\d+)_") == "subject3"
    assert clip_of("other.json", r"take\d+") == "other.json"  # no match: a clip of its own
    with pytest.raises(InputError, match="--group-by"):
        KeypointCacheOptions(group_by="take(")


def test_one_clip_seen_by_several_cameras_is_on_one_side_of_the_split(tmp_path):
    sources = []
    for clip in range(6):
        for camera in range(3):
            walk = _walk(30, clip, offset=10.0 * clip + camera)
            write_array(tmp_path / f"clip{clip}_camera{camera}.npy", walk)
            sources.append(tmp_path / f"clip{clip}_camera{camera}.npy")
    warnings: list[str] = []
    manifest = build_keypoint_cache(
        sources, tmp_path / "cache", KeypointCacheOptions(min_motion=0.0), warn=warnings.append
    )
    train, val = (load_split(tmp_path / "cache" / f"{s}.npz") for s in ("train", "test"))
    clip = lambda names: {str(n).split("_camera")[0] for n in names}  # noqa: E731
    assert clip(train.clip_names) & clip(val.clip_names) == set()
    assert len(clip(val.clip_names)) == 1 and len(val.clip_names) == 3  # 6 clips: the 5th in crc32 order
    assert manifest["split"] == {"by_motion": True, "clips": 6, "sources": 18, "group_by": None}
    assert not warnings
    # Grouped by a pattern that sees only the camera, 3 "clips": no split by motion, and a warning says so.
    warnings.clear()
    manifest = build_keypoint_cache(
        sources, tmp_path / "cache2", KeypointCacheOptions(min_motion=0.0, group_by=r"camera\d"), warn=warnings.append
    )
    assert manifest["split"]["clips"] == 3 and manifest["split"]["by_motion"] is False
    assert warnings and "cannot be made by motion" in warnings[0]


def test_the_motion_filter_drops_a_static_stretch_but_keeps_motion(tmp_path):
    moving = _walk(100, 2)
    static = np.repeat(moving[:1], 60, axis=0) + np.random.default_rng(0).normal(0, 0.2, (60, 17, 2))
    source = _write("npy", tmp_path, np.concatenate([static, moving]))
    manifest = build_keypoint_cache([source], tmp_path / "cache", KeypointCacheOptions(min_motion=0.02))
    counts = manifest["sources"][0]["per_source"]["poses.npy"]
    kept_static = counts["after_motion_filter"] - _kept(moving, 0.02)
    assert counts["after_stride"] == 160 and kept_static <= 2  # the 60 static frames -> the first one


def _kept(poses: np.ndarray, min_motion: float) -> int:
    """How many of ``poses`` (one track) an independent loop of the motion filter's rule keeps."""
    centred = poses - poses[:, :1]
    last, kept = centred[0], 1
    for pose in centred[1:]:
        if np.linalg.norm(pose - last, axis=-1).max() >= min_motion * np.linalg.norm(pose[10]):
            last, kept = pose, kept + 1
    return kept


def test_the_frame_stride_and_score_threshold_select_poses(tmp_path):
    poses = _walk(80, 3)
    scores = np.ones((80, 17))
    scores[::4, 5] = 0.1  # every 4th pose misses its left knee
    write_array(tmp_path / "p.npy", poses, scores)
    options = KeypointCacheOptions(stride=2, min_motion=0.0)
    poses = np.concatenate([poses, _walk(240, 9)])
    scores = np.concatenate([scores, np.ones((240, 17))])
    write_array(tmp_path / "p.npy", poses, scores)
    manifest = build_keypoint_cache([tmp_path / "p.npy"], tmp_path / "cache", options)
    counts = manifest["sources"][0]["per_source"]["p.npy"]
    assert counts["complete_enough"] == 300 and counts["after_stride"] == 140  # even frames without the gap


def test_head_bone_ratios_recover_the_3d_ratios_from_side_on_views():
    rng = np.random.default_rng(0)
    index = {child: b for b, (_, child) in enumerate(BONES)}
    # Orthographic views of a 3D skeleton with the Human3.6M ratios, the camera turning about it.
    skeleton = np.zeros((17, 3))
    directions = {1: (-1, 0, 0), 2: (0, -1, 0), 3: (0, -1, 0), 4: (1, 0, 0), 5: (0, -1, 0), 6: (0, -1, 0),
                  7: (0, 1, 0), 8: (0, 1, 0), 9: (0, 0.6, 0.8), 10: (0, 1, 0), 11: (1, 0, 0), 12: (0, -1, 0),
                  13: (0, -1, 0), 14: (-1, 0, 0), 15: (0, -1, 0), 16: (0, -1, 0)}  # fmt: skip
    for b, (parent, child) in enumerate(BONES):
        skeleton[child] = skeleton[parent] + H36M_BONE_RATIOS[b] * np.asarray(directions[child])
    views = []
    for angle in rng.uniform(0, 2 * np.pi, 400):
        c, s = np.cos(angle), np.sin(angle)
        turned = skeleton @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
        views.append(turned[:, :2] * 100.0)
    measured = head_bone_ratios(np.array(views))
    for child in (9, 10):
        assert measured[child] == pytest.approx(H36M_BONE_RATIOS[index[child]], rel=0.15)


def test_unusable_inputs_are_clear_errors(tmp_path):
    poses = _walk(50, 4)
    write_array(tmp_path / "low.npy", poses, np.full((50, 17), 0.1))
    with pytest.raises(InputError, match=r"low.npy: no usable person"):
        build_keypoint_cache([tmp_path / "low.npy"], tmp_path / "c1")
    write_array(tmp_path / "few.npy", poses[:20])
    with pytest.raises(InputError, match=r"few.npy: .* training and .* validation poses"):
        build_keypoint_cache([tmp_path / "few.npy"], tmp_path / "c2")
    a = _write("npy", tmp_path, poses)
    (tmp_path / "op").mkdir()
    b = _write("openpose", tmp_path / "op", poses)
    with pytest.raises(InputError, match=r"keypoint layout body25, but .* is h36m"):
        build_keypoint_cache([a, b], tmp_path / "c3")
    assert not any((tmp_path / c).exists() for c in ("c1", "c2", "c3"))


# ----------------------------------------------------------------------------- fit, end to end


def test_fit_trains_on_2d_alone_no_code_path_reads_3d_and_a_stopped_fit_resumes(tmp_path, monkeypatch):
    from elepose.cli import _register_all, app
    from elepose.train import fit as fit_module

    for i in range(5):
        (tmp_path / f"video{i}").mkdir()
        _write("mmpose", tmp_path / f"video{i}", _walk(60, 10 + i, offset=20.0 * i))
    sources = [str(tmp_path / f"video{i}" / "video.json") for i in range(5)]
    # Every split the fit, evaluate and lift read is 2D-only: poses_3d is None, so any code path
    # that used it (an array operation on None) would fail the run.
    real_load = cache_module.load_split
    loaded = []

    def load_and_check(path):
        split = real_load(path)
        loaded.append(split.poses_3d is None and split.camera_K is None)
        return split

    for module in ("elepose.data.cache", "elepose.train.loop"):
        monkeypatch.setattr(sys.modules[module], "load_split", load_and_check)
    real_train_lifter = fit_module.train_lifter
    calls = {"n": 0}

    def stop_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt  # the user stops the fit after the flow
        return real_train_lifter(*args, **kwargs)

    monkeypatch.setattr(fit_module, "train_lifter", stop_once)
    _register_all()
    args = ["fit", *sources, "--out", str(tmp_path / "mine"), "--minutes", "0.5", "--hidden", "32", "--device", "cpu"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code != 0 and (tmp_path / "mine" / "flow" / "fit-stage.json").is_file()
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "flow: finished earlier, kept" in second.output and "elepose lift --checkpoint" in second.output
    record = json.loads((tmp_path / "mine" / "fit.json").read_text())
    assert record["finished"] and record["lifter_epochs_run"] >= 1 and "val_reprojection" in record["last_epoch"]
    config = json.loads((tmp_path / "mine" / "lifter" / "config.json").read_text())
    assert len(config["reliability"]["nll_quantiles"]) == 101  # calibrated on the user's 2D
    assert json.loads((tmp_path / "mine" / "lifter" / "run.json").read_text())["grad_clip"] is None  # from scratch
    assert loaded and all(loaded)
    assert record["lifter"] == str(tmp_path / "mine" / "lifter")  # --keep last, the default
    assert f"elepose lift --checkpoint {record['lifter']}" in second.output
    best = json.loads((tmp_path / "mine" / "lifter" / "best" / "config.json").read_text())
    assert best["epoch"] == record["lowest_reprojection_epoch"]
    third = CliRunner().invoke(app, [*args, "--keep", "best"])  # the same fit: only lift's pointer changes
    assert third.exit_code == 0 and "lifter: finished earlier, kept" in third.output, third.output
    assert json.loads((tmp_path / "mine" / "fit.json").read_text())["lifter"] == str(
        tmp_path / "mine" / "lifter" / "best"
    )
    lifted = CliRunner().invoke(app, ["lift", sources[0], "--checkpoint", record["lifter"], "--out", str(tmp_path / "res"), "--device", "cpu"])  # fmt: skip
    assert lifted.exit_code == 0, lifted.output
    evaluated = CliRunner().invoke(app, ["evaluate", "--checkpoint", str(tmp_path / "mine" / "lifter"), "--data", str(tmp_path / "mine" / "cache"), "--device", "cpu"])  # fmt: skip
    assert evaluated.exit_code == 0 and "need 3D ground truth" in evaluated.output


def _two_d_only_cache(root: Path) -> Path:
    for i in range(4):
        (root / f"v{i}").mkdir(parents=True)
        _write("npy", root / f"v{i}", _walk(80, 40 + i, offset=10.0 * i))
    build_keypoint_cache(sorted(root.glob("v*/*.npy")), root / "cache", KeypointCacheOptions(min_motion=0.0))
    return root / "cache"


def _lifter_config(cache: Path, flow: Path, out: Path, epochs: int, **overrides):
    from elepose.train.config import TrainConfig

    return TrainConfig(data=str(cache), flow=str(flow), out=str(out), hidden=32, epochs=epochs, batch_size=64,
                       eval_samples=64, reliability_rotations=2, device="cpu", epoch_samples=128, lr=3e-3,
                       elevation_warmup_steps=1, keep_best="val_reprojection", **overrides)  # fmt: skip


def test_keep_best_holds_the_epoch_with_the_lowest_held_out_reprojection_across_a_resume(tmp_path):
    from dataclasses import replace

    from elepose.models.io import load_lifter, load_lifter_record
    from elepose.train.config import FlowConfig
    from elepose.train.loop import train_flow, train_lifter
    from elepose.train.runlog import read_metrics

    cache = _two_d_only_cache(tmp_path)
    train_flow(FlowConfig(data=str(cache), out=str(tmp_path / "flow"), hidden=32, blocks=2, epochs=1, batch_size=64,
                          device="cpu"), progress=False)  # fmt: skip
    config = _lifter_config(cache, tmp_path / "flow", tmp_path / "run", epochs=3)
    train_lifter(config, progress=False)
    train_lifter(replace(config, epochs=6, resume=True), progress=False)  # stopped after 3 epochs, continued
    figures = {int(r["epoch"]): r["val_reprojection"] for r in read_metrics(tmp_path / "run" / "metrics.csv")}
    assert sorted(figures) == [1, 2, 3, 4, 5, 6]
    kept = load_lifter_record(tmp_path / "run" / "best")
    assert kept.epoch == min(figures, key=figures.get)
    assert kept.metrics["val_reprojection"] == pytest.approx(min(figures.values()))
    assert load_lifter_record(tmp_path / "run").epoch == 6  # the run folder keeps the last epoch
    lifter, _, _ = load_lifter(tmp_path / "run" / "best")  # a whole lifter folder: lift takes it
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.name.startswith("best.")]


def test_keep_best_refuses_a_cache_with_3d_and_an_unknown_figure(tmp_path):
    from elepose.train.config import FlowConfig, TrainConfig
    from elepose.train.loop import train_flow, train_lifter
    from tests.synthetic import write_cache

    with pytest.raises(InputError, match="--keep-best: got 'pa_mpjpe'"):
        TrainConfig(keep_best="pa_mpjpe")
    cache = write_cache(tmp_path / "mocap", n_train=256, n_test=64)
    train_flow(FlowConfig(data=str(cache), out=str(tmp_path / "flow"), hidden=32, blocks=2, epochs=1, batch_size=64,
                          device="cpu"), progress=False)  # fmt: skip
    with pytest.raises(InputError, match="has 3D in its test split"):
        train_lifter(_lifter_config(cache, tmp_path / "flow", tmp_path / "run", epochs=1), progress=False)
    assert not (tmp_path / "run").exists()


def test_fit_init_fine_tunes_a_trained_lifter_with_its_layout_and_a_per_pose_scale(tmp_path, monkeypatch):
    import elepose.train.fit as fit_module
    from elepose.models.io import load_lifter_record
    from elepose.train.config import FlowConfig, TrainConfig
    from elepose.train.fit import FitConfig, fit
    from elepose.train.loop import train_flow, train_lifter
    from elepose.train.runlog import read_metrics
    from tests.synthetic import write_cache

    cache = write_cache(tmp_path / "mocap", n_train=512, n_test=64)
    train_flow(FlowConfig(data=str(cache), out=str(tmp_path / "flow"), hidden=32, blocks=2, epochs=1, batch_size=128,
                          device="cpu", epoch_samples=256), progress=False)  # fmt: skip
    train_lifter(TrainConfig(data=str(cache), flow=str(tmp_path / "flow"), out=str(tmp_path / "base"), hidden=48,
                             epochs=1, batch_size=64, eval_samples=32, reliability_rotations=2, device="cpu",
                             epoch_samples=256, elevation_warmup_steps=1), progress=False)  # fmt: skip
    assert load_lifter_record(tmp_path / "base").normalisation.mode == "dataset"
    sources = []
    for i in range(5):
        (tmp_path / f"v{i}").mkdir()
        sources.append(str(_write("npy", tmp_path / f"v{i}", _walk(60, 20 + i))))
    messages: list[str] = []
    monkeypatch.setattr(fit_module, "_MIN_FLOW_POSES", 100)  # 300 poses: enough here for a fresh flow
    fit(FitConfig(paths=tuple(sources), out=str(tmp_path / "mine"), minutes=0.5, device="cpu",
                  init=str(tmp_path / "base")), progress=False, say=messages.append)  # fmt: skip
    monkeypatch.undo()
    # 360k samples (the default budget) on 300 poses cannot be trained in 0.5 minutes: fit says how far it got.
    capped = json.loads((tmp_path / "mine" / "fit.json").read_text())
    short = capped["stopped_by_minutes"]["lifter"]
    assert short["epochs_run"] == capped["lifter_epochs_run"] < short["epochs_planned"]
    assert short["epochs_planned"] == capped["schedule"]["lifter_epochs"]
    assert any(m.startswith("warning: the --minutes cap stopped") and "the lifter at epoch" in m for m in messages)
    record = load_lifter_record(tmp_path / "mine" / "lifter")
    assert record.hidden == 48 and record.normalisation.mode == "pose-head"
    assert any(
        "fine-tuning the lifter" in m and "dataset -> pose-head" in m and "clipped at 100" in m for m in messages
    )
    flow = json.loads((tmp_path / "mine" / "flow" / "run.json").read_text())
    assert flow["init"] is None and flow["hidden"] == 1024  # the flow learns the user's 2D afresh, at full width
    lifter_run = json.loads((tmp_path / "mine" / "lifter" / "run.json").read_text())
    assert lifter_run["grad_clip"] == 100.0  # a warm start's gradient is clipped (see train/fit.py)
    assert "train_grad_norm" in (tmp_path / "mine" / "lifter" / "metrics.csv").read_text()
    warm_record = fit(FitConfig(paths=tuple(sources), out=str(tmp_path / "warm"), samples=1000, device="cpu",
                                init_flow=True, init=str(tmp_path / "base"), track_pairs=True), progress=False,
                        say=messages.append)  # fmt: skip
    assert json.loads((tmp_path / "warm" / "lifter" / "run.json").read_text())["track_pairs"] is True
    held_out = [row["test_nll"] for row in read_metrics(tmp_path / "warm" / "flow" / "metrics.csv")]
    assert warm_record["flow_epochs_run"] == len(held_out)  # the flow's epoch kept: its lowest held-out NLL
    assert held_out[warm_record["flow_epoch_kept"] - 1] == min(held_out) == warm_record["flow_nll"]["test_nll"]
    warm = json.loads((tmp_path / "warm" / "flow" / "run.json").read_text())
    from elepose.models.io import load_flow

    warm_flow, _ = load_flow(tmp_path / "warm" / "flow")
    assert warm["init"] == str(tmp_path / "base")  # --init-flow: the run's flow, with its sizes
    assert warm_flow.flow.module_list[0].subnet[0].out_features == 32
    assert (tmp_path / "base" / "config.json").is_file()  # the run it started from is untouched


def test_missing_joints_are_dropped_by_default_or_filled_from_the_complete_poses(tmp_path):
    poses = np.concatenate([_walk(200, 30 + i, offset=15.0 * i) for i in range(2)])
    scores = np.ones((400, 17))
    hidden = np.arange(0, 400, 5)
    scores[hidden, 13] = 0.0  # every 5th pose lost its left wrist, and the detector wrote (0, 0) there
    written = poses.copy()
    written[hidden, 13] = 0.0
    write_array(tmp_path / "p.npy", written, scores)
    options = KeypointCacheOptions(min_motion=0.0)
    dropped = build_keypoint_cache([tmp_path / "p.npy"], tmp_path / "drop", options)
    assert dropped["sources"][0]["per_source"]["p.npy"]["complete_enough"] == 320
    filled = build_keypoint_cache(
        [tmp_path / "p.npy"], tmp_path / "fill", KeypointCacheOptions(min_motion=0.0, missing="fill")
    )
    assert filled["sources"][0]["filled_poses"] == 80
    cached = np.concatenate([load_split(tmp_path / "fill" / f"{s}.npz").poses_2d for s in ("train", "test")])
    frames = np.concatenate([load_split(tmp_path / "fill" / f"{s}.npz").frame for s in ("train", "test")])
    error = np.linalg.norm(cached[np.isin(frames, hidden), 13] - poses[frames[np.isin(frames, hidden)], 13], axis=-1)
    assert np.median(error) < 15.0  # px, on a pose about 300 px tall; the detector's own value was never used
    with pytest.raises(InputError, match="--missing"):
        KeypointCacheOptions(missing="guess")


def test_data_build_and_summary_of_a_2d_only_cache_on_the_command_line(tmp_path):
    from elepose.cli import _register_all, app

    _register_all()
    source = _write("npy", tmp_path, _walk(120, 40))
    built = CliRunner().invoke(app, ["data", "build", "--source", "keypoints", str(source), "--out", str(tmp_path / "c"), "--min-motion", "0"])  # fmt: skip
    assert built.exit_code == 0, built.output
    assert "2D only, no 3D" in built.output and "fewer than 5 clips" in built.output
    summary = CliRunner().invoke(app, ["data", "summary", str(tmp_path / "c")])
    assert summary.exit_code == 0 and "train: 2D only" in summary.output, summary.output
    wrong = CliRunner().invoke(app, ["data", "build", "--source", "bandai", "--missing", "fill", "--out", str(tmp_path / "d")])  # fmt: skip
    assert wrong.exit_code == 2 and "only for --source keypoints" in wrong.output


def test_group_by_on_the_command_line_reaches_the_manifest_and_a_bad_pattern_is_one_line(tmp_path):
    from elepose.cli import _register_all, app

    _register_all()
    files = []
    for take in range(5):
        for side in ("left", "right"):
            write_array(tmp_path / f"take{take}_{side}.npy", _walk(30, take, offset=3.0 * take))
            files.append(str(tmp_path / f"take{take}_{side}.npy"))
    args = ["data", "build", "--source", "keypoints", *files, "--min-motion", "0", "--group-by", r"take\d+"]
    built = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "c")])
    assert built.exit_code == 0, built.output
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["split"] == {"by_motion": True, "clips": 5, "sources": 10, "group_by": r"take\d+"}
    val = load_split(tmp_path / "c" / "test.npz")
    assert len({str(n).split("_")[0] for n in val.clip_names}) == 1 and len(val.clip_names) == 2
    bad = CliRunner().invoke(app, [*args[:-1], "take(", "--out", str(tmp_path / "d")])
    assert bad.exit_code == 2 and bad.output.startswith("error: ") and "--group-by" in bad.output
    assert len(bad.output.strip().splitlines()) == 1 and not (tmp_path / "d").exists()
