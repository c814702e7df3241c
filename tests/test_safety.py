"""A user's files are sacred: the numbered cases of the safety issue, each as it was reported.

Every case ran before the fix and lost a file, left a mixture or partial output behind, or ended
in a traceback; each test states what a user can rely on instead.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from elepose.data.bvh import parse_bvh
from elepose.data.cache import PoseCache, cache_manifest, load_split, write_cache
from elepose.data.safe_pickle import RefusedPickleClass, loads_restricted
from elepose.models import io as run_files
from elepose.outputs import remove_stale_temporaries
from elepose.train.config import FlowConfig, TrainConfig
from elepose.train.loop import TrainingDiverged, train_flow, train_lifter
from tests.synthetic import make_split
from tests.synthetic import write_cache as write_synthetic_cache

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str):
    from elepose.cli import _register_all, app

    _register_all()
    return CliRunner().invoke(app, [str(a) for a in args])


def _refused(result, *needles: str) -> None:
    """Exit code 2 and one ``error:`` line naming each needle; never a traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    line = [x for x in result.output.splitlines() if x.startswith("error:")]
    assert len(line) == 1, result.output
    for needle in needles:
        assert needle in line[0], (needle, line[0])


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return write_synthetic_cache(tmp_path_factory.mktemp("cache") / "cache", n_train=512, n_test=64)


def _flow_config(cache: Path, out: Path, **changes) -> FlowConfig:
    settings = dict(hidden=32, blocks=2, epochs=1, batch_size=128, lr=1e-3, device="cpu", epoch_samples=256)
    return FlowConfig(data=str(cache), out=str(out), **{**settings, **changes})


def _lifter_config(cache: Path, flow: Path, out: Path, **changes) -> TrainConfig:
    settings = dict(
        hidden=32, epochs=2, batch_size=64, lr=1e-3, eval_samples=32, reliability_rotations=2, device="cpu",
        epoch_samples=256, elevation_warmup_steps=1, seed=3,
    )  # fmt: skip
    return TrainConfig(data=str(cache), flow=str(flow), out=str(out), **{**settings, **changes})


