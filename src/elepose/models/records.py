"""What a run folder's ``config.json`` says, as typed records read once at the edge.

A flow run's config is a :class:`FlowRecord`; a lifter run's is a :class:`LifterRecord`, which
holds the record of the flow it was trained with, the learned elevation distribution
(:class:`ElevationStats`) and the NLL calibration of the reliability score
(:class:`ReliabilityCalibration`). ``from_dict`` checks every field's type and range and names
the file and the field of the first one that is wrong, so a damaged or hand-edited config
stops with one clear message instead of failing deep inside the model.

Example:
    >>> from elepose.models.normalisation import Normalisation
    >>> record = FlowRecord(pca_bases=26, blocks=8, hidden=1024, normalisation=Normalisation("pose", 100.0))
    >>> FlowRecord.from_dict(record.to_dict(), "config.json") == record
    True
    >>> FlowRecord.from_dict({**record.to_dict(), "hidden": "512"}, "config.json")
    Traceback (most recent call last):
    ...
    elepose.errors.InputError: config.json: field 'hidden': expected an integer in 1..65536, got '512'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from elepose.errors import InputError, short_repr
from elepose.models.normalisation import INPUT_KINDS, Normalisation
from elepose.skeleton import LAYOUT_DEFINITIONS

__all__ = ["FlowRecord", "ElevationStats", "ReliabilityCalibration", "LifterRecord", "LIFTER_VARIANTS"]

LIFTER_VARIANTS = ("shared", "towers")
_MAX_WIDTH = 65536  # wider layers than this are a damaged file, not a model (1e12 would allocate terabytes)
_MAX_BLOCKS = 1024


def _bad(where: str, key: str, expected: str, value: Any) -> InputError:
    return InputError(f"{where}: field {key!r}: expected {expected}, got {short_repr(value)}")


def _object(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    return raw


def _require(raw: dict[str, Any], key: str, where: str) -> Any:
    if key not in raw:
        raise InputError(f"{where}: field {key!r} is missing")
    return raw[key]


def _int(raw: dict[str, Any], key: str, where: str, low: int, high: int, default: Any = ...) -> int:
    value = _require(raw, key, where) if default is ... else raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(where, key, f"an integer in {low}..{high}", value)
    return value


def _optional_int(raw: dict[str, Any], key: str, where: str, low: int, high: int) -> int | None:
    if raw.get(key) is None:
        _require(raw, key, where)
        return None
    return _int(raw, key, where, low, high)


def _float(value: Any, where: str, key: str, low: float = -math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < low:
        raise _bad(where, key, f"a finite number >= {low}" if low > -math.inf else "a finite number", value)
    return float(value)


def _bool(raw: dict[str, Any], key: str, where: str, default: Any = ...) -> bool:
    value = _require(raw, key, where) if default is ... else raw.get(key, default)
    if not isinstance(value, bool):
        raise _bad(where, key, "true or false", value)
    return value


def _choice(raw: dict[str, Any], key: str, where: str, choices: tuple[str, ...], default: Any = ...) -> str:
    value = _require(raw, key, where) if default is ... else raw.get(key, default)
    if value not in choices:
        raise _bad(where, key, "one of " + ", ".join(choices), value)
    return value


def _text(raw: dict[str, Any], key: str, where: str, default: str | None = None) -> str | None:
    value = raw.get(key, default)
    if value is not None and not isinstance(value, str):
        raise _bad(where, key, "a string", value)
    return value


def _metrics(raw: dict[str, Any], where: str) -> dict[str, float]:
    value = raw.get("metrics", {})
    if not isinstance(value, dict):
        raise _bad(where, "metrics", "an object of numbers", value)
    return dict(value)


@dataclass(frozen=True)
class FlowRecord:
    """A flow run (``elepose flow``): the PCA and coupling sizes and how 2D inputs are normalised.

    ``pca_bases`` None = the flow works on the raw 34-D pose. ``epoch`` and ``metrics`` are the
    last finished epoch's; ``data`` / ``data_sources`` say what it was trained on.
    """

    pca_bases: int | None
    blocks: int
    hidden: int
    normalisation: Normalisation
    seed: int = 0
    input: str = "gt"
    data: str | None = None
    data_sources: Any = None
    epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    elepose: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pca_bases": self.pca_bases,
            "blocks": self.blocks,
            "hidden": self.hidden,
            "normalisation": self.normalisation.to_dict(),
            "seed": self.seed,
            "input": self.input,
            "data": self.data,
            "data_sources": self.data_sources,
            "epoch": self.epoch,
            "metrics": self.metrics,
            "elepose": self.elepose,
        }

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> FlowRecord:
        raw = _object(raw, where)
        return cls(
            pca_bases=_optional_int(raw, "pca_bases", where, 2, 34),
            blocks=_int(raw, "blocks", where, 1, _MAX_BLOCKS),
            hidden=_int(raw, "hidden", where, 1, _MAX_WIDTH),
            normalisation=Normalisation.from_dict(
                _require(raw, "normalisation", where), f"{where}: field 'normalisation'"
            ),
            seed=_int(raw, "seed", where, 0, 2**63 - 1, default=0),
            input=_choice(raw, "input", where, INPUT_KINDS, default="gt"),
            data=_text(raw, "data", where),
            data_sources=raw.get("data_sources"),
            epoch=_int(raw, "epoch", where, 0, 10**9, default=0),
            metrics=_metrics(raw, where),
            elepose=_text(raw, "elepose", where),
        )


@dataclass(frozen=True)
class ElevationStats:
    """The learned camera-elevation distribution ``N(mu, sigma)`` over training poses (radians, looking down positive)."""

    mu_rad: float
    sigma_rad: float

    def to_dict(self) -> dict[str, float]:
        return {"mu_rad": self.mu_rad, "sigma_rad": self.sigma_rad}

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> ElevationStats:
        raw = _object(raw, where)
        return cls(
            mu_rad=_float(_require(raw, "mu_rad", where), where, "mu_rad"),
            sigma_rad=_float(_require(raw, "sigma_rad", where), where, "sigma_rad", low=0.0),
        )


@dataclass(frozen=True)
class ReliabilityCalibration:
    """The training poses' NLL at percentiles 0..100 (101 non-decreasing values) and the views per NLL."""

    nll_quantiles: tuple[float, ...]
    rotations: int

    def to_dict(self) -> dict[str, Any]:
        return {"nll_quantiles": list(self.nll_quantiles), "rotations": self.rotations}

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> ReliabilityCalibration:
        raw = _object(raw, where)
        values = _require(raw, "nll_quantiles", where)
        if not isinstance(values, list) or len(values) != 101:
            raise _bad(where, "nll_quantiles", "a list of 101 numbers", values)
        quantiles = tuple(_float(v, where, "nll_quantiles") for v in values)
        if any(b < a for a, b in zip(quantiles, quantiles[1:])):
            raise _bad(where, "nll_quantiles", "non-decreasing values", values)
        return cls(nll_quantiles=quantiles, rotations=_int(raw, "rotations", where, 1, 10**6))


