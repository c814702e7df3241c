"""Normalizing flow over normalised 2D poses: PCA then affine coupling blocks.

The flow of ElePose (Wandt et al., CVPR 2022, Sec. 3, "Stabilized Normalizing Flows"): a
2D pose is projected onto the first ``pca_bases`` principal components of the training poses
and a flow of 8 affine coupling blocks maps it to a standard normal latent ``z``. The loss
``L_NF = 0.5 ||z||^2 - log|det J|`` is the negative log-likelihood of Eq. 1 up to a constant.

The coupling block reproduces ``FrEIA.modules.AllInOneBlock`` of FrEIA 0.2 (Ardizzone et al.,
MIT licence) with the options of the authors' code (soft permutation, SOFTPLUS global affine,
clamp 2.0); its state_dict keys equal FrEIA's, and :class:`CouplingFlow`'s equal those of
``FrEIA.framework.SequenceINN``, so weights move between the two with ``load_state_dict``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import special_ortho_group
from torch import Tensor, nn

from elepose.filling import principal_components

__all__ = ["AllInOneBlock", "CouplingFlow", "PoseFlow"]

_SOFTPLUS_BETA = 0.5  # FrEIA 0.2, global_affine_type='SOFTPLUS'
_SOFTPLUS_FACTOR = 0.1  # FrEIA 0.2: scale = 0.1 * softplus_{beta=0.5}(global_scale)
_SUBNET_OUTPUT_FACTOR = 0.1  # FrEIA 0.2: the coupling coefficients are scaled by 0.1


def _init_linear(layer: nn.Linear, generator: torch.Generator) -> None:
    """PyTorch's default ``nn.Linear`` initialisation, drawn from ``generator``."""
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    bound = 1.0 / math.sqrt(layer.in_features)
    nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def _linear(in_features: int, out_features: int, generator: torch.Generator | None) -> nn.Linear:
    """An ``nn.Linear``; initialised from ``generator`` (global RNG untouched) when given."""
    if generator is None:
        return nn.Linear(in_features, out_features)
    layer = torch.nn.utils.skip_init(nn.Linear, in_features, out_features)
    _init_linear(layer, generator)
    return layer


