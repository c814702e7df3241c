"""Round-trip error of ``elepose lift --export bvh``: lifted joints against the written BVH read back.

Each sequence is lifted with a height (metres), written by :func:`elepose.lift.exports.bvh_text`
as ``lift`` writes it (the track's own bone lengths), read back by elepose's BVH reader
(:func:`elepose.data.bvh.parse_bvh`, :func:`elepose.data.bvh.forward_kinematics`, code apart from
the writer) and compared joint by joint with the lifted positions; also the angle of every bone.
Sequences: every camera clip of a cache's test split (its ground-truth 2D), and a real detector
file when given. Run::

    python benchmarks/bvh_roundtrip.py --checkpoint RUN --cache CACHE [--real FILE] [--height 1.7]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from elepose.data.bvh import forward_kinematics, parse_bvh
from elepose.data.cache import load_split
from elepose.lift.exports import bvh_text
from elepose.lift.lifter import Lifter
from elepose.skeleton import BONES, JOINT_NAMES


def round_trip(poses_m: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per joint position error ``(F, 17)`` mm and per bone angle error ``(F, 16)`` degrees of one sequence."""
    bvh = parse_bvh(bvh_text(poses_m, fps), "roundtrip.bvh")
    back = (forward_kinematics(bvh) / 100.0)[:, [bvh.names.index(n) for n in JOINT_NAMES]]
    back = back - back[:, :1] + poses_m[:, :1]
    error_mm = 1000.0 * np.linalg.norm(back - poses_m, axis=-1)

    def directions(p: np.ndarray) -> np.ndarray:
        v = np.stack([p[:, c] - p[:, a] for a, c in BONES], axis=1)
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    cos = np.clip((directions(back) * directions(poses_m)).sum(-1), -1.0, 1.0)
    return error_mm, np.degrees(np.arccos(cos))


def summary(errors: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    mm = np.concatenate([e.ravel() for e, _ in errors])
    deg = np.concatenate([a.ravel() for _, a in errors])
    return {
        "sequences": len(errors),
        "frames": int(sum(len(e) for e, _ in errors)),
        "joint_error_mean_mm": float(mm.mean()),
        "joint_error_p95_mm": float(np.percentile(mm, 95)),
        "joint_error_max_mm": float(mm.max()),
        "bone_angle_mean_deg": float(deg.mean()),
        "bone_angle_max_deg": float(deg.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--real", type=Path)
    parser.add_argument("--height", type=float, default=1.7)
    parser.add_argument("--views", type=int, default=200, help="test clips (camera views) to use at most")
    args = parser.parse_args()
    lifter = Lifter.load(args.checkpoint)
    out: dict[str, dict[str, float]] = {}
    if args.cache is not None:
        test = load_split(args.cache / "test.npz")
        errors = []
        for view in np.unique(test.view)[: args.views]:
            rows = np.flatnonzero(test.view == view)
            rows = rows[np.argsort(test.frame[rows], kind="stable")]
            lifted = lifter.lift(test.poses_2d[rows].astype(np.float64), height_m=args.height, rotations=1)
            errors.append(round_trip(lifted.poses_3d_metres, 10.0))
        out["test_split"] = summary(errors)
    if args.real is not None:
        lifted = lifter.lift(args.real, height_m=args.height, rotations=1)
        errors = [round_trip(lifted.poses_3d_metres[lifted.track == t], 30.0) for t in np.unique(lifted.track)]
        out[args.real.name] = summary(errors)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
