"""Which trains better from 2D with missing joints: dropping those people, or filling the joints?

The Bandai benchmark's dataset-1 training views, written as one detector file per clip and
camera (detected 2D; 3D never written), with a detector's gaps simulated: in ``--share`` of the
poses, 1 to 3 joints (not the pelvis or the hips) get score 0 and the coordinates (0, 0).
``elepose fit`` runs on those files twice (``--missing drop`` and ``--missing fill``, the same
``--samples`` budget), and both lifters are scored on dataset 1's test split (its 3D, detected
2D). Run: ``python benchmarks/missing_joints.py --cache runs/benchmark-quick/cache``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from elepose.data.cache import load_split
from elepose.data.keypoint_cache import KeypointCacheOptions
from elepose.evaluate.evaluation import evaluate_checkpoint
from elepose.models.io import load_lifter
from elepose.train.fit import FitConfig, fit

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
    parser.add_argument("--samples", type=int, default=360_000, help="each fit's training samples per stage")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--keep", type=Path, default=None, help="keep the files and fits in this folder")
    args = parser.parse_args()
    test = load_split(args.cache / "test.npz")
    test = test.subset(test.pose_source == "bandai-1")
    train = load_split(args.cache / "train.npz")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        (root / "views").mkdir(exist_ok=True)
        files = write_views(args.cache, root / "views", args.share)
        sources = [str(p) for p in sorted((root / "views").glob("*.npy"))]
        for missing in ("drop", "fill"):
            out = root / f"fit-{missing}"
            options = KeypointCacheOptions(missing=missing, min_motion=0.0)
            config = FitConfig(paths=tuple(sources), out=str(out), samples=args.samples, selection=options,
                               device=args.device)  # fmt: skip
            record = fit(config, progress=False, say=lambda message: None)
            manifest = json.loads((out / "cache" / "manifest.json").read_text(encoding="utf-8"))
            network, flow_model, lifter_record = load_lifter(out / "lifter")
            report, _ = evaluate_checkpoint(network, flow_model, lifter_record, train, test, 8000, 10, args.device)
            results[missing] = {
                "training_poses": manifest["counts"]["train"]["poses"],
                "filled_poses": manifest["sources"][0]["filled_poses"],
                "lifter_epochs": record["lifter_epochs_run"],
                "pa_mpjpe_detected": report["detected"]["standard"]["pa_mpjpe"],
                "pa_mpjpe_gt": report["gt"]["standard"]["pa_mpjpe"],
                "n_mpjpe_detected": report["detected"]["standard"]["n_mpjpe"],
                "flat_detected": report["detected"]["baselines"]["flat"]["standard"]["pa_mpjpe"],
            }
            print(missing, json.dumps(results[missing]), flush=True)
    print(json.dumps({"files": files, "share": args.share, "samples": args.samples, "results": results}, indent=1))


if __name__ == "__main__":
    main()
