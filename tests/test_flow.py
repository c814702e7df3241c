"""The normalizing-flow: exact log-determinants, invertibility, parity with FrEIA 0.2,
the PCA against numpy, learning on synthetic poses, bf16 autocast and seeding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import special_ortho_group
from torch import nn

from elepose.geometry import normalise_2d, project, rotation_x, rotation_y
from elepose.models.flow import AllInOneBlock, CouplingFlow, PoseFlow

Ff = pytest.importorskip("FrEIA.framework")
Fm = pytest.importorskip("FrEIA.modules")


# -- helpers ---------------------------------------------------------------------------------
def freia_reference_flow(dims: int, blocks: int, hidden: int) -> nn.Module:
    """FrEIA 0.2's SequenceINN of AllInOneBlock as built by the ElePose authors."""

    def subnet(c_in: int, c_out: int) -> nn.Module:
        return nn.Sequential(nn.Linear(c_in, hidden), nn.ReLU(), nn.Linear(hidden, c_out))

    inn = Ff.SequenceINN(dims)
    for _ in range(blocks):
        inn.append(
            Fm.AllInOneBlock,
            subnet_constructor=subnet,
            affine_clamping=2.0,
            gin_block=False,
            global_affine_init=1.0,
            global_affine_type="SOFTPLUS",
            permute_soft=True,
            learned_householder_permutation=0,
            reverse_permutation=False,
        )
    return inn


@torch.no_grad()
def randomise(module: nn.Module, seed: int, spread: float = 0.3) -> None:
    """Move every trainable weight away from its initial value (global scale included), so the
    subnet output, the tanh clamp and the global affine all matter."""
    g = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        if p.requires_grad:
            factor = 3.0 * spread if name.endswith("subnet.2.weight") else spread
            p.add_(factor * torch.randn(p.shape, generator=g, dtype=p.dtype))


@torch.no_grad()
def exact_rotations(module: nn.Module, seed: int) -> None:
    """For float64 tests: replace the float32-rounded rotations by exactly orthogonal ones."""
    rng = np.random.default_rng(seed)
    for block in module.modules():
        if isinstance(block, AllInOneBlock):
            w = torch.tensor(special_ortho_group.rvs(block.channels, random_state=rng))
            block.w_perm.copy_(w)
            block.w_perm_inv.copy_(w.T)


def block_call(block: AllInOneBlock, x: torch.Tensor, rev: bool = False) -> torch.Tensor:
    return block(x, rev=rev)[0]


def synthetic_poses(n: int, g: torch.Generator) -> torch.Tensor:
    """Normalised 2D poses ``(n, 17, 2)``: three jittered base skeletons seen from random azimuths
    and elevations around 11 degrees, projected and normalised as the lifter's inputs are."""
    base_g = torch.Generator().manual_seed(1234)
    base = torch.randn(3, 17, 3, generator=base_g) * 0.4
    base = base - base[:, :1]
    which = torch.randint(0, 3, (n,), generator=g)
    poses_3d = base[which] + 0.05 * torch.randn(n, 17, 3, generator=g)
    azimuth = (torch.rand(n, generator=g) * 2 - 1) * math.pi
    elevation = 0.2 + 0.1 * torch.randn(n, generator=g)
    rotation = rotation_x(elevation) @ rotation_y(azimuth)
    pixels = project(poses_3d @ rotation.transpose(-1, -2)) * 1000.0
    return normalise_2d(pixels, scale=None)


def correlated_poses(n: int, rank: int, seed: int) -> np.ndarray:
    """``(n, 17, 2)`` float64 data of effective rank ``rank`` plus small isotropic noise."""
    rng = np.random.default_rng(seed)
    loadings = rng.normal(size=(rank, 34)) * np.linspace(1.0, 0.3, rank)[:, None]
    data = rng.normal(size=(n, rank)) @ loadings + 0.01 * rng.normal(size=(n, 34)) + rng.normal(size=34)
    return data.reshape(n, 17, 2)


