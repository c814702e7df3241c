"""The "Train on your own 2D" pieces: COCO definitions, 2D-measured bone ratios, the MMPose export,
folders of per-video files, fit's sample budget."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from elepose.benchmark.own2d import clip_subset, export_mmpose
from elepose.data.keypoint_cache import (
    KeypointCacheOptions,
    bone_ratios_from_2d,
    build_keypoint_cache,
    expand_sources,
)
from elepose.data.keypoints import read_keypoints
from elepose.errors import InputError
from elepose.evaluate.evaluation import defined_as
from elepose.skeleton import (
    BONES,
    H36M_BONE_RATIOS,
    MPI_INF_3DHP_BONE_RATIOS,
    as_defined_by,
    bone_ratios,
    coco17_to_h36m,
    h36m_to_coco17,
)
from elepose.train.fit import FitConfig, plan_schedule
from tests.keypoint_writers import write_mmpose_folder, write_mmpose_json
from tests.synthetic import make_split, random_world_poses


def test_h36m_to_coco17_places_joints_as_a_coco_detector_and_converts_back_to_coco_definitions():
    h36m = np.arange(17 * 2, dtype=np.float64).reshape(17, 2) ** 1.5
    coco = h36m_to_coco17(h36m)
    # COCO order: nose, eyes, ears, then left/right shoulder, elbow, wrist, hip, knee, ankle.
    assert np.array_equal(coco[0], h36m[9])
    assert np.array_equal(coco[5], h36m[11]) and np.array_equal(coco[6], h36m[14])
    assert np.array_equal(coco[11], h36m[4]) and np.array_equal(coco[16], h36m[3])
    # By hand: left eye = nose + 0.25 (head top - nose) + 0.20 (left - right shoulder) / 2.
    up, across = h36m[10] - h36m[9], (h36m[11] - h36m[14]) / 2
    assert np.allclose(coco[1], h36m[9] + 0.25 * up + 0.20 * across)
    assert np.allclose(coco[4], h36m[9] + 0.06 * up - 0.47 * across)
    back = coco17_to_h36m(coco)
    unchanged = [1, 2, 3, 4, 5, 6, 9, 11, 12, 13, 14, 15, 16]
    assert np.array_equal(back[unchanged], h36m[unchanged])
    pelvis, thorax = (h36m[1] + h36m[4]) / 2, (h36m[11] + h36m[14]) / 2  # by hand
    assert np.allclose(back[0], pelvis) and np.allclose(back[8], thorax) and np.allclose(back[7], (pelvis + thorax) / 2)
    assert np.allclose(back[10], h36m[9] + 0.25 * up)  # the head is the mid-eyes


def test_each_layout_redefines_the_joints_its_detector_defines_otherwise():
    rng = np.random.default_rng(5)
    poses = rng.normal(size=(6, 17, 3))
    coco = as_defined_by(poses, "coco17")
    assert np.allclose(coco, coco17_to_h36m(h36m_to_coco17(poses)))  # the round trip, by another route
    body25 = as_defined_by(poses, "body25")
    assert np.allclose(body25[:, 0], (poses[:, 1] + poses[:, 4]) / 2) and np.array_equal(body25[:, 8], poses[:, 8])
    assert np.allclose(body25[:, 7], (body25[:, 0] + poses[:, 8]) / 2) and np.allclose(body25[:, 10], coco[:, 10])
    for same in ("halpe26", "h36m", None):
        assert np.array_equal(as_defined_by(poses, same), poses)
    with pytest.raises(ValueError, match="unknown"):
        as_defined_by(poses, "mystery")


def test_eyes_and_ears_sit_where_a_real_detector_puts_them():
    """The face offsets, applied to a real detector's nose, head top and shoulders, land near its eyes and ears."""
    path = Path(__file__).resolve().parents[2] / "shared" / "real2d" / "alphapose-halpe26-single.json"
    if not path.is_file():
        pytest.skip("../shared/real2d is absent")
    raw = json.loads(path.read_text())
    k = np.array([p["keypoints"] for p in raw], dtype=np.float64).reshape(len(raw), 26, 3)[..., :2]
    h36m = np.zeros((len(k), 17, 2))
    h36m[:, 9], h36m[:, 10], h36m[:, 11], h36m[:, 14] = k[:, 0], k[:, 17], k[:, 5], k[:, 6]
    placed = h36m_to_coco17(h36m)[:, 1:5]
    scale = np.linalg.norm(k[:, 17] - k[:, 0], axis=-1)[:, None]
    miss = np.linalg.norm(placed - k[:, 1:5], axis=-1) / scale
    at_head_top = np.linalg.norm(k[:, 17:18] - k[:, 1:5], axis=-1) / scale  # the old placement
    assert np.median(miss) < 0.1 and np.median(miss) < 0.25 * np.median(at_head_top)


