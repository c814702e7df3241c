"""Section 5's measurements on the benchmark's own flow and lifter, kept in ``WORK/speed.json``.

The timing primitives are :mod:`elepose.benchmark.speed`; this module runs them at a profile's
:class:`~elepose.benchmark.profiles.SpeedBudget` and caches the result for the same profile,
device and epochs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from elepose.atomic import write_json
from elepose.benchmark import rows, speed
from elepose.benchmark.environment import load_average
from elepose.benchmark.profiles import Profile
from elepose.data.cache import load_split
from elepose.models.io import CheckpointError, load_flow, load_lifter, load_record
from elepose.models.lifter import predict
from elepose.models.normalisation import normalise
from elepose.runtime import pick_device

__all__ = ["speed_run", "measure_speed"]


def _epoch(folder: Path) -> int | None:
    try:
        return load_record(folder).epoch
    except (CheckpointError, OSError):
        return None


def speed_run(profile: Profile, work: Path, cache: Path, device: str, say: Callable[[str], None]) -> None:
    """Measure section 5 into ``work/speed.json`` unless it holds this profile's, device's and epochs' numbers."""
    path = work / "speed.json"
    key = {
        "profile": asdict(profile),
        "device": device,
        "flow_epoch": _epoch(work / rows.FLOW),
        "lifter_epoch": _epoch(work / rows.MAIN),
    }
    if path.is_file():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("key") == json.loads(json.dumps(key)):
            say("speed: measured earlier, skipped")
            return
    result = measure_speed(profile, work, cache, device, say)
    result["key"] = key
    write_json(path, result)


def _training_speed(profile: Profile, flow: Any, inputs: np.ndarray, dev: torch.device, precision: str) -> dict:
    """Interleaved repeats of the matmul rate and the training step at ``precision`` (medians)."""
    budget, batch = profile.speed, profile.lifter.batch_size
    assert budget is not None
    rates, steps, loads = [], [], []
    for _ in range(budget.repeats):  # interleaved, so a busy moment slows both alike
        rates.append(speed.matmul_rate(batch, budget.hidden, precision, dev, budget.matmul_seconds))
        steps.append(
            speed.training_throughput(
                flow, inputs, budget.hidden, precision, dev, batch, budget.warmup_steps, budget.steps
            )["samples_per_s"]
        )
        loads.append(load_average())
    flops = speed.training_flops_per_sample(
        hidden=budget.hidden, pca_bases=26, flow_blocks=profile.flow.blocks, flow_hidden=profile.flow.hidden
    )["total"]
    rate, samples_per_s = float(np.median(rates)), float(np.median(steps))
    return {
        "matmul_flops_per_s": rate,
        "samples_per_s": samples_per_s,
        "achieved_flops_per_s": samples_per_s * flops,
        "fraction_of_matmul": samples_per_s * flops / rate,
        "timed_steps": budget.steps,
        "repeats_samples_per_s": steps,
        "repeats_matmul_flops_per_s": rates,
        "load_average": loads,
    }


def measure_speed(profile: Profile, work: Path, cache: Path, device: str, log: Callable[[str], None]) -> dict[str, Any]:
    """Training throughput (fp32, bf16) against the matmul rate, per-operator profiles, lift
    throughput and latency, the reliability NLL's precision agreement and peak memory."""
    budget = profile.speed
    assert budget is not None
    dev = pick_device(device)
    flow, flow_record = load_flow(work / rows.FLOW)
    train, test = load_split(cache / "train.npz"), load_split(cache / "test.npz")
    batch = profile.lifter.batch_size
    inputs = normalise(train.poses_2d[: min(len(train), 32 * batch)], flow_record.normalisation)
    result: dict[str, Any] = {"device": str(dev), "threads": torch.get_num_threads(), "batch_size": batch}
    result["hidden"] = budget.hidden
    result["flops_per_sample"] = speed.training_flops_per_sample(
        hidden=budget.hidden, pca_bases=26, flow_blocks=profile.flow.blocks, flow_hidden=profile.flow.hidden
    )
    result["precisions"] = {}
    for precision in ("fp32", "bf16"):
        log(f"speed: {precision} matmul and training step, {budget.repeats} x {budget.steps} steps")
        result["precisions"][precision] = _training_speed(profile, flow, inputs, dev, precision)
    for precision in ("fp32", "bf16"):
        log(f"speed: per-operator profile of the {precision} step")
        result[f"profile_{precision}"] = speed.profile_training_step(
            flow, inputs, budget.hidden, precision, dev, batch, steps=2
        )
    log("speed: lifting throughput")
    poses, lifter = test.poses_2d[: budget.lift_poses], str(work / rows.MAIN)
    for key, rotations in (("lift", budget.lift_rotations), ("lift_paper_rotations", budget.lift_rotations_paper)):
        result[key] = speed.lift_throughput(lifter, poses, rotations, dev, budget.latency_repeats, budget.repeats)
    result["lift_no_reliability"] = _lift_without_reliability(work / rows.MAIN, poses, dev)
    log("speed: the reliability NLL in fp32 and with bf16 subnets")
    result["reliability_precision"] = speed.reliability_precision_agreement(
        lifter, poses, budget.lift_rotations, dev, budget.repeats
    )
    result["memory"] = speed.peak_memory(dev)
    return result


def _lift_without_reliability(folder: Path, poses_px: np.ndarray, dev: torch.device) -> dict[str, float]:
    """Batched lifting without the reliability NLL (3D only), poses per second."""
    lifter, _, record = load_lifter(folder)
    lifter.to(dev)
    norm = record.normalisation
    predict(lifter, normalise(poses_px[:8], norm), dev)
    start = time.perf_counter()
    predict(lifter, normalise(poses_px, norm), dev)
    return {"batched_poses_per_s": len(poses_px) / (time.perf_counter() - start), "batch_size": int(len(poses_px))}
