"""Virtual cameras (ElePose Eq. 5-7): the elevation prior and rotations to random virtual views.

A virtual view turns a lifted pose about the vertical axis by an azimuth ``a ~ U(-pi, pi)`` and
tilts it to an elevation ``e'`` drawn from an :class:`ElevationPrior`. Training draws one view
per pose (:func:`virtual_rotation`, which also de-rotates the pose by its predicted elevation
first); the reliability score draws one set of views for all poses (:func:`sample_views`).
Elevations are radians, looking down positive, everywhere.

Randomness comes only from the ``torch.Generator`` passed in. Rotations are composed and applied
with elementwise products and sums (not ``matmul``), so bf16 autocast keeps them in fp32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch

from elepose.geometry import rotation_x, rotation_y

__all__ = [
    "ElevationPrior",
    "parse_elevation_prior",
    "VirtualRotation",
    "sample_views",
    "virtual_rotation",
    "compose",
    "rotate",
]

_MIN_VARIANCE = 1e-12


@dataclass(frozen=True)
class ElevationPrior:
    """Distribution of the virtual camera's elevation ``e'`` (radians, looking down positive).

    ``kind``:
        ``"learned"`` (ElePose, Eq. 5-6): ``N(mu, sigma)`` with ``mu``, ``sigma`` the mean and
        unbiased standard deviation of the predicted elevations in the batch, sampled by
        reparametrisation ``mu + sigma * eps`` so gradients reach both.
        ``"uniform"``: ``U(low_rad, high_rad)``, fixed (Chen et al. / Yu et al. use
        ``U(-pi/9, pi/9)``).
        ``"normal"``: ``N(mean_rad, std_rad)``, fixed.

    Example:
        >>> ElevationPrior.parse("normal:12,6").to_string()
        'normal:12,6'
        >>> round(ElevationPrior.parse("uniform:-20,20").high_rad, 4)
        0.3491
    """

    kind: Literal["learned", "uniform", "normal"] = "learned"
    low_rad: float = -math.pi / 9
    high_rad: float = math.pi / 9
    mean_rad: float = 0.0
    std_rad: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("learned", "uniform", "normal"):
            raise ValueError(f"ElevationPrior: kind must be 'learned', 'uniform' or 'normal', got {self.kind!r}")
        if self.kind == "uniform" and not self.low_rad <= self.high_rad:
            raise ValueError(f"ElevationPrior: uniform needs low <= high, got {self.low_rad}, {self.high_rad}")
        if self.kind == "normal" and not self.std_rad >= 0:
            raise ValueError(f"ElevationPrior: normal needs std >= 0, got {self.std_rad}")

    @classmethod
    def learned(cls) -> ElevationPrior:
        """ElePose's learned prior (the default)."""
        return cls("learned")

    @classmethod
    def uniform(cls, low_rad: float, high_rad: float) -> ElevationPrior:
        """Fixed ``U(low_rad, high_rad)``."""
        return cls("uniform", low_rad=low_rad, high_rad=high_rad)

    @classmethod
    def normal(cls, mean_rad: float, std_rad: float) -> ElevationPrior:
        """Fixed ``N(mean_rad, std_rad)``."""
        return cls("normal", mean_rad=mean_rad, std_rad=std_rad)

    @classmethod
    def parse(cls, text: str) -> ElevationPrior:
        """Parse ``"learned"``, ``"uniform:LO,HI"`` or ``"normal:MEAN,STD"`` (degrees)."""
        kind, _, args = text.strip().partition(":")
        try:
            values = [math.radians(float(v)) for v in args.split(",")] if args else []
        except ValueError:
            values = None
        if kind == "learned" and not values:
            return cls.learned()
        if kind in ("uniform", "normal") and values is not None and len(values) == 2:
            return cls.uniform(*values) if kind == "uniform" else cls.normal(*values)
        raise ValueError(
            f"elevation prior: expected 'learned', 'uniform:LO,HI' or 'normal:MEAN,STD' in degrees, got {text!r}"
        )

    def to_string(self) -> str:
        """Inverse of :meth:`parse` (degrees)."""
        if self.kind == "learned":
            return "learned"
        if self.kind == "uniform":
            a, b = self.low_rad, self.high_rad
        else:
            a, b = self.mean_rad, self.std_rad
        return f"{self.kind}:{math.degrees(a):.6g},{math.degrees(b):.6g}"


