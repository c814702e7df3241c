"""Loss terms (SPEC section 6) against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from elepose.losses import (
    bone_loss,
    deformation_loss,
    distillation_loss,
    flow_loss,
    lift_3d_loss,
    relative_bone_lengths,
    reprojection_loss,
    supervised_loss,
    track_bone_loss,
)
from elepose.skeleton import BONES, H36M_BONE_RATIOS, PARENTS


def _pose_from_bone_lengths(lengths: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Forward kinematics along random unit directions: ``lengths (16,)`` -> ``(17, 3)``."""
    gen = torch.Generator().manual_seed(seed)
    directions = torch.randn(16, 3, generator=gen, dtype=torch.float64)
    directions = directions / directions.norm(dim=1, keepdim=True)
    pose = torch.zeros(17, 3, dtype=torch.float64)
    for k, (parent, child) in enumerate(BONES):
        assert PARENTS[child] == parent
        pose[child] = pose[parent] + lengths[k] * directions[k]
    return pose


def test_flow_loss_is_the_mean_nll() -> None:
    assert float(flow_loss(torch.tensor([1.0, 2.0, 6.0]))) == pytest.approx(3.0)


def test_lift_3d_loss_zero_for_exact_relift() -> None:
    y = torch.randn(4, 17, 3)
    assert float(lift_3d_loss(y, y.clone())) == 0.0


def test_lift_3d_loss_is_mean_l2_norm_not_squared() -> None:
    y2 = torch.zeros(2, 17, 3)
    y2_tilde = y2.clone()
    y2_tilde[0, 3, 0] = 0.3  # norm 0.3
    y2_tilde[1, 5, :2] = torch.tensor([0.3, 0.4])  # norm 0.5
    assert float(lift_3d_loss(y2, y2_tilde)) == pytest.approx(0.4)


def test_deformation_loss_zero_for_exact_relift() -> None:
    y = torch.randn(6, 17, 3)
    assert float(deformation_loss(y, y.clone())) == 0.0


def test_deformation_loss_ignores_a_translation_shared_by_the_pair() -> None:
    y = torch.randn(4, 17, 3, dtype=torch.float64)
    shifted = y + torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    assert float(deformation_loss(y, shifted)) == pytest.approx(0.0, abs=1e-12)


def test_deformation_loss_hand_case() -> None:
    y1 = torch.zeros(4, 17, 3)
    y1_tilde = y1.clone()
    y1_tilde[0, :, 0] += 0.1  # pair (0, 1): every joint off by 0.1 -> 0.1 * sqrt(17)
    # pair (2, 3) exact -> 0
    assert float(deformation_loss(y1, y1_tilde)) == pytest.approx(0.1 * math.sqrt(17) / 2)


def test_deformation_loss_odd_batch_drops_the_last_pose() -> None:
    y1 = torch.zeros(3, 17, 3)
    y1_tilde = y1.clone()
    y1_tilde[2] += 1.0
    assert float(deformation_loss(y1, y1_tilde)) == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        deformation_loss(y1[:1], y1_tilde[:1])


def test_reprojection_loss_zero_for_exact_relift() -> None:
    x = torch.randn(3, 17, 2)
    assert float(reprojection_loss(x.clone(), x)) == 0.0


def test_reprojection_loss_is_mean_of_summed_l1() -> None:
    x = torch.zeros(2, 17, 2)
    x_tilde = x.clone()
    x_tilde[0, 4] = torch.tensor([0.3, -0.4])  # L1 0.7 (an L2 norm would be 0.5)
    x_tilde[0, 9, 1] = 0.1
    assert float(reprojection_loss(x_tilde, x)) == pytest.approx((0.7 + 0.1) / 2)


def test_bone_loss_zero_when_bones_are_a_multiple_of_the_ratios() -> None:
    ratios = torch.arange(1.0, 17.0, dtype=torch.float64)
    ratios = ratios / ratios.mean()  # relative lengths average to 1 by definition
    pose = _pose_from_bone_lengths(3.7 * ratios)
    assert float(bone_loss(pose[None], ratios)) == pytest.approx(0.0, abs=1e-20)


def test_bone_loss_hand_case_one_bone_doubled() -> None:
    ratios = torch.ones(16, dtype=torch.float64)
    lengths = torch.ones(16, dtype=torch.float64)
    lengths[5] = 2.0
    pose = _pose_from_bone_lengths(lengths, seed=3)
    # mean bone 17/16: 15 bones at 16/17, one at 32/17 -> 15 (1/17)^2 + (15/17)^2 = 240/289
    value = bone_loss(pose[None], ratios)
    assert float(value) == pytest.approx(240 / 289)
    # a batch averages per-pose values: the exact pose contributes 0
    exact = _pose_from_bone_lengths(torch.ones(16, dtype=torch.float64), seed=4)
    assert float(bone_loss(torch.stack([pose, exact]), ratios)) == pytest.approx(120 / 289)