@pytest.fixture(scope="module")
def runs(cache, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    train_flow(_flow_config(cache, root / "flow"), progress=False)
    train_lifter(_lifter_config(cache, root / "flow", root / "lifter"), progress=False)
    return {"flow": root / "flow", "lifter": root / "lifter", "cache": cache}


def _poses(cache: Path, n: int = 4) -> np.ndarray:
    return load_split(cache / "test.npz").poses_2d[:n].astype(np.float64)


# ----------------------------------------------------------------------------- 1-3: files lost


def test_1_data_build_refuses_an_out_folder_holding_a_users_files(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    source = tmp_path / "bvh"
    source.mkdir()
    (source / "clip.bvh").write_text("HIERARCHY")
    _refused(_cli("data", "build", "--source", source, "--out", out), str(out), "--overwrite")
    assert (out / "notes.txt").read_text() == "my notes"


def test_1_data_build_never_writes_onto_its_source(tmp_path):
    source = tmp_path / "bvh"
    source.mkdir()
    (source / "clip.bvh").write_text("HIERARCHY")
    for out in (source, tmp_path):  # the source itself, and a folder holding it
        _refused(_cli("data", "build", "--source", source, "--out", out, "--overwrite"), "input")
    assert (source / "clip.bvh").read_text() == "HIERARCHY"


def test_1_data_build_refuses_a_file_as_out(tmp_path):
    out = tmp_path / "cache.txt"
    out.write_text("keep me")
    source = tmp_path / "bvh"
    source.mkdir()
    _refused(_cli("data", "build", "--source", source, "--out", out), "is a file")
    assert out.read_text() == "keep me"


def test_2_lift_never_overwrites_its_input(runs, tmp_path):
    walk = tmp_path / "walk.json"
    walk.write_text(json.dumps([{"frame_id": 0, "instances": []}]))
    before = walk.read_bytes()
    _refused(_cli("lift", "--checkpoint", runs["lifter"], walk, "--out", tmp_path / "walk"), "input")
    assert walk.read_bytes() == before and not (tmp_path / "walk.npz").exists()


def test_2_lift_refuses_to_replace_a_file_it_did_not_write(runs, tmp_path):
    np.save(tmp_path / "in.npy", _poses(runs["cache"]).astype(np.float32))
    (tmp_path / "res.json").write_text('{"mine": true}')
    _refused(
        _cli("lift", "--checkpoint", runs["lifter"], tmp_path / "in.npy", "--out", tmp_path / "res"), "--overwrite"
    )
    assert (tmp_path / "res.json").read_text() == '{"mine": true}' and not (tmp_path / "res.npz").exists()
    ok = _cli("lift", "--checkpoint", runs["lifter"], tmp_path / "in.npy", "--out", tmp_path / "res", "--overwrite")
    assert ok.exit_code == 0, ok.output
    again = _cli("lift", "--checkpoint", runs["lifter"], tmp_path / "in.npy", "--out", tmp_path / "res", "--render", tmp_path / "r.png")  # fmt: skip
    assert again.exit_code == 0, again.output  # its own outputs are replaced without --overwrite
    assert _cli("lift", "--checkpoint", runs["lifter"], tmp_path / "in.npy", "--out", tmp_path / "res", "--render", tmp_path / "r.png").exit_code == 0  # fmt: skip


def test_3_train_refuses_a_finished_run_without_resume_and_keeps_its_log(runs, tmp_path):
    run = tmp_path / "lifter"
    shutil.copytree(runs["lifter"], run)
    log = (run / "metrics.csv").read_text()
    args = ["train", "--data", runs["cache"], "--flow", runs["flow"], "--out", run, "--hidden", "32", "--device", "cpu"]
    _refused(_cli(*args), "--resume", "--overwrite")
    assert (run / "metrics.csv").read_text() == log


def test_3_train_and_flow_refuse_a_folder_of_the_other_kind(runs, tmp_path):
    flow, lifter = tmp_path / "flow", tmp_path / "lifter"
    shutil.copytree(runs["flow"], flow)
    shutil.copytree(runs["lifter"], lifter)
    _refused(
        _cli("train", "--data", runs["cache"], "--flow", runs["flow"], "--out", flow, "--device", "cpu"), "elepose-flow"
    )
    _refused(_cli("flow", "--data", runs["cache"], "--out", lifter, "--device", "cpu"), "elepose-lifter")
    assert run_files.load_flow(flow)[1].epoch == 1 and run_files.load_lifter_record(lifter).epoch == 2


def test_3_overwrite_starts_a_finished_run_afresh(runs, tmp_path):
    run = tmp_path / "lifter"
    shutil.copytree(runs["lifter"], run)
    (run / "my-notes.txt").write_text("kept")
    train_lifter(_lifter_config(runs["cache"], runs["flow"], run, epochs=1, overwrite=True), progress=False)
    epochs = [line.split(",")[0] for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert epochs == ["1"] and (run / "my-notes.txt").read_text() == "kept"


# ----------------------------------------------------------------------------- 4: resume exact after a kill


def test_4_a_kill_between_weights_and_config_is_detected_and_resumes_exactly(runs, tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    train_lifter(_lifter_config(runs["cache"], runs["flow"], straight), progress=False)
    killed = tmp_path / "killed"
    real = run_files.save_config
    calls = {"n": 0}

    def killed_at_epoch_2(path, config, files=()):
        if Path(path).name == "config.json" and config.get("epoch") == 2:
            raise KeyboardInterrupt  # SIGKILL after model.safetensors of epoch 2, before its config
        calls["n"] += 1
        return real(path, config, files)

    monkeypatch.setattr(run_files, "save_config", killed_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_lifter(_lifter_config(runs["cache"], runs["flow"], killed), progress=False)
    monkeypatch.setattr(run_files, "save_config", real)
    with pytest.raises(run_files.CheckpointError, match="does not match"):
        run_files.load_lifter(killed)  # new weights, old config: refused, never used as a mixture
    train_lifter(_lifter_config(runs["cache"], runs["flow"], killed, resume=True), progress=False)
    a, b = (run_files.load_weights(f / "model.safetensors") for f in (straight, killed))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    rows = (killed / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]  # the interrupted epoch is not logged twice


def test_4_resume_refuses_changed_settings(runs, tmp_path):
    run = tmp_path / "lifter"
    shutil.copytree(runs["lifter"], run)
    args = ["train", "--data", runs["cache"], "--flow", runs["flow"], "--out", run, "--device", "cpu", "--resume"]
    _refused(_cli(*args, "--hidden", "32", "--lr", "0.5", "--epochs", "3"), "'lr'", "run.json")


# ----------------------------------------------------------------------------- 5-8: partial output


def test_5_lift_writes_nothing_when_an_output_is_a_folder(runs, tmp_path):
    np.save(tmp_path / "in.npy", _poses(runs["cache"]).astype(np.float32))
    (tmp_path / "x.json").mkdir()
    _refused(_cli("lift", "--checkpoint", runs["lifter"], tmp_path / "in.npy", "--out", tmp_path / "x"), "is a folder")
    assert not (tmp_path / "x.npz").exists()


def test_5_evaluate_writes_no_json_when_the_figures_cannot_be_written(runs, tmp_path):
    (tmp_path / "figs").write_text("a file")
    args = ["evaluate", "--checkpoint", runs["lifter"], "--data", runs["cache"], "--rotations", "2", "--device", "cpu"]
    _refused(_cli(*args, "--json", tmp_path / "r.json", "--figures", tmp_path / "figs"), "figs")
    assert not (tmp_path / "r.json").exists()


def test_6_a_first_epoch_that_diverges_leaves_no_folder_and_says_nothing_was_saved(runs, tmp_path):
    out = tmp_path / "new"
    with pytest.raises(TrainingDiverged, match="nothing was saved") as err:
        train_lifter(_lifter_config(runs["cache"], runs["flow"], out, lr=1e6, epochs=1), progress=False)
    assert "intact" not in str(err.value)
    assert not out.exists()


def test_7_a_cache_with_an_empty_test_split_is_refused_and_not_written(tmp_path):
    train, test = make_split(64, 4, 0), make_split(64, 4, 1)
    empty = test.subset(np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="test split: holds no poses"):
        write_cache(tmp_path / "cache", PoseCache(train, empty, cache_manifest(train, empty, [])))
    assert list(tmp_path.iterdir()) == []


def test_7_a_small_clip_subset_keeps_a_test_clip():
    from elepose.data.mocap import limit_files

    files = [Path(f"clip{i}.bvh") for i in range(20)]
    splits = {f.stem: "test" if i % 5 == 4 else "train" for i, f in enumerate(files)}
    for limit in (2, 3, 6):
        chosen = limit_files(files, limit, splits)
        assert len(chosen) == limit and any(splits[f.stem] == "test" for f in chosen)


def test_8_stale_temporaries_of_dead_builds_are_removed_and_live_ones_kept(tmp_path):
    out = tmp_path / "cache"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".cache.{int(dead.stdout)}.abcd.building"
    live = tmp_path / f".cache.{os.getpid()}.efgh.building"
    stale.mkdir(), live.mkdir()
    assert remove_stale_temporaries(out) == [stale]
    assert live.exists() and not stale.exists()
    write_cache(out, PoseCache(make_split(64, 4, 0), make_split(32, 4, 1), cache_manifest(make_split(64, 4, 0), make_split(32, 4, 1), [])))  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["cache", live.name])


def test_8_build_workers_die_with_a_killed_build(tmp_path):
    script = (
        "import multiprocessing, os, sys, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from elepose.data.mocap import _die_with_parent\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn'),\n"
        "                               initializer=_die_with_parent, initargs=(os.getpid(),))\n"
        "    print(pool.submit(os.getpid).result(), flush=True)\n"
        "    pool.submit(time.sleep, 60)\n"
        "    time.sleep(60)\n"
    )
    path = tmp_path / "build.py"
    path.write_text(script)
    build = subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE, text=True)
    worker = int(build.stdout.readline())
    build.send_signal(signal.SIGKILL)
    build.wait()
    for _ in range(100):
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(worker, signal.SIGKILL)
    pytest.fail("the worker outlived its killed build")


# ----------------------------------------------------------------------------- 9: output paths


def test_9_output_path_problems_are_one_line_errors(runs, tmp_path):
    np.save(tmp_path / "in.npy", _poses(runs["cache"]).astype(np.float32))
    lift = ["lift", "--checkpoint", runs["lifter"], tmp_path / "in.npy"]
    (tmp_path / "plain").write_text("x")
    _refused(_cli(*lift, "--out", tmp_path / "plain" / "res"), "is a file")
    (tmp_path / "pic.png").mkdir()
    _refused(_cli(*lift, "--out", tmp_path / "r2", "--render", tmp_path / "pic.png"), "is a folder")
    assert not (tmp_path / "r2.npz").exists()
    long_name = tmp_path / ("a" * 250)
    assert _cli(*lift, "--out", long_name).exit_code == 0  # the temporary name still fits
    assert Path(f"{long_name}.json").is_file()


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) is not installed")
def test_9_a_full_disk_is_a_one_line_error_and_leaves_no_output(runs, tmp_path):
    np.save(tmp_path / "in.npy", _poses(runs["cache"], 64).astype(np.float32))
    command = ["prlimit", "--fsize=3000", sys.executable, "-m", "elepose", "lift", "--checkpoint", str(runs["lifter"]),
               str(tmp_path / "in.npy"), "--out", str(tmp_path / "res"), "--device", "cpu"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.strip().startswith("error:")
    assert not list(tmp_path.glob("res*")) and not list(tmp_path.glob(".res*"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_9_a_read_only_folder_is_a_one_line_error(runs, tmp_path):
    np.save(tmp_path / "in.npy", _poses(runs["cache"]).astype(np.float32))
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    _refused(_cli("lift", "--checkpoint", runs["lifter"], tmp_path / "in.npy", "--out", locked / "res"), "locked")


# ----------------------------------------------------------------------------- 10: config types


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda c: c.update(hidden="512"), "'hidden'"),
        (lambda c: c.update(hidden=512.5), "'hidden'"),
        (lambda c: c.update(hidden=None), "'hidden'"),
        (lambda c: c.update(hidden=1e12), "'hidden'"),
        (lambda c: c.pop("hidden"), "'hidden' is missing"),
        (lambda c: c.update(reliability=[1, 2]), "'reliability'"),
        (lambda c: c.update(flow=[]), "'flow'"),
        (lambda c: c.update(normalisation="pose"), "'normalisation'"),
        (lambda c: c["normalisation"].update(extra=1), "'normalisation'"),
    ],
)
def test_10_config_fields_of_the_wrong_type_are_named(runs, tmp_path, edit, needle):
    run = tmp_path / "lifter"
    shutil.copytree(runs["lifter"], run)
    config = json.loads((run / "config.json").read_text())
    edit(config)
    (run / "config.json").write_text(json.dumps(config))
    np.save(tmp_path / "in.npy", _poses(runs["cache"]).astype(np.float32))
    _refused(_cli("lift", "--checkpoint", run, tmp_path / "in.npy", "--out", tmp_path / "res"), "config.json", needle)


def test_10_a_config_that_is_a_list_is_refused(runs, tmp_path):
    run = tmp_path / "lifter"
    shutil.copytree(runs["lifter"], run)
    (run / "config.json").write_text("[1, 2]")
    with pytest.raises(run_files.CheckpointError, match="expected a JSON object"):
        run_files.load_lifter(run)


# ----------------------------------------------------------------------------- 11-12: hostile files


def test_11_hostile_keypoint_files_are_one_line_errors(runs, tmp_path):
    lift = ["lift", "--checkpoint", runs["lifter"], "--out", tmp_path / "res"]
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    _refused(_cli(*lift, deep), "deep.json")
    huge = tmp_path / "huge.npy"
    with open(huge, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (10**11, 17, 2)})
        f.write(b"\0" * 64)
    _refused(_cli(*lift, huge), "huge.npy", "header")
    assert not list(tmp_path.glob("res*"))


def test_11_a_truncated_cache_split_is_a_one_line_error(runs, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(runs["cache"], cache)
    data = (cache / "test.npz").read_bytes()
    (cache / "test.npz").write_bytes(data[: len(data) // 2])
    args = ["evaluate", "--checkpoint", runs["lifter"], "--data", cache, "--rotations", "2", "--device", "cpu"]
    _refused(_cli(*args), "test.npz")


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", pickle.dumps({"epoch": 0, "x": print})])
def test_11_damaged_resume_states_are_refused_without_suggesting_an_unsafe_load(runs, tmp_path, content):
    run = tmp_path / "lifter"
    shutil.copytree(runs["lifter"], run)
    (run / "resume.pt").write_bytes(content)
    args = ["train", "--data", runs["cache"], "--flow", runs["flow"], "--out", run, "--device", "cpu", "--resume"]
    result = _cli(*args, "--hidden", "32", "--epochs", "3", "--batch-size", "64", "--lr", "0.001")
    _refused(result, "resume.pt")
    assert "weights_only" not in result.output


def _bvh(depth: int, frame_time: str = "0.0333") -> str:
    lines = ["HIERARCHY", "ROOT Hips", "{", "OFFSET 0 0 0", "CHANNELS 3 Xposition Yposition Zposition"]
    for i in range(depth):
        lines += [f"JOINT j{i}", "{", "OFFSET 0 1 0", "CHANNELS 1 Zrotation"]
    lines += ["}"] * depth + ["}", "MOTION", "Frames: 1", f"Frame Time: {frame_time}", " ".join(["0"] * (3 + depth))]
    return "\n".join(lines) + "\n"


def test_11_a_bvh_nested_3000_deep_and_absurd_frame_times_are_refused():
    assert len(parse_bvh(_bvh(20)).joints) == 21
    with pytest.raises(ValueError, match="nested deeper"):
        parse_bvh(_bvh(3000), "deep.bvh")
    for frame_time in ("1e-300", "1e300"):
        with pytest.raises(ValueError, match="Frame Time"):
            parse_bvh(_bvh(2, frame_time), "fast.bvh")


def test_11_evaluate_refuses_zero_rotations_and_negative_samples(runs):
    args = ["evaluate", "--checkpoint", runs["lifter"], "--data", runs["cache"], "--device", "cpu"]
    _refused(_cli(*args, "--rotations", "0"), "--rotations")
    _refused(_cli(*args, "--samples", "-5"), "--samples")


def test_12_the_unpickler_admits_no_allocating_builtins():
    started = time.perf_counter()
    with pytest.raises(RefusedPickleClass, match="bytearray"):
        loads_restricted(b"\x80\x02cbuiltins\nbytearray\nJ\x00\x00\x00@\x85R.")  # bytearray(2**30): 37 bytes
    huge_array = b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nJ\x00\x00\x00@\x85C\x01b\x87R."
    with pytest.raises(pickle.UnpicklingError, match="shape"):
        loads_restricted(huge_array)
    assert time.perf_counter() - started < 1.0  # refused before anything was allocated


# ----------------------------------------------------------------------------- messages and silent inputs


def test_huge_coordinates_strings_and_booleans_are_refused_as_coordinates(runs, tmp_path):
    lift = ["lift", "--checkpoint", runs["lifter"], "--out", tmp_path / "res"]
    pose = _poses(runs["cache"], 1)[0]
    for name, bad in (("huge", 1e30), ("text", "12.5"), ("flag", True)):
        keypoints = pose.tolist()
        keypoints[3][0] = bad
        path = tmp_path / f"{name}.json"
        path.write_text(
            json.dumps([{"frame_id": 0, "instances": [{"keypoints": keypoints, "keypoint_scores": [1.0] * 17}]}])
        )
        _refused(_cli(*lift, path, "--format", "mmpose"), f"{name}.json", "keypoints")


def test_absurd_heights_and_camera_settings_are_refused(runs, tmp_path):
    np.save(tmp_path / "in.npy", _poses(runs["cache"]).astype(np.float32))
    _refused(_cli("lift", "--checkpoint", runs["lifter"], tmp_path / "in.npy", "--out", tmp_path / "r", "--height", "1e308"), "height")  # fmt: skip
    source = tmp_path / "bvh"
    source.mkdir()
    _refused(_cli("data", "build", "--source", source, "--out", tmp_path / "c", "--elevation-mean", "1e308"), "--elevation-mean")  # fmt: skip


def test_a_person_with_every_joint_on_one_point_is_skipped_not_lifted(runs):
    from elepose.lift.lifter import Lifter

    poses = _poses(runs["cache"], 3)
    poses[1] = 0.0
    result = Lifter.load(runs["lifter"]).lift(poses)
    assert result.frame.tolist() == [0, 2] and "one point" in result.skipped[0][2]


def test_json_with_a_byte_order_mark_is_read_as_json(runs, tmp_path):
    from elepose.data.keypoints import read_keypoints

    pose = _poses(runs["cache"], 1)[0]
    coco = [[float(x), float(y)] for x, y in pose[[10, 10, 10, 10, 10, 14, 11, 15, 12, 16, 13, 1, 4, 2, 5, 3, 6]]]
    text = json.dumps([{"frame_id": 0, "instances": [{"keypoints": coco, "keypoint_scores": [1.0] * 17}]}])
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert read_keypoints(tmp_path / "bom.json").source_format == "mmpose"


def test_an_unexpected_error_is_one_line_with_the_log_path(tmp_path):
    env = {**os.environ, "ELEPOSE_LOG_DIR": str(tmp_path)}
    code = (
        "import elepose.cli as c\n"
        "c.app.command('crash')(lambda: (_ for _ in ()).throw(RuntimeError('boom')))\n"
        "import sys; sys.argv = ['elepose', 'crash']; c.main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "error: unexpected RuntimeError: boom" in done.stderr and str(tmp_path) in done.stderr
    assert "RuntimeError" in next(tmp_path.glob("crash-*.log")).read_text()


def test_a_diverged_training_on_the_command_line_is_one_line_and_exit_code_3(runs, tmp_path):
    args = ["train", "--data", runs["cache"], "--flow", runs["flow"], "--out", tmp_path / "new", "--hidden", "32",
            "--epochs", "1", "--batch-size", "64", "--lr", "1e9", "--epoch-samples", "256", "--device", "cpu"]  # fmt: skip
    result = _cli(*args)
    assert result.exit_code == 3 and "Traceback" not in result.output
    assert "nothing was saved" in result.output and not (tmp_path / "new").exists()


def test_replace_folder_leaves_the_old_or_the_new_folder_whole_at_every_step(tmp_path):
    from elepose.atomic import recover_folder, replace_folder

    target = tmp_path / "best"

    def write(value: str):
        def fill(folder: Path) -> None:
            (folder / "a.txt").write_text(value)
            (folder / "b.txt").write_text(value)

        return fill

    replace_folder(target, write("1"))
    replace_folder(target, write("2"))
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.txt": "2", "b.txt": "2"}

    def fail(folder: Path) -> None:
        (folder / "a.txt").write_text("3")
        raise KeyboardInterrupt  # killed half-way through writing the new folder

    with pytest.raises(KeyboardInterrupt):
        replace_folder(target, fail)
    assert (target / "a.txt").read_text() == "2" and not (tmp_path / "best.new").exists()
    # Killed between the two renames: only the old folder, under its .old name, and a new one.
    target.rename(tmp_path / "best.old")
    (tmp_path / "best.new").mkdir()
    (tmp_path / "best.new" / "a.txt").write_text("half")
    recover_folder(target)
    assert (target / "b.txt").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]
