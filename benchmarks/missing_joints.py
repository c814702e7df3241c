"""Which trains better from 2D with missing joints: dropping those people, or filling the joints?

The Bandai benchmark's dataset-1 training views, written as one detector file per clip and
camera (detected 2D; 3D never written), with a detector's gaps simulated: in ``--share`` of the
poses, 1 to 3 joints (not the pelvis or the hips) get score 0 and the coordinates (0, 0). Two
2D-only caches are built from those files (``--missing drop`` and ``--missing fill``), each gets
a flow and a lifter with the same schedule, and both lifters are scored on dataset 1's test split
(its 3D, detected 2D). Run: ``python benchmarks/missing_joints.py --cache runs/benchmark-quick/cache``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from elepose.data.cache import load_split
from elepose.data.keypoint_cache import KeypointCacheOptions, build_keypoint_cache
from elepose.evaluate.evaluation import evaluate_checkpoint
from elepose.models.io import load_lifter
from elepose.train.config import FlowConfig, TrainConfig
from elepose.train.loop import train_flow, train_lifter

_ROOT_JOINTS = (0, 1, 4)


def write_views(cache: Path, folder: Path, share: float, seed: int = 0) -> int:
    """One ``.npy`` (F, 17, 3) per dataset-1 training clip and camera; returns the files written."""
    train = load_split(cache / "train.npz")
    rng = np.random.default_rng(seed)
    keep = train.pose_source == "bandai-1"
    files = 0
    for view in np.unique(train.view[keep]):
        rows = np.flatnonzero(keep & (train.view == view))
        poses = train.poses_2d_detected[rows].astype(np.float64)
        scores = np.ones(poses.shape[:2])
        for r in np.flatnonzero(rng.random(len(rows)) < share):
            joints = rng.choice([j for j in range(17) if j not in _ROOT_JOINTS], rng.integers(1, 4), replace=False)
            scores[r, joints] = 0.0
            poses[r, joints] = 0.0
        clip = train.clip_names[train.camera_clip[view]]
        np.save(
            folder / f"{clip}_view{view}.npy", np.concatenate([poses, scores[..., None]], axis=-1).astype(np.float32)
        )
        files += 1
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="the Bandai benchmark cache (with 3D)")
    parser.add_argument("--share", type=float, default=0.3, help="share of poses with missing joints")
    parser.add_argument("--lifter-samples", type=int, default=240_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scale", default="auto", help="the flow's 2D normalisation (auto: per-pose for these caches)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the caches and runs in this folder")
    args = parser.parse_args()
    test = load_split(args.cache / "test.npz")
    test = test.subset(test.pose_source == "bandai-1")
    train = load_split(args.cache / "train.npz")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        (root / "views").mkdir()
        files = write_views(args.cache, root / "views", args.share)
        sources = sorted((root / "views").glob("*.npy"))
        for missing in ("drop", "fill"):
            cache = root / f"cache-{missing}"
            manifest = build_keypoint_cache(sources, cache, KeypointCacheOptions(missing=missing, min_motion=0.0))
            poses = manifest["counts"]["train"]["poses"]
            flow, lifter = root / f"flow-{missing}", root / f"lifter-{missing}"
            train_flow(
                FlowConfig(data=str(cache), out=str(flow), epochs=3, lr=5e-4, scale=args.scale, device=args.device),
                progress=False,
            )
            epochs = max(1, round(args.lifter_samples / poses))
            train_lifter(
                TrainConfig(data=str(cache), flow=str(flow), out=str(lifter), epochs=epochs, hidden=512, lr=5e-4,
                            lr_decay=0.95 ** (poses / 100_000), precision="bf16", eval_samples=2048,
                            reliability_rotations=10, device=args.device),
                progress=False,
            )  # fmt: skip
            network, flow_model, record = load_lifter(lifter)
            report, _ = evaluate_checkpoint(network, flow_model, record, train, test, 8000, 10, args.device)
            results[missing] = {
                "training_poses": poses,
                "filled_poses": manifest["sources"][0]["filled_poses"],
                "lifter_epochs": epochs,
                "pa_mpjpe_detected": report["detected"]["standard"]["pa_mpjpe"],
                "pa_mpjpe_gt": report["gt"]["standard"]["pa_mpjpe"],
                "n_mpjpe_detected": report["detected"]["standard"]["n_mpjpe"],
            }
            print(missing, json.dumps(results[missing]), flush=True)
    print(json.dumps({"files": files, "share": args.share, "results": results}, indent=1))


if __name__ == "__main__":
    main()
