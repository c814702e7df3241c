"""The benchmark pipeline end to end on a synthetic cache (tiny profile), FLOP counts, speed, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from elepose.benchmark import plan, runner, speed, speed_run
from elepose.benchmark.profiles import PROFILES, CameraBudget
from elepose.benchmark.rows import CAMERA_VARIANTS
from elepose.benchmark.scoring import time_to_accuracy
from elepose.models.flow import PoseFlow
from elepose.models.lifter import LiftingNetwork
from tests.synthetic import write_cache

SECTIONS = (
    "## Targets",
    "## 1. Accuracy",
    "### ground-truth 2D, standard protocol",
    "### detected 2D (noisy), elepose_code protocol",
    "### For orientation only: the paper's numbers on Human3.6M (another dataset)",
    "### Ablations (paper Table 5)",
    "## 2. PCA bases (paper Fig. 4)",
    "## 3. Reliability (paper Fig. 5)",
    "## 4. Elevation",
    "## 5. Speed",
    "## 6. Seeds",
    "## 7. Train on your own 2D",
    "## Time to accuracy",
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks gain nothing from threads, and one thread is not slowed by a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("bench")
    cache = write_cache(root / "cache", n_train=1024, n_test=256, clips=8, sources=2)
    report = runner.run_benchmark(
        "tiny",
        root / "work",
        root / "out" / "RESULTS.md",
        data_root=root / "no-shared" / "data",  # no real2d/ beside it: that part of section 7 is skipped
        device="cpu",
        cache=cache,
        command="test",
        log=lambda m: None,
    )
    return root, report


def test_tiny_benchmark_runs_every_step_without_failures(benchmark):
    root, report = benchmark
    assert report["failed"] == []
    planned = {r.name for r in plan.plan_runs(PROFILES["tiny"], root / "work", root / "cache", "cpu")}
    assert set(report["runs"]) == planned
    assert {"elepose", "elepose-seed1", "elepose-seed2", "supervised", "fixed-prior", "base", "pca10"} <= set(
        report["lifters"]
    )
    # Section 7: the one-clip share is fitted with --init alone, and checked against the transferred lifter.
    own = report["own2d"]
    assert own["init_only_shares"] == [0.25] and "fit-scratch-25pct" not in own["lifters"]
    one_clip = own["lifters"]["fit-init-25pct"]
    assert one_clip["clips"] == 1 and one_clip["start_check"]["figure"] == "val_nf"
    assert one_clip["start_kept"] == (not one_clip["start_check"]["better"])
    # Its few poses are where fit --init distils by default: the plain row ran --distill off, beside the --distill row.
    assert any(
        c["check"].startswith("fit --init --distill off is not worse") and "25 %" in c["check"] for c in own["checks"]
    )
    assert any(
        c["check"].startswith("fit --init --distill is not worse") and "25 %" in c["check"] for c in own["checks"]
    )
    assert own["lifters"]["fit-init-distill-25pct"]["distill_weight"] == 1000.0
    assert set(own["figures_against_accuracy"]) >= {"val_reprojection", "val_nf"}


def test_results_markdown_has_every_section_and_figures(benchmark):
    root, _ = benchmark
    text = (root / "out" / "RESULTS.md").read_text()
    for section in SECTIONS:
        assert section in text, section
    assert "- Command: `test`" in text and "Git commit:" in text and "torch " in text
    for name in ("pca_sweep.png", "nll_vs_error.png", "elevation.png", "learning_curves.png"):
        assert (root / "out" / "figures" / name).stat().st_size > 1000


def _row(text: str, label: str, section: str) -> list[str]:
    body = text.split(section, 1)[1]
    for line in body.splitlines():
        if line.startswith(f"| {label} |"):
            return [c.strip() for c in line.strip("|").split("|")]
    raise AssertionError(f"row {label!r} not found under {section!r}")


def test_numbers_in_markdown_match_results_json(benchmark):
    root, _ = benchmark
    text = (root / "out" / "RESULTS.md").read_text()
    data = json.loads((root / "out" / "results.json").read_text())
    label = data["labels"]["elepose"]
    for kind, section in (
        ("gt", "### ground-truth 2D, standard protocol"),
        ("detected", "### detected 2D (noisy), standard protocol"),
    ):
        cells = _row(text, label, section)
        values = data["lifters"]["elepose"]["evaluation"][kind]["standard"]
        assert cells[1:] == [f"{values[k]:.1f}" for k in ("mpjpe", "n_mpjpe", "pa_mpjpe", "n_pck", "auc", "cps")]
    supervised = _row(text, data["labels"]["supervised"], "### ground-truth 2D, elepose_code protocol")
    assert supervised[3] == f"{data['lifters']['supervised']['evaluation']['gt']['elepose_code']['pa_mpjpe']:.1f}"
    seeds = _row(text, "PA-MPJPE", "## 6. Seeds")
    assert seeds[1] == f"{data['summary']['seeds']['pa_mpjpe']['mean']:.1f}" and seeds[-1] == "3"
    bf16 = _row(text, "bf16", "## 5. Speed")
    assert bf16[2] == f"{data['speed']['precisions']['bf16']['samples_per_s']:.0f}"
    assert "Where a bf16 training step spends its time" in text and data["speed"]["profile_bf16"]
    bf16_rate = data["speed"]["precisions"]["bf16"]["matmul_flops_per_s"]
    cap = bf16_rate / data["speed"]["flops_per_sample"]["total"]
    assert f"bf16 {cap:,.0f}" in text.split("Ceiling: with every FLOP")[1].split("\n")[0]
    agree = data["speed"]["reliability_precision"]
    assert "The NLL's FLOPs" in text
    assert f"moving the NLL by {agree['nll_abs_diff_median']:.3f} nats" in text
    assert any(t["key"] == "lift-50k" and "50,000" in t["target"] for t in data["summary"]["targets"])
    assert "issue" not in text.lower()


def test_render_only_rewrites_the_report_byte_for_byte(benchmark, tmp_path):
    from elepose.benchmark.report import render_only

    root, _ = benchmark
    written = render_only(root / "out" / "results.json", tmp_path / "RESULTS.md")
    assert written.read_bytes() == (root / "out" / "RESULTS.md").read_bytes()


@pytest.mark.parametrize("folder", ["benchmarks", "benchmarks/long", "benchmarks/domain", "benchmarks/domain/distill"])
def test_committed_results_md_is_rendered_from_the_committed_results_json(folder, tmp_path):
    from elepose.benchmark.report import render_only

    committed = Path(__file__).resolve().parents[1] / folder
    written = render_only(committed / "results.json", tmp_path / "RESULTS.md")
    assert written.read_text(encoding="utf-8") == (committed / "RESULTS.md").read_text(encoding="utf-8")


def test_render_only_on_the_command_line_and_a_bad_file(benchmark, tmp_path):
    from typer.testing import CliRunner

    from elepose.cli import _register_all, app

    _register_all()
    root, _ = benchmark
    out = tmp_path / "R.md"
    result = CliRunner().invoke(
        app, ["benchmark", "--render-only", str(root / "out" / "results.json"), "--results", str(out)]
    )
    assert result.exit_code == 0 and out.read_bytes() == (root / "out" / "RESULTS.md").read_bytes()
    bad = tmp_path / "results.json"
    bad.write_text("[1, 2]")
    result = CliRunner().invoke(app, ["benchmark", "--render-only", str(bad), "--results", str(tmp_path / "X.md")])
    assert result.exit_code == 2 and "error:" in result.output and not (tmp_path / "X.md").exists()


def test_a_re_run_section_is_merged_into_the_full_report_with_where_it_came_from(benchmark, tmp_path):
    from typer.testing import CliRunner

    from elepose.benchmark.report.merge import merge_sections
    from elepose.cli import _register_all, app

    root, _ = benchmark
    base = json.loads((root / "out" / "results.json").read_text())
    # A later `--only own2d` invocation: its report holds the re-run section and fewer lifters.
    later = json.loads(json.dumps(base))
    later.update({"command": "elepose benchmark --only own2d", "git_commit": "f" * 40, "wall_seconds": 120.0})
    later["lifters"] = {}
    later["runs"] = {"own2d": {"status": "ok", "seconds": 100.0}, "cache": {"status": "ok", "seconds": 0.0}}
    later["own2d"]["lifters"]["transfer"]["detected"]["pa_mpjpe"] = 12.345
    later["profile"]["own2d"]["samples"] = 4321
    merged, taken = merge_sections(base, later)
    assert taken == ["own2d"] and merged["own2d"] == later["own2d"] and merged["lifters"] == base["lifters"]
    assert (
        merged["profile"]["own2d"]["samples"] == 4321
        and merged["domain" if "domain" in base else "speed"] == (base["domain" if "domain" in base else "speed"])
    )
    assert base["own2d"]["lifters"]["transfer"]["detected"]["pa_mpjpe"] != 12.345  # the base is not changed
    assert merge_sections(merged, later)[0]["merged"] == merged["merged"]  # merged again: one entry per section
    later_json, folder = tmp_path / "later.json", tmp_path / "report"
    later_json.write_text(json.dumps(later))
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(base))
    _register_all()
    args = ["benchmark", "--render-only", str(folder / "results.json"), "--merge", str(later_json)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = (folder / "RESULTS.md").read_text()
    assert "Section(s) `own2d` re-run and merged into this report: `elepose benchmark --only own2d`" in text
    assert f"git commit {'f' * 40}, wall time 2.0 min" in text and "| 12.3 |" in text.split("## 7.")[1]
    original = (root / "out" / "RESULTS.md").read_text()
    assert text.split("## 1. Accuracy")[1].split("## 7.")[0] == original.split("## 1. Accuracy")[1].split("## 7.")[0]
    assert json.loads((folder / "results.json").read_text())["own2d"] == later["own2d"]
    # Nothing to merge, another profile, or --merge alone: one line, exit 2, nothing written.
    later["runs"] = {"cache": {"status": "ok"}}
    later_json.write_text(json.dumps(later))
    before = (folder / "results.json").read_bytes()
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and f"error: {later_json}: runs: expected a finished own2d or domain run" in (
        refused.output
    )  # one line naming the later file
    later["profile"]["name"] = "quick"
    later_json.write_text(json.dumps(later))
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "profile: expected 'tiny'" in refused.output
    assert (folder / "results.json").read_bytes() == before
    alone = CliRunner().invoke(app, ["benchmark", "--merge", str(later_json)])
    assert alone.exit_code == 2 and "--merge: expected --render-only" in alone.output


def _linear_flops(module: nn.Module) -> int:
    return sum(2 * m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))


@pytest.mark.parametrize("variant,elevation", [("shared", True), ("shared", False), ("towers", True)])
def test_lifter_flops_equal_a_count_over_its_linear_layers(variant, elevation):
    net = LiftingNetwork(hidden=48, variant=variant, elevation=elevation)
    assert speed.lifter_forward_flops(48, variant, elevation) == _linear_flops(net)
    flops = speed.training_flops_per_sample(
        hidden=48, variant=variant, elevation=elevation, pca_bases=10, flow_blocks=2, flow_hidden=16
    )
    assert flops["lifter"] == 6 * _linear_flops(net)  # two passes, forward + backward (2x) each


def test_flow_flops_equal_a_count_over_its_layers():
    flow = PoseFlow(pca_bases=10, blocks=3, hidden=16)
    rotations = sum(2 * b.w_perm.shape[0] * b.w_perm.shape[1] for b in flow.flow.module_list)
    assert speed.flow_forward_flops(10, 3, 16) == _linear_flops(flow) + rotations + 2 * 34 * 10
    no_pca = PoseFlow(pca_bases=None, blocks=2, hidden=8)
    assert speed.flow_forward_flops(None, 2, 8) == _linear_flops(no_pca) + 2 * 2 * 34 * 34


def test_speed_functions_return_positive_finite_numbers():
    flow = PoseFlow(pca_bases=10, blocks=2, hidden=16).fit_pca(torch.randn(200, 17, 2) * 0.1)
    inputs = torch.randn(256, 17, 2) * 0.1
    values = [
        speed.matmul_rate(32, 64, "fp32", min_seconds=0.02),
        speed.matmul_rate(32, 64, "bf16", min_seconds=0.02),
        speed.training_throughput(flow, inputs, hidden=32, batch_size=32, warmup_steps=1, steps=2)["samples_per_s"],
        speed.peak_memory()["peak_rss_mib"],
    ]
    assert all(math.isfinite(v) and v > 0 for v in values)
    ops = speed.profile_training_step(flow, inputs, hidden=32, batch_size=32, steps=1, top=3)
    assert len(ops) == 3 and all(o["ms_per_step"] > 0 for o in ops)


def test_lift_throughput_is_positive(benchmark):
    root, _ = benchmark
    from elepose.data.cache import load_split

    poses = load_split(root / "cache" / "test.npz").poses_2d[:64]
    result = speed.lift_throughput(str(root / "work" / "elepose"), poses, rotations=2, latency_repeats=2)
    assert result["batched_poses_per_s"] > 0 and result["batch1_latency_ms"] > 0 and result["batch_size"] == 64


def test_reliability_precision_agreement_against_the_lift_and_a_direct_bf16_nll(benchmark):
    root, _ = benchmark
    from elepose.data.cache import load_split
    from elepose.evaluate.reliability import reliability_nll
    from elepose.lift.lifter import Lifter

    folder = str(root / "work" / "elepose")
    poses = load_split(root / "cache" / "test.npz").poses_2d[:64]
    result = speed.reliability_precision_agreement(folder, poses, rotations=4, repeats=1)
    model = Lifter.load(folder)
    lifted = model.lift(poses, rotations=4)  # lift's own NLL: fp32, the same seed's views
    bf16 = reliability_nll(
        model.flow, torch.as_tensor(lifted.poses_3d), torch.as_tensor(lifted.elevation), model.learned_elevation, 4,
        precision="bf16",
    ).numpy()  # fmt: skip
    diff = np.abs(bf16 - lifted.nll)
    assert result["poses"] == 64 and result["fp32"]["nll_poses_per_s"] > 0 and result["bf16"]["nll_poses_per_s"] > 0
    assert result["nll_abs_diff_max"] == pytest.approx(float(diff.max()), rel=1e-6, abs=1e-9)
    assert result["nll_abs_diff_median"] == pytest.approx(
        float(np.sort(diff)[31]), rel=1e-6, abs=1e-9
    )  # torch: the lower median
    assert 0 < result["nll_abs_diff_max"] < 5.0  # bf16 rounds, but stays near


def test_second_invocation_trains_nothing(benchmark, monkeypatch):
    root, first = benchmark

    def fail(*args, **kwargs):
        raise AssertionError("training ran again")

    monkeypatch.setattr(runner, "train_flow", fail)
    monkeypatch.setattr(runner, "train_lifter", fail)
    monkeypatch.setattr(speed_run, "measure_speed", fail)
    again = runner.run_benchmark(
        "tiny",
        root / "work",
        root / "again" / "RESULTS.md",
        device="cpu",
        cache=root / "cache",
        command="again",
        log=lambda m: None,
    )
    assert again["failed"] == []
    assert again["lifters"]["elepose"]["evaluation"]["gt"] == first["lifters"]["elepose"]["evaluation"]["gt"]


def test_time_to_accuracy_finds_the_first_epoch_within_ten_percent():
    rows = [
        {"epoch": e, "pa_mpjpe": v, "train_seconds": 60.0 * e}
        for e, v in [(1, 200.0), (2, 120.0), (3, 108.0), (4, 100.0)]
    ]
    result = time_to_accuracy(rows)
    assert result["epoch"] == 3 and result["minutes"] == pytest.approx(3.0) and result["final_pa_mpjpe"] == 100.0


def test_unknown_only_name_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown run"):
        runner.run_benchmark(
            "tiny", tmp_path / "w", tmp_path / "R.md", cache=tmp_path, only=["nope"], log=lambda m: None
        )


def test_profile_widths_and_learning_rates_reach_every_run(tmp_path):
    profile = PROFILES["quick"]
    runs = plan.plan_runs(profile, tmp_path / "w", tmp_path / "cache", "cpu", n_train=120_000)
    flows = [r for r in runs if r.kind == "flow"]
    lifters = [r for r in runs if r.kind == "lifter"]
    assert flows and all(r.config.lr == profile.flow.lr and r.config.hidden == profile.flow.hidden for r in flows)
    assert len(lifters) == 13
    assert all(r.config.lr == profile.lifter.lr and r.config.hidden == profile.lifter.hidden for r in lifters)
    # 0.95 per pass over the training set, spread over epochs of 60k samples
    assert lifters[0].config.lr_decay == pytest.approx(0.95 ** (60_000 / 120_000))
    full = plan.plan_runs(PROFILES["full"], tmp_path / "w", tmp_path / "cache", "cpu")
    assert all(r.config.lr == 2e-4 and r.config.hidden == 1024 for r in full if r.kind == "lifter")
    assert all(r.config.lr == 1e-4 for r in full if r.kind == "flow")


def test_a_finished_run_made_before_a_setting_existed_is_reused_with_that_settings_default(tmp_path):
    from dataclasses import asdict

    from elepose.models.io import FORMAT_VERSION
    from elepose.models.normalisation import Normalisation
    from elepose.models.records import FlowRecord
    from elepose.train.config import TrainConfig
    from elepose.train.runstate import run_state

    config = TrainConfig(data="c", flow="f", out=str(tmp_path / "run"), epochs=2)
    (tmp_path / "run").mkdir()
    record = FlowRecord(pca_bases=26, blocks=8, hidden=16, normalisation=Normalisation("pose", 1.0), epoch=2)
    config_json = {**record.to_dict(), "kind": "elepose-flow", "format_version": FORMAT_VERSION}
    (tmp_path / "run" / "config.json").write_text(json.dumps(config_json))
    older = {**json.loads(json.dumps(asdict(config))), "format_version": FORMAT_VERSION}
    del older["elevation_stats"]  # an option added after this run was trained
    (tmp_path / "run" / "run.json").write_text(json.dumps(older))
    state = run_state(tmp_path / "run", config)
    assert state.status == "finished" and state.changed == {}
    (tmp_path / "run" / "run.json").write_text(json.dumps({**older, "elevation_stats": "detached"}))
    state = run_state(tmp_path / "run", config)  # trained otherwise: the benchmark trains it again
    assert state.changed == {"elevation_stats": ("detached", config.elevation_stats)}
    (tmp_path / "run" / "run.json").write_text(json.dumps({**older, "epochs": 5, "device": "cuda"}))
    assert run_state(tmp_path / "run", config).changed == {}  # a rerun may change these


def test_long_profile_plans_its_three_rows_at_the_papers_width_and_the_camera_section(tmp_path):
    runs = plan.plan_runs(PROFILES["long"], tmp_path / "w", tmp_path / "c", "cpu", n_train=100_000)
    names = [r.name for r in runs]
    assert names[:5] == ["cache", "flow", "elepose", "supervised", "fixed-prior-true"]
    lifters = {r.name: r.config for r in runs if r.kind == "lifter"}
    main = {name: lifters[name] for name in names[2:5]}
    assert all(c.hidden == 1024 and c.epochs * c.epoch_samples == 4_320_000 for c in main.values())
    assert main["fixed-prior-true"].elevation_prior == "normal:12,6" and main["supervised"].supervised
    cameras = {name: c for name, c in lifters.items() if name.startswith("cameras-")}
    assert len(cameras) == 9 and all(c.hidden == 512 and c.epochs == 24 for c in cameras.values())
    assert cameras["cameras-default-elepose"].data == str(tmp_path / "c")
    high = cameras["cameras-high-fixed-prior-true"]
    assert high.elevation_prior == "normal:30,8" and not high.elevation
    assert high.data == str(tmp_path / "w" / "cache-high") and high.flow == str(tmp_path / "w" / "flow-high")
    assert cameras["cameras-level-fixed-prior"].elevation_prior == "uniform:-20,20"
    options = {name: c for name, c in lifters.items() if name.startswith("option-")}
    assert len(options) == 7 and all(c.hidden == 512 and c.epochs == 24 for c in options.values())
    assert options["option-scale-pose-head"].flow == str(tmp_path / "w" / "flow-scale-pose-head")
    assert options["option-stats-detached"].elevation_stats == "detached"
    flows = {r.name: r.config for r in runs if r.kind == "flow"}
    assert flows["flow-scale-pose"].scale == "pose" and flows["flow"].scale == "dataset"
    build = {r.name: r.config for r in runs if r.kind == "cache" and r.name != "cache"}
    assert (
        build["cache-level"].cameras.elevation_mean_deg == 0.0 and build["cache-level"].cameras.elevation_std_deg == 3.0
    )


def test_camera_section_trains_on_each_distributions_own_cache_and_reports_it(tmp_path, monkeypatch):
    from dataclasses import asdict, replace

    from elepose.atomic import write_json

    built = []

    def fake_build(source, out, options, data_root=None, limit_clips=None, workers=2):
        """A synthetic cache whose cameras follow ``options`` (no motion capture in tests)."""
        cams = options.cameras
        write_cache(
            Path(out), n_train=512, n_test=128, clips=4, elevation=(cams.elevation_mean_deg, cams.elevation_std_deg)
        )
        manifest = json.loads((Path(out) / "manifest.json").read_text())
        write_json(Path(out) / "manifest.json", {**manifest, "options": json.loads(json.dumps(asdict(options)))})
        built.append(Path(out).name)

    monkeypatch.setattr(runner, "build_cache", fake_build)
    cameras = CameraBudget(distributions=(("high", 30.0, 8.0),), epochs=1, hidden=32)
    profile = replace(PROFILES["tiny"], cameras=cameras)
    cache = write_cache(tmp_path / "cache", n_train=512, n_test=128, clips=4)
    profile = replace(profile, options=True)
    only = [f"cameras-{d}-{v}" for d in ("default", "high") for v in CAMERA_VARIANTS]
    only += ["option-scale-pose", "option-warmup0"]
    kwargs = {"device": "cpu", "cache": cache, "only": only, "log": lambda m: None}
    report = runner.run_benchmark(profile, tmp_path / "work", tmp_path / "out" / "RESULTS.md", **kwargs)
    assert report["failed"] == [] and built == ["cache-high"]
    high = report["lifters"]["cameras-high-elepose"]["evaluation"]["learned_elevation"]
    default = report["lifters"]["cameras-default-elepose"]["evaluation"]["learned_elevation"]
    assert 20.0 < high["true_mean_deg"] < 40.0 and 2.0 < default["true_mean_deg"] < 22.0  # each its own test split
    rows = {row["name"]: row for row in report["cameras"]}
    assert set(rows["high"]["runs"]) == set(CAMERA_VARIANTS) and 20.0 < rows["high"]["train_cameras_deg"]["mean"] < 40.0
    text = (tmp_path / "out" / "RESULTS.md").read_text()
    cells = _row(text, "high: N(30, 8)", "## 8. Camera distributions")
    assert cells[2] == f"{report['lifters']['cameras-high-elepose']['evaluation']['gt']['standard']['pa_mpjpe']:.1f}"
    assert (
        cells[4]
        == f"{report['lifters']['cameras-high-fixed-prior-true']['evaluation']['gt']['standard']['pa_mpjpe']:.1f}"
    )

    from elepose.models.io import load_lifter

    assert load_lifter(tmp_path / "work" / "option-scale-pose")[2].normalisation.mode == "pose"
    assert load_lifter(tmp_path / "work" / "option-warmup0")[2].normalisation.mode == "dataset"
    options = "## 9. Options of the elevation branch and the 2D normalisation"
    base = _row(text, "the defaults", options)
    base_value = report["lifters"]["cameras-default-elepose"]["evaluation"]["gt"]["standard"]["pa_mpjpe"]
    assert base[2] == _row(text, "default: N(12, 6)", "## 8. Camera distributions")[2] == f"{base_value:.1f}"
    pose = _row(text, "2D scaled per pose (RMS distance to the pelvis)", options)
    value = report["lifters"]["option-scale-pose"]["evaluation"]["gt"]["standard"]["pa_mpjpe"]
    assert pose[1] == "`flow scale=pose`" and pose[2] == f"{value:.1f}" and pose[7] == f"{value - base_value:+.1f}"
    assert "`elevation_warmup_steps=0`" in _row(text, "no elevation hold", options)[1]

    def fail(*args, **kwargs):
        raise AssertionError("built or trained again")

    monkeypatch.setattr(runner, "build_cache", fail)
    monkeypatch.setattr(runner, "train_lifter", fail)
    again = runner.run_benchmark(profile, tmp_path / "work", tmp_path / "again" / "RESULTS.md", **kwargs)
    assert again["failed"] == []


def test_elevation_curves_show_at_most_the_asked_points_and_always_the_last():
    from elepose.benchmark.report.elevation import elevation_curves as _elevation_curves

    curve = [
        {"epoch": e, "samples": 60_000 * e, "pa_mpjpe": 50.0 - e / 2, "elevation_r": e / 100, "elevation_spread_deg": e / 10,
         "elevation_sigma_train_deg": e / 9}
        for e in range(1, 73)
    ]  # fmt: skip
    flat = [{"epoch": 1, "samples": 1, "pa_mpjpe": 60.0, "elevation_r": math.nan}]
    report = {"labels": {"elepose": "ElePose"}, "lifters": {"elepose": {"curve": curve}, "fixed": {"curve": flat}}}
    text = "\n".join(_elevation_curves(report, points=12, runs=("elepose", "fixed")))
    body = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(body) == 12 and body[0].startswith("| 360,000 | 47.0 | 0.060 |")
    assert body[-1] == "| 4,320,000 | 14.0 | 0.720 | 7.20 | 8.00 |"
    assert "fixed:" not in text  # no learned elevation, no curve