@dataclass(frozen=True)
class LifterRecord:
    """A lifter run (``elepose train``): the network, what it was trained on and with, its calibration.

    ``normalisation`` is the flow's (both see the same 2D). ``learned_elevation`` and
    ``reliability`` are None until the first epoch's calibration (and ``learned_elevation``
    is None for a lifter without an elevation branch that was never calibrated).
    """

    hidden: int
    variant: str
    elevation_branch: bool
    normalisation: Normalisation
    flow: FlowRecord
    elevation_prior: str = "learned"
    supervised: bool = False
    bone_prior: bool = True
    bone_ratios: tuple[float, ...] | None = None
    input: str = "gt"
    data: str | None = None
    epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    learned_elevation: ElevationStats | None = None
    reliability: ReliabilityCalibration | None = None
    elepose: str | None = None
    keypoints: str | None = None  # the training 2D's keypoint layout ("coco17", "halpe26", ...); None: H36M-17

    def to_dict(self) -> dict[str, Any]:
        return {
            "hidden": self.hidden,
            "variant": self.variant,
            "elevation_branch": self.elevation_branch,
            "normalisation": self.normalisation.to_dict(),
            "flow": self.flow.to_dict(),
            "elevation_prior": self.elevation_prior,
            "supervised": self.supervised,
            "bone_prior": self.bone_prior,
            "bone_ratios": None if self.bone_ratios is None else list(self.bone_ratios),
            "input": self.input,
            "data": self.data,
            "epoch": self.epoch,
            "metrics": self.metrics,
            "learned_elevation": None if self.learned_elevation is None else self.learned_elevation.to_dict(),
            "reliability": None if self.reliability is None else self.reliability.to_dict(),
            "elepose": self.elepose,
            "keypoints": self.keypoints,
        }

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> LifterRecord:
        raw = _object(raw, where)
        ratios = raw.get("bone_ratios")
        if ratios is not None:
            if not isinstance(ratios, list) or len(ratios) != 16:
                raise _bad(where, "bone_ratios", "a list of 16 numbers", ratios)
            ratios = tuple(_float(v, where, "bone_ratios", low=0.0) for v in ratios)
        elevation, reliability = raw.get("learned_elevation"), raw.get("reliability")
        prior = raw.get("elevation_prior", "learned")
        if not isinstance(prior, str):
            raise _bad(where, "elevation_prior", "a string such as 'learned' or 'uniform:-20,20'", prior)
        return cls(
            hidden=_int(raw, "hidden", where, 1, _MAX_WIDTH),
            variant=_choice(raw, "variant", where, LIFTER_VARIANTS),
            elevation_branch=_bool(raw, "elevation_branch", where),
            normalisation=Normalisation.from_dict(
                _require(raw, "normalisation", where), f"{where}: field 'normalisation'"
            ),
            flow=FlowRecord.from_dict(_require(raw, "flow", where), f"{where}: field 'flow'"),
            elevation_prior=prior,
            supervised=_bool(raw, "supervised", where, default=False),
            bone_prior=_bool(raw, "bone_prior", where, default=True),
            bone_ratios=ratios,
            input=_choice(raw, "input", where, INPUT_KINDS, default="gt"),
            data=_text(raw, "data", where),
            epoch=_int(raw, "epoch", where, 0, 10**9, default=0),
            metrics=_metrics(raw, where),
            learned_elevation=None
            if elevation is None
            else ElevationStats.from_dict(elevation, f"{where}: field 'learned_elevation'"),
            reliability=None
            if reliability is None
            else ReliabilityCalibration.from_dict(reliability, f"{where}: field 'reliability'"),
            elepose=_text(raw, "elepose", where),
            keypoints=None
            if raw.get("keypoints") is None
            else _choice(raw, "keypoints", where, tuple(LAYOUT_DEFINITIONS)),
        )
