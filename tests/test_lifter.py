"""Lifting network: layout, parameter count, output shapes and the unprojection of Eq. 2."""

from __future__ import annotations

import pytest
import torch

from elepose.models.lifter import LEAKY_SLOPE, LiftingNetwork, ResidualBlock, lift_poses


def _linear_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def _block_params(width: int) -> int:
    return 2 * _linear_params(width, width)


def test_residual_block_is_x_plus_lrelu_l2_lrelu_l1_with_slope_0_01() -> None:
    block = ResidualBlock(3)
    with torch.no_grad():
        for layer in (block.linear1, block.linear2):
            layer.weight.copy_(torch.eye(3))
            layer.bias.zero_()
    x = torch.tensor([[-1.0, 2.0, 0.5]])
    # identity layers: x + lrelu(lrelu(x)); for -1 that is -1 - 0.01 * 0.01.
    expected = torch.tensor([[-1.0 - 1e-4, 4.0, 1.0]])
    assert LEAKY_SLOPE == 0.01
    torch.testing.assert_close(block(x), expected)


def test_default_parameter_count_matches_the_layer_sizes() -> None:
    net = LiftingNetwork()
    expected = (
        _linear_params(34, 1024)  # input layer
        + 5 * _block_params(1024)  # 1 shared + 2 depth + 2 elevation blocks
        + _linear_params(1024, 17)
        + _linear_params(1024, 1)
    )
    assert expected == 10_550_290
    assert sum(p.numel() for p in net.parameters()) == expected


def test_towers_parameter_count_has_two_input_layers_and_six_blocks() -> None:
    net = LiftingNetwork(hidden=64, variant="towers")
    expected = 2 * _linear_params(34, 64) + 6 * _block_params(64) + _linear_params(64, 17) + _linear_params(64, 1)
    assert sum(p.numel() for p in net.parameters()) == expected


@pytest.mark.parametrize("variant", ["shared", "towers"])
def test_output_shapes_and_pelvis_depth_zero(variant: str) -> None:
    torch.manual_seed(0)
    net = LiftingNetwork(hidden=64, variant=variant)
    out = net(torch.randn(5, 17, 2))
    assert out.depth.shape == (5, 17)
    assert out.elevation is not None and out.elevation.shape == (5,)
    assert torch.all(out.depth[:, 0] == 0)
    assert torch.all(out.depth[:, 1:] != 0)


@pytest.mark.parametrize("variant", ["shared", "towers"])
def test_without_elevation_branch_elevation_is_none(variant: str) -> None:
    net = LiftingNetwork(hidden=64, variant=variant, elevation=False)
    out = net(torch.randn(3, 17, 2))
    assert out.elevation is None
    assert out.depth.shape == (3, 17)
    assert not any("elevation" in name for name, _ in net.named_parameters())


def test_towers_share_no_parameters_between_depth_and_elevation() -> None:
    torch.manual_seed(0)
    net = LiftingNetwork(hidden=32, variant="towers")
    out = net(torch.randn(4, 17, 2))
    depth_tower = list(net.depth_branch.parameters())
    grads = torch.autograd.grad(out.elevation.sum(), depth_tower, allow_unused=True)
    assert all(g is None for g in grads)


def test_shared_trunk_feeds_both_heads() -> None:
    torch.manual_seed(0)
    net = LiftingNetwork(hidden=32, variant="shared")
    out = net(torch.randn(4, 17, 2))
    trunk_weight = net.trunk[0][0].weight
    (g_depth,) = torch.autograd.grad(out.depth.sum(), trunk_weight, retain_graph=True)
    (g_elev,) = torch.autograd.grad(out.elevation.sum(), trunk_weight)
    assert g_depth.abs().sum() > 0 and g_elev.abs().sum() > 0


def _constant_depth_lifter(depth: torch.Tensor) -> LiftingNetwork:
    """A lifter whose depth head ignores its input and outputs ``depth (17,)``."""
    net = LiftingNetwork(hidden=16)
    with torch.no_grad():
        net.depth_head.weight.zero_()
        net.depth_head.bias.copy_(depth)
    return net


def test_lift_with_true_depths_reproduces_the_3d_pose() -> None:
    torch.manual_seed(1)
    pose = torch.randn(17, 3) * 0.5
    pose = pose - pose[0]  # pelvis-centred
    # perspective projection with depth offset 10, written out by hand
    z = pose[:, 2] + 10.0
    poses_2d = torch.stack([pose[:, 0] / z, pose[:, 1] / z], dim=-1)[None]
    net = _constant_depth_lifter(pose[:, 2])
    poses_3d, elevation = lift_poses(net, poses_2d)
    torch.testing.assert_close(poses_3d[0], pose, atol=1e-5, rtol=1e-5)
    assert elevation is not None and elevation.shape == (1,)


def test_lift_hand_case() -> None:
    depth = torch.zeros(17)
    depth[1] = 2.0
    net = _constant_depth_lifter(depth)
    poses_2d = torch.zeros(1, 17, 2)
    poses_2d[0, 1] = torch.tensor([0.1, -0.2])
    poses_3d, _ = lift_poses(net, poses_2d)
    # w = 2 + 10 = 12 -> (1.2, -2.4, 12); minus the pelvis (0, 0, 10).
    torch.testing.assert_close(poses_3d[0, 1], torch.tensor([1.2, -2.4, 2.0]))
    torch.testing.assert_close(poses_3d[0, 2], torch.zeros(3))


def test_lift_min_depth_clips_w() -> None:
    depth = torch.zeros(17)
    depth[1] = -20.0  # w = -10
    net = _constant_depth_lifter(depth)
    poses_2d = torch.zeros(1, 17, 2)
    poses_2d[0, 1] = torch.tensor([0.1, 0.0])
    unclipped, _ = lift_poses(net, poses_2d)
    clipped, _ = lift_poses(net, poses_2d, min_depth=1.0)
    torch.testing.assert_close(unclipped[0, 1], torch.tensor([-1.0, 0.0, -20.0]))
    torch.testing.assert_close(clipped[0, 1], torch.tensor([0.1, 0.0, -9.0]))


def test_wrong_input_shape_raises() -> None:
    net = LiftingNetwork(hidden=8)
    with pytest.raises(ValueError, match=r"\(B, 17, 2\)"):
        net(torch.zeros(2, 16, 2))
    with pytest.raises(ValueError, match="variant"):
        LiftingNetwork(hidden=8, variant="tower")