# -- the coupling block -----------------------------------------------------------------------
@pytest.mark.parametrize("channels", [26, 7])
def test_block_logdet_equals_autograd_jacobian(channels: int) -> None:
    torch.manual_seed(0)
    block = AllInOneBlock(channels, hidden=16, rng=np.random.default_rng(1)).double()
    randomise(block, seed=2)
    exact_rotations(block, seed=3)
    x = torch.randn(4, channels, dtype=torch.float64)
    _, logdet = block(x)
    z = block_call(block, x)
    _, rev_logdet = block(z, rev=True)
    for i in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda v: block_call(block, v[None])[0], x[i])
        sign, expected = torch.linalg.slogdet(jac)
        assert sign.item() == 1.0
        torch.testing.assert_close(logdet[i], expected, rtol=0, atol=1e-10)
        jac_rev = torch.autograd.functional.jacobian(lambda v: block_call(block, v[None], True)[0], z[i])
        torch.testing.assert_close(rev_logdet[i], torch.linalg.slogdet(jac_rev)[1], rtol=0, atol=1e-10)
        torch.testing.assert_close(rev_logdet[i], -expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("channels", [2, 5, 26])
def test_scoring_path_without_autograd_gives_the_map_and_the_jacobian_logdet(channels: int) -> None:
    block = AllInOneBlock(channels, hidden=16, rng=np.random.default_rng(1)).double()
    randomise(block, seed=7)
    exact_rotations(block, seed=8)
    x = torch.randn(6, channels, dtype=torch.float64)
    y, _ = block(x)  # with autograd: the reference path
    with torch.no_grad():
        fast_y, fast_logdet = block(x)  # the folded scoring path
    torch.testing.assert_close(fast_y, y, rtol=0, atol=1e-12)
    for i in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda v: block_call(block, v[None])[0], x[i])
        torch.testing.assert_close(fast_logdet[i], torch.linalg.slogdet(jac)[1], rtol=0, atol=1e-10)


def test_block_transforms_second_half_and_starts_with_unit_global_scale() -> None:
    block = AllInOneBlock(5, hidden=8, rng=np.random.default_rng(0))
    assert block.splits == [3, 2]  # FrEIA: C - C//2 conditions, C//2 transformed
    assert block.subnet[0].in_features == 3 and block.subnet[2].out_features == 4
    torch.testing.assert_close(block.global_scale_value(), torch.ones(1, 5))
    # Undo the rotation: the first 3 coordinates pass through (times scale 1, offset 0).
    x = torch.randn(6, 5)
    u = block_call(block, x) @ block.w_perm_inv.T
    torch.testing.assert_close(u[:, :3], x[:, :3])
    assert not torch.allclose(u[:, 3:], x[:, 3:])


def test_flow_logdet_equals_autograd_jacobian() -> None:
    flow = CouplingFlow(9, blocks=3, hidden=16, seed=4).double()
    randomise(flow, seed=5)
    exact_rotations(flow, seed=6)
    x = torch.randn(3, 9, dtype=torch.float64)
    _, logdet = flow(x)
    for i in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda v: flow(v[None])[0][0], x[i])
        torch.testing.assert_close(logdet[i], torch.linalg.slogdet(jac)[1], rtol=0, atol=1e-10)


def test_inverse_undoes_forward() -> None:
    flow = CouplingFlow(26, blocks=8, hidden=32, seed=0)
    randomise(flow, seed=1, spread=0.05)
    x = torch.randn(64, 26)
    z, logdet = flow(x)
    x_back, rev_logdet = flow(z, rev=True)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-5)
    torch.testing.assert_close(rev_logdet, -logdet, rtol=0, atol=1e-4)

    flow64 = CouplingFlow(26, blocks=8, hidden=32, seed=0).double()
    randomise(flow64, seed=1, spread=0.05)
    exact_rotations(flow64, seed=2)
    x64 = torch.randn(64, 26, dtype=torch.float64)
    torch.testing.assert_close(flow64.inverse(flow64(x64)[0]), x64, rtol=0, atol=1e-12)


# -- parity with FrEIA 0.2 --------------------------------------------------------------------
def test_default_state_dict_matches_freia_keys_and_shapes() -> None:
    torch.manual_seed(0)
    ours = PoseFlow().flow.state_dict()
    reference = freia_reference_flow(26, blocks=8, hidden=1024).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in reference.items()}
    assert ours["module_list.0.subnet.0.weight"].shape == (1024, 13)
    assert ours["module_list.7.subnet.2.weight"].shape == (26, 1024)