def parse_elevation_prior(text: str, elevation_branch: bool = True) -> ElevationPrior:
    """:meth:`ElevationPrior.parse` (degrees) that also rejects ``"learned"`` for a lifter
    without an elevation branch (the "no elevation" ablation needs a fixed prior)."""
    prior = ElevationPrior.parse(text)
    if prior.kind == "learned" and not elevation_branch:
        raise ValueError(
            "elevation prior: 'learned' needs the lifter's elevation branch; without it use a "
            "fixed prior such as 'uniform:-20,20' or 'normal:12,6' (degrees)"
        )
    return prior


class VirtualRotation(NamedTuple):
    """``R (B, 3, 3)`` to the virtual view; ``mu``, ``sigma`` (scalars, radians) of the
    distribution the virtual elevation was drawn from (batch statistics for the learned prior,
    with gradient; the fixed prior's mean and std otherwise)."""

    R: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor


def virtual_rotation(
    elevation: torch.Tensor | None,
    prior: ElevationPrior,
    generator: torch.Generator,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    detach_stats: bool = False,
    history: torch.Tensor | None = None,
) -> VirtualRotation:
    """Sample rotations to virtual views (Eq. 5-7): ``R = Rx(e') @ Ry(a) @ Rx(-e)``.

    ``elevation (B,)``: predicted elevations ``e``, radians, looking down positive (``None``:
    no elevation branch, ``e = 0``, and then ``batch_size`` is required and ``prior`` must be
    fixed). ``a ~ U(-pi, pi)`` (azimuth); ``e'`` from ``prior`` (``mu + sigma * eps`` for the
    learned prior). Draws, in this order, ``B`` azimuths then ``B`` elevation variates from
    ``generator``. ``detach_stats`` and ``history``: see :func:`sample_views`.

    Sign: SPEC section 3 writes ``R = Rx(-mu + sigma*eps) @ Ry(a) @ Rx(e)`` with the authors'
    elevation, which is looking-*up* positive. Here the learned variable is looking-down
    positive under :func:`elepose.geometry.rotation_x` (a camera looking down by ``theta`` sees
    the world's down direction as ``Rx(theta) @ (0, 1, 0)``), so ``Rx(-e)`` de-rotates a pose
    to upright, ``Ry(a)`` turns it about the vertical axis and ``Rx(e')`` tilts it to the sampled
    elevation: the SPEC's formula with the sign of the learned variable flipped (``eps`` is
    symmetric). In the paper's notation ``R = Re^T Ra R~e`` (Eq. 7).
    """
    if elevation is None:
        if batch_size is None:
            raise ValueError("virtual_rotation: batch_size is required when elevation is None")
        if prior.kind == "learned":
            raise ValueError(
                "virtual_rotation: the learned elevation prior needs predicted elevations; "
                "use a fixed prior (uniform or normal) without an elevation branch"
            )
        dtype = torch.float32
        device = torch.device(device) if device is not None else torch.device("cpu")
    else:
        if elevation.ndim != 1:
            raise ValueError(f"virtual_rotation: elevation must have shape (B,), got {tuple(elevation.shape)}")
        batch_size = elevation.shape[0]
        dtype = torch.promote_types(elevation.dtype, torch.float32)
        device = elevation.device
        elevation = elevation.to(dtype)
    if prior.kind == "learned" and batch_size < 2:
        raise ValueError("virtual_rotation: the learned elevation prior needs a batch of at least 2")
    views = sample_views(
        batch_size, prior, generator, dtype=dtype, device=device, batch_elevation=elevation,
        detach_stats=detach_stats, history=history,
    )  # fmt: skip
    R = views.R if elevation is None else compose(views.R, rotation_x(-elevation))
    return VirtualRotation(R, views.mu, views.sigma)


