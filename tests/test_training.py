"""Training loops end to end on a small synthetic cache: checkpoints, resume, NaN, evaluation."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from elepose.errors import InputError
from elepose.models import io as model_io
from elepose.models.io import load_flow, load_lifter
from elepose.train.config import FlowConfig, TrainConfig
from elepose.train.loop import TrainingDiverged, train_flow, train_lifter
from elepose.train.runlog import read_metrics
from tests.synthetic import write_cache

SMALL = {"hidden": 64}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return write_cache(tmp_path_factory.mktemp("cache"), n_train=1024, n_test=256)


@pytest.fixture(scope="module")
def flow_run(cache, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("flow")
    train_flow(
        FlowConfig(data=str(cache), out=str(out), hidden=64, blocks=4, epochs=3, batch_size=128, lr=1e-3, device="cpu"),
        progress=False,
    )
    return out


def _lifter_config(cache: Path, flow: Path, out: Path, **changes) -> TrainConfig:
    base = TrainConfig(
        data=str(cache),
        flow=str(flow),
        out=str(out),
        epochs=2,
        batch_size=128,
        hidden=64,
        eval_samples=128,
        reliability_rotations=4,
        device="cpu",
        epoch_samples=512,
    )
    return replace(base, **changes)


def test_flow_run_folder_holds_weights_pca_config_and_log(flow_run):
    names = {p.name for p in flow_run.iterdir()}
    assert {"config.json", "model.safetensors", "pca.safetensors", "resume.pt", "metrics.csv", "run.json"} <= names
    flow, record = load_flow(flow_run)
    assert json.loads((flow_run / "config.json").read_text())["kind"] == "elepose-flow" and record.epoch == 3
    assert flow.pca_fitted and flow.explained_variance > 0.9
    rows = (flow_run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 4  # header + 3 epochs
    first, last = float(rows[1].split(",")[2]), float(rows[-1].split(",")[2])
    assert last < first  # test NLL falls


def test_a_flow_with_patience_keeps_its_lowest_held_out_epoch_and_stops(tmp_path):
    # 40 poses at a high rate: the held-out NLL falls with bumps (measured: a 1.5-nat rise at epoch 11)
    tiny = write_cache(tmp_path / "tiny", n_train=40, n_test=128, seed=3)
    config = FlowConfig(data=str(tiny), out=str(tmp_path / "flow"), hidden=256, blocks=4, epochs=40, batch_size=8,
                        lr=1e-2, lr_milestones=(), device="cpu", patience=2)  # fmt: skip
    train_flow(config, progress=False)
    rows = read_metrics(tmp_path / "flow" / "metrics.csv")
    held_out = [r["test_nll"] for r in rows]
    best = int(np.argmin(held_out)) + 1
    assert len(rows) == best + 2 < 40  # stopped 2 epochs after its lowest held-out NLL
    flow, record = load_flow(tmp_path / "flow")
    assert record.epoch == best and record.metrics["test_nll"] == pytest.approx(held_out[best - 1])
    # The published weights are that epoch's: their held-out NLL, recomputed, is the one logged then.
    from elepose.data.cache import load_split
    from elepose.models.normalisation import normalise, select_2d

    x = normalise(select_2d(load_split(tiny / "test.npz"), "gt"), record.normalisation)
    with torch.no_grad():
        assert float(flow.nll(x).mean()) == pytest.approx(held_out[best - 1], rel=1e-4)
    train_flow(replace(config, resume=True), progress=False)  # resumed after the stop: nothing more to train
    assert len(read_metrics(tmp_path / "flow" / "metrics.csv")) == len(rows)
    assert load_flow(tmp_path / "flow")[1].epoch == best


@pytest.mark.parametrize(
    "scaled",
    [{}, {"elevation_lr_scale": 4.0}, {"track_pairs": True}],  # 4: two Adam groups, both restored
    ids=["plain", "elevation-lr", "track-pairs"],
)
def test_resumed_training_equals_straight_training(cache, flow_run, tmp_path, scaled):
    straight = tmp_path / "straight"
    train_lifter(_lifter_config(cache, flow_run, straight, **scaled), progress=False)
    split = tmp_path / "split"
    train_lifter(_lifter_config(cache, flow_run, split, epochs=1, **scaled), progress=False)
    train_lifter(_lifter_config(cache, flow_run, split, epochs=2, resume=True, **scaled), progress=False)
    a = model_io.load_weights(straight / "model.safetensors")
    b = model_io.load_weights(split / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert len((split / "metrics.csv").read_text().splitlines()) == 3
    assert ("train_track_bone" in (split / "metrics.csv").read_text()) == bool(scaled.get("track_pairs"))


def test_track_pair_order_pairs_each_anchor_with_another_frame_of_its_person():
    from elepose.train.steps import track_pair_order

    view = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 3, 3])  # view 2 has one pose only
    order = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    pairs = track_pair_order(order, view, seed=0, epoch=0).view(-1, 2)
    assert torch.equal(pairs[:, 0], order[:6])  # the first half of the order are the anchors
    for anchor, partner in pairs.tolist():
        if anchor != 5:
            assert partner != anchor and view[partner] == view[anchor]
    assert torch.equal(track_pair_order(order, view, 0, 0), track_pair_order(order, view, 0, 0))
    # every other frame of a person is drawn: over epochs, anchor 6's partners cover view 3's other poses
    partners = {int(track_pair_order(torch.tensor([6, 0]), view, 0, e)[1]) for e in range(200)}
    assert partners == {7, 8, 9, 10, 11}
    with pytest.raises(InputError, match="--track-pairs"):
        TrainConfig(data="c", flow="f", out="o", batch_size=65, track_pairs=True)

    from elepose.cli import _register_all, app

    _register_all()
    args = ["train", "--data", "c", "--flow", "f", "--out", "o", "--batch-size", "65", "--track-pairs"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and result.output.strip().splitlines() == [
        "error: --track-pairs: expected an even --batch-size and the ElePose objective, got 65"
    ]


def test_lifter_checkpoint_is_self_contained_and_checked(cache, flow_run, tmp_path):
    out = tmp_path / "lifter"
    train_lifter(_lifter_config(cache, flow_run, out, epochs=1), progress=False)
    lifter, flow, record = load_lifter(out)
    assert json.loads((out / "config.json").read_text())["kind"] == "elepose-lifter" and record.elevation_branch
    assert len(record.reliability.nll_quantiles) == 101
    with pytest.raises(model_io.CheckpointError, match="kind"):
        load_lifter(flow_run)
    bad = json.loads((out / "config.json").read_text())
    bad["format_version"] = 999
    (out / "config.json").write_text(json.dumps(bad))
    with pytest.raises(model_io.CheckpointError, match="format_version"):
        load_lifter(out)


def test_nan_loss_stops_training_and_keeps_last_checkpoint(cache, flow_run, tmp_path, monkeypatch):
    import elepose.train.loop as training

    out = tmp_path / "nan"
    train_lifter(_lifter_config(cache, flow_run, out, epochs=1), progress=False)
    before = (out / "model.safetensors").read_bytes()
    real = training.elepose_losses
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        terms = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            terms["total"] = terms["total"] * float("nan")
        return terms

    monkeypatch.setattr(training, "elepose_losses", poisoned)
    with pytest.raises(TrainingDiverged, match="intact"):
        train_lifter(_lifter_config(cache, flow_run, out, epochs=2, resume=True), progress=False)
    assert (out / "model.safetensors").read_bytes() == before


def test_supervised_and_ablations_train(cache, flow_run, tmp_path):
    for name, changes in {
        "supervised": {"supervised": True},
        "no_elevation": {"elevation": False, "elevation_prior": "uniform:-20,20"},
        "no_bone": {"bone_prior": False},
        "towers": {"variant": "towers"},
    }.items():
        metrics = train_lifter(_lifter_config(cache, flow_run, tmp_path / name, epochs=1, **changes), progress=False)
        assert metrics["pa_mpjpe"] > 0 and torch.isfinite(torch.tensor(metrics["train_total"]))


def test_evaluate_command_writes_report_and_figures(cache, flow_run, tmp_path):
    from elepose.cli import _register_all, app

    out = tmp_path / "lifter"
    train_lifter(_lifter_config(cache, flow_run, out, epochs=1), progress=False)
    _register_all()
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--checkpoint",
            str(out),
            "--data",
            str(cache),
            "--json",
            str(tmp_path / "r.json"),
            "--figures",
            str(tmp_path / "fig"),
            "--rotations",
            "4",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    for kind in ("gt", "detected"):
        for protocol in ("standard", "elepose_code"):
            assert set(report[kind][protocol]) == {"mpjpe", "n_mpjpe", "pa_mpjpe", "n_pck", "auc", "cps"}
        assert set(report[kind]["baselines"]) == {"flat", "mean_depth"}
        assert -1 <= report[kind]["elevation"]["correlation"] <= 1
    assert (tmp_path / "fig" / "nll_vs_error.png").stat().st_size > 1000
    assert (tmp_path / "fig" / "best_worst.png").stat().st_size > 1000
    spread = report["reliability"]["distribution"]
    assert spread["poses"] == report["poses"] and 0.0 <= spread["below_4"] <= 1.0
    assert 0.0 <= spread["quartile_1"] <= spread["median"] <= spread["quartile_3"] <= 100.0
    assert report["keypoints"]["layout"] == "h36m" and report["keypoints"]["definitions"] == []
    assert "reliability (GT 2D): median" in result.output and "joints: the lifter learnt h36m" in result.output


def test_a_lifter_of_coco17_joints_is_scored_on_coco_definitions(cache, flow_run, tmp_path):
    from dataclasses import replace

    from elepose.data.cache import load_split
    from elepose.evaluate.evaluation import evaluate_checkpoint
    from elepose.models.io import load_lifter
    from elepose.skeleton import coco17_to_h36m, h36m_to_coco17

    out = tmp_path / "lifter"
    train_lifter(_lifter_config(cache, flow_run, out, epochs=1), progress=False)
    lifter, flow, record = load_lifter(out)
    train, test = load_split(cache / "train.npz"), load_split(cache / "test.npz")

    def by_hand(split):  # the COCO round trip, an independent route to the same definitions
        through = lambda a: coco17_to_h36m(h36m_to_coco17(a.astype(np.float64))).astype(a.dtype)  # noqa: E731
        return replace(
            split,
            poses_2d=through(split.poses_2d),
            poses_2d_detected=through(split.poses_2d_detected),
            poses_3d=through(split.poses_3d),
        )

    coco_record = replace(record, keypoints="coco17")
    report, _ = evaluate_checkpoint(lifter, flow, coco_record, train, test, None, 2, "cpu")
    expected, _ = evaluate_checkpoint(lifter, flow, record, by_hand(train), by_hand(test), None, 2, "cpu")
    plain, _ = evaluate_checkpoint(lifter, flow, record, train, test, None, 2, "cpu")
    assert report["gt"]["standard"] == pytest.approx(expected["gt"]["standard"], rel=1e-6)
    assert report["detected"]["standard"] == pytest.approx(expected["detected"]["standard"], rel=1e-6)
    assert report["gt"]["standard"]["pa_mpjpe"] != pytest.approx(plain["gt"]["standard"]["pa_mpjpe"], rel=1e-6)
    assert report["keypoints"]["layout"] == "coco17" and "head = mid-eyes" in report["keypoints"]["definitions"]


def test_evaluate_refuses_a_flow_folder(cache, flow_run):
    from elepose.cli import _register_all, app

    _register_all()
    result = CliRunner().invoke(app, ["evaluate", "--checkpoint", str(flow_run), "--data", str(cache)])
    assert result.exit_code == 2
    assert "elepose-lifter" in result.output


@pytest.mark.parametrize("variant", ["shared", "towers"])
def test_elevation_learning_rate_scale_reaches_exactly_the_elevation_branch_and_head(variant):
    from elepose.models.lifter import LiftingNetwork
    from elepose.train.loop import lifter_param_groups

    lifter = LiftingNetwork(hidden=32, variant=variant)
    names = {id(p): n for n, p in lifter.named_parameters()}
    base, elevation = lifter_param_groups(lifter, 1e-3, 4.0)
    assert base["lr"] == 1e-3 and elevation["lr"] == pytest.approx(4e-3)
    in_elevation = {names[id(p)] for p in elevation["params"]}
    assert in_elevation == {n for n in names.values() if n.startswith(("elevation_branch.", "elevation_head."))}
    assert in_elevation and len(in_elevation) + len(base["params"]) == len(names)  # a partition
    assert len(lifter_param_groups(lifter, 1e-3, 1.0)) == 1
    assert len(lifter_param_groups(LiftingNetwork(hidden=32, elevation=False), 1e-3, 4.0)) == 1
    optimizer = torch.optim.Adam(lifter_param_groups(lifter, 1e-3, 4.0))
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    optimizer.step(), scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([5e-4, 2e-3])  # both decay
    with pytest.raises(InputError, match="--elevation-lr-scale"):
        TrainConfig(data="c", flow="f", out="o", elevation_lr_scale=0.0)


def _record_step_norms(monkeypatch) -> list[float]:
    """Patch the lifter's optimizer so that each step first records the total gradient norm it is given."""
    import elepose.train.loop as training

    norms: list[float] = []
    real = training.make_adam

    def record(optimizer, args, kwargs) -> None:
        grads = [p.grad.double() for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norms.append(float(torch.sqrt(sum((g * g).sum() for g in grads))))

    def recording(*args, **kwargs):
        optimizer = real(*args, **kwargs)
        optimizer.register_step_pre_hook(record)
        return optimizer

    monkeypatch.setattr(training, "make_adam", recording)
    return norms


def test_grad_clip_bounds_every_step_and_logs_the_norm_before_clipping(cache, flow_run, tmp_path, monkeypatch):
    one_step_epochs = {"epochs": 2, "epoch_samples": 128}  # batch 128: the epoch's mean norm is its one step's
    free = _record_step_norms(monkeypatch)
    train_lifter(_lifter_config(cache, flow_run, tmp_path / "free", **one_step_epochs), progress=False)
    assert len(free) == 2 and "train_grad_norm" not in (tmp_path / "free" / "metrics.csv").read_text()
    limit = 0.5 * min(free)  # below every unclipped step's norm, so every clipped step is cut

    clipped = _record_step_norms(monkeypatch)
    out = tmp_path / "clipped"
    train_lifter(_lifter_config(cache, flow_run, out, grad_clip=limit, **one_step_epochs), progress=False)
    assert clipped == pytest.approx([limit, limit], rel=1e-4)  # torch scales by limit / (norm + 1e-6)
    logged = [float(row["train_grad_norm"]) for row in read_metrics(out / "metrics.csv")]
    assert logged[0] == pytest.approx(free[0], rel=1e-5)  # the same first step, measured before clipping
    assert logged[1] > limit
    with pytest.raises(InputError, match="--grad-clip"):
        TrainConfig(data="c", flow="f", out="o", grad_clip=-1.0)


def test_lr_decay_per_epoch_spreads_the_papers_per_pass_decay():
    from elepose.train.config import lr_decay_per_epoch

    assert lr_decay_per_epoch(250, 1000) == pytest.approx(0.9872585, abs=1e-7)  # 0.95 ** (1/4), by hand
    assert lr_decay_per_epoch(None, 1000) == lr_decay_per_epoch(5000, 1000) == 0.95  # a pass, or more
    assert lr_decay_per_epoch(100, None) == lr_decay_per_epoch(100, 0) == 0.95  # no count: the paper's
    assert lr_decay_per_epoch(500, 1000, per_pass=0.81) == pytest.approx(0.9)


def test_distillation_keeps_the_starts_lifts_of_its_domain(cache, flow_run, tmp_path):
    from elepose.data.cache import load_manifest
    from elepose.models.io import load_lifter_record
    from elepose.train.distillation import distillation_targets

    start = tmp_path / "start"
    train_lifter(_lifter_config(cache, flow_run, start), progress=False)
    norm = load_lifter_record(start).normalisation
    layout = load_manifest(cache).get("keypoint_layout")
    kept = distillation_targets(start, cache, layout, norm, 200)
    assert kept.inputs.shape == (200, 17, 2) and kept.depth.shape == (200, 17) and kept.elevation.shape == (200,)
    drift = {}
    for name, changes in (("plain", {}), ("distilled", {"distill": str(cache), "distill_weight": 1e4})):
        out = tmp_path / name
        config = _lifter_config(cache, flow_run, out, init=str(start), lr=2e-3, epochs=3, elevation_warmup_steps=0)
        train_lifter(replace(config, **changes), progress=False)
        fitted, _, _ = load_lifter(out)
        with torch.no_grad():
            lifted = fitted(kept.inputs)
        drift[name] = float((lifted.depth - kept.depth).pow(2).mean())
        assert ("train_distill" in (out / "metrics.csv").read_text()) == (name == "distilled")
    # the start's own lifts of its domain move far less under distillation
    assert drift["distilled"] < 0.2 * drift["plain"]
    with pytest.raises(InputError, match="--distill"):
        TrainConfig(data="c", flow="f", out="o", distill="c")  # no --init
