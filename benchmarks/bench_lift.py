"""Speed of ``Lifter.lift``: poses per second on a batch, and the latency of one pose.

A random-weight model of the default size (lifter width 1024; flow of 8 blocks, width 1024, on
26 PCA bases) is written to a temporary run folder with :func:`elepose.models.io.save_lifter`
and timed by :func:`elepose.benchmark.speed.lift_throughput`, which loads it the way users load
one. Inputs are synthetic 2D poses (a standing template with jittered joints, random size and
position), all joints visible unless ``--missing`` hides some. Run:
``python benchmarks/bench_lift.py [--device cpu|cuda] [--poses 20000] [--threads N] [--missing K]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile

import numpy as np
import torch

from elepose.benchmark.speed import lift_throughput
from elepose.evaluate.reliability import calibrate_reliability
from elepose.models.io import new_flow, new_lifter, save_lifter
from elepose.models.normalisation import Normalisation, normalise
from elepose.models.records import FlowRecord, LifterRecord

# Front view of a standing person, H36M-17 order, pixels at about 100 px per 0.5 m.
_TEMPLATE = np.array(
    [[0, 0], [-26, 0], [-26, 90], [-26, 180], [26, 0], [26, 90], [26, 180], [0, -50], [0, -100],
     [0, -120], [0, -150], [36, -96], [36, -40], [36, 10], [-36, -96], [-36, -40], [-36, 10]],
    dtype=np.float64,
)  # fmt: skip


def synthetic_poses(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 17, 2)`` px: the template jittered per joint, scaled 0.5..2 and placed in a 1000 px image."""
    rng = np.random.default_rng(seed)
    poses = _TEMPLATE[None] + rng.normal(0, 12, (n, 17, 2))
    return poses * rng.uniform(0.5, 2.0, (n, 1, 1)) + rng.uniform(300, 700, (n, 1, 2))


def random_checkpoint(folder: str, device: torch.device) -> None:
    """A default-size lifter + flow with random weights, PCA fitted on synthetic poses."""
    train = synthetic_poses(4096, seed=1)
    norm = Normalisation.fit("pose", train)
    x = normalise(train, norm)
    flow_record = FlowRecord(pca_bases=26, blocks=8, hidden=1024, normalisation=norm)
    flow = new_flow(flow_record).fit_pca(x.double())
    record = LifterRecord(hidden=1024, variant="shared", elevation_branch=True, normalisation=norm, flow=flow_record)
    lifter = new_lifter(record)
    learned, calibration = calibrate_reliability(
        lifter.to(device), flow.to(device), x, device, rotations=4, samples=1024
    )
    record = dataclasses.replace(record, learned_elevation=learned, reliability=calibration)
    save_lifter(folder, lifter.cpu(), flow.cpu(), record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--poses", type=int, default=20000)
    parser.add_argument("--latency-repeats", type=int, default=30)
    parser.add_argument("--missing", type=int, default=0, help="joints hidden per pose (filled from the PCA)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    poses = synthetic_poses(args.poses, seed=2)
    scores = np.ones(poses.shape[:2])
    if args.missing:
        rng = np.random.default_rng(3)
        for i in range(len(poses)):
            scores[i, rng.choice(np.arange(2, 17), args.missing, replace=False)] = 0.0
    batch = np.concatenate([poses, scores[..., None]], axis=-1)
    print(
        f"device {device}, torch threads {torch.get_num_threads()}, {args.poses} poses, {args.missing} missing joints per pose"
    )
    print(f"{'rotations':>9} {'batch poses/s':>14} {'1-pose latency ms (median)':>27}")
    with tempfile.TemporaryDirectory() as folder:
        random_checkpoint(folder, device)
        for rotations in (16, 100):
            speed = lift_throughput(folder, batch, rotations, device, args.latency_repeats)
            print(f"{rotations:>9} {speed['batched_poses_per_s']:>14.0f} {speed['batch1_latency_ms']:>27.1f}")


if __name__ == "__main__":
    main()