def test_bone_loss_is_scale_invariant_and_accepts_tuples() -> None:
    pose = _pose_from_bone_lengths(torch.rand(16, dtype=torch.float64) + 0.5, seed=5)[None]
    a = bone_loss(pose, H36M_BONE_RATIOS)
    b = bone_loss(10.0 * pose, H36M_BONE_RATIOS)
    assert float(a) > 0
    torch.testing.assert_close(a, b)


def test_relative_bone_lengths_by_hand() -> None:
    lengths = torch.arange(1.0, 17.0, dtype=torch.float64)  # mean 8.5
    pose = _pose_from_bone_lengths(lengths, seed=6)
    torch.testing.assert_close(relative_bone_lengths(pose[None])[0], lengths / 8.5)


def test_track_bone_loss_hand_case_and_masked_pairs() -> None:
    ones = torch.ones(16, dtype=torch.float64)
    doubled = ones.clone()
    doubled[5] = 2.0
    a = _pose_from_bone_lengths(ones, seed=1)
    b = _pose_from_bone_lengths(3.0 * doubled, seed=2)  # another scale: only proportions count
    c = _pose_from_bone_lengths(2.0 * ones, seed=3)
    # pair (a, b): relative lengths 1 against 16/17 and 32/17 -> 15 (1/17)^2 + (15/17)^2 = 240/289
    batch = torch.stack([a, b, a, c])
    both = track_bone_loss(batch, torch.tensor([True, True]))
    assert float(both) == pytest.approx(120 / 289)  # (a, c) agree: mean over the two pairs
    assert float(track_bone_loss(batch, torch.tensor([True, False]))) == pytest.approx(240 / 289)
    assert float(track_bone_loss(batch, torch.tensor([False, False]))) == 0.0
    with pytest.raises(ValueError, match="pair flags"):
        track_bone_loss(batch, torch.tensor([True]))


def test_track_bone_loss_gradient_matches_finite_differences() -> None:
    gen = torch.Generator().manual_seed(0)
    poses = torch.randn(4, 17, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    same = torch.tensor([True, False])
    assert torch.autograd.gradcheck(lambda p: track_bone_loss(p, same), (poses,))
    (grad,) = torch.autograd.grad(track_bone_loss(poses, same), poses)
    assert grad[2:].abs().max() == 0  # the pair of two people gets no gradient


def test_supervised_loss_sums_squared_error_over_joints() -> None:
    pred = torch.zeros(2, 17, 3)
    target = pred.clone()
    target[0, 1] = torch.tensor([1.0, 2.0, 0.0])  # 5
    target[0, 7, 2] = 1.0  # 1
    target[1, 16, 0] = 3.0  # 9
    assert float(supervised_loss(pred, target)) == pytest.approx((6 + 9) / 2)


def test_mismatched_shapes_raise() -> None:
    with pytest.raises(ValueError, match="lift_3d_loss"):
        lift_3d_loss(torch.zeros(2, 17, 3), torch.zeros(3, 17, 3))
    with pytest.raises(ValueError, match="reprojection_loss"):
        reprojection_loss(torch.zeros(2, 17, 3), torch.zeros(2, 17, 3))
    with pytest.raises(ValueError, match="ratios"):
        bone_loss(torch.zeros(2, 17, 3), [1.0] * 15)
    with pytest.raises(ValueError, match="nll"):
        flow_loss(torch.zeros(2, 1))


def test_distillation_loss_hand_case_gradient_and_shapes() -> None:
    depth = torch.tensor([[0.0, 1.0], [2.0, -1.0]], dtype=torch.float64, requires_grad=True)
    teacher = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    elevation = torch.tensor([0.3, -0.1], dtype=torch.float64, requires_grad=True)
    teacher_elevation = torch.tensor([0.1, 0.1], dtype=torch.float64)
    # depths: (0 + 1 + 1 + 4) / 4 = 1.5; elevations: (0.04 + 0.04) / 2 = 0.04
    assert distillation_loss(depth, teacher).item() == pytest.approx(1.5)
    loss = distillation_loss(depth, teacher, elevation, teacher_elevation)
    assert loss.item() == pytest.approx(1.54)
    loss.backward()
    torch.testing.assert_close(depth.grad, 2 * (depth.detach() - teacher) / 4)  # d/dd of the mean square
    torch.testing.assert_close(elevation.grad, 2 * (elevation.detach() - teacher_elevation) / 2)
    assert distillation_loss(teacher, teacher, teacher_elevation, teacher_elevation).item() == 0.0
    with pytest.raises(ValueError, match="depth"):
        distillation_loss(depth[:1], teacher)
    with pytest.raises(ValueError, match="both elevations"):
        distillation_loss(depth, teacher, elevation, None)
