"""Virtual cameras against hand-built pinholes, scipy rotations and plain geometry."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from elepose.data.cameras import (
    CameraOptions,
    camera_elevation_deg,
    draw_window_cameras,
    in_image,
    intrinsics,
    look_at,
    pelvis_windows,
    place_cameras,
    project_points,
)
from elepose.skeleton import JOINT_NAMES

# A person standing at the origin facing world +X (Z up, so their left is +Y).
STANDING = np.array(
    [
        [0, 0, 1.0],
        [0, -0.1, 1.0],
        [0, -0.1, 0.55],
        [0, -0.1, 0.1],
        [0, 0.1, 1.0],
        [0, 0.1, 0.55],
        [0, 0.1, 0.1],
        [0, 0, 1.25],
        [0, 0, 1.5],
        [0.05, 0, 1.6],
        [0, 0, 1.75],
        [0, 0.2, 1.45],
        [0, 0.25, 1.2],
        [0, 0.27, 0.95],
        [0, -0.2, 1.45],
        [0, -0.25, 1.2],
        [0, -0.27, 0.95],
    ]
)
K_1150 = intrinsics(1150.0, 1000, 1000)


def test_projection_matches_hand_built_pinhole():
    # Camera at (5, 0, 1) looking along -X at (0, 0, 1): right = +Y, down = -Z, forward = -X.
    R, t = look_at(np.array([5.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(R, [[0, 1, 0], [0, 0, -1], [-1, 0, 0]], atol=1e-12)
    uv, depth = project_points(np.array([0.0, 0.5, 1.2]), K_1150, R, t)
    # camera coordinates (0.5, -0.2, 5): u = 500 + 1150 * 0.5 / 5, v = 500 - 1150 * 0.2 / 5
    np.testing.assert_allclose(uv, [615.0, 454.0], atol=1e-9)
    assert depth == pytest.approx(5.0)


def test_rotation_matches_scipy_composition():
    # Independent construction: turn the world so the camera sits on +X, take the level camera
    # R0, tilt it down by the elevation about its x axis, then roll about its z axis.
    r0 = np.array([[0, 1, 0], [0, 0, -1], [-1, 0, 0]], dtype=float)
    rng = np.random.default_rng(1)
    for _ in range(20):
        az, el, roll = rng.uniform(0, 360), rng.uniform(-40, 60), rng.normal(0, 5)
        cams = place_cameras(np.array([0.3, -0.2, 0.9]), 6.0, [az], [el], [roll], 1150.0, 1000)
        expected = (
            Rotation.from_euler("z", roll, degrees=True).as_matrix()
            @ Rotation.from_euler("x", el, degrees=True).as_matrix()
            @ r0
            @ Rotation.from_euler("z", -az, degrees=True).as_matrix()
        )
        np.testing.assert_allclose(cams.R[0], expected, atol=1e-12)


def test_rotations_are_orthonormal_with_det_plus_one():
    cams = draw_window_cameras(
        np.random.default_rng(0), STANDING[None, 0].repeat(5, 0), CameraOptions(views_per_window=64)
    )
    np.testing.assert_allclose(cams.R @ cams.R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), cams.R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(cams.R), 1.0, atol=1e-12)


def test_target_projects_to_image_centre_for_any_angles():
    target = np.array([1.3, -2.0, 0.95])
    rng = np.random.default_rng(2)
    cams = place_cameras(
        target, 5.5, rng.uniform(0, 360, 30), rng.normal(12, 6, 30), rng.normal(0, 1.5, 30), 1150.0, 1000
    )
    uv, depth = project_points(target, cams.K, cams.R, cams.t)
    np.testing.assert_allclose(uv, 500.0, atol=1e-9)
    np.testing.assert_allclose(depth, 5.5, atol=1e-12)


def test_camera_elevation_deg_and_from_camera_position_equal_the_drawn_one():
    pelvis = np.array([[0.0, 0.0, 1.0], [0.4, 0.1, 1.0], [0.8, -0.1, 1.02]])
    cams = draw_window_cameras(np.random.default_rng(3), pelvis, CameraOptions())
    np.testing.assert_allclose(camera_elevation_deg(cams.R), cams.elevation_deg, atol=1e-9)
    centres = -np.einsum("vji,vj->vi", cams.R, cams.t)  # C = -R^T t
    offset = centres - pelvis.mean(axis=0)
    from_position = np.degrees(np.arctan2(offset[:, 2], np.linalg.norm(offset[:, :2], axis=1)))
    np.testing.assert_allclose(from_position, cams.elevation_deg, atol=1e-9)


def test_window_cameras_surround_the_mean_pelvis_at_distance_plus_excursion():
    pelvis = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [2.0, 0.0, 1.0]])  # mean (1, 0, 1), excursion 1 m
    cams = draw_window_cameras(np.random.default_rng(4), pelvis, CameraOptions(distance=5.0))
    centres = -np.einsum("vji,vj->vi", cams.R, cams.t)
    np.testing.assert_allclose(np.linalg.norm(centres - [1.0, 0.0, 1.0], axis=1), 6.0, atol=1e-9)
    azimuth = np.degrees(np.arctan2(centres[:, 1], centres[:, 0] - 1.0))
    np.testing.assert_allclose(
        np.diff(np.unwrap(np.radians(azimuth), period=2 * np.pi)) % (2 * np.pi), np.pi / 2, atol=1e-9
    )


def test_left_stays_left():
    left_hip, right_hip = JOINT_NAMES.index("left_hip"), JOINT_NAMES.index("right_hip")
    facing = place_cameras(STANDING[0], 5.0, [0.0], [10.0], [0.0], 1150.0, 1000)  # in front of the person
    uv, _ = project_points(STANDING, facing.K[0], facing.R[0], facing.t[0])
    assert uv[left_hip, 0] > uv[right_hip, 0]  # facing us, their left appears on the image's right
    assert uv[JOINT_NAMES.index("head"), 1] < uv[0, 1]  # head above the pelvis (y down)
    behind = place_cameras(STANDING[0], 5.0, [180.0], [10.0], [0.0], 1150.0, 1000)
    uv, _ = project_points(STANDING, behind.K[0], behind.R[0], behind.t[0])
    assert uv[left_hip, 0] < uv[right_hip, 0]


def test_positive_elevation_looks_down_from_above():
    cams = place_cameras(np.zeros(3), 5.0, [30.0], [20.0], [0.0], 1150.0, 1000)
    centre = -cams.R[0].T @ cams.t[0]
    assert centre[2] == pytest.approx(5.0 * np.sin(np.radians(20.0)))


def test_pelvis_windows_hand_case():
    x = np.array([0.0, 1.0, 2.0, 2.1, 3.0, 4.2, 4.3])
    pelvis = np.stack([x, np.zeros_like(x), np.linspace(0.0, 5.0, len(x))], axis=1)  # height changes never count
    # 2.1 is > 2 m from 0 -> new window from frame 3; 4.2 is > 2 m from 2.1 -> new window from frame 5
    np.testing.assert_array_equal(pelvis_windows(pelvis, 2.0), [0, 0, 0, 1, 1, 2, 2])


def test_in_image_bounds():
    pixels = np.array([[[0.0, 0.0]], [[999.9, 999.9]], [[1000.0, 10.0]], [[10.0, -0.1]], [[500.0, 500.0]]])
    depth = np.array([[1.0], [1.0], [1.0], [1.0], [-1.0]])
    np.testing.assert_array_equal(in_image(pixels, depth, 1000, 1000), [True, True, False, False, False])


def test_same_generator_state_gives_same_cameras():
    pelvis = STANDING[None, 0].repeat(3, 0)
    a = draw_window_cameras(np.random.default_rng(7), pelvis, CameraOptions())
    b = draw_window_cameras(np.random.default_rng(7), pelvis, CameraOptions())
    np.testing.assert_array_equal(a.R, b.R)
    np.testing.assert_array_equal(a.t, b.t)