def test_coco_definitions_in_3d_project_to_the_coco_definitions_in_2d():
    split = make_split(200, 4, seed=3)
    defined = defined_as(split, "coco17")
    assert np.array_equal(defined.poses_2d[:, 9], split.poses_2d[:, 9])
    # Project the COCO-defined 3D with the split's intrinsics (focal 1150 px, centre 500 px).
    cam = defined.poses_3d.astype(np.float64)
    projected = cam[..., :2] / cam[..., 2:3] * 1150.0 + 500.0
    # Midpoints do not commute with perspective exactly; at 5 m the gap stays near a pixel at most.
    gap = np.linalg.norm(projected - defined.poses_2d, axis=-1)
    assert gap.max() < 1.5 and np.median(gap[:, [0, 7, 8]]) < 0.6
    assert np.abs(defined.poses_3d[:, 8] - split.poses_3d[:, 8]).max() > 1e-3  # the thorax did move


def _views_of(ratios: tuple[float, ...], n: int, seed: int) -> np.ndarray:
    """Orthographic 2D views ``(n, 17, 2)`` of moving skeletons whose bones have ``ratios``."""
    rng = np.random.default_rng(seed)
    world = random_world_poses(n, rng)  # varied 3D poses (metres)
    rebuilt = np.zeros_like(world)
    for b, (parent, child) in enumerate(BONES):
        direction = world[:, child] - world[:, parent]
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        rebuilt[:, child] = rebuilt[:, parent] + ratios[b] * direction
    views = []
    for pose in rebuilt:
        azimuth, elevation = rng.uniform(0, 2 * np.pi), np.radians(rng.normal(12.0, 6.0))
        ca, sa, ce, se = np.cos(azimuth), np.sin(azimuth), np.cos(elevation), np.sin(elevation)
        turn = np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]])
        tilt = np.array([[1, 0, 0], [0, ce, -se], [0, se, ce]])
        camera = pose @ turn.T @ tilt.T  # z up in the world: image x = world x, image y = world z
        views.append(np.c_[camera[:, 0], -camera[:, 2]] * 100.0)
    return np.array(views)


def test_bone_ratios_from_2d_recover_a_skeleton_that_is_not_human36m():
    truth = MPI_INF_3DHP_BONE_RATIOS
    views = _views_of(truth, 3000, seed=0)
    measured = bone_ratios_from_2d(views)
    assert measured.shape == (16,) and measured.mean() == pytest.approx(1.0)
    error = np.abs(measured - np.asarray(truth)).mean()
    h36m_error = np.abs(np.asarray(H36M_BONE_RATIOS) - np.asarray(truth)).mean()
    assert error < 0.07 and error < 0.6 * h36m_error
    assert measured[0] == pytest.approx(measured[3]) and measured[10] == pytest.approx(measured[13])  # symmetric


def test_bone_ratios_from_2d_match_the_3d_of_a_frontal_skeleton_exactly():
    # One rigid skeleton seen straight on many times: its 2D bones are its 3D bones.
    split = make_split(1, 1, seed=1)
    pose = split.poses_3d[0].astype(np.float64)
    pose[:, 2] = 5.0  # flatten it into a plane facing the camera
    views = np.repeat(pose[None, :, :2], 10, axis=0)
    assert np.allclose(bone_ratios_from_2d(views), _symmetric(bone_ratios(pose[None])), atol=1e-9)


def _symmetric(ratios: np.ndarray) -> np.ndarray:
    mirror = [3, 4, 5, 0, 1, 2, 6, 7, 8, 9, 13, 14, 15, 10, 11, 12]
    out = 0.5 * (ratios + ratios[mirror])
    return out / out.mean()


def test_exported_mmpose_files_read_back_as_coco_defined_2d_one_file_per_clip_and_camera(tmp_path):
    split = make_split(240, 6, seed=2, clips=3)
    files = export_mmpose(split, tmp_path / "files", ["synthetic_clip0", "synthetic_clip2"])
    assert len(files) == 4  # cameras 0, 2, 3, 5 film clips 0 and 2
    for path in files:
        text = path.read_text()
        assert "poses_3d" not in text and "camera" not in json.loads(text)[0]
        view = int(path.stem.rsplit("camera", 1)[1])
        rows = np.flatnonzero(split.view == view)
        detections = read_keypoints(path)
        assert detections.layout == "coco17" and len(detections) == len(rows)
        expected = coco17_to_h36m(h36m_to_coco17(split.poses_2d_detected[rows]))
        assert np.allclose(detections.keypoints[:, :, :2], expected, atol=0.006)  # written to 2 decimals