def sample_views(
    count: int,
    prior: ElevationPrior,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    batch_elevation: torch.Tensor | None = None,
    detach_stats: bool = False,
    history: torch.Tensor | None = None,
) -> VirtualRotation:
    """``count`` rotations from an upright pose to virtual views: ``R = Rx(e') @ Ry(a)`` (Eq. 7).

    ``a ~ U(-pi, pi)``; ``e'`` from ``prior``; for the learned prior ``e' = mu + sigma * eps``
    with ``mu``, ``sigma`` the mean and unbiased std of ``batch_elevation (count,)`` (radians,
    with gradient). Draws, in this order, ``count`` azimuths then ``count`` elevation variates
    from ``generator`` in ``dtype``; returns :class:`VirtualRotation` with ``R (count, 3, 3)``.

    Options of the learned prior (issue 14; the paper's recipe is neither): ``detach_stats``
    gives ``mu`` and ``sigma`` no gradient (the NLL can then not shrink ``sigma`` directly: the
    elevation branch learns only through the de-rotation ``Rx(-e)``); ``history (H,)``: earlier
    batches' elevations (radians, no gradient) pooled with this batch's for ``mu`` and ``sigma``.
    """
    if prior.kind == "learned" and (batch_elevation is None or count < 2):
        raise ValueError("sample_views: the learned elevation prior needs the batch's elevations, at least 2")

    def draw(kind: str) -> torch.Tensor:
        sampler = torch.rand if kind == "uniform" else torch.randn
        sample = sampler(count, generator=generator, device=generator.device, dtype=dtype)
        return sample.to(device)

    azimuth = (2.0 * draw("uniform") - 1.0) * math.pi
    if prior.kind == "learned":
        assert batch_elevation is not None
        pooled = batch_elevation if history is None else torch.cat([batch_elevation, history.to(batch_elevation)])
        mu = pooled.mean()
        # Unbiased std; the clamp only guards the gradient when all elevations are equal.
        sigma = pooled.var(correction=1).clamp(min=_MIN_VARIANCE).sqrt()
        if detach_stats:
            mu, sigma = mu.detach(), sigma.detach()
        sampled = mu + sigma * draw("normal")
    elif prior.kind == "uniform":
        low, high = prior.low_rad, prior.high_rad
        sampled = low + (high - low) * draw("uniform")
        mu = torch.tensor((low + high) / 2, dtype=dtype, device=device)
        sigma = torch.tensor((high - low) / math.sqrt(12.0), dtype=dtype, device=device)
    else:
        sampled = prior.mean_rad + prior.std_rad * draw("normal")
        mu = torch.tensor(prior.mean_rad, dtype=dtype, device=device)
        sigma = torch.tensor(prior.std_rad, dtype=dtype, device=device)
    return VirtualRotation(compose(rotation_x(sampled), rotation_y(azimuth)), mu, sigma)


def compose(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for ``(B, 3, 3)`` matrices, elementwise so that autocast keeps fp32."""
    return (a[:, :, :, None] * b[:, None, :, :]).sum(-2)


def rotate(rotation: torch.Tensor, poses_3d: torch.Tensor) -> torch.Tensor:
    """Apply ``rotation (B, 3, 3)`` to every joint of ``poses_3d (B, J, 3)`` -> ``(B, J, 3)``.

    Elementwise products and a sum (not ``matmul``), so bf16 autocast keeps it in fp32.
    """
    return (rotation[:, None, :, :] * poses_3d[:, :, None, :]).sum(-1)
