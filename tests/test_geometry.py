"""Geometry against independent references: scipy rotations, hand-computed projections."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from elepose.geometry import (
    DEPTH_OFFSET,
    normalise_2d,
    pelvis_head_scale,
    project,
    rms_scale,
    rotation_x,
    rotation_y,
    unproject,
)


@pytest.mark.parametrize("axis,fn", [("x", rotation_x), ("y", rotation_y)])
def test_rotations_match_scipy(axis, fn):
    angles = torch.tensor([-2.0, -0.3, 0.0, 0.7, 3.0], dtype=torch.float64)
    expected = Rotation.from_euler(axis, angles.numpy()[:, None]).as_matrix()
    np.testing.assert_allclose(fn(angles).numpy(), expected, atol=1e-12)


def test_rotations_are_proper_and_batched():
    angles = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for fn in (rotation_x, rotation_y):
        r = fn(angles)
        assert r.shape == (4, 3, 3, 3)
        eye = torch.eye(3, dtype=torch.float64).expand_as(r)
        torch.testing.assert_close(r.transpose(-1, -2) @ r, eye)
        torch.testing.assert_close(torch.linalg.det(r), torch.ones(4, 3, dtype=torch.float64))


def test_positive_rotation_x_tilts_down_direction_forward():
    # A camera looking down by theta sees the world's down direction (y) tilted towards +z.
    r = rotation_x(torch.tensor(math.radians(30.0), dtype=torch.float64))
    down = r @ torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    np.testing.assert_allclose(down.numpy(), [0.0, math.cos(math.radians(30)), math.sin(math.radians(30))])


def test_project_hand_case():
    pose = torch.tensor([[[0.0, 0.0, 0.0], [1.0, -2.0, 2.0], [3.0, 1.0, -5.0]]])
    expected = torch.tensor([[[0.0, 0.0], [1.0 / 12.0, -2.0 / 12.0], [3.0 / 5.0, 1.0 / 5.0]]])
    torch.testing.assert_close(project(pose), expected)


def test_project_guards_against_depth_behind_camera():
    pose = torch.tensor([[[1.0, 1.0, -DEPTH_OFFSET - 5.0]]])
    assert torch.isfinite(project(pose)).all()
    assert (project(pose) > 0).all()  # no sign flip from a negative depth


def test_unproject_inverts_project():
    gen = torch.Generator().manual_seed(1)
    depth = torch.rand(5, 17, generator=gen, dtype=torch.float64) * 2 - 1
    depth[:, 0] = 0
    xy = torch.randn(5, 17, 2, generator=gen, dtype=torch.float64) * 0.1
    xy[:, 0] = 0
    # Build the 3D pose by hand: (u w, v w, w) with w = d + 10, centred on the pelvis.
    w = (depth + DEPTH_OFFSET).unsqueeze(-1)
    pose = torch.cat([xy * w, w], -1)
    pose = pose - pose[:, :1]
    torch.testing.assert_close(unproject(xy, depth), pose)
    torch.testing.assert_close(project(unproject(xy, depth)), xy)


def test_unproject_clips_depth_and_ignores_pelvis_entry():
    xy = torch.zeros(1, 17, 2)
    depth = torch.full((1, 17), -20.0)
    pose = unproject(xy, depth)  # pelvis w = 10, others clipped to 1
    assert torch.allclose(pose[0, 1:, 2], torch.tensor(-9.0))
    assert torch.allclose(unproject(xy, depth, min_depth=None)[0, 1:, 2], torch.tensor(-20.0))


def test_normalise_2d_dataset_scale_hand_case():
    pose = torch.zeros(1, 17, 2)
    pose[...] = 100.0
    pose[0, 10] = torch.tensor([100.0, 60.0])  # head 40 px above the pelvis
    out = normalise_2d(pose, scale=40.0)
    assert torch.allclose(out[0, 10], torch.tensor([0.0, -0.1]))
    assert torch.allclose(out[0, 0], torch.zeros(2))


def test_per_pose_scale_is_invariant_to_image_scale_and_shift():
    gen = torch.Generator().manual_seed(2)
    pose = torch.randn(3, 17, 2, generator=gen) * 50 + 300
    moved = pose * 2.5 + torch.tensor([40.0, -10.0])
    torch.testing.assert_close(normalise_2d(pose), normalise_2d(moved))
    centred = pose - pose[:, :1]
    expected = centred.pow(2).sum(-1).mean(-1).sqrt()
    torch.testing.assert_close(rms_scale(pose), expected)


def test_pelvis_head_scale_is_mean_distance():
    pose = np.zeros((2, 17, 2))
    pose[0, 10] = [3.0, 4.0]
    pose[1, 10] = [0.0, 10.0]
    assert pelvis_head_scale(pose) == pytest.approx(7.5)


def test_normalise_rejects_zero_scale():
    with pytest.raises(ValueError, match="zero"):
        normalise_2d(torch.zeros(1, 17, 2))
