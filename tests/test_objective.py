"""The ElePose cycle: virtual rotations, the elevation convention and the combined objective."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from elepose.geometry import project, rotation_x, rotation_y, unproject
from elepose.models.lifter import LiftingNetwork
from elepose.skeleton import H36M_BONE_RATIOS
from elepose.train.objective import LossWeights, elepose_losses
from elepose.views import ElevationPrior, parse_elevation_prior, rotate, virtual_rotation

# The fixed prior of Chen et al. (2019) and Yu et al. (2021): elevation ~ U(-20 deg, 20 deg).
CHEN_UNIFORM_PRIOR = ElevationPrior.uniform(-math.pi / 9, math.pi / 9)

KEYS = {
    "total", "nf", "bone", "lift_3d", "deformation", "reprojection",
    "elevation_mu", "elevation_sigma",
}  # fmt: skip


def _dummy_nll(poses_2d: torch.Tensor) -> torch.Tensor:
    """A stand-in for the frozen flow: a Gaussian NLL of the 34-vector, ``(B, 17, 2) -> (B,)``."""
    return 0.5 * (poses_2d.flatten(1) / 0.1).pow(2).sum(1)


def _batch(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = 0.05 * torch.randn(n, 17, 2, generator=gen)
    return x - x[:, :1]


def _losses(
    net: LiftingNetwork,
    batch: int = 6,
    prior: ElevationPrior = ElevationPrior.learned(),
    seed: int = 0,
    **kwargs,
) -> dict[str, torch.Tensor]:
    """``elepose_losses`` on a synthetic batch with the dummy flow and a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    return elepose_losses(net, _dummy_nll, _batch(batch), H36M_BONE_RATIOS, prior, gen, **kwargs)


def _upright_pose() -> torch.Tensor:
    """A pose in a level camera frame (y down): pelvis at 0, spine and thorax straight above it."""
    gen = torch.Generator().manual_seed(7)
    pose = 0.3 * torch.randn(17, 3, generator=gen, dtype=torch.float64)
    pose[0] = 0.0
    pose[7] = torch.tensor([0.0, -0.25, 0.0], dtype=torch.float64)  # spine
    pose[8] = torch.tensor([0.0, -0.5, 0.0], dtype=torch.float64)  # thorax
    return pose


@pytest.mark.parametrize("axis, fn", [("x", rotation_x), ("y", rotation_y)])
def test_rotations_agree_with_scipy(axis: str, fn) -> None:
    angles = np.array([-2.5, -0.3, 0.0, 0.7, 3.0])
    expected = Rotation.from_euler(axis, angles[:, None]).as_matrix()
    np.testing.assert_allclose(fn(torch.tensor(angles)).numpy(), expected, atol=1e-12)


