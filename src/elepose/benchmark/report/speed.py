"""Section 5: training speed against the matmul rate, the ceilings it allows, lifting speed,
where lifting spends its time, peak memory and the per-operator profile of a step."""

from __future__ import annotations

from typing import Any

from elepose.benchmark.report.tables import fmt, table
from elepose.benchmark.speed import flow_forward_flops
from elepose.benchmark.targets import RELIABILITY_BF16_TOLERANCE, target

__all__ = ["render_speed", "AUTHORS_STEP_SAMPLES_PER_S"]

AUTHORS_STEP_SAMPLES_PER_S = {"fp32": 1250, "bf16": 2350}
"""The ElePose authors' training step (width 1024, batch 256) on 2 CPU cores of this machine type."""
AUTHORS_STEP_SOURCE = "measured once on a 2-core machine of this type; not re-measured"


def _training_rows(speed: dict[str, Any]) -> list[list[str]]:
    cells = []
    for precision, p in speed["precisions"].items():
        repeats = p.get("repeats_samples_per_s", [p["samples_per_s"]])
        loads = [round(load[0], 2) for load in p.get("load_average", []) if load]
        cells.append(
            [
                precision,
                fmt(p["matmul_flops_per_s"] / 1e9),
                fmt(p["samples_per_s"], 0),
                fmt(p["achieved_flops_per_s"] / 1e9),
                f"{100 * p['fraction_of_matmul']:.0f} %",
                f"{len(repeats)} x {p.get('timed_steps', '-')} steps: " + ", ".join(f"{v:.0f}" for v in repeats),
                ", ".join(str(v) for v in loads) or "-",
            ]
        )
    for precision, samples in AUTHORS_STEP_SAMPLES_PER_S.items():
        cells.append(
            [f"authors' step, {precision} (reference)", "-", f"{samples:,}", "-", "-", AUTHORS_STEP_SOURCE, "-"]
        )
    return cells


def _ceilings(speed: dict[str, Any], flops_per_sample: float) -> list[str]:
    """The fastest step this run's matmul rates allow (every FLOP at that rate), against the bf16 target."""
    prec = speed["precisions"]
    if "bf16" not in prec:
        return []
    goal = target("bf16-step-1024").threshold
    needed = goal * flops_per_sample
    caps = ", ".join(f"{p} {v['matmul_flops_per_s'] / flops_per_sample:,.0f}" for p, v in prec.items())
    return [
        f"Ceiling: with every FLOP at this run's matmul rate a training step runs at most {caps} samples/s; "
        f"the target of {goal:,.0f} bf16 samples/s would need {needed / 1e9:.0f} GFLOP/s, "
        f"{needed / prec['bf16']['matmul_flops_per_s']:.2f}x this machine's bf16 matmul rate.",
        "",
    ]


def _lift_rows(speed: dict[str, Any], width: int) -> list[list[str]]:
    lift, plain = speed["lift"], speed.get("lift_no_reliability", {})
    cells = [
        [
            f"with reliability ({lift['rotations']} views, the `lift` default), {lift['method']}, width {width}",
            fmt(lift["batched_poses_per_s"], 0),
            str(lift["batch_size"]),
            fmt(lift["batch1_latency_ms"], 2),
        ]
    ]
    paper = speed.get("lift_paper_rotations")
    if paper:
        cells.append(
            [
                f"with reliability ({paper['rotations']} views, the paper's count)",
                fmt(paper["batched_poses_per_s"], 0),
                str(paper["batch_size"]),
                fmt(paper["batch1_latency_ms"], 2),
            ]
        )
    cells.append(
        ["3D only (no reliability)", fmt(plain.get("batched_poses_per_s"), 0), str(plain.get("batch_size", "-")), "-"]
    )
    return cells


