"""Virtual cameras around motion capture, like Human3.6M's four (SPEC section 8).

World frame: metres, right-handed, Z up. Camera frame: x right, y down, z forward (OpenCV), with
``x_cam = R @ x_world + t``. A camera is placed by the direction from its target to itself:

- ``azimuth``: angle of that direction in the horizontal plane, from world +X towards +Y;
- ``elevation``: angle of the optical axis below the horizontal (looking down is positive), so
  a camera with positive elevation sits above its target;
- ``roll``: rotation about the optical axis (positive turns the camera's x axis towards its y
  axis, so the image content turns the other way).

Clips are cut into windows (:func:`pelvis_windows`); each window gets four cameras at azimuths
``phi0 + k * 90 deg`` aimed at the window's mean pelvis (:func:`draw_window_cameras`).

Example:
    >>> import numpy as np
    >>> R, t = look_at(np.array([5.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0]))
    >>> uv, depth = project_points(np.array([0.0, 0.0, 1.0]), intrinsics(1150.0, 1000, 1000), R, t)
    >>> uv.round(6).tolist(), float(depth)
    ([500.0, 500.0], 5.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from elepose.skeleton import PELVIS, THORAX

__all__ = [
    "CameraOptions",
    "Cameras",
    "intrinsics",
    "look_at",
    "place_cameras",
    "camera_elevation_deg",
    "pinhole_project",
    "torso_up",
    "z_up_basis",
    "to_camera_frame",
    "project_points",
    "in_image",
    "pelvis_windows",
    "draw_window_cameras",
]

_WORLD_UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class CameraOptions:
    """The virtual camera distribution (SPEC section 8); all angles in degrees, lengths in metres.

    Args:
        elevation_mean_deg, elevation_std_deg: each camera's elevation ~ N(mean, std), negatives allowed.
        roll_std_deg: each camera's roll ~ N(0, roll_std_deg).
        distance: camera-to-target distance before adding the window's pelvis excursion.
        focal: focal length in pixels (both axes).
        image_size: square image side in pixels; the principal point is at its centre.
        window_travel: a new window starts once the pelvis moved more than this horizontally.
        views_per_window: cameras per window, evenly spaced in azimuth.
    """

    elevation_mean_deg: float = 12.0
    elevation_std_deg: float = 6.0
    roll_std_deg: float = 1.5
    distance: float = 5.0
    focal: float = 1150.0
    image_size: int = 1000
    window_travel: float = 2.0
    views_per_window: int = 4


@dataclass(frozen=True)
class Cameras:
    """V cameras: ``K (V, 3, 3)`` px, ``R (V, 3, 3)`` world->camera (det +1), ``t (V, 3)`` metres,
    and the angles they were placed with, ``azimuth_deg``, ``elevation_deg``, ``roll_deg`` ``(V,)``."""

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    roll_deg: np.ndarray

    def __len__(self) -> int:
        return int(self.K.shape[0])

    @staticmethod
    def concatenate(parts: list[Cameras]) -> Cameras:
        """Stack several camera sets in order (an empty list gives zero cameras)."""
        if not parts:
            return Cameras(np.zeros((0, 3, 3)), np.zeros((0, 3, 3)), np.zeros((0, 3)), *(np.zeros(0),) * 3)
        return Cameras(
            *(
                np.concatenate([getattr(p, name) for p in parts])
                for name in ("K", "R", "t", "azimuth_deg", "elevation_deg", "roll_deg")
            )
        )


def intrinsics(focal: float, width: int, height: int) -> np.ndarray:
    """Pinhole intrinsics ``(3, 3)``: focal ``focal`` px, principal point ``(width / 2, height / 2)``.

    Pixel coordinates are continuous with the image spanning ``[0, width) x [0, height)``.
    """
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def look_at(position: np.ndarray, target: np.ndarray, roll_rad: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and translation of a camera at ``position (3,)`` looking at ``target (3,)`` (world, Z up).

    The camera's x axis is horizontal (before roll) and its y axis points down, so the image is
    upright; the rows of ``R`` are a right-handed basis (det +1, no mirroring). ``roll_rad``
    turns the camera about its optical axis. Returns ``R (3, 3)``, ``t (3,)`` with
    ``x_cam = R @ x_world + t``. Raises ``ValueError`` when looking (almost) straight up or down.
    """
    position, target = np.asarray(position, dtype=np.float64), np.asarray(target, dtype=np.float64)
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, _WORLD_UP)
    norm = np.linalg.norm(right)
    if norm < 1e-6:
        raise ValueError("look_at: the optical axis is vertical; the camera's right direction is undefined")
    right = right / norm
    down = np.cross(forward, right)
    c, s = np.cos(roll_rad), np.sin(roll_rad)
    roll = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    rotation = roll @ np.stack([right, down, forward])
    return rotation, -rotation @ position


def place_cameras(
    target: np.ndarray,
    distance: float,
    azimuth_deg: np.ndarray,
    elevation_deg: np.ndarray,
    roll_deg: np.ndarray,
    focal: float,
    image_size: int,
) -> Cameras:
    """Cameras at ``distance`` metres from ``target (3,)`` (world), one per angle triple ``(V,)`` degrees."""
    azimuth_deg, elevation_deg, roll_deg = (
        np.asarray(a, dtype=np.float64).reshape(-1) for a in (azimuth_deg, elevation_deg, roll_deg)
    )
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    offsets = distance * np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)
    poses = [look_at(target + off, target, np.radians(roll)) for off, roll in zip(offsets, roll_deg)]
    rotations = np.stack([r for r, _ in poses]) if poses else np.zeros((0, 3, 3))
    translations = np.stack([t for _, t in poses]) if poses else np.zeros((0, 3))
    k = np.broadcast_to(intrinsics(focal, image_size, image_size), (len(poses), 3, 3)).copy()
    return Cameras(k, rotations, translations, azimuth_deg, elevation_deg, roll_deg)