def test_clip_subsets_are_fixed_and_nested():
    names = [f"clip{i:03d}" for i in range(50)]
    small, medium, every = (clip_subset(names, s) for s in (0.1, 0.3, 1.0))
    assert len(small) == 5 and len(medium) == 15 and sorted(every) == names
    assert set(small) <= set(medium) and clip_subset(list(reversed(names)), 0.3) == medium
    assert clip_subset(names[:3], 0.1) == clip_subset(names[:3], 0.1)[:1]  # at least one clip


def _walk(frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    split = make_split(frames, 1, seed=seed)
    return h36m_to_coco17(split.poses_2d.astype(np.float64)) + rng.normal(0, 0.5, (frames, 17, 2))


def test_a_folder_of_per_video_files_gives_one_source_per_video(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for k in range(6):
        write_mmpose_json(videos / f"v{k}.json", [[pose] for pose in _walk(40, k)])
    frames = tmp_path / "frames"
    frames.mkdir()
    write_mmpose_folder(frames, [[pose] for pose in _walk(40, 9)])
    assert expand_sources([videos, frames]) == [videos / f"v{k}.json" for k in range(6)] + [frames]
    manifest = build_keypoint_cache([videos], tmp_path / "cache", KeypointCacheOptions(min_motion=0.0))
    assert set(manifest["sources"][0]["per_source"]) == {f"v{k}.json" for k in range(6)}
    assert manifest["split_rule"].startswith("every 5th clip")
    ratios = manifest["bone_ratio_sets"]["keypoints"]
    assert ratios["source"].startswith("every bone measured") and len(ratios["values"]) == 16
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="empty: a folder without detector files"):
        expand_sources([empty])


def test_the_h36m_bone_ratio_choice_keeps_the_human36m_limbs(tmp_path):
    write_mmpose_json(tmp_path / "v.json", [[pose] for pose in _walk(120, 1)])
    options = KeypointCacheOptions(min_motion=0.0, bone_ratios="h36m")
    manifest = build_keypoint_cache([tmp_path / "v.json"], tmp_path / "cache", options)
    ratios = manifest["bone_ratios"]
    assert ratios[1] == pytest.approx(H36M_BONE_RATIOS[1]) and ratios[11] == pytest.approx(H36M_BONE_RATIOS[11])
    with pytest.raises(InputError, match="--bone-ratios 'x'"):
        KeypointCacheOptions(bone_ratios="x")


def test_a_sample_budget_fixes_the_schedule_and_lifts_the_time_limit():
    schedule = plan_schedule(None, 2000, samples=50_000)
    steps = 2000 // schedule.batch_size
    assert schedule.batch_size == 250 and schedule.flow_minutes is None and schedule.lifter_minutes is None
    assert schedule.lifter_epochs == schedule.flow_epochs == round(50_000 / (steps * 250))
    # The flow's rate drops once, after two thirds of its epochs (the paper's 10/20/30 with a time budget).
    assert schedule.flow_lr_milestones == (round(2 * schedule.flow_epochs / 3),)
    assert plan_schedule(10.0, 2000).flow_lr_milestones == (10, 20, 30)
    # The flow stops after a tenth of its epochs without a lower held-out NLL, at least 5:
    # 148 poses at 360k samples: batch 18, 8 steps, 2,500 epochs -> 250; 25 epochs -> 5; time budget: 10 of 100.
    assert plan_schedule(10.0, 148, samples=360_000).flow_patience == 250
    assert schedule.flow_epochs == 25 and schedule.flow_patience == 5
    assert plan_schedule(10.0, 2000).flow_patience == 10
    timed = plan_schedule(10.0, 2000)
    assert timed.flow_minutes == pytest.approx(2.5) and timed.lifter_epochs == 100_000
    with pytest.raises(InputError, match="--samples"):
        FitConfig(paths=("x",), out="o", samples=10)
    # The default budget is in samples, the command line's too; --minutes only caps it.
    import inspect

    from elepose.cli.fit import fit as fit_command
    from elepose.train.fit import DEFAULT_SAMPLES

    default = FitConfig(paths=("x",), out="o")
    assert default.samples == DEFAULT_SAMPLES and default.minutes is None
    options = inspect.signature(fit_command).parameters
    assert options["samples"].default.default == DEFAULT_SAMPLES and options["minutes"].default.default is None
    capped = plan_schedule(4.0, 2000, samples=50_000)
    assert capped.lifter_epochs == schedule.lifter_epochs and capped.lifter_minutes == pytest.approx(3.0)
    with pytest.raises(InputError, match="--init-flow: expected --init"):
        FitConfig(paths=("x",), out="o", init_flow=True)


def test_fit_with_a_sample_budget_from_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from elepose.cli import _register_all, app

    videos = tmp_path / "videos"
    videos.mkdir()
    for k in range(5):
        write_mmpose_json(videos / f"v{k}.json", [[pose] for pose in _walk(40, k)])
    _register_all()
    args = ["fit", str(videos), "--out", str(tmp_path / "mine"), "--samples", "2000", "--hidden", "32",
            "--bone-ratios", "h36m", "--min-motion", "0", "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "5 source video(s), every 5th clip" in result.output and "epochs each (about 2000 samples)" in result.output
    record = json.loads((tmp_path / "mine" / "fit.json").read_text())
    assert record["split"]["by_motion"] is True and record["split"]["clips"] == 5
    assert record["split"]["rule"].startswith("every 5th clip") and record["settings"]["selection"]["group_by"] is None
    assert record["schedule"]["lifter_minutes"] is None
    assert record["lifter_epochs_run"] == record["schedule"]["lifter_epochs"] == record["flow_epochs_run"]
    # fit judged its own result; a failed check is said, with what to try.
    names = [c["check"] for c in record["checks"]]
    assert names == ["flow_generalises", "held_out_reprojection", "held_out_relift", "elevation_plausible"]
    assert record["checks"][1]["value"] == record["last_epoch"]["val_reprojection"]
    assert ("this fit may be unusable" in result.output) == (not all(c["passed"] for c in record["checks"]))
    manifest = json.loads((tmp_path / "mine" / "cache" / "manifest.json").read_text())
    assert manifest["bone_ratios"][1] == pytest.approx(H36M_BONE_RATIOS[1])  # --bone-ratios reached the cache
    # One short clip (30 frames: 24 training poses): refused from scratch, fine-tuned with --init and a warning.
    write_mmpose_json(tmp_path / "short.json", [[pose] for pose in _walk(30, 11)])
    short = ["fit", str(tmp_path / "short.json"), "--samples", "1000", "--hidden", "32", "--min-motion", "0",
             "--device", "cpu"]  # fmt: skip
    refused = CliRunner().invoke(app, [*short, "--out", str(tmp_path / "scratch")])
    assert refused.exit_code == 2 and "expected at least 64 and 2" in refused.output and "--init" in refused.output
    fitted = CliRunner().invoke(
        app, [*short, "--out", str(tmp_path / "tuned"), "--init", str(tmp_path / "mine" / "lifter")]
    )
    assert fitted.exit_code == 0, fitted.output
    assert "warning: only 24 training poses" in fitted.output and "cannot be made by motion" in fitted.output
    assert "fine-tuning the flow and lifter" in fitted.output and "too few for a flow" in fitted.output
    tuned = json.loads((tmp_path / "tuned" / "fit.json").read_text())
    # So little 2D: the start's lifts of its own training cache are kept by default (--distill auto).
    assert tuned["distill"]["cache"] == str(tmp_path / "mine" / "cache") and tuned["settings"]["distill"] == "auto"
    assert (
        "distill: each lifter step also keeps" in fitted.output and "auto: under 2000 training poses" in fitted.output
    )
    assert json.loads((tmp_path / "tuned" / "lifter" / "run.json").read_text())["distill"] == tuned["distill"]["cache"]
    check = tuned["start_check"]
    shift_ok = abs(check["elevation_shift_deg"]) <= 15.0
    assert check["figure"] == "val_nf" and check["better"] == (check["fitted"] < check["start"] and shift_ok)
    assert check["figures"]["fitted"]["val_nf"] == check["fitted"]
    # lift is pointed at the fit only when it beat its start on the held-out 2D, else at the start itself.
    assert tuned["lifter"] == (
        str(tmp_path / "tuned" / "lifter") if check["better"] else str(tmp_path / "mine" / "lifter")
    )
    assert ("fit keeps the start" in fitted.output) == (not check["better"])
    # A fitted lifter kept on one short clip (held out: its later frames) says it is fitted to that motion.
    assert tuned["fitted_to_these_videos"] == check["better"]
    assert ("lift these videos with it, other videos with the start" in fitted.output) == check["better"]
    # A lifter compared with itself is not better than itself: a tie keeps the start.
    from elepose.train.fit_checks import compare_with_start

    same = compare_with_start(tmp_path / "mine" / "lifter", tmp_path / "mine" / "lifter", tmp_path / "tuned" / "cache")
    assert same["fitted"] == same["start"] and same["better"] is False
    # --distill: the start's lifts of its own training cache are kept; fit says so and the lifter run records it.
    distilled = CliRunner().invoke(
        app, [*short, "--out", str(tmp_path / "kept"), "--init", str(tmp_path / "mine" / "lifter"),
              "--distill", str(tmp_path / "mine" / "cache"), "--distill-weight", "10", "--distill-poses", "50"],
    )  # fmt: skip
    assert distilled.exit_code == 0, distilled.output
    assert "distill: each lifter step also keeps the start's lifts of 50 poses" in distilled.output
    run = json.loads((tmp_path / "kept" / "lifter" / "run.json").read_text())
    assert (run["distill"], run["distill_weight"], run["distill_poses"]) == (str(tmp_path / "mine" / "cache"), 10.0, 50)
    assert "train_distill" in (tmp_path / "kept" / "lifter" / "metrics.csv").read_text()
    no_start = CliRunner().invoke(app, [*short, "--out", str(tmp_path / "none"), "--distill", str(tmp_path / "mine")])
    assert no_start.exit_code == 2 and "--distill: expected --init RUN" in no_start.output
    assert not (tmp_path / "none").exists()
    # auto keeps nothing with plenty of 2D, or when the start's cache is not on this machine; off keeps nothing.
    from elepose.train.fit import FitConfig, _distill_cache, _warm_start
    from elepose.train.runstate import changed_settings

    warm = FitConfig(paths=("x",), out="o", init=str(tmp_path / "mine" / "lifter"))
    start = _warm_start(warm.init)
    assert _distill_cache(warm, 1999, start)[0] == str(tmp_path / "mine" / "cache")
    assert _distill_cache(warm, 2000, start)[0] is None and "only under 2000" in _distill_cache(warm, 2000, start)[1]
    # A fit recorded before --distill existed did not distil: it resumes with --distill off, not with auto.
    legacy = json.loads(json.dumps(asdict(warm)))
    del legacy["distill"]
    assert changed_settings(legacy, replace(warm, distill=None)) == {}
    assert changed_settings(legacy, warm) == {"distill": (None, "auto")}
    assert changed_settings({**legacy, "distill": "auto"}, warm) == {}
    assert FitConfig(paths=("x",), out="o").distill is None  # no start: nothing to keep
    off = CliRunner().invoke(
        app, [*short, "--out", str(tmp_path / "off"), "--init", str(tmp_path / "mine" / "lifter"), "--distill", "off"]
    )
    assert (
        off.exit_code == 0 and "distill: off (off (--distill off))" not in off.output and "distill: off" in off.output
    )
    assert json.loads((tmp_path / "off" / "fit.json").read_text())["distill"]["cache"] is None
    (tmp_path / "mine" / "cache").rename(tmp_path / "elsewhere")
    assert _distill_cache(warm, 24, start)[0] is None and "is not here" in _distill_cache(warm, 24, start)[1]


def test_only_a_kept_fit_held_out_by_frames_is_called_fitted_to_its_videos():
    from elepose.train.fit import fitted_to_these_videos

    by_frames = {"by_motion": False, "clips": 1}
    assert "lift these videos with it" in fitted_to_these_videos(by_frames, start_kept=False)
    assert fitted_to_these_videos(by_frames, start_kept=True) is None  # lift is pointed at the start
    assert fitted_to_these_videos({"by_motion": True, "clips": 32}, start_kept=False) is None
    assert fitted_to_these_videos({}, start_kept=False) is None  # an older fit.json without the split


def test_a_drifting_held_out_reprojection_is_reported(tmp_path):
    from elepose.train.fit import reprojection_drift

    def metrics(values: list[float]) -> Path:
        path = tmp_path / f"m{len(list(tmp_path.iterdir()))}.csv"
        rows = ["epoch,val_reprojection,val_nf"] + [f"{e + 1},{v},-100" for e, v in enumerate(values)]
        path.write_text("\n".join(rows) + "\n")
        return path

    # The benchmark's warm start at 30 %: 0.13 at epoch 11, 0.19 at the end.
    assert reprojection_drift(metrics([0.14, 0.131, 0.15, 0.2, 0.192])) == {
        "best": 0.131,
        "best_epoch": 2,
        "last": 0.192,
    }
    assert reprojection_drift(metrics([0.3, 0.25, 0.24, 0.26])) is None  # within 1.3x of its best
    assert reprojection_drift(tmp_path / "absent.csv") is None
    assert reprojection_drift(metrics([])) is None


def test_report_section_lists_every_fit_and_both_checks(tmp_path: Path):
    from elepose.benchmark.report.own2d import render_own2d as _own2d_section

    entry = {
        "detected": {"pa_mpjpe": 60.0, "n_mpjpe": 70.0},
        "gt": {"pa_mpjpe": 50.0},
        "elevation": {"correlation": 0.5},
        "reliability_median": 40.0,
    }
    own = {
        "clips": 10,
        "samples": 1000,
        "lifters": {
            "transfer": entry,
            "fit-scratch-100pct": {
                **entry,
                "start": "scratch",
                "share": 1.0,
                "clips": 10,
                "files": 40,
                "training_poses": 900,
                "epoch": 12,
                "epochs": 12,
                "validation_without_3d": {"val_reprojection": 0.192},
                "lowest_reprojection": {"epoch": 7, "pa_mpjpe_detected": 64.8, "val_reprojection": 0.131},
            },
        },  # fmt: skip
        "checks": [{"check": "c", "measured": "m", "met": False}],
        "real": {"skipped": "absent"},
    }
    text = "\n".join(_own2d_section(own))
    row = "| fit from scratch, 100 % (10 clips, 40 files) | 900 | 60.0 | 50.0 | 70.0 | 0.50 | 40.0 | 12 (0.192) "
    assert row + "| 7: 64.8 (0.131) |" in text
    assert "distils by default" not in text  # an own2d.json from before --distill auto
    scratch = own["lifters"]["fit-scratch-100pct"]
    warm = {**scratch, "start": "init", "share": 0.01, "clips": 1, "files": 4, "training_poses": 148}
    own["lifters"].update({"fit-init-1pct": warm, "fit-init-distill-1pct": {**warm, "distill_weight": 1000.0}})
    own["lifters"]["fit-init-10pct"] = {**warm, "share": 0.1, "training_poses": 2700}
    own["distill_auto_below_poses"] = 2000
    text = "\n".join(_own2d_section(own))
    assert "Under 2,000 training poses `fit --init` distils by default" in text
    assert "| fit --init --distill off, 1 % (1 clips, 4 files) | 148 |" in text
    assert "| fit --init, 10 % (1 clips, 4 files) | 2,700 |" in text
    assert "| fit --init --distill (the start's cache, weight 1000), 1 % (1 clips, 4 files) | 148 |" in text
    assert "| transferred" in text.lower() and "| 40.0 | - | - |" in text
    assert "| c | m | **no** |" in text and "skipped (absent)" in text


def _scored(detected: float, **extra) -> dict:
    return {"detected": {"pa_mpjpe": detected}, **extra}


def test_section_checks_compare_every_warm_start_with_the_transferred_lifter():
    from elepose.benchmark.own2d_checks import own2d_checks

    lifters = {
        "transfer": _scored(64.0),
        "cache-path": _scored(80.0),
        "fit-scratch-10pct": _scored(85.0),
        "fit-init-10pct": _scored(59.4),
        "fit-scratch-100pct": _scored(90.0),
        "fit-init-100pct": _scored(64.5),
        "fit-init-1pct": _scored(64.0, start_kept=True),  # the start kept: the transferred lifter itself
    }
    checks = {c["check"]: c for c in own2d_checks(lifters, (0.1, 1.0), (0.01,))}
    assert checks["the better fit beats the transferred lifter, 10 % of the clips"]["met"] is True
    assert (
        checks["the better fit beats the transferred lifter, 100 % of the clips"]["measured"] == "init 64.5 vs 64.0 mm"
    )
    one = checks["fit --init is not worse than the transferred lifter, 1 % of the clips"]
    assert one == {
        "check": "fit --init is not worse than the transferred lifter, 1 % of the clips",
        "measured": "64.0 (the start kept) vs 64.0 mm",
        "met": True,  # equal is not worse
    }
    assert checks["fit --init is not worse than the transferred lifter, 100 % of the clips"]["met"] is False
    scratch = checks["fit from scratch on all clips within 1.15x of the cache-path lifter on the same clips"]
    assert scratch["measured"] == "1.12x (90.0 vs 80.0 mm)" and scratch["met"] is True
    order = [c["check"].rsplit(", ", 1)[1] for c in own2d_checks(lifters, (0.1, 1.0), (0.01,))[2:5]]
    assert order == ["1 % of the clips", "10 % of the clips", "100 % of the clips"]
    # Where fit --init distils by default, the plain warm start is named for what it ran: --distill off.
    lifters["fit-init-1pct"]["training_poses"] = 148
    lifters["fit-init-10pct"]["training_poses"] = 2700
    lifters["fit-init-distill-1pct"] = _scored(62.0, training_poses=148)
    named = [c["check"] for c in own2d_checks(lifters, (0.1, 1.0), (0.01,), (0.01,), 2000)]
    assert "fit --init --distill off is not worse than the transferred lifter, 1 % of the clips" in named
    assert "fit --init is not worse than the transferred lifter, 10 % of the clips" in named
    assert "fit --init --distill is not worse than the transferred lifter, 1 % of the clips" in named


def test_held_out_figures_are_ranked_against_accuracy_by_spearman():
    from elepose.benchmark.own2d_checks import held_out_figures_against_accuracy

    errors = [60.0, 62.0, 85.0, 90.0]
    fits = [
        ({"val_reprojection": r, "val_nf": nf, "val_bone": 0.2}, e)
        for r, nf, e in zip([0.12, 0.15, 0.14, 0.27], [-100.0, -99.0, -98.0, -97.0], errors)
    ]
    fits.append(({"val_reprojection": float("nan")}, 70.0))  # a non-finite figure is left out
    found = held_out_figures_against_accuracy(fits)
    # By hand: ranks of the reprojection 1, 3, 2, 4 against 1, 2, 3, 4: rho = 1 - 6 * 2 / (4 * 15) = 0.8.
    assert found["val_reprojection"] == {"rho": pytest.approx(0.8), "fits": 4}
    assert found["val_nf"]["rho"] == pytest.approx(1.0)
    assert found["val_bone"] == {"rho": None, "fits": 4}  # a constant column sorts nothing
    assert found["val_lift_3d"] == {"rho": None, "fits": 0}


def test_report_marks_a_kept_start_and_lists_the_figures_against_accuracy():
    from elepose.benchmark.report.own2d import render_own2d

    entry = {"detected": {"pa_mpjpe": 64.0, "n_mpjpe": 70.0}, "gt": {"pa_mpjpe": 50.0}, "epoch": 40}
    own = {
        "clips": 141,
        "samples": 1000,
        "lifters": {
            "transfer": entry,
            "fit-init-1pct": {
                **entry,
                "start": "init",
                "share": 0.01,
                "clips": 1,
                "files": 10,
                "training_poses": 171,
                "epochs": 12,
                "start_kept": True,
                "start_check": {"figure": "val_nf", "better": False},
                "fitted_itself": {"detected": 66.25, "gt": 52.0},
            },
        },  # fmt: skip
        "checks": [],
        "figures_against_accuracy": {"val_reprojection": {"rho": 0.8, "fits": 4}, "val_bone": {"rho": None, "fits": 4}},
    }
    text = "\n".join(render_own2d(own))
    assert "| fit --init, 1 % (1 clips, 10 files); start kept (the fitted lifter itself: 66.2) | 171 | 64.0 |" in text
    assert "| `val_reprojection` | 0.80 | 4 |" in text and "| `val_bone` | - | 4 |" in text
    assert "`fit` compared each warm start with its start by `val_nf`." in text  # the figure the run used


def test_a_warm_start_is_kept_only_with_a_lower_flow_nll_and_a_plausible_elevation():
    from elepose.train.fit_checks import start_verdict

    def figures(nf: float, elevation: float) -> dict:
        return {"val_nf": nf, "val_reprojection": 0.15, "val_elevation_mean_deg": elevation}

    start = figures(-95.6, 9.3)
    # The benchmark's 10 % warm start: a lower NLL, the elevation 1.9 degrees up: the fit is kept.
    kept = start_verdict(figures(-98.8, 11.2), start)
    assert kept["better"] is True and kept["figure"] == "val_nf"
    assert kept["elevation_shift_deg"] == pytest.approx(1.9)
    assert start_verdict(figures(-90.0, 9.3), start)["better"] is False  # a higher NLL
    assert start_verdict(figures(-95.6, 9.3), start)["better"] is False  # a tie keeps the start
    assert start_verdict(figures(-120.0, 49.0), start)["better"] is False  # drifted 39.7 degrees up
    assert start_verdict(figures(-120.0, 24.3), start)["better"] is True  # 15 degrees exactly: still plausible
    assert start_verdict(figures(float("nan"), 9.3), start)["better"] is False
    # Section 10's fits on cameras 13 degrees higher: a move past 15 degrees is kept only from a
    # fit that passed every self-check, and never out of the plausible -10 to 40 degrees.
    names = ("flow_generalises", "held_out_reprojection", "held_out_relift", "elevation_plausible")
    passed = [{"check": n, "passed": True} for n in names]
    one_failed = [{**c, "passed": c["check"] != "held_out_relift"} for c in passed]
    assert start_verdict(figures(-97.2, 24.6), start)["better"] is False  # 15.3 up, no checks given
    assert start_verdict(figures(-97.2, 24.6), start, one_failed)["better"] is False  # 15.3 up, a check failed
    verdict = start_verdict(figures(-97.2, 24.6), start, passed)
    assert verdict["better"] is True and verdict["checks_passed"] is True
    assert start_verdict(figures(-120.0, 49.0), start, passed)["better"] is False  # 49 deg
    assert start_verdict(figures(-120.0, 40.0), start, passed)["better"] is True  # 40 deg: the limit
    assert start_verdict(figures(-90.0, 24.6), start, passed)["better"] is False  # a higher NLL
    # A lower NLL from a flow that does not generalise says nothing: the start is kept.
    flow_failed = [{**c, "passed": c["check"] != "flow_generalises"} for c in passed]
    assert start_verdict(figures(-98.8, 11.2), start, one_failed)["better"] is True  # a small move, flow fine
    assert start_verdict(figures(-98.8, 11.2), start, flow_failed)["better"] is False


def test_a_fit_judges_itself_by_the_figures_that_parted_good_fits_from_bad_in_the_benchmark():
    from elepose.train.fit_checks import failed_checks_warning, judge_fit

    def judged(flow: tuple[float, float], reprojection: float, relift: float, elevation: float) -> dict[str, bool]:
        figures = {"val_reprojection": reprojection, "val_lift_3d": relift, "val_elevation_mean_deg": elevation}
        checks = judge_fit({"train_nll": flow[0], "test_nll": flow[1]}, 26, figures)
        return {c["check"]: c["passed"] for c in checks}

    # The benchmark's warm start on 10 % of the clips (57.3 mm): flow -108.9 / -99.4, 0.170, 0.602, 11.2 deg.
    assert all(judged((-108.9, -99.4), 0.170, 0.602, 11.2).values())
    # From scratch on 10 % (85.9 mm): the lifter's held-out figures fail.
    scratch = judged((-102.9, -93.8), 0.289, 1.089, 7.4)
    assert scratch == {"flow_generalises": True, "held_out_reprojection": False, "held_out_relift": False,
                       "elevation_plausible": True}  # fmt: skip
    # The one-clip fit whose flow overfit (79.0 mm): (467 + 143) / 26 = 23.5 nats per dimension.
    one_clip = judge_fit({"train_nll": -143.1, "test_nll": 467.3}, 26, {"val_reprojection": 0.147})
    assert one_clip[0]["value"] == pytest.approx(610.4 / 26) and not one_clip[0]["passed"]
    assert not one_clip[2]["passed"] and not one_clip[3]["passed"]  # figures it lacks fail
    # 2 nats per dimension exactly still passes; a drift to 47 degrees (a user's failed fit) does not.
    assert judged((-100.0, -48.0), 0.15, 0.6, 40.0)["flow_generalises"] is True
    assert judged((-100.0, -48.0), 0.15, 0.6, 47.0)["elevation_plausible"] is False
    warning = failed_checks_warning(one_clip, 148, warm_start=True)
    assert warning is not None and warning.startswith("warning: this fit may be unusable")
    assert "more frames (this fit had 148 training poses" in warning and "--init" not in warning
    assert "--init a trained lifter" in failed_checks_warning(one_clip, 5000, warm_start=False)
    good = judge_fit({"train_nll": -108.9, "test_nll": -99.4}, 26,
                     {"val_reprojection": 0.17, "val_lift_3d": 0.6, "val_elevation_mean_deg": 11.0})  # fmt: skip
    assert failed_checks_warning(good, 148, warm_start=False) is None