@contextlib.contextmanager
def _full_precision(device: torch.device) -> Iterator[None]:
    """Disable autocast so log-determinants are computed in the module's own dtype."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield


class AllInOneBlock(nn.Module):
    """Affine coupling block, then a global affine and a fixed random rotation.

    The form of FrEIA 0.2's ``AllInOneBlock`` with ``permute_soft=True``,
    ``global_affine_type='SOFTPLUS'``, ``gin_block=False``, no Householder and no
    pre-permutation. For ``x (B, C)`` split into ``x1 (B, C - C//2)`` and ``x2 (B, C//2)``:

    - ``a = 0.1 * subnet(x1)``, ``s = clamp * tanh(a[:, :C//2])``, ``t = a[:, C//2:]``;
    - ``u = cat(x1, x2 * exp(s) + t)`` (the first half passes unchanged);
    - ``y = (u * g + b) @ W^T`` with ``g = 0.1 * softplus_{beta=0.5}(global_scale)``,
      ``b = global_offset`` and ``W`` a rotation drawn from SO(C) (``w_perm``);
    - ``log|det dy/dx| = sum(s) + sum(log g)`` (``W`` is orthogonal).

    ``subnet`` is ``Linear(C - C//2, hidden) - ReLU - Linear(hidden, 2 * (C//2))`` as in the
    ElePose code. The state_dict keys (``subnet.0.weight``, ``global_scale``,
    ``global_offset``, ``w_perm``, ``w_perm_inv``, ...) equal FrEIA's; the rotation is kept
    in float32 as FrEIA does, so ``w_perm_inv`` is its transpose.

    References: FrEIA (Ardizzone et al.), ``FrEIA/modules/all_in_one_block.py`` v0.2;
    Real NVP (Dinh et al., 2017) for the affine coupling.

    Args:
        channels: dimension ``C`` of the data (>= 2; odd works, split as FrEIA does).
        hidden: width of the subnet's hidden layer.
        affine_clamping: ``clamp`` bounding the log-scale to ``[-clamp, clamp]``.
        global_affine_init: initial global scale ``g``.
        rng: draws the rotation (fresh entropy when ``None``).
        generator: draws the subnet's initial weights (PyTorch's global RNG when ``None``).

    Example:
        >>> block = AllInOneBlock(6, hidden=8, rng=np.random.default_rng(0))
        >>> y, logdet = block(torch.randn(4, 6))
        >>> x, neg_logdet = block(y, rev=True)
        >>> y.shape, logdet.shape
        (torch.Size([4, 6]), torch.Size([4]))
    """

    w_perm: Tensor
    w_perm_inv: Tensor

    def __init__(
        self,
        channels: int,
        hidden: int = 1024,
        *,
        affine_clamping: float = 2.0,
        global_affine_init: float = 1.0,
        rng: np.random.Generator | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f"AllInOneBlock: channels must be >= 2, got {channels}")
        if global_affine_init <= 0:
            raise ValueError(f"AllInOneBlock: global_affine_init must be > 0, got {global_affine_init}")
        self.channels = channels
        self.clamp = float(affine_clamping)
        # FrEIA: split_len1 = C - C//2 conditions the transform of split_len2 = C//2.
        self.splits = [channels - channels // 2, channels // 2]

        # Pre-activation value that softplus maps to global_affine_init (FrEIA's formula).
        initial = 2.0 * np.log(np.exp(0.5 * 10.0 * global_affine_init) - 1.0)
        self.global_scale = nn.Parameter(torch.full((1, channels), float(initial)))
        self.global_offset = nn.Parameter(torch.zeros(1, channels))

        if rng is None:
            rng = np.random.default_rng()
        rotation = special_ortho_group.rvs(channels, random_state=rng)
        rotation = np.asarray(rotation, dtype=np.float64).reshape(channels, channels)
        self.register_buffer("w_perm", torch.tensor(rotation, dtype=torch.float32))
        self.register_buffer("w_perm_inv", torch.tensor(rotation.T, dtype=torch.float32))

        self.subnet = nn.Sequential(
            _linear(self.splits[0], hidden, generator),
            nn.ReLU(inplace=True),  # in place: the (B, hidden) activation is the memory-bound step
            _linear(hidden, 2 * self.splits[1], generator),
        )

    def global_scale_value(self) -> Tensor:
        """The global scale ``g (1, C)`` after the softplus activation."""
        return _SOFTPLUS_FACTOR * F.softplus(self.global_scale, beta=_SOFTPLUS_BETA, threshold=20.0)

    def forward(self, x: Tensor, rev: bool = False, subnet_dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
        """``x (B, C)`` -> ``(y (B, C), log|det dy/dx| (B,))``; with ``rev`` the inverse map
        and its log-determinant (the negative of the forward one at the same point).

        ``subnet_dtype`` (e.g. ``torch.bfloat16``): run the subnet's two matrix products in that
        dtype and everything else (the coupling, the log-determinant) in the block's own; for
        inference only (the NLL moves by hundredths of a nat, see ``PoseFlow.nll``).
        """
        if not rev and subnet_dtype is None and not torch.is_grad_enabled():
            return self._scoring_forward(x)
        scale = self.global_scale_value()
        global_logdet = torch.log(scale).sum()
        if rev:
            x = (F.linear(x, self.w_perm_inv) - self.global_offset) / scale

        x1, x2 = torch.split(x, self.splits, dim=1)
        if subnet_dtype is None or subnet_dtype == x.dtype:
            a = self.subnet(x1) * _SUBNET_OUTPUT_FACTOR
        else:
            first, last = self.subnet[0], self.subnet[2]
            hidden = F.linear(x1.to(subnet_dtype), first.weight.to(subnet_dtype), first.bias.to(subnet_dtype))
            hidden = F.linear(hidden.relu_(), last.weight.to(subnet_dtype), last.bias.to(subnet_dtype))
            a = hidden.to(x.dtype) * _SUBNET_OUTPUT_FACTOR
        half = self.splits[1]
        log_scale = self.clamp * torch.tanh(a[:, :half])
        shift = a[:, half:]
        if rev:
            x2 = (x2 - shift) * torch.exp(-log_scale)
            logdet = -log_scale.sum(dim=1) - global_logdet
        else:
            x2 = x2 * torch.exp(log_scale) + shift
            logdet = log_scale.sum(dim=1) + global_logdet
        y = torch.cat((x1, x2), dim=1)

        if not rev:
            y = F.linear(y * scale + self.global_offset, self.w_perm)
        return y, logdet

    def _scoring_forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The forward map without autograd, in fewer passes over ``x``: the same numbers to rounding.

        The subnet's 0.1 and the global affine are folded into the weights
        (``(u * g + b) @ W^T = u @ (W * g)^T + b @ W^T``), the coupling is one ``addcmul`` and the
        rotation two ``addmm`` on the halves (no concatenation): on 2 CPU cores the element-wise
        work over ``(B, C)`` costs about as much as the subnet's matrix products otherwise.
        """
        scale = self.global_scale_value()
        first, last = self.subnet[0], self.subnet[2]
        x1, x2 = torch.split(x, self.splits, dim=1)
        hidden = torch.addmm(first.bias, x1, first.weight.t()).relu_()
        a = torch.addmm(last.bias * _SUBNET_OUTPUT_FACTOR, hidden, (last.weight * _SUBNET_OUTPUT_FACTOR).t())
        half = self.splits[1]
        log_scale = torch.tanh(a[:, :half]).mul_(self.clamp)
        x2 = torch.addcmul(a[:, half:], x2, torch.exp(log_scale))
        rotation = (self.w_perm * scale).t()  # rows: inputs, scaled by the global scale
        bias = F.linear(self.global_offset, self.w_perm)[0]
        split = self.splits[0]
        y = torch.addmm(bias, x1, rotation[:split]).addmm_(x2, rotation[split:])
        return y, log_scale.sum(dim=1) + torch.log(scale).sum()


class CouplingFlow(nn.Module):
    """A chain of :class:`AllInOneBlock` with FrEIA ``SequenceINN``'s state_dict layout.

    Args:
        dim: data dimension ``D``.
        blocks: number of coupling blocks.
        hidden: subnet width.
        seed: fixes the rotations and the initial weights (the global RNGs are untouched).

    Example:
        >>> flow = CouplingFlow(4, blocks=2, hidden=8)
        >>> z, logdet = flow(torch.randn(3, 4))
        >>> torch.allclose(flow(z, rev=True)[0], flow.inverse(z))
        True
    """

    def __init__(self, dim: int, blocks: int = 8, hidden: int = 1024, seed: int = 0) -> None:
        super().__init__()
        if blocks < 1:
            raise ValueError(f"CouplingFlow: blocks must be >= 1, got {blocks}")
        self.dim = dim
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(seed)
        self.module_list = nn.ModuleList(
            AllInOneBlock(dim, hidden, rng=rng, generator=generator) for _ in range(blocks)
        )

    def forward(self, x: Tensor, rev: bool = False, subnet_dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
        """``x (B, D)`` -> ``(z (B, D), log|det dz/dx| (B,))`` (``rev``: the inverse direction).

        Computed in the parameters' dtype with autocast disabled, so the log-determinant
        stays in float32 (or float64) inside a bf16 autocast region; ``subnet_dtype`` runs only
        the subnets' matrix products in another dtype (see :meth:`AllInOneBlock.forward`).
        """
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"CouplingFlow: expected input of shape (B, {self.dim}), got {tuple(x.shape)}")
        dtype = self.module_list[0].global_scale.dtype
        with _full_precision(x.device):
            x = x.to(dtype)
            logdet = x.new_zeros(x.shape[0])
            blocks = reversed(self.module_list) if rev else self.module_list
            for block in blocks:
                x, block_logdet = block(x, rev=rev, subnet_dtype=subnet_dtype)
                logdet = logdet + block_logdet
        return x, logdet

    def inverse(self, z: Tensor) -> Tensor:
        """``z (B, D)`` -> ``x (B, D)``, the inverse of :meth:`forward`."""
        return self.forward(z, rev=True)[0]


def _forget_pca_check(module: nn.Module, incompatible_keys: object) -> None:
    """After ``load_state_dict`` the PCA buffers may have changed: re-check them on next use."""
    module._pca_known_fitted = False


class PoseFlow(nn.Module):
    """PCA of normalised 2D poses followed by a :class:`CouplingFlow` (ElePose's ``L_NF``).

    The PCA (SPEC 4, the authors' code) is fitted on the normalised training poses: mean
    ``pca_mean (2J,)`` and the first ``pca_bases`` principal axes ``pca_components (k, 2J)``,
    not whitened and not re-normalised after projection. It is stored as buffers, so it is part
    of the checkpoint. ``pca_bases=None`` runs the flow on the raw ``2J`` coordinates (the
    "no PCA" ablation of Table 5).

    Args:
        num_joints: joints ``J`` per pose (17).
        pca_bases: PCA dimension ``k`` (26 in the paper; Fig. 4), or ``None`` for no PCA.
        blocks: coupling blocks (8).
        hidden: subnet width (1024).
        seed: fixes the flow's rotations and initial weights without touching global RNGs.

    Example:
        >>> flow = PoseFlow(pca_bases=6, blocks=2, hidden=16)
        >>> poses = torch.randn(100, 17, 2) * 0.1
        >>> flow = flow.fit_pca(poses)
        >>> flow.nll(poses[:5]).shape
        torch.Size([5])
    """

    pca_mean: Tensor
    pca_components: Tensor
    pca_variance_ratio: Tensor

    def __init__(
        self,
        num_joints: int = 17,
        pca_bases: int | None = 26,
        blocks: int = 8,
        hidden: int = 1024,
        seed: int = 0,
    ) -> None:
        super().__init__()
        input_dim = 2 * num_joints
        if pca_bases is not None and not 2 <= pca_bases <= input_dim:
            raise ValueError(f"PoseFlow: pca_bases must be in [2, {input_dim}] or None, got {pca_bases}")
        self.num_joints = num_joints
        self.pca_bases = pca_bases
        self.input_dim = input_dim
        self.dim = input_dim if pca_bases is None else pca_bases
        if pca_bases is not None:
            self.register_buffer("pca_mean", torch.zeros(input_dim))
            self.register_buffer("pca_components", torch.zeros(pca_bases, input_dim))
            self.register_buffer("pca_variance_ratio", torch.zeros(pca_bases))
        # Cache of the fitted check, so forward() does not sync with the GPU on every call.
        self._pca_known_fitted = False
        self.register_load_state_dict_post_hook(_forget_pca_check)
        self.flow = CouplingFlow(self.dim, blocks=blocks, hidden=hidden, seed=seed)

    # -- PCA -------------------------------------------------------------------------------
    @property
    def pca_fitted(self) -> bool:
        """Whether :meth:`fit_pca` has run (or fitted buffers were loaded)."""
        if self.pca_bases is None or self._pca_known_fitted:
            return True
        self._pca_known_fitted = bool(self.pca_variance_ratio.sum() > 0)
        return self._pca_known_fitted

    @property
    def explained_variance(self) -> float:
        """Fraction of the training poses' total variance kept by the PCA (1.0 without PCA)."""
        if self.pca_bases is None:
            return 1.0
        if not self.pca_fitted:
            raise ValueError("PoseFlow: the PCA is not fitted; call fit_pca(poses_2d) first")
        return float(self.pca_variance_ratio.sum())

    def _check_poses(self, poses_2d: Tensor, name: str) -> Tensor:
        poses_2d = torch.as_tensor(poses_2d)
        if poses_2d.ndim != 3 or poses_2d.shape[1:] != (self.num_joints, 2):
            raise ValueError(
                f"PoseFlow.{name}: poses_2d must have shape (N, {self.num_joints}, 2), got {tuple(poses_2d.shape)}"
            )
        return poses_2d

    @torch.no_grad()
    def fit_pca(self, poses_2d: Tensor) -> PoseFlow:
        """Fit the PCA on ``poses_2d (N, J, 2)`` normalised training poses; returns ``self``.

        Eigen-decomposition of the covariance in float64; components ordered by variance, each
        signed so its largest-magnitude loading is positive. Requires ``N > pca_bases``.
        """
        if self.pca_bases is None:
            raise ValueError("PoseFlow.fit_pca: this flow has no PCA (pca_bases=None)")
        poses_2d = self._check_poses(poses_2d, "fit_pca")
        data = poses_2d.reshape(poses_2d.shape[0], -1).to(torch.float64)
        if data.shape[0] <= self.pca_bases:
            raise ValueError(f"PoseFlow.fit_pca: need more than pca_bases={self.pca_bases} poses, got {data.shape[0]}")
        if not torch.isfinite(data).all():
            raise ValueError("PoseFlow.fit_pca: poses_2d contains NaN or infinite values")
        try:
            mean, components, ratio = principal_components(data, self.pca_bases)
        except ValueError:
            raise ValueError("PoseFlow.fit_pca: poses_2d has zero variance (all poses identical)") from None
        self.pca_mean.copy_(mean)
        self.pca_components.copy_(components)
        self.pca_variance_ratio.copy_(ratio)
        return self

    def project(self, poses_2d: Tensor) -> Tensor:
        """``poses_2d (B, J, 2)`` -> PCA coefficients ``(B, k)`` (flattened ``(B, 2J)`` without PCA)."""
        poses_2d = self._check_poses(poses_2d, "project")
        flat = poses_2d.reshape(poses_2d.shape[0], self.input_dim)
        if self.pca_bases is None:
            return flat
        if not self.pca_fitted:
            raise ValueError("PoseFlow: the PCA is not fitted; call fit_pca(poses_2d) first")
        with _full_precision(flat.device):
            flat = flat.to(self.pca_mean.dtype)
            return (flat - self.pca_mean) @ self.pca_components.T

    def back_project(self, coefficients: Tensor) -> Tensor:
        """PCA coefficients ``(B, k)`` -> poses ``(B, J, 2)`` (the approximate reconstruction)."""
        if self.pca_bases is not None:
            with _full_precision(coefficients.device):
                coefficients = coefficients.to(self.pca_mean.dtype) @ self.pca_components + self.pca_mean
        return coefficients.reshape(coefficients.shape[0], self.num_joints, 2)

    # -- flow ------------------------------------------------------------------------------
    def forward(self, poses_2d: Tensor, subnet_dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
        """``poses_2d (B, J, 2)`` normalised -> ``(z (B, D), log|det dz/dc| (B,))``, where ``c``
        is the PCA coefficient vector; float32 (the module's dtype) even under autocast.
        ``subnet_dtype``: the subnets' matrix products in that dtype (inference)."""
        return self.flow(self.project(poses_2d), subnet_dtype=subnet_dtype)

    def nll(self, poses_2d: Tensor, subnet_dtype: torch.dtype | None = None) -> Tensor:
        """Negative log-likelihood per pose, ``0.5 ||z||^2 - log|det J|`` ``(B,)`` (no constant).

        ``subnet_dtype=torch.bfloat16`` is the fast path for scoring (reliability): the subnets'
        products in bf16, the coupling, ``z`` and the log-determinant in float32.
        """
        z, logdet = self.forward(poses_2d, subnet_dtype=subnet_dtype)
        return 0.5 * z.pow(2).sum(dim=1) - logdet

    def inverse(self, z: Tensor) -> Tensor:
        """Latent ``z (B, D)`` -> PCA coefficients ``(B, D)`` (flattened poses without PCA)."""
        return self.flow.inverse(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` poses ``(n, J, 2)``: ``z ~ N(0, I)``, the inverse flow, then the PCA
        back-projection. ``generator`` must live on the flow's device."""
        reference = self.flow.module_list[0].global_scale
        z = torch.randn(n, self.dim, generator=generator, device=reference.device, dtype=reference.dtype)
        return self.back_project(self.inverse(z))