@pytest.mark.parametrize("dims", [26, 7])
def test_freia_weights_load_into_ours(dims: int) -> None:
    torch.manual_seed(0)
    reference = freia_reference_flow(dims, blocks=4, hidden=32)
    randomise(reference, seed=1)
    ours = CouplingFlow(dims, blocks=4, hidden=32, seed=9)
    ours.load_state_dict(reference.state_dict())
    # In float64, so that the two orders of summation (ours folds the global affine into the
    # rotation without autograd) agree far below any real difference.
    reference, ours = reference.double(), ours.double()
    x = torch.randn(16, dims, dtype=torch.float64)
    with torch.no_grad():
        z_ref, logdet_ref = reference(x)
        z, logdet = ours(x)
        torch.testing.assert_close(z, z_ref, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(logdet, logdet_ref, rtol=1e-10, atol=1e-10)
        x_ref, rev_ref = reference(z_ref, rev=True)
        x_ours, rev_ours = ours(z_ref, rev=True)
        torch.testing.assert_close(x_ours, x_ref, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(rev_ours, rev_ref, rtol=1e-10, atol=1e-10)


def test_our_weights_load_into_freia() -> None:
    torch.manual_seed(0)
    ours = CouplingFlow(26, blocks=4, hidden=32, seed=3)
    randomise(ours, seed=4)
    reference = freia_reference_flow(26, blocks=4, hidden=32)
    reference.load_state_dict(ours.state_dict())
    reference, ours = reference.double(), ours.double()
    x = torch.randn(16, 26, dtype=torch.float64)
    with torch.no_grad():
        z_ref, logdet_ref = reference(x)
        z, logdet = ours(x)
        torch.testing.assert_close(z, z_ref, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(logdet, logdet_ref, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(ours.inverse(z), reference(z_ref, rev=True)[0], rtol=1e-10, atol=1e-10)


# -- PCA --------------------------------------------------------------------------------------
def test_pca_matches_numpy_svd() -> None:
    data = correlated_poses(500, rank=10, seed=0)
    flow = PoseFlow(pca_bases=12, blocks=1, hidden=8).double().fit_pca(torch.tensor(data))
    flat = data.reshape(500, 34)
    mean = flat.mean(axis=0)
    _, singular, vt = np.linalg.svd(flat - mean, full_matrices=False)
    reference = vt[:12]
    np.testing.assert_allclose(flow.pca_mean.numpy(), mean, atol=1e-12)
    # Same subspace and same axes up to sign: compare projectors and |coefficients|.
    np.testing.assert_allclose(
        flow.pca_components.numpy().T @ flow.pca_components.numpy(), reference.T @ reference, atol=1e-8
    )
    coefficients = flow.project(torch.tensor(data)).numpy()
    np.testing.assert_allclose(np.abs(coefficients), np.abs((flat - mean) @ reference.T), atol=1e-8)
    ratio = singular**2 / np.sum(singular**2)
    np.testing.assert_allclose(flow.pca_variance_ratio.numpy(), ratio[:12], atol=1e-12)
    assert flow.explained_variance == pytest.approx(ratio[:12].sum(), abs=1e-12)
    assert flow.explained_variance >= 0.99


def test_pca_is_not_whitened_and_back_projection_reconstructs() -> None:
    data = torch.tensor(correlated_poses(400, rank=6, seed=1))
    flow = PoseFlow(pca_bases=6, blocks=1, hidden=8).double().fit_pca(data)
    coefficients = flow.project(data)
    variances = coefficients.var(dim=0)
    assert variances[0] > 2 * variances[-1]  # not whitened: the leading axis keeps its variance
    zeros = torch.zeros(6, dtype=torch.float64)
    torch.testing.assert_close(coefficients.mean(dim=0), zeros, atol=1e-12, rtol=0)
    residual = (flow.back_project(coefficients) - data).pow(2).sum() / (data - data.mean(0)).pow(2).sum()
    assert residual.item() == pytest.approx(1.0 - flow.explained_variance, abs=1e-10)


def test_no_pca_flattens() -> None:
    flow = PoseFlow(pca_bases=None, blocks=1, hidden=8)
    poses = torch.randn(3, 17, 2)
    torch.testing.assert_close(flow.project(poses), poses.reshape(3, 34))
    assert flow.dim == 34 and flow.explained_variance == 1.0
    assert flow.sample(5, torch.Generator().manual_seed(0)).shape == (5, 17, 2)
    with pytest.raises(ValueError, match="no PCA"):
        flow.fit_pca(poses)


def test_bad_inputs_raise() -> None:
    flow = PoseFlow(pca_bases=4, blocks=1, hidden=8)
    with pytest.raises(ValueError, match="not fitted"):
        flow.nll(torch.randn(2, 17, 2))
    with pytest.raises(ValueError, match=r"\(N, 17, 2\)"):
        flow.fit_pca(torch.randn(10, 34))
    with pytest.raises(ValueError, match="more than pca_bases"):
        flow.fit_pca(torch.randn(4, 17, 2))
    with pytest.raises(ValueError, match="pca_bases"):
        PoseFlow(pca_bases=35)


# -- the flow as a whole ---------------------------------------------------------------------
def test_nll_is_half_squared_norm_minus_logdet_and_pca_is_in_the_state_dict() -> None:
    g = torch.Generator().manual_seed(0)
    poses = synthetic_poses(200, g)
    flow = PoseFlow(pca_bases=8, blocks=2, hidden=16).fit_pca(poses)
    z, logdet = flow(poses[:10])
    torch.testing.assert_close(flow.nll(poses[:10]), 0.5 * (z**2).sum(1) - logdet)
    copy = PoseFlow(pca_bases=8, blocks=2, hidden=16, seed=7)
    copy.load_state_dict(flow.state_dict())
    assert {"pca_mean", "pca_components", "pca_variance_ratio"} <= set(flow.state_dict())
    torch.testing.assert_close(copy.nll(poses[:10]), flow.nll(poses[:10]))
    copy.load_state_dict(PoseFlow(pca_bases=8, blocks=2, hidden=16).state_dict())  # unfitted
    with pytest.raises(ValueError, match="not fitted"):
        copy.nll(poses[:10])


def test_pretraining_lowers_held_out_nll() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    train, held_out = synthetic_poses(8192, g), synthetic_poses(512, g)
    flow = PoseFlow(pca_bases=8, blocks=4, hidden=64, seed=0).fit_pca(train)
    optimiser = torch.optim.Adam(flow.parameters(), lr=1e-3)
    with torch.no_grad():
        initial = flow.nll(held_out).mean().item()
    for _ in range(300):
        loss = flow.nll(train[torch.randint(0, len(train), (256,), generator=g)]).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        final = flow.nll(held_out).mean().item()
    assert final < initial - 8.0, (initial, final)


def test_sample_lies_in_pca_subspace() -> None:
    g = torch.Generator().manual_seed(0)
    poses = synthetic_poses(300, g)
    flow = PoseFlow(pca_bases=8, blocks=2, hidden=16).fit_pca(poses)
    samples = flow.sample(20, torch.Generator().manual_seed(1))
    assert samples.shape == (20, 17, 2)
    coefficients = flow.inverse(torch.randn(20, 8, generator=torch.Generator().manual_seed(1)))
    torch.testing.assert_close(flow.project(samples), coefficients, atol=1e-5, rtol=0)


def test_bf16_autocast_gives_float32_finite_nll() -> None:
    g = torch.Generator().manual_seed(0)
    poses = synthetic_poses(256, g)
    flow = PoseFlow(pca_bases=26, blocks=8, hidden=64).fit_pca(poses)
    identity = nn.Linear(34, 34, bias=False)
    with torch.no_grad():
        identity.weight.copy_(torch.eye(34))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        poses_bf16 = identity(poses.reshape(-1, 34)).reshape(-1, 17, 2)  # a bf16 activation
        assert poses_bf16.dtype == torch.bfloat16
        z, logdet = flow(poses_bf16)
        nll = flow.nll(poses_bf16)
    assert z.dtype == logdet.dtype == nll.dtype == torch.float32
    assert torch.isfinite(nll).all()
    # Inside, everything ran in float32: equal to fp32 on the same (bf16-rounded) input ...
    torch.testing.assert_close(nll, flow.nll(poses_bf16.float()))
    # ... and close to fp32 on the unrounded input (bf16 keeps ~3 significant digits).
    reference = flow.nll(poses)
    assert (nll - reference).abs().max() < 0.05 * (reference.abs().max() + 1.0)
    nll.sum().backward()
    assert identity.weight.grad is not None and torch.isfinite(identity.weight.grad).all()


def test_seed_fixes_initialisation_without_touching_global_rngs() -> None:
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    first = PoseFlow(pca_bases=10, blocks=3, hidden=16, seed=5).state_dict()
    second = PoseFlow(pca_bases=10, blocks=3, hidden=16, seed=5).state_dict()
    other = PoseFlow(pca_bases=10, blocks=3, hidden=16, seed=6).state_dict()
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["flow.module_list.0.w_perm"], other["flow.module_list.0.w_perm"])
    key = "flow.module_list.0.subnet.0.weight"
    assert not torch.equal(first[key], other[key])
    w = first["flow.module_list.1.w_perm"].double()
    torch.testing.assert_close(w @ w.T, torch.eye(10, dtype=torch.float64), atol=1e-6, rtol=0)
    assert torch.linalg.det(w).item() == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(first["flow.module_list.1.w_perm_inv"], first["flow.module_list.1.w_perm"].T)
