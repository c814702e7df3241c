"""The benchmark's targets, each once, as data: what it measures, its threshold, where it comes
from, and how its value is read from the collected results. The summary evaluates them into
``results.json``; the report prints them from there and reads the thresholds it quotes here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elepose.benchmark import domain_checks, rows
from elepose.benchmark.lookup import metric

__all__ = ["Target", "TARGETS", "target", "evaluate_targets", "RELIABILITY_BF16_TOLERANCE"]


@dataclass(frozen=True)
class Target:
    """One target: ``value(results)`` gives the measured number and its text (None when not measured);
    it is met when the number is at least (``at_least``) or at most the threshold."""

    key: str
    measures: str
    threshold: float
    at_least: bool
    source: str
    value: Callable[[dict[str, Any]], tuple[float, str] | None]

    def check(self, results: dict[str, Any]) -> dict[str, Any] | None:
        """This target evaluated on ``results``: its key, text, measured text, value and whether it is met."""
        found = self.value(results)
        if found is None:
            return None
        number, text = found
        met = number >= self.threshold if self.at_least else number <= self.threshold
        return {"key": self.key, "target": self.measures, "measured": text, "value": number, "met": met}


def _precisions(r: dict[str, Any]) -> dict[str, Any]:
    return r.get("speed", {}).get("precisions", {})


def _step_fraction(r: dict[str, Any]) -> tuple[float, str] | None:
    fp32 = _precisions(r).get("fp32")
    return None if fp32 is None else (fp32["fraction_of_matmul"], f"{100 * fp32['fraction_of_matmul']:.0f} %")


def _bf16_speedup(r: dict[str, Any]) -> tuple[float, str] | None:
    prec = _precisions(r)
    if "fp32" not in prec or "bf16" not in prec:
        return None
    ratio = prec["bf16"]["samples_per_s"] / prec["fp32"]["samples_per_s"]
    return ratio, f"{ratio:.2f}x"


def _bf16_accuracy(r: dict[str, Any]) -> tuple[float, str] | None:
    ele, fp32 = metric(r, rows.MAIN), metric(r, rows.FP32)
    if ele is None or fp32 is None:
        return None
    diff = (ele - fp32) / fp32 if r["profile"]["lifter"]["precision"] == "bf16" else (fp32 - ele) / ele
    return abs(diff), f"{100 * diff:+.1f} %"


def _bf16_step_1024(r: dict[str, Any]) -> tuple[float, str] | None:
    bf16 = _precisions(r).get("bf16")
    if bf16 is None or r.get("speed", {}).get("hidden") != 1024:
        return None
    return bf16["samples_per_s"], f"{bf16['samples_per_s']:,.0f} samples/s"


def _lift_rate(r: dict[str, Any]) -> tuple[float, str] | None:
    lift = r.get("speed", {}).get("lift")
    return None if lift is None else (lift["batched_poses_per_s"], f"{lift['batched_poses_per_s']:,.0f} poses/s")


def _against_supervised(r: dict[str, Any]) -> tuple[float, str] | None:
    ele, sup = metric(r, rows.MAIN), metric(r, rows.SUPERVISED)
    return None if ele is None or sup is None else (ele / sup, f"{ele / sup:.2f}x ({ele:.1f} vs {sup:.1f} mm)")


def _elevation(r: dict[str, Any]) -> dict[str, Any] | None:
    return r["lifters"].get(rows.MAIN, {}).get("evaluation", {}).get("gt", {}).get("elevation")


def _elevation_r(r: dict[str, Any]) -> tuple[float, str] | None:
    e = _elevation(r)
    return None if not e else (e["correlation"], f"{e['correlation']:.3f}")


def _elevation_spread(r: dict[str, Any]) -> tuple[float, str] | None:
    e = _elevation(r)
    if not e:
        return None
    ratio = e["predicted_std_deg"] / e["true_std_deg"]
    return ratio, f"{ratio:.2f}x ({e['predicted_std_deg']:.2f} vs {e['true_std_deg']:.2f} deg)"


def _gain_over_fixed(r: dict[str, Any]) -> tuple[float, str] | None:
    ele, fixed = metric(r, rows.MAIN), metric(r, rows.FIXED_PRIOR)
    return None if ele is None or fixed is None else ((fixed - ele) / fixed, f"{100 * (fixed - ele) / fixed:+.1f} %")


def _domain_gain(share: float) -> Callable[[dict[str, Any]], tuple[float, str] | None]:
    def value(r: dict[str, Any]) -> tuple[float, str] | None:
        domain = r.get("domain")
        best = None if not domain else domain_checks.best_init(domain, share)
        if best is None:
            return None
        ref, _ = domain_checks.reference(domain)
        gain = (ref - best[0]) / ref
        return gain, f"{100 * gain:+.1f} % ({best[1]} {best[0]:.1f} vs transferred {ref:.1f} mm)"

    return value


def _domain_scratch(r: dict[str, Any]) -> tuple[float, str] | None:
    domain = r.get("domain")
    scratch = None if not domain else domain_checks.scratch_all(domain)
    if scratch is None:
        return None
    flat = domain_checks.flat(domain)
    gain = (flat - scratch[0]) / flat
    return gain, f"{100 * gain:+.1f} % ({scratch[0]:.1f} vs flat {flat:.1f} mm)"


def _domain_never_worse(r: dict[str, Any]) -> tuple[float, str] | None:
    domain = r.get("domain")
    worst = None if not domain else domain_checks.worst_init_against_reference(domain)
    return None if worst is None else (worst[0], f"{worst[0]:.2f}x the transferred lifter ({worst[1]})")


def _domain_minutes(r: dict[str, Any]) -> tuple[float, str] | None:
    domain = r.get("domain")
    scratch = None if not domain else domain_checks.scratch_all(domain)
    if scratch is None:
        return None
    entry = domain["lifters"][scratch[1]]
    return entry["minutes"], f"{entry['minutes']:.1f} min ({entry['training_poses']:,} poses, {scratch[1]})"


_SPEED = "the project's speed goals"
_AUTHORS = "2x the authors' training step on a 2-core machine of this type (2,350 samples/s in bf16)"
_ACCURACY = "the project's accuracy goals for the motion-capture benchmark"
_ELEVATION = "the project's goals for the elevation branch (set for the long profile)"
_ADAPTATION = "issue #22: adaptation that pays on a new domain"

TARGETS: tuple[Target, ...] = (
    Target("step-fraction", "training step >= 60 % of the fp32 matmul rate", 0.60, True, _SPEED, _step_fraction),
    Target("bf16-speedup", "bf16 >= 2x fp32 samples/s", 2.0, True, _SPEED, _bf16_speedup),
    Target("bf16-accuracy", "bf16 final PA-MPJPE within 2 % of fp32", 0.02, False, _ACCURACY, _bf16_accuracy),
    Target(
        "bf16-step-1024", "bf16 training step at width 1024 >= 4,700 samples/s", 4_700, True, _AUTHORS, _bf16_step_1024
    ),
    Target("lift-10k", "lift with reliability >= 10,000 poses/s batched", 10_000, True, _SPEED, _lift_rate),
    Target("lift-50k", "lift with reliability >= 50,000 poses/s batched", 50_000, True, _SPEED, _lift_rate),
    Target("supervised-ratio", "ElePose PA-MPJPE <= 1.25x supervised", 1.25, False, _ACCURACY, _against_supervised),
    Target("elevation-r", "elevation branch: r (predicted vs true, test) >= 0.8", 0.8, True, _ELEVATION, _elevation_r),
    Target(
        "elevation-spread",
        "elevation branch: spread of predictions >= 0.5x the cameras'",
        0.5,
        True,
        _ELEVATION,
        _elevation_spread,
    ),
    Target(
        "elevation-gain",
        "elevation branch improves PA-MPJPE >= 10 % over the fixed prior",
        0.10,
        True,
        _ACCURACY,
        _gain_over_fixed,
    ),
    Target(
        "domain-init-100",
        "another domain: the best fit --init beats the transferred lifter by >= 15 %, all segments",
        0.15,
        True,
        _ADAPTATION,
        _domain_gain(1.0),
    ),
    Target(
        "domain-init-10",
        "another domain: the best fit --init beats the transferred lifter by >= 5 %, 10 % of the segments",
        0.05,
        True,
        _ADAPTATION,
        _domain_gain(0.1),
    ),
    Target(
        "domain-scratch",
        "another domain: fit from scratch on all segments beats lifting flat by >= 30 %",
        0.30,
        True,
        _ADAPTATION,
        _domain_scratch,
    ),
    Target(
        "domain-never-worse",
        "another domain: no share makes fit --init worse than the transferred lifter",
        1.0,
        False,
        _ADAPTATION,
        _domain_never_worse,
    ),
    Target(
        "domain-fit-minutes",
        "another domain: fit --samples 360000 on all segments within 15 min",
        15.0,
        False,
        _ADAPTATION,
        _domain_minutes,
    ),
)


def target(key: str) -> Target:
    """The target named ``key``."""
    return next(t for t in TARGETS if t.key == key)


RELIABILITY_BF16_TOLERANCE = {"nats": 0.05, "percentile_points": 1.0}
"""How far the reliability NLL may move for ``lift`` to compute it with bf16 subnets (it stays fp32 otherwise)."""


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target that ``results`` has the numbers for, in :data:`TARGETS` order."""
    return [checked for t in TARGETS if (checked := t.check(results)) is not None]
