"""A small synthetic pose cache for training and evaluation tests (no motion capture needed).

Poses: a standing template (world Z up, metres) whose arms and legs swing about the hips and
shoulders by random angles, turned by a random yaw, seen by cameras 5 m away with elevation
~ N(12, 6) degrees, focal 1150 px, principal point (500, 500).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from elepose.atomic import write_json
from elepose.data.cache import PoseSplit, save_split
from elepose.skeleton import bone_ratios

# World (x right of the person, y forward, z up), metres, H36M-17 order.
TEMPLATE = np.array(
    [
        [0.0, 0.0, 1.0],
        [-0.13, 0.0, 1.0],
        [-0.13, 0.0, 0.55],
        [-0.13, 0.0, 0.1],
        [0.13, 0.0, 1.0],
        [0.13, 0.0, 0.55],
        [0.13, 0.0, 0.1],
        [0.0, 0.0, 1.25],
        [0.0, 0.0, 1.5],
        [0.0, 0.05, 1.6],
        [0.0, 0.0, 1.75],
        [0.18, 0.0, 1.48],
        [0.18, 0.0, 1.2],
        [0.18, 0.0, 0.95],
        [-0.18, 0.0, 1.48],
        [-0.18, 0.0, 1.2],
        [-0.18, 0.0, 0.95],
    ]
)
_LIMBS = {1: (2, 3), 4: (5, 6), 11: (12, 13), 14: (15, 16)}


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def random_world_poses(n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 17, 3)`` world poses in metres: limbs swung by up to +-60 degrees, random yaw."""
    poses = np.repeat(TEMPLATE[None], n, axis=0).copy()
    for i in range(n):
        for root, chain in _LIMBS.items():
            r = _rot_x(rng.uniform(-1.0, 1.0))
            for j in chain:
                poses[i, j] = poses[i, root] + r @ (TEMPLATE[j] - TEMPLATE[root])
        poses[i] = poses[i] @ _rot_z(rng.uniform(-np.pi, np.pi)).T
    return poses


def look_at_camera(elevation_deg: float, azimuth_deg: float, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """World -> camera ``R (3, 3)``, ``t (3,)`` for a camera aimed at (0, 0, 1) from ``distance`` m."""
    e, a = np.radians(elevation_deg), np.radians(azimuth_deg)
    target = np.array([0.0, 0.0, 1.0])
    centre = target + distance * np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
    forward = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    return rotation, -rotation @ centre


def make_split(
    n_poses: int,
    n_cameras: int,
    seed: int,
    source: str = "synthetic",
    clips: int = 1,
    sources: int = 1,
    elevation: tuple[float, float] = (12.0, 6.0),
) -> PoseSplit:
    """A split of ``n_poses`` synthetic poses seen by ``n_cameras`` random cameras, their
    elevations drawn from N(``elevation``) degrees.

    Camera ``c`` films clip ``c % clips``; clip ``k`` belongs to dataset ``f"{source}-{k % sources + 1}"``
    (just ``source`` when ``sources`` is 1).
    """
    rng = np.random.default_rng(seed)
    world = random_world_poses(n_poses, rng)
    K = np.array([[1150.0, 0, 500], [0, 1150.0, 500], [0, 0, 1]])
    Rs, ts, elevations = [], [], []
    for _ in range(n_cameras):
        angle = rng.normal(*elevation)
        R, t = look_at_camera(angle, rng.uniform(0, 360), 5.0)
        Rs.append(R), ts.append(t), elevations.append(angle)
    view = rng.integers(0, n_cameras, n_poses)
    cam = np.einsum("nij,nkj->nki", np.array(Rs)[view], world) + np.array(ts)[view][:, None, :]
    uv = cam[..., :2] / cam[..., 2:3] * 1150.0 + 500.0
    noisy = uv + rng.normal(0, 4.0, uv.shape)
    return PoseSplit(
        poses_2d=uv.astype(np.float32),
        poses_2d_detected=noisy.astype(np.float32),
        poses_3d=cam.astype(np.float32),
        view=view.astype(np.int32),
        frame=np.arange(n_poses, dtype=np.int32),
        camera_K=np.repeat(K[None], n_cameras, 0).astype(np.float32),
        camera_R=np.array(Rs, dtype=np.float32),
        camera_t=np.array(ts, dtype=np.float32),
        camera_elevation=np.array(elevations, dtype=np.float32),
        camera_clip=(np.arange(n_cameras) % clips).astype(np.int32),
        clip_names=np.array(["synthetic_clip"] if clips == 1 else [f"synthetic_clip{k}" for k in range(clips)]),
        clip_source=np.array([source if sources == 1 else f"{source}-{k % sources + 1}" for k in range(clips)]),
    )


def write_cache(
    folder: Path,
    n_train: int = 2048,
    n_test: int = 512,
    seed: int = 0,
    clips: int = 1,
    sources: int = 1,
    elevation: tuple[float, float] = (12.0, 6.0),
) -> Path:
    """Write ``train.npz``, ``test.npz`` and ``manifest.json`` of a synthetic cache to ``folder``
    (camera elevations ~ N(``elevation``) degrees)."""
    train = make_split(n_train, 16, seed, clips=clips, sources=sources, elevation=elevation)
    test = make_split(n_test, 8, seed + 1, clips=min(clips, 8), sources=sources, elevation=elevation)
    save_split(folder / "train.npz", train)
    save_split(folder / "test.npz", test)
    write_json(
        folder / "manifest.json",
        {"sources": ["synthetic"], "seed": seed, "bone_ratios": [float(v) for v in bone_ratios(train.poses_3d)]},
    )
    return folder