def _lift_split(speed: dict[str, Any], profile: dict[str, Any]) -> list[str]:
    """Where lifting with reliability spends its time, and what the flow's subnets in bf16 would give."""
    lift, plain, agree = speed["lift"], speed.get("lift_no_reliability", {}), speed.get("reliability_precision")
    lines: list[str] = []
    if plain.get("batched_poses_per_s"):
        share = 1.0 - lift["batched_poses_per_s"] / plain["batched_poses_per_s"]
        lines += [
            f"The reliability's flow NLL is {100 * share:.0f} % of a batched `lift` with reliability "
            "(1 - the ratio of the two rates).",
            "",
        ]
    if not agree:
        return lines
    fp32, bf16 = agree["fp32"]["nll_poses_per_s"], agree["bf16"]["nll_poses_per_s"]
    pct = agree.get("percentile_abs_diff_max")
    tolerance = RELIABILITY_BF16_TOLERANCE
    lines += [
        f"The NLL alone ({agree['rotations']} views, {agree['poses']} poses, medians of the repeats): fp32 "
        f'{fp32:,.0f} poses/s; the flow\'s subnets in bf16 (`reliability_nll(..., precision="bf16")`) {bf16:,.0f} '
        f"({bf16 / fp32:.2f}x), moving the NLL by {agree['nll_abs_diff_median']:.3f} nats (median; "
        f"{agree['nll_abs_diff_max']:.2f} at most)"
        + (f" and the reliability percentile by up to {pct:.1f} points" if pct is not None else "")
        + f"; the tolerance is {tolerance['nats']:g} nats and {tolerance['percentile_points']:g} point, so `lift` "
        "keeps fp32.",
        "",
    ]
    nll_flops = agree["rotations"] * flow_forward_flops(26, profile["flow"]["blocks"], profile["flow"]["hidden"])
    prec = speed.get("precisions", {})
    if prec:
        caps = ", ".join(f"{p} {v['matmul_flops_per_s'] / nll_flops:,.0f}" for p, v in prec.items())
        goal = target("lift-50k").threshold
        lines += [
            f"The NLL's FLOPs ({nll_flops / 1e6:.1f} M per pose at {agree['rotations']} views, 26 PCA bases) cap it "
            f"at {caps} poses/s at this run's matmul rates; the target of {goal:,.0f} poses/s would need "
            f"{goal * nll_flops / 1e9:.0f} GFLOP/s.",
            "",
        ]
    return lines


def _profiles(speed: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for precision in ("fp32", "bf16"):
        ops = speed.get(f"profile_{precision}", [])
        if ops:
            cells = [[f"`{o['op']}`", fmt(o["ms_per_step"], 1), fmt(o["percent"], 1)] for o in ops]
            lines += [f"Where a {precision} training step spends its time (torch.profiler, self time):", ""]
            lines += table(["operator", "ms per step", "% of step"], cells)
    return lines


def render_speed(r: dict[str, Any]) -> list[str]:
    """Section 5."""
    speed = r.get("speed")
    if not speed:
        return ["## 5. Speed", "", "(not measured)", ""]
    flops = speed["flops_per_sample"]
    width = speed.get("hidden", r["profile"]["lifter"]["hidden"])
    shape = f"{speed['batch_size']}x{width} @ {width}x{width}"
    lines = [
        "## 5. Speed",
        "",
        f"Device `{speed['device']}`, {speed['threads']} threads, batch {speed['batch_size']}. FLOPs per training "
        f"sample (analytic, from layer shapes): {flops['total'] / 1e6:.1f} M (lifter {flops['lifter'] / 1e6:.1f} M "
        f"= 2 passes x forward+backward; flow {flops['flow'] / 1e6:.2f} M = forward + backward to its input).",
        "",
        f"Training speed of a width-{width} lifter (the paper's width is 1024), whatever width the profile trains; "
        "medians of interleaved repeats (matmul rate, then training steps), each with the 1-minute load average:",
        "",
    ]
    header = ["precision", f"matmul GFLOP/s ({shape})", "training samples/s", "training GFLOP/s"]
    header += ["fraction of matmul", "repeats (samples/s)", "load"]
    lines += table(header, _training_rows(speed)) + _ceilings(speed, flops["total"])
    header = ["lift", "poses/s (batched, median of the repeats)", "batch", "batch-1 latency ms (median)"]
    lines += table(header, _lift_rows(speed, r["profile"]["lifter"]["hidden"])) + _lift_split(speed, r["profile"])
    mem = speed["memory"]
    cuda = f", {fmt(mem['peak_cuda_mib'], 0)} MiB CUDA allocated" if mem.get("peak_cuda_mib") is not None else ""
    lines += [
        f"Peak memory: {fmt(mem['peak_rss_mib'], 0)} MiB resident (whole benchmark process, ru_maxrss){cuda}.",
        "",
    ]
    return lines + _profiles(speed)