def to_camera_frame(points_world: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """``points_world (..., 3)`` -> camera frame ``(..., 3)`` with ``R (3, 3)``, ``t (3,)`` (or broadcastable stacks)."""
    return np.einsum("...ij,...j->...i", rotation, points_world) + translation


def project_points(
    points_world: np.ndarray, K: np.ndarray, rotation: np.ndarray, translation: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection of ``points_world (..., 3)``: returns pixels ``(..., 2)`` and depth ``(...)`` metres.

    ``K``, ``rotation``, ``translation`` are ``(3, 3)``, ``(3, 3)``, ``(3,)`` or stacks that
    broadcast against the points' leading axes. Points with depth <= 0 get meaningless pixels;
    callers mask them with the returned depth.
    """
    cam = to_camera_frame(points_world, rotation, translation)
    depth = cam[..., 2]
    safe = np.where(np.abs(depth) < 1e-9, 1e-9, depth)[..., None]
    pixels = np.einsum("...ij,...j->...i", K, cam / safe)
    return pixels[..., :2], depth


def in_image(pixels: np.ndarray, depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """True where every joint of a pose lies in front of the camera and inside ``0 <= u < width``,
    ``0 <= v < height``: ``pixels (..., J, 2)``, ``depth (..., J)`` -> ``(...)`` bool."""
    u, v = pixels[..., 0], pixels[..., 1]
    inside = (depth > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    return inside.all(axis=-1)


def pelvis_windows(pelvis: np.ndarray, max_travel: float) -> np.ndarray:
    """Window index of every frame, ``pelvis (F, 3)`` world metres -> ``(F,)`` int.

    A new window starts at the first frame whose pelvis lies more than ``max_travel`` metres
    (horizontally, world XY) from the pelvis at the current window's first frame.
    """
    pelvis = np.asarray(pelvis, dtype=np.float64)
    windows = np.zeros(len(pelvis), dtype=np.int64)
    start, index = 0, 0
    for i in range(len(pelvis)):
        if np.linalg.norm(pelvis[i, :2] - pelvis[start, :2]) > max_travel:
            start, index = i, index + 1
        windows[i] = index
    return windows


def draw_window_cameras(rng: np.random.Generator, pelvis: np.ndarray, options: CameraOptions) -> Cameras:
    """Draw ``options.views_per_window`` cameras for one window, ``pelvis (F, 3)`` world metres.

    Draw order (fixed, so a seed reproduces the cameras): ``phi0 ~ U(0, 360)``, then the
    elevations ``~ N(mean, std)``, then the rolls ``~ N(0, roll_std)``, one per camera. The
    target is the window's mean pelvis; the distance is ``options.distance`` plus the largest
    horizontal distance of the window's pelvis from that mean.
    """
    n = options.views_per_window
    phi0 = rng.uniform(0.0, 360.0)
    elevation = rng.normal(options.elevation_mean_deg, options.elevation_std_deg, size=n)
    roll = rng.normal(0.0, options.roll_std_deg, size=n)
    azimuth = (phi0 + np.arange(n) * (360.0 / n)) % 360.0
    target = pelvis.mean(axis=0)
    excursion = float(np.linalg.norm(pelvis[:, :2] - target[:2], axis=-1).max())
    return place_cameras(
        target, options.distance + excursion, azimuth, elevation, roll, options.focal, options.image_size
    )


# ----------------------------------------------------------------------------- cameras of recorded data


def pinhole_project(K: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Project camera-frame ``points (..., 3)`` with intrinsics ``K (3, 3)`` -> pixels ``(..., 2)``."""
    uvw = np.asarray(points, dtype=np.float64) @ np.asarray(K, dtype=np.float64).T
    return uvw[..., :2] / uvw[..., 2:3]


def torso_up(poses: np.ndarray) -> np.ndarray:
    """Estimated world up ``(3,)``: the normalised mean pelvis->thorax direction of ``poses (N, 17, 3)``.

    Over a clip of mostly upright people the torso's lean averages out, so this is the up
    direction in the poses' frame to within a few degrees.
    """
    torso = poses[:, THORAX] - poses[:, PELVIS]
    torso = torso / np.maximum(np.linalg.norm(torso, axis=-1, keepdims=True), 1e-9)
    mean = torso.mean(axis=0)
    norm = np.linalg.norm(mean)
    if not np.isfinite(norm) or norm < 1e-6:
        raise ValueError("cannot estimate the up direction: torso directions cancel out")
    return mean / norm


def z_up_basis(up: np.ndarray) -> np.ndarray:
    """Rotation ``M (3, 3)``, det +1, taking the unit vector ``up`` to ``(0, 0, 1)``.

    With a source world->camera rotation ``R``, ``R @ M.T`` is the rotation from a Z-up world.
    """
    up = np.asarray(up, dtype=np.float64)
    up = up / np.linalg.norm(up)
    helper = np.eye(3)[int(np.argmin(np.abs(up)))]
    x = helper - helper.dot(up) * up
    x /= np.linalg.norm(x)
    y = np.cross(up, x)
    return np.stack([x, y, up])


def camera_elevation_deg(R: np.ndarray) -> np.ndarray:
    """Elevation of cameras with world->camera ``R (..., 3, 3)`` in a Z-up world, degrees, looking down positive."""
    forward_z = np.asarray(R)[..., 2, 2]  # z component (world) of the optical axis
    return np.degrees(np.arcsin(np.clip(-forward_z, -1.0, 1.0)))
