"""Speed measurements for the benchmark: matmul rate, training throughput, FLOPs, lifting, memory.

Every rate is measured on this machine at the shapes training uses, so training speed can be
expressed as a fraction of what the same machine's matrix multiply reaches at the same precision:

- :func:`matmul_rate`: ``F.linear`` of a ``(batch, hidden)`` activation with a ``(hidden, hidden)``
  weight, the layer that dominates the lifter, in FLOP/s.
- :func:`training_flops_per_sample`: counted analytically from the layer shapes (multiply-adds of
  every ``Linear`` times 2; biases, activations and the geometry are left out). One ElePose
  step lifts twice (the input and the virtual view) and back-propagates through both passes
  (about 2x a forward pass each), and runs the frozen flow forward plus a backward pass to its
  input only (its weights get no gradient, about 1x a forward pass).
- :func:`training_throughput`: samples/s of the real training step (``elepose_losses`` +
  backward + Adam) for a fixed number of steps after a warm-up.
- :func:`lift_throughput`: poses/s lifting a batch with the reliability NLL, and the latency of
  one pose.
- :func:`peak_memory`: the process's peak resident memory and, on CUDA, peak allocated memory.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from elepose.evaluate.reliability import reliability_nll, reliability_percentile
from elepose.lift.lifter import Lifter
from elepose.models.flow import PoseFlow
from elepose.models.lifter import LiftingNetwork
from elepose.runtime import autocast
from elepose.train.config import TrainConfig
from elepose.train.loop import make_adam
from elepose.train.objective import elepose_losses
from elepose.views import ElevationPrior

__all__ = [
    "matmul_rate",
    "lifter_forward_flops",
    "flow_forward_flops",
    "training_flops_per_sample",
    "training_throughput",
    "profile_training_step",
    "reliability_precision_agreement",
    "lift_throughput",
    "peak_memory",
]

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_calls(call: Callable[[], Any], repeats: int, device: torch.device) -> tuple[list[float], Any]:
    """Seconds of each of ``repeats`` calls (at least one), the device synchronised around each; and the last result."""
    seconds, result = [], None
    for _ in range(max(1, repeats)):
        _sync(device)
        start = time.perf_counter()
        result = call()
        _sync(device)
        seconds.append(time.perf_counter() - start)
    return seconds, result


def matmul_rate(
    batch: int = 256,
    hidden: int = 1024,
    precision: str = "fp32",
    device: torch.device | str = "cpu",
    min_seconds: float = 0.5,
) -> float:
    """FLOP/s of ``F.linear(x (batch, hidden), W (hidden, hidden), b)`` at ``precision`` (fp32 | bf16).

    Counts ``2 * batch * hidden^2`` FLOPs per call; repeats until ``min_seconds`` have passed.
    """
    device = torch.device(device)
    dtype = _DTYPES[precision]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, hidden, generator=gen).to(device, dtype)
    w = (torch.randn(hidden, hidden, generator=gen) / math.sqrt(hidden)).to(device, dtype)
    b = torch.zeros(hidden).to(device, dtype)
    with torch.no_grad():
        for _ in range(3):
            F.linear(x, w, b)
        calls = 0
        _sync(device)
        start = time.perf_counter()
        while True:  # whole rounds of 4 calls until min_seconds have passed
            for _ in range(4):
                F.linear(x, w, b)
            calls += 4
            _sync(device)
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        per_call = elapsed / calls
    return 2.0 * batch * hidden * hidden / per_call


def lifter_forward_flops(hidden: int = 1024, variant: str = "shared", elevation: bool = True, joints: int = 17) -> int:
    """FLOPs of one lifter forward pass for one pose: ``2 * in * out`` summed over its Linear layers.

    Layout as :class:`~elepose.models.lifter.LiftingNetwork`: ``shared`` = input layer, one
    shared residual block, a 2-block depth branch and (with ``elevation``) a 2-block elevation
    branch; ``towers`` = per tower an input layer and 3 blocks. A residual block holds two
    ``hidden x hidden`` layers; heads are ``hidden x joints`` and ``hidden x 1``.
    """
    inputs = 2 * joints
    square = hidden * hidden
    if variant == "shared":
        macs = inputs * hidden + 2 * square + 4 * square + hidden * joints
        if elevation:
            macs += 4 * square + hidden
    elif variant == "towers":
        tower = inputs * hidden + 6 * square
        macs = tower + hidden * joints + ((tower + hidden) if elevation else 0)
    else:
        raise ValueError(f"lifter variant must be 'shared' or 'towers', got {variant!r}")
    return 2 * macs


def flow_forward_flops(pca_bases: int | None = 26, blocks: int = 8, hidden: int = 1024, joints: int = 17) -> int:
    """FLOPs of one flow forward pass (PCA projection + coupling blocks) for one pose.

    Per block on ``c`` channels: subnet ``Linear(c - c//2, hidden)`` and ``Linear(hidden, 2 (c//2))``
    plus the ``c x c`` rotation (see :class:`~elepose.models.flow.AllInOneBlock`).
    """
    inputs = 2 * joints
    c = inputs if pca_bases is None else pca_bases
    macs = 0 if pca_bases is None else inputs * pca_bases
    per_block = (c - c // 2) * hidden + hidden * 2 * (c // 2) + c * c
    return 2 * (macs + blocks * per_block)


def training_flops_per_sample(
    hidden: int = 1024,
    variant: str = "shared",
    elevation: bool = True,
    pca_bases: int | None = 26,
    flow_blocks: int = 8,
    flow_hidden: int = 1024,
    supervised: bool = False,
) -> dict[str, float]:
    """FLOPs of one training sample: ``{"lifter", "flow", "total"}``.

    ElePose: two lifter passes, each forward + backward (3x forward), and the frozen flow
    forward + backward to its input (2x forward). Supervised: one lifter pass (3x), no flow.
    """
    lifter = lifter_forward_flops(hidden, variant, elevation and not supervised)
    if supervised:
        return {"lifter": 3.0 * lifter, "flow": 0.0, "total": 3.0 * lifter}
    flow = 2.0 * flow_forward_flops(pca_bases, flow_blocks, flow_hidden)
    return {"lifter": 6.0 * lifter, "flow": flow, "total": 6.0 * lifter + flow}


def _training_step(
    lifter: LiftingNetwork,
    flow: PoseFlow,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    batch_size: int,
    precision: str,
    device: torch.device,
    generator: torch.Generator,
    ratios: torch.Tensor,
    step: int,
) -> None:
    start = (step * batch_size) % max(len(inputs) - batch_size + 1, 1)
    x = inputs[start : start + batch_size].to(device)
    with autocast(device, precision):
        loss = elepose_losses(lifter, flow.nll, x, ratios, ElevationPrior.learned(), generator)["total"]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _setup_training(
    flow: PoseFlow, inputs: torch.Tensor, hidden: int, device: torch.device, seed: int
) -> tuple[LiftingNetwork, torch.optim.Optimizer, torch.Generator, torch.Tensor]:
    torch.manual_seed(seed)
    defaults = TrainConfig()  # the step `elepose train` takes, at its default settings
    lifter = (
        LiftingNetwork(hidden=hidden, elevation=True, elevation_init_deg=defaults.elevation_init_deg).to(device).train()
    )
    flow.to(device).eval()
    for p in flow.parameters():
        p.requires_grad_(False)
    optimizer = make_adam(lifter.parameters(), lr=defaults.lr, weight_decay=defaults.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    ratios = torch.ones(16, device=device)
    return lifter, optimizer, generator, ratios


def training_throughput(
    flow: PoseFlow,
    inputs: torch.Tensor,
    hidden: int = 1024,
    precision: str = "fp32",
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    warmup_steps: int = 5,
    steps: int = 20,
    seed: int = 0,
) -> dict[str, float]:
    """Samples/s of the ElePose training step of a fresh lifter against the frozen ``flow``.

    ``inputs (N, 17, 2)``: normalised 2D poses, cycled through in order. Runs ``warmup_steps``
    untimed steps, then times ``steps``. Returns ``samples_per_s``, ``seconds``, ``steps``,
    ``batch_size``.
    """
    device = torch.device(device)
    lifter, optimizer, generator, ratios = _setup_training(flow, inputs, hidden, device, seed)
    args = (lifter, flow, optimizer, inputs, batch_size, precision, device, generator, ratios)
    for step in range(warmup_steps):
        _training_step(*args, step)
    _sync(device)
    start = time.perf_counter()
    for step in range(warmup_steps, warmup_steps + steps):
        _training_step(*args, step)
    _sync(device)
    seconds = time.perf_counter() - start
    return {"samples_per_s": steps * batch_size / seconds, "seconds": seconds, "steps": steps, "batch_size": batch_size}


def profile_training_step(
    flow: PoseFlow,
    inputs: torch.Tensor,
    hidden: int = 1024,
    precision: str = "fp32",
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    steps: int = 3,
    top: int = 8,
) -> list[dict[str, Any]]:
    """Where a training step spends its time: the ``top`` operators by self time (torch.profiler).

    Returns ``[{"op", "ms_per_step", "percent"}, ...]`` (percent of the profiled self time).
    """
    device = torch.device(device)
    lifter, optimizer, generator, ratios = _setup_training(flow, inputs, hidden, device, 0)
    args = (lifter, flow, optimizer, inputs, batch_size, precision, device, generator, ratios)
    _training_step(*args, 0)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for step in range(1, steps + 1):
            _training_step(*args, step)
        _sync(device)
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, attr, 0) > 0]
    total = sum(getattr(e, attr) for e in events) or 1.0
    events.sort(key=lambda e: getattr(e, attr), reverse=True)
    return [
        {"op": e.key, "ms_per_step": getattr(e, attr) / 1000.0 / steps, "percent": 100.0 * getattr(e, attr) / total}
        for e in events[:top]
    ]


def _lift_function(checkpoint_dir: str, rotations: int, device: torch.device) -> tuple[Callable[[Any], Any], str]:
    """A callable lifting ``(N, 17, 2)`` pixels with reliability (:class:`elepose.lift.lifter.Lifter`), and how."""
    model = Lifter.load(checkpoint_dir, device=device)
    return (
        lambda poses: model.lift(poses, rotations=rotations)
    ), f"elepose.lift.lifter.Lifter.lift(rotations={rotations})"


def lift_throughput(
    checkpoint_dir: str,
    poses_2d_px: Any,
    rotations: int = 100,
    device: torch.device | str = "cpu",
    latency_repeats: int = 20,
    repeats: int = 1,
) -> dict[str, Any]:
    """Lifting speed with reliability: all of ``poses_2d_px (N, 17, 2)`` at once, and one pose.

    Returns ``batched_poses_per_s`` (median of ``repeats`` timed calls), ``batch_size`` (N),
    ``batch1_latency_ms`` (median of ``latency_repeats`` single-pose calls), ``rotations`` and ``method``.
    """
    device = torch.device(device)
    lift, method = _lift_function(checkpoint_dir, rotations, device)
    poses = poses_2d_px
    lift(poses[:8])  # warm-up
    rates = [len(poses) / seconds for seconds in _timed_calls(lambda: lift(poses), repeats, device)[0]]
    batched = sorted(rates)[len(rates) // 2]
    single = poses[:1]
    lift(single)
    latencies = sorted(_timed_calls(lambda: lift(single), latency_repeats, device)[0])
    return {
        "batched_poses_per_s": batched,
        "batch_size": int(len(poses)),
        "batch1_latency_ms": 1000.0 * latencies[len(latencies) // 2],
        "rotations": rotations,
        "method": method,
        "repeats_poses_per_s": rates,
    }


def reliability_precision_agreement(
    checkpoint_dir: str,
    poses_2d_px: Any,
    rotations: int = 16,
    device: torch.device | str = "cpu",
    repeats: int = 3,
) -> dict[str, Any]:
    """The reliability NLL of the same lifted poses in fp32 and with the flow's subnets in bf16.

    ``poses_2d_px (N, 17, 2)`` are lifted once (:class:`Lifter`, no reliability timed); then
    :func:`reliability_nll` at ``rotations`` views runs ``repeats`` times per precision. Returns
    per precision ``nll_poses_per_s`` (median) and its repeats, and how far bf16 moves the NLL
    (``nll_abs_diff_median`` / ``_max``, nats) and the reliability percentile (``percentile_abs_diff_max``,
    points): issue 15 allows 0.05 nats and 1 point.
    """
    device = torch.device(device)
    model = Lifter.load(checkpoint_dir, device=device)
    lifted = model.lift(poses_2d_px, rotations=1)
    poses_3d, elevation = torch.as_tensor(lifted.poses_3d), torch.as_tensor(lifted.elevation)
    out: dict[str, Any] = {"rotations": rotations, "poses": int(len(poses_3d))}
    values = {}
    for precision in ("fp32", "bf16"):

        def run(n: int | None = None, precision: str = precision) -> torch.Tensor:
            return reliability_nll(
                model.flow, poses_3d[:n], elevation[:n], model.learned_elevation, rotations,
                device=device, precision=precision,
            )  # fmt: skip

        run(8)  # warm-up
        seconds, values[precision] = _timed_calls(run, repeats, device)
        rates = [len(poses_3d) / t for t in seconds]
        out[precision] = {"nll_poses_per_s": sorted(rates)[len(rates) // 2], "repeats_poses_per_s": rates}
    diff = (values["bf16"] - values["fp32"]).abs()
    out["nll_abs_diff_median"] = float(diff.median())
    out["nll_abs_diff_max"] = float(diff.max())
    if model.record.reliability is not None:
        fp32, bf16 = (reliability_percentile(values[p].numpy(), model.record.reliability) for p in ("fp32", "bf16"))
        out["percentile_abs_diff_max"] = float(abs(bf16 - fp32).max())
    return out


def peak_memory(device: torch.device | str = "cpu") -> dict[str, float | None]:
    """Peak resident memory of this process (MiB, ``ru_maxrss``) and peak CUDA allocation (MiB or None)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mib = rss / 1024.0 if sys.platform != "darwin" else rss / 2**20  # KiB on Linux, bytes on macOS
    cuda = None
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        cuda = torch.cuda.max_memory_allocated() / 2**20
    return {"peak_rss_mib": rss_mib, "peak_cuda_mib": cuda}