def test_rotation_x_is_the_view_of_a_camera_looking_down() -> None:
    theta = 0.3
    # Camera pitched down by theta, axes written in the level frame (x right, y down, z forward):
    forward = np.array([0.0, math.sin(theta), math.cos(theta)])  # tilts towards +y = down
    down = np.array([0.0, math.cos(theta), -math.sin(theta)])
    right = np.array([1.0, 0.0, 0.0])
    level_to_camera = np.stack([right, down, forward])
    expected = rotation_x(torch.tensor(theta, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(level_to_camera, expected, atol=1e-12)


def test_derotation_with_predicted_elevation_makes_the_spine_vertical() -> None:
    theta = 0.35  # looking down by 20 degrees
    tilted = _upright_pose() @ rotation_x(torch.tensor(theta, dtype=torch.float64)).T
    spine = tilted[8] - tilted[0]
    assert abs(float(spine[2])) > 0.1  # tilted towards the camera axis
    gen = torch.Generator().manual_seed(0)
    # e' = 0 exactly, so R = Ry(a) @ Rx(-theta); Ry keeps the vertical axis whatever a is.
    elevation = torch.full((4,), theta, dtype=torch.float64)
    rot = virtual_rotation(elevation, ElevationPrior.normal(0.0, 0.0), gen)
    upright = rotate(rot.R, tilted.expand(4, 17, 3))
    spines = upright[:, 8] - upright[:, 0]
    directions = spines / spines.norm(dim=1, keepdim=True)
    up = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(directions, up.expand(4, 3))


@pytest.mark.parametrize("prior", [ElevationPrior.learned(), CHEN_UNIFORM_PRIOR, ElevationPrior.normal(0.2, 0.1)])
def test_virtual_rotation_is_orthonormal_with_det_one(prior: ElevationPrior) -> None:
    gen = torch.Generator().manual_seed(1)
    elevation = 0.2 * torch.randn(64, dtype=torch.float64, generator=gen)
    R = virtual_rotation(elevation, prior, gen).R
    eye = torch.eye(3, dtype=torch.float64).expand(64, 3, 3)
    torch.testing.assert_close(R.transpose(1, 2) @ R, eye)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(64, dtype=torch.float64))
    y = torch.randn(64, 17, 3, dtype=torch.float64, generator=gen)
    torch.testing.assert_close(rotate(R.transpose(1, 2), rotate(R, y)), y)


def test_rotate_matches_matrix_product() -> None:
    gen = torch.Generator().manual_seed(2)
    R = torch.linalg.qr(torch.randn(5, 3, 3, generator=gen, dtype=torch.float64)).Q
    y = torch.randn(5, 17, 3, generator=gen, dtype=torch.float64)
    expected = np.einsum("bij,bkj->bki", R.numpy(), y.numpy())
    np.testing.assert_allclose(rotate(R, y).numpy(), expected, atol=1e-12)


def test_learned_prior_mu_and_unbiased_sigma() -> None:
    elevation = torch.tensor([0.1, 0.3, 0.2, 0.6])
    rot = virtual_rotation(elevation, ElevationPrior.learned(), torch.Generator().manual_seed(0))
    assert float(rot.mu) == pytest.approx(0.3)
    assert float(rot.sigma) == pytest.approx(np.std([0.1, 0.3, 0.2, 0.6], ddof=1), rel=1e-6)


def test_sigma_gradient_matches_the_unbiased_std_formula() -> None:
    elevation = torch.tensor([0.1, 0.3, 0.2, 0.6], dtype=torch.float64, requires_grad=True)
    rot = virtual_rotation(elevation, ElevationPrior.learned(), torch.Generator().manual_seed(0))
    (g_sigma,) = torch.autograd.grad(rot.sigma, elevation, retain_graph=True)
    (g_mu,) = torch.autograd.grad(rot.mu, elevation)
    e = elevation.detach()
    expected = (e - e.mean()) / ((len(e) - 1) * rot.sigma.detach())
    torch.testing.assert_close(g_sigma, expected)
    torch.testing.assert_close(g_mu, torch.full((4,), 0.25, dtype=torch.float64))


def test_rotation_gradient_matches_finite_differences() -> None:
    elevation = torch.tensor([0.1, -0.2, 0.25, 0.05, 0.4], dtype=torch.float64, requires_grad=True)

    def rotation_of(e: torch.Tensor) -> torch.Tensor:
        return virtual_rotation(e, ElevationPrior.learned(), torch.Generator().manual_seed(3)).R

    assert torch.autograd.gradcheck(rotation_of, (elevation,))


def test_gradients_reach_the_elevation_head_through_mu_and_sigma() -> None:
    torch.manual_seed(0)
    net = LiftingNetwork(hidden=32)
    elevation = net(_batch(8)).elevation
    rot = virtual_rotation(elevation, ElevationPrior.learned(), torch.Generator().manual_seed(0))
    for statistic in (rot.mu, rot.sigma):
        (grad,) = torch.autograd.grad(statistic, net.elevation_head.weight, retain_graph=True)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_no_elevation_keeps_e_zero_and_samples_the_fixed_prior() -> None:
    gen = torch.Generator().manual_seed(4)
    R = virtual_rotation(None, CHEN_UNIFORM_PRIOR, gen, batch_size=4000).R.double()
    # Without de-rotation R = Rx(e') @ Ry(a): its first row is (cos a, 0, sin a).
    assert torch.all(R[:, 0, 1].abs() < 1e-7)
    tilt = torch.atan2(R[:, 2, 1], R[:, 1, 1])  # R @ (0, 1, 0) = (0, cos e', sin e')
    assert float(tilt.min()) >= -math.pi / 9 - 1e-6 and float(tilt.max()) <= math.pi / 9 + 1e-6
    assert float(tilt.min()) < -0.33 and float(tilt.max()) > 0.33
    azimuth = torch.atan2(R[:, 0, 2], R[:, 0, 0])
    assert float(azimuth.abs().mean()) == pytest.approx(math.pi / 2, abs=0.08)


def test_fixed_normal_prior_statistics() -> None:
    prior = ElevationPrior.parse("normal:12,6")
    rot = virtual_rotation(None, prior, torch.Generator().manual_seed(5), batch_size=20000)
    tilt = torch.rad2deg(torch.atan2(rot.R[:, 2, 1], rot.R[:, 1, 1]).double())
    assert float(tilt.mean()) == pytest.approx(12.0, abs=0.2)
    assert float(tilt.std()) == pytest.approx(6.0, abs=0.2)
    assert float(rot.mu) == pytest.approx(math.radians(12))
    assert float(rot.sigma) == pytest.approx(math.radians(6))


def test_learned_prior_without_elevation_raises() -> None:
    with pytest.raises(ValueError, match="learned"):
        virtual_rotation(None, ElevationPrior.learned(), torch.Generator(), batch_size=4)
    net = LiftingNetwork(hidden=16, elevation=False)
    with pytest.raises(ValueError, match="elevation branch"):
        _losses(net, batch=4)


def test_prior_parse_round_trip_and_errors() -> None:
    for text in ("learned", "uniform:-20,20", "normal:12,6"):
        assert ElevationPrior.parse(text).to_string() == text
    assert ElevationPrior.parse("uniform:-20,20") == CHEN_UNIFORM_PRIOR
    for bad in ("gaussian:1,2", "normal:1", "uniform:a,b", "uniform:5,-5", "normal:0,-1"):
        with pytest.raises(ValueError):
            ElevationPrior.parse(bad)


def test_parse_elevation_prior_rejects_learned_without_the_branch() -> None:
    assert parse_elevation_prior("learned") == ElevationPrior.learned()
    assert parse_elevation_prior("uniform:-20,20", elevation_branch=False) == CHEN_UNIFORM_PRIOR
    with pytest.raises(ValueError, match="elevation branch"):
        parse_elevation_prior("learned", elevation_branch=False)


def test_projection_of_the_lift_is_the_input_so_x2_needs_no_renormalising() -> None:
    x = _batch(3, seed=9).double()
    depth = torch.randn(3, 17, dtype=torch.float64)
    y = unproject(x, depth, min_depth=None)
    torch.testing.assert_close(project(y), x)
    # The lift of a normalised pose (pelvis-head ~0.1) has a pelvis-head distance ~1 and its
    # rotated projection returns to the input's scale.
    head = torch.zeros(1, 17, 2, dtype=torch.float64)
    head[0, 10, 1] = -0.1
    lifted = unproject(head, torch.zeros(1, 17, dtype=torch.float64))
    assert float(lifted[0, 10].norm()) == pytest.approx(1.0)
    R = rotation_y(torch.tensor([1.0], dtype=torch.float64))
    assert float(project(rotate(R, lifted))[0, 10].norm()) == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize("variant", ["shared", "towers"])
def test_objective_forward_backward_finite_and_reaches_every_parameter(variant: str) -> None:
    torch.manual_seed(0)
    net = LiftingNetwork(hidden=64, variant=variant)
    losses = _losses(net, batch=8)
    assert set(losses) == KEYS
    assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    assert not losses["elevation_mu"].requires_grad and not losses["elevation_sigma"].requires_grad
    losses["total"].backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_objective_is_deterministic_for_a_generator_seed() -> None:
    def run(seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        torch.manual_seed(0)
        net = LiftingNetwork(hidden=32)
        losses = _losses(net, seed=seed)
        losses["total"].backward()
        return {k: v.detach() for k, v in losses.items()}, net.elevation_head.weight.grad.clone()

    (a, ga), (b, gb), (c, _) = run(11), run(11), run(12)
    for key in KEYS:
        assert torch.equal(a[key], b[key]), key
    assert torch.equal(ga, gb)
    assert not torch.equal(a["total"], c["total"])


def test_objective_weights_and_bone_ablation() -> None:
    torch.manual_seed(0)
    net = LiftingNetwork(hidden=32)

    full = _losses(net)
    base = full["nf"] + full["reprojection"] + full["lift_3d"] + full["deformation"]
    torch.testing.assert_close(full["total"], base + 50.0 * full["bone"])
    no_bone = _losses(net, use_bone_prior=False)
    torch.testing.assert_close(no_bone["total"], base)
    assert not no_bone["bone"].requires_grad and float(no_bone["bone"]) > 0
    doubled = _losses(net, weights=LossWeights(nf=2.0, bone=0.0))
    torch.testing.assert_close(doubled["total"], base + full["nf"])
    assert "track_bone" not in full  # L_track only where the batch is pairs of one person's frames
    paired = _losses(net, same_person=torch.tensor([True, False, True]))
    assert float(paired["track_bone"].detach()) > 0
    torch.testing.assert_close(paired["total"], base + 50.0 * full["bone"] + 50.0 * paired["track_bone"])


def test_objective_without_elevation_branch_and_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    net = LiftingNetwork(hidden=32, elevation=False)
    losses = _losses(net, prior=CHEN_UNIFORM_PRIOR)
    assert float(losses["elevation_mu"]) == 0.0
    assert float(losses["elevation_sigma"]) == pytest.approx(2 * math.pi / 9 / math.sqrt(12))
    net = LiftingNetwork(hidden=32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = _losses(net)
        R = virtual_rotation(torch.rand(6), ElevationPrior.learned(), torch.Generator()).R
    assert R.dtype == torch.float32
    torch.testing.assert_close(R.transpose(1, 2) @ R, torch.eye(3).expand(6, 3, 3))
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    losses["total"].backward()
    assert torch.isfinite(net.elevation_head.weight.grad).all()


def test_held_elevation_reaches_no_elevation_parameter_and_fixes_the_prior():
    from elepose.models.lifter import LiftingNetwork

    torch.manual_seed(0)
    lifter = LiftingNetwork(hidden=16)
    x = torch.randn(8, 17, 2) * 0.05
    x[:, 0] = 0
    terms = elepose_losses(
        lifter,
        lambda p: p.pow(2).sum((-1, -2)),
        x,
        torch.ones(16),
        ElevationPrior.learned(),
        torch.Generator().manual_seed(0),
        hold_elevation_rad=0.2,
    )
    terms["total"].backward()
    assert lifter.elevation_head.weight.grad is None or torch.all(lifter.elevation_head.weight.grad == 0)
    assert lifter.depth_head.weight.grad is not None and lifter.depth_head.weight.grad.abs().sum() > 0
    assert float(terms["elevation_mu"]) == pytest.approx(0.2)
    assert float(terms["elevation_sigma"]) < 1e-5


def test_elevation_init_sets_the_starting_prediction():
    from elepose.models.lifter import LiftingNetwork

    lifter = LiftingNetwork(hidden=16, elevation_init_deg=10.0)
    torch.nn.init.zeros_(lifter.elevation_head.weight)
    out = lifter(torch.zeros(3, 17, 2))
    torch.testing.assert_close(out.elevation, torch.full((3,), math.radians(10.0)))


def test_detached_statistics_sample_the_same_views_and_leave_only_the_derotation_gradient() -> None:
    elevation = torch.tensor([0.1, -0.2, 0.25, 0.05, 0.4], dtype=torch.float64, requires_grad=True)
    prior = ElevationPrior.learned()
    paper = virtual_rotation(elevation, prior, torch.Generator().manual_seed(3))
    detached = virtual_rotation(elevation, prior, torch.Generator().manual_seed(3), detach_stats=True)
    torch.testing.assert_close(detached.R, paper.R)
    assert not detached.mu.requires_grad and not detached.sigma.requires_grad
    # With the statistics fixed, R = V @ Rx(-e): row i of dR/de_j is zero unless i == j, and
    # equals V_i @ dRx(-e_i)/de_i, which finite differences give.
    (grad,) = torch.autograd.grad(detached.R[2].sum(), elevation)
    assert grad[[0, 1, 3, 4]].abs().max() == 0 and grad[2] != 0
    views = (detached.R @ rotation_x(elevation.detach()))[2].detach()
    h = 1e-6
    numeric = ((views @ rotation_x(-elevation.detach()[2] - h)).sum() - (views @ rotation_x(-elevation.detach()[2] + h)).sum()) / (2 * h)  # fmt: skip
    assert float(grad[2]) == pytest.approx(float(numeric), rel=1e-6)


def test_window_pools_earlier_batches_into_mu_and_sigma_and_keeps_the_last_k() -> None:
    from elepose.train.objective import ElevationWindow

    history = torch.tensor([0.5, 0.7, 0.9])
    elevation = torch.tensor([0.1, 0.3, 0.2, 0.6], requires_grad=True)
    rot = virtual_rotation(elevation, ElevationPrior.learned(), torch.Generator().manual_seed(0), history=history)
    pooled = [0.1, 0.3, 0.2, 0.6, 0.5, 0.7, 0.9]
    assert float(rot.mu.detach()) == pytest.approx(np.mean(pooled))
    assert float(rot.sigma.detach()) == pytest.approx(np.std(pooled, ddof=1), rel=1e-6)
    (g_mu,) = torch.autograd.grad(rot.mu, elevation)
    torch.testing.assert_close(g_mu, torch.full((4,), 1 / 7))  # only this batch carries gradient
    window = ElevationWindow(batches=2)
    for value in (1.0, 2.0, 3.0):
        window.push(torch.full((2,), value))
    torch.testing.assert_close(window.values(), torch.tensor([2.0, 2.0, 3.0, 3.0]))


def test_objective_fills_the_window_after_the_warm_up_only() -> None:
    from elepose.train.objective import ElevationWindow

    torch.manual_seed(0)
    net = LiftingNetwork(hidden=32)
    window = ElevationWindow(batches=3)
    _losses(net, window=window, hold_elevation_rad=0.2)
    assert window.values() is None
    first = _losses(net, window=window)
    assert window.values().shape == (6,)
    second = _losses(net, window=window)  # the same batch again: pooled with itself, same mu
    assert float(second["elevation_mu"]) == pytest.approx(float(first["elevation_mu"]), rel=1e-5)
    assert float(second["elevation_sigma"]) < float(
        first["elevation_sigma"]
    )  # the same spread over 12 values: a smaller unbiased std


def test_elevation_stats_option_parses_or_names_what_it_expects() -> None:
    from elepose.errors import InputError
    from elepose.train.config import TrainConfig, elevation_stats_window

    assert elevation_stats_window("batch") is None and elevation_stats_window("detached") is None
    assert elevation_stats_window("window:16") == 16
    for bad in ("window", "window:0", "window:x", "batch:3", "ema"):
        with pytest.raises(InputError, match="--elevation-stats: got"):
            TrainConfig(elevation_stats=bad)
