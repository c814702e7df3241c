"""Speed of ``Lifter.lift``: poses per second on a batch, and the latency of one pose.

A random-weight model of the default size (lifter width 1024; flow of 8 blocks, width 1024, on
26 PCA bases) is written to a temporary run folder with :func:`elepose.models.io.save_lifter`
and loaded back the way users load one. Inputs are synthetic 2D poses (a standing template
with jittered joints, random size and position), all joints visible unless ``--missing`` hides
some. Run: ``python benchmarks/bench_lift.py [--device cpu|cuda] [--poses 20000] [--threads N] [--missing K]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch

from elepose.lift.lifter import Lifter
from elepose.evaluate.evaluation import calibrate_reliability
from elepose.models.normalisation import Normalisation, normalise
from elepose.models.io import build_flow, build_lifter, save_lifter

# Front view of a standing person, H36M-17 order, pixels at about 100 px per 0.5 m.
_TEMPLATE = np.array(
    [[0, 0], [-26, 0], [-26, 90], [-26, 180], [26, 0], [26, 90], [26, 180], [0, -50], [0, -100],
     [0, -120], [0, -150], [36, -96], [36, -40], [36, 10], [-36, -96], [-36, -40], [-36, 10]],
    dtype=np.float64,
)


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
    flow = build_flow(26, blocks=8, hidden=1024, seed=0).fit_pca(x.double())
    lifter = build_lifter(1024, "shared", elevation=True)
    reliability = calibrate_reliability(lifter.to(device), flow.to(device), x, device, rotations=4, samples=1024)
    flow_config = {"kind": "elepose-flow", "pca_bases": 26, "blocks": 8, "hidden": 1024, "seed": 0, "normalisation": norm.to_dict()}
    config = {
        "hidden": 1024, "variant": "shared", "elevation_branch": True, "normalisation": norm.to_dict(),
        "flow": flow_config, "reliability": reliability, "input": "gt",
    }
    save_lifter(folder, lifter.cpu(), flow.cpu(), config)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


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
    with tempfile.TemporaryDirectory() as folder:
        random_checkpoint(folder, device)
        lifter = Lifter.load(folder, device=device)
    poses = synthetic_poses(args.poses, seed=2)
    scores = np.ones(poses.shape[:2])
    if args.missing:
        rng = np.random.default_rng(3)
        for i in range(len(poses)):
            scores[i, rng.choice(np.arange(2, 17), args.missing, replace=False)] = 0.0
    batch = np.concatenate([poses, scores[..., None]], axis=-1)
    print(f"device {device}, torch threads {torch.get_num_threads()}, {args.poses} poses, {args.missing} missing joints per pose")
    print(f"{'rotations':>9} {'batch poses/s':>14} {'batch s':>8} {'1-pose latency ms (median)':>27}")
    for rotations in (16, 100):
        lifter.lift(batch[:256], rotations=rotations)  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        result = lifter.lift(batch, rotations=rotations)
        _sync(device)
        seconds = time.perf_counter() - t0
        assert len(result) == args.poses
        times = []
        for i in range(args.latency_repeats):
            t = time.perf_counter()
            lifter.lift(batch[i:i + 1], rotations=rotations)
            _sync(device)
            times.append(time.perf_counter() - t)
        print(f"{rotations:>9} {args.poses / seconds:>14.0f} {seconds:>8.2f} {1000 * statistics.median(times):>27.1f}")


if __name__ == "__main__":
    main()
