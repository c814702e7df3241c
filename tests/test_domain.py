"""The cross-domain section: CMU cut into segments, its targets, its report, and the section end to end."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from elepose.benchmark import domain_checks, runner
from elepose.benchmark.domain import (
    SEGMENT_SECONDS,
    TEST_GAP_SECONDS,
    build_target_cache,
    check_rows,
    last_frames,
    segment_clip,
)
from elepose.benchmark.plan import split_rows
from elepose.benchmark.profiles import PROFILES, DomainBudget
from elepose.benchmark.report.domain import render_domain
from elepose.benchmark.report.merge import merge_sections
from elepose.benchmark.targets import evaluate_targets
from elepose.data.cache import load_split
from tests.synthetic import write_cache

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_cmu = pytest.mark.skipif(not (DATA / "cmu").is_dir(), reason="../shared/data/cmu not present")


def test_segments_alternate_train_and_test_and_test_segments_keep_a_gap():
    positions = np.arange(23, dtype=np.float64)[:, None, None] * np.ones((1, 17, 3))
    pieces = segment_clip(positions, fps=4.0, name="clip", seconds=1.0, gap=0.25)
    # By hand: 4 frames per segment, [0:4] [4:8] [8:12] [12:16] [16:20] [20:23]; segment 2 is test
    # and loses 1 frame at each end.
    assert [(s.name, split) for s, split in pieces] == [
        ("clip-s00", "train"), ("clip-s01", "train"), ("clip-s02", "test"),
        ("clip-s03", "train"), ("clip-s04", "train"), ("clip-s05", "train"),
    ]  # fmt: skip
    frames = [s.positions[:, 0, 0].astype(int).tolist() for s, _ in pieces]
    assert frames == [[0, 1, 2, 3], [4, 5, 6, 7], [9, 10], [12, 13, 14, 15], [16, 17, 18, 19], [20, 21, 22]]
    assert all(s.fps == 4.0 for s, _ in pieces)


def test_a_segment_left_with_one_frame_is_dropped():
    positions = np.zeros((9, 17, 3))
    pieces = segment_clip(positions, fps=1.0, name="c", seconds=3.0, gap=1.0)
    # [0:3] train, [3:6] train, [6:9] test -> [7:8], one frame: dropped.
    assert [s.name for s, _ in pieces] == ["c-s00", "c-s01"]


def test_last_frames_keeps_the_last_fifth_of_each_groups_frame_range():
    # Group a spans frames 0..9 (the last fifth: 8, 9); group b 20..24 (5 frames: 24 only), in any order.
    frame = np.array([0, 9, 8, 7, 3, 24, 20, 23, 8])
    group = np.array(["a", "a", "a", "a", "a", "b", "b", "b", "a"])
    assert last_frames(frame, group).tolist() == [False, True, True, False, False, True, False, False, True]
    assert last_frames(frame, group, share=0.5).tolist() == [False, True, True, True, False, True, False, True, True]


@needs_cmu
def test_the_target_cache_is_cmu_segments_seen_by_other_cameras(tmp_path):
    manifest = build_target_cache(DATA, tmp_path / "cache")
    train, test = load_split(tmp_path / "cache" / "train.npz"), load_split(tmp_path / "cache" / "test.npz")
    train_names = {str(train.clip_names[c]) for c in np.unique(train.pose_clip)}
    test_names = {str(test.clip_names[c]) for c in np.unique(test.pose_clip)}
    assert not train_names & test_names
    assert all(int(n.rsplit("-s", 1)[1]) % 5 == 2 for n in test_names)
    assert all(int(n.rsplit("-s", 1)[1]) % 5 != 2 for n in train_names)
    # Every clip of the five has test frames, and no test frame lies within the gap of a segment's edge.
    assert {n.rsplit("-s", 1)[0] for n in test_names} >= {"05_06", "131_01", "131_02", "131_03"}
    per, gap = round(SEGMENT_SECONDS * 120), round(TEST_GAP_SECONDS * 120)
    assert test.frame.min() >= 0 and test.frame.max() < per - 2 * gap
    elevation = manifest["counts"]["train"]["camera_elevation_deg"]
    assert abs(elevation["mean"] - 25.0) < 2.0 and abs(elevation["std"] - 8.0) < 2.0
    assert manifest["options"]["cameras"]["focal"] == 800.0
    # Built once: a second call reads the manifest instead of building again.
    stamp = (tmp_path / "cache" / "train.npz").stat().st_mtime_ns
    build_target_cache(DATA, tmp_path / "cache")
    assert (tmp_path / "cache" / "train.npz").stat().st_mtime_ns == stamp


def _entry(mm: float, **extra) -> dict:
    base = {"detected": {"pa_mpjpe": mm, "n_mpjpe": mm + 10}, "gt": {"pa_mpjpe": mm - 5}, "flat_detected": 100.0}
    return {**base, **extra}


def _fit(mm: float, start: str, share: float, settings: dict | None = None, **extra) -> dict:
    return _entry(mm, start=start, share=share, segments=3, training_poses=900, minutes=3.2, checks_failed=[],
                  flow_epoch_kept=40, settings=settings or {}, **extra)  # fmt: skip


def _domain() -> dict:
    lifters = {
        "transfer": _entry(70.0),
        "transfer_on_coco": _entry(68.0),
        "supervised": _entry(40.0),
        "fit-init-1pct": _fit(71.4, "init", 0.01, start_kept=True, fitted_itself={"detected": 82.5}),
        "fit-init-10pct": _fit(
            66.0,
            "init",
            0.1,
            own_frames={"fitted": {"pa_mpjpe": 50.0, "poses": 96}, "transferred": {"pa_mpjpe": 80.0, "poses": 96}},
        ),
        "fit-init-100pct": _fit(60.0, "init", 1.0),
        "fit-scratch-100pct": _fit(75.0, "scratch", 1.0),
        "fit-init-flow-10pct": _fit(63.0, "init", 0.1, {"init_flow": True}),
        "fit-init-flow-100pct": _fit(80.0, "init", 1.0, {"init_flow": True}),
        "fit-init-flow-x-100pct": _fit(81.0, "init", 1.0, {"init_flow": True, "samples": 10}),
        "fit-distill-1pct": _fit(
            69.0,
            "init",
            0.01,
            {"distill": "/source/cache"},
            own_frames={"fitted": {"pa_mpjpe": 55.0, "poses": 96}, "transferred": {"pa_mpjpe": 80.0, "poses": 96}},
        ),  # fmt: skip
    }
    target = {
        "clips": 5, "training_segments": 32, "test_segments": 8, "training_poses": 9104, "test_poses": 4464,
        "target_fps": 120.0, "segments": {"seconds": 1.0, "test_gap_seconds": 0.2, "test": "positions 2 mod 5"},
        "cameras": {"elevation_mean_deg": 25.0, "elevation_std_deg": 8.0, "focal": 800.0, "distance": 4.0,
                    "views_per_window": 8},
    }  # fmt: skip
    return {
        "samples": 360000,
        "target": target,
        "lifters": lifters,
        "variants": {"init-flow": "the source's flow", "init-flow-x": "more", "distill": "kept lifts"},
    }


def test_the_targets_compare_with_the_better_transferred_input_and_the_best_warm_start():
    domain = _domain()
    assert domain_checks.reference(domain) == (68.0, "transfer_on_coco")
    assert domain_checks.best_init(domain, 0.1) == (63.0, "fit-init-flow-10pct")  # a variant counts
    assert domain_checks.best_init(domain, 1.0) == (60.0, "fit-init-100pct")
    assert domain_checks.best_init(domain, 0.3) is None
    assert domain_checks.worst_init_against_reference(domain) == (pytest.approx(71.4 / 68.0), "fit-init-1pct")
    assert domain_checks.scratch_all(domain) == (75.0, "fit-scratch-100pct")
    found = {t["key"]: t for t in evaluate_targets({"lifters": {}, "domain": domain})}
    assert found["domain-init-100"]["value"] == pytest.approx(8.0 / 68.0) and not found["domain-init-100"]["met"]
    assert found["domain-init-10"]["value"] == pytest.approx(5.0 / 68.0) and found["domain-init-10"]["met"]
    assert found["domain-scratch"]["value"] == pytest.approx(0.25) and not found["domain-scratch"]["met"]
    assert not found["domain-never-worse"]["met"] and "fit-init-1pct" in found["domain-never-worse"]["measured"]
    assert found["domain-fit-minutes"]["met"] and found["domain-fit-minutes"]["measured"].startswith("3.2 min (900")
    assert not any(k.startswith("domain-") for k in (t["key"] for t in evaluate_targets({"lifters": {}})))


def test_the_report_lists_every_row_once_with_its_variant():
    text = "\n".join(render_domain(_domain()))
    assert text.startswith("## 10. Another domain")
    main = text.split("### The fitted videos themselves")[0]
    rows = [line for line in main.splitlines() if line.startswith("| ") and not line.startswith("| lifter")]
    assert len(rows) == 11
    assert any(r.startswith("| fit --init, 100 % (3 segments); more |") for r in rows)  # the longest name
    assert any(r.startswith("| fit --init, 10 % (3 segments); the source's flow |") for r in rows)
    assert any(
        r.startswith("| fit --init, 1 % (3 segments); start kept (the fitted lifter itself: 82.5) |") for r in rows
    )
    assert "| 68.0 |" in next(r for r in rows if r.startswith("| Transferred, fed COCO"))
    assert "N(25, 8) deg, 800 px" in text and "100.0 mm on detected 2D" in text
    own = [r for r in text.split("### The fitted videos themselves")[1].splitlines() if r.startswith("| 10 %")]
    assert own == ["| 10 % (3 segments) | 96 | held out by fit | 80.0 | 50.0 | -37.5 % | 66.0 | fitted |"]
    distilled = [r for r in text.split("### The fitted videos themselves")[1].splitlines() if "--distill, 1 %" in r]
    assert distilled == [
        "| --distill, 1 % (3 segments) | 96 | held out by fit | 80.0 | 55.0 | -31.2 % | 69.0 | fitted |"
    ]
    assert render_domain(None) == []
    # Under fit's auto-distillation threshold a plain --init row says it ran with --distill off.
    labelled = "\n".join(render_domain({**_domain(), "distill_auto_below_poses": 2000}))
    assert "| fit --init, 1 % (3 segments); --distill off; start kept" in labelled
    assert "| fit --init, 1 % (3 segments); kept lifts |" in labelled  # the distillation row itself
    assert "Under 2,000 training poses `fit --init` distils by default" in labelled
    assert "--distill off" not in "\n".join(render_domain({**_domain(), "distill_auto_below_poses": 900}))
    assert "fitted only `fit-init-1pct` (`--only domain/ROW`)" in "\n".join(
        render_domain({**_domain(), "rows_only": ["fit-init-1pct"]})
    )


def test_only_names_rows_of_the_domain_section_and_they_merge_only_onto_the_same_source():
    assert split_rows(["elepose", "domain/fit-distill-1pct", "domain/fit-distill-10pct"]) == (
        ["elepose", "domain"], {"domain": ["fit-distill-1pct", "fit-distill-10pct"]}
    )  # fmt: skip
    assert split_rows(["domain/fit-init-1pct", "domain"]) == (["domain"], {})  # named whole: the whole section
    assert split_rows(None) == (None, {})
    with pytest.raises(ValueError, match="--only own2d/x: expected RUN/ROW only for domain"):
        split_rows(["own2d/x"])
    check_rows(DomainBudget(), ["fit-distill-1pct", "fit-distill-10pct", "fit-init-100pct", "fit-longer-10x-100pct"])
    with pytest.raises(ValueError, match="fit-distill-100pct: expected one of the section's rows: fit-init-1pct, "):
        check_rows(DomainBudget(), ["fit-distill-100pct"])  # distillation runs on 1, 10 and 30 % only
    base = {"profile": {"name": "domain"}, "lifters": {}, "domain": _domain()}
    row = _fit(50.0, "init", 0.1, {"distill": "/source/cache"})
    later_domain = {**_domain(), "lifters": {**_domain()["lifters"], "fit-distill-10pct": row}}
    later_domain.update(rows_only=["fit-distill-10pct"], distill_auto_below_poses=2000)
    later = {"profile": {"name": "domain"}, "runs": {"domain": {"status": "ok"}}, "domain": later_domain}
    merged, taken = merge_sections(base, later)
    assert merged["domain"]["lifters"] == {**base["domain"]["lifters"], "fit-distill-10pct": row}
    assert merged["domain"]["distill_auto_below_poses"] == 2000 and "rows_only" not in merged["domain"]
    assert "fit-distill-10pct" not in base["domain"]["lifters"]
    whole = {**later, "domain": _domain(), "date": "first"}  # a whole-section merge's provenance stays
    twice = merge_sections(merge_sections(base, whole)[0], later)[0]
    assert [m.get("rows") for m in twice["merged"]] == [None, ["fit-distill-10pct"]]
    later_domain["lifters"]["transfer"] = _entry(70.3)  # another source lifter
    with pytest.raises(ValueError, match="domain: transfer: expected detected PA-MPJPE 70.0 mm as in the base"):
        merge_sections(base, later)


@needs_cmu
def test_the_section_runs_in_the_benchmark_and_reaches_the_report(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cache = write_cache(tmp_path / "cache", n_train=512, n_test=128, clips=6, sources=1)
        profile = replace(
            PROFILES["tiny"], name="tiny-domain", lifter_rows=("elepose",), pca_sweep=(), seeds=(0,), speed=None,
            own2d=None, domain=DomainBudget(samples=1024, init_shares=(0.05,), scratch_shares=(1.0,),
                                            variant_shares=(0.05,)),
        )  # fmt: skip
        report = runner.run_benchmark(profile, tmp_path / "work", tmp_path / "out" / "RESULTS.md", data_root=DATA,
                                      device="cpu", cache=cache, command="test", log=lambda m: None)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert report["failed"] == []
    lifters = report["domain"]["lifters"]
    assert set(lifters) == {"transfer", "transfer_on_coco", "supervised", "fit-init-5pct", "fit-scratch-100pct",
                            "fit-init-flow-5pct", "fit-rehearse-5pct", "fit-track-pairs-5pct"}  # fmt: skip
    assert lifters["fit-init-5pct"]["segments"] == 2 and lifters["fit-scratch-100pct"]["segments"] == 32
    assert lifters["fit-init-flow-5pct"]["settings"] == {"init_flow": True}
    assert lifters["fit-rehearse-5pct"]["settings"]["rehearse"] == str(cache)
    assert lifters["fit-track-pairs-5pct"]["settings"] == {"track_pairs": True}
    for entry in (e for e in lifters.values() if "start" in e):
        assert entry["fitted_itself"]["detected"] >= 0 and ("better" in entry["start_check"]) == (
            entry["start"] == "init"
        )
    own = lifters["fit-init-5pct"]["own_frames"]
    assert own["fitted"]["poses"] == own["transferred"]["poses"] > 0
    assert "own_frames" not in lifters["fit-init-flow-5pct"] and "own_frames" not in lifters["fit-scratch-100pct"]
    text = (tmp_path / "out" / "RESULTS.md").read_text()
    assert "The fitted videos themselves" in text
    assert "## 10. Another domain" in text and "another domain: fit from scratch on all segments" in text
    # One row re-run alone (--only domain/ROW), merged row by row into the full report.
    with pytest.raises(ValueError, match="--only domain/fit-init-7pct: expected one of the section's rows"):
        runner.run_benchmark(profile, tmp_path / "work", tmp_path / "rows" / "RESULTS.md", data_root=DATA,
                             device="cpu", cache=cache, only=["domain/fit-init-7pct"], log=lambda m: None)  # fmt: skip
    assert not (tmp_path / "rows").exists()  # refused before anything ran
    again = runner.run_benchmark(profile, tmp_path / "work", tmp_path / "rows" / "RESULTS.md", data_root=DATA,
                                 device="cpu", cache=cache, only=["domain/fit-init-5pct"], command="rows",
                                 log=lambda m: None)  # fmt: skip
    assert again["domain"]["rows_only"] == ["fit-init-5pct"]
    assert set(again["domain"]["lifters"]) == {"transfer", "transfer_on_coco", "supervised", "fit-init-5pct"}
    merged, taken = merge_sections(report, again)
    assert taken == ["domain"] and set(merged["domain"]["lifters"]) == set(lifters)
    assert merged["domain"]["lifters"]["fit-init-5pct"] == again["domain"]["lifters"]["fit-init-5pct"]
    assert merged["merged"][-1]["rows"] == ["fit-init-5pct"] and "rows_only" not in merged["domain"]


def test_the_domain_profile_trains_its_source_as_the_quick_profile_does():
    # A work folder shared with a quick benchmark reuses its cache, flow and ElePose lifter.
    quick, domain = PROFILES["quick"], PROFILES["domain"]
    assert domain.flow == quick.flow and domain.lifter == quick.lifter and domain.lifter_rows == ("elepose",)
