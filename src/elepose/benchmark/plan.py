"""The benchmark's run plan: every run of a profile, in execution order, with its settings.

A :class:`Run` is one step (a cache, a flow, a lifter, section 7 or the speed measurements);
:func:`plan_runs` lists them, names from :mod:`elepose.benchmark.rows`, settings from the
profile's budgets; :func:`select` keeps the ones ``--only`` asks for and what they need, and
:func:`split_rows` reads the rows of a section that ``--only`` names (``domain/fit-distill-1pct``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from elepose.benchmark import rows
from elepose.benchmark.profiles import Profile
from elepose.data.cameras import CameraOptions
from elepose.data.mocap import BuildOptions
from elepose.train.config import FlowConfig, TrainConfig, lr_decay_per_epoch

__all__ = ["Run", "plan_runs", "select", "split_rows", "ROW_SECTIONS", "camera_distributions", "OPTION_VARIANTS"]


@dataclass(frozen=True)
class Run:
    """One step of the benchmark: ``kind`` is cache | flow | lifter | own2d | domain | speed; ``needs`` are run names."""

    name: str
    kind: str
    label: str
    out: Path
    config: Any = None
    needs: tuple[str, ...] = ()


OPTION_VARIANTS: dict[str, tuple[str | None, dict[str, Any], str]] = {
    # name: (the flow's 2D normalisation, None for the dataset scale; lifter settings; label)
    "scale-pose": ("pose", {}, "2D scaled per pose (RMS distance to the pelvis)"),
    "scale-pose-head": ("pose-head", {}, "2D scaled per pose (its pelvis-head distance)"),
    "stats-detached": (None, {"elevation_stats": "detached"}, "mu_e, sigma_e without gradient"),
    "stats-window16": (None, {"elevation_stats": "window:16"}, "mu_e, sigma_e over 16 batches"),
    "elevation-lr4": (None, {"elevation_lr_scale": 4.0}, "elevation branch at 4x the learning rate"),
    "warmup0": (None, {"elevation_warmup_steps": 0}, "no elevation hold"),
    "warmup0-init0": (
        None,
        {"elevation_warmup_steps": 0, "elevation_init_deg": 0.0},
        "no hold, branch starts at 0 deg",
    ),
}
"""Section 9's variants of ElePose, each against :data:`rows.CAMERA_BASELINE`."""

_FIXED = {"elevation": False, "elevation_prior": "uniform:-20,20"}
_ABLATIONS_WITHOUT_PCA = {
    "base": {**_FIXED, "bone_prior": False},
    "base+bone": _FIXED,
    "base+bone+elevation": {},
}
"""Table 5's runs on the flow without PCA: their lifter settings."""


def flow_settings(profile: Profile, cache: Path, device: str) -> FlowConfig:
    """The benchmark's flow settings on ``cache`` (``out`` and ``pca_bases`` set per run)."""
    budget = profile.flow
    return FlowConfig(
        scale="dataset",  # the SPEC's (and the authors') normalisation for the motion-capture benchmark
        data=str(cache),
        out="",
        epochs=budget.epochs,
        epoch_samples=budget.epoch_samples,
        hidden=budget.hidden,
        blocks=budget.blocks,
        batch_size=budget.batch_size,
        lr=budget.lr,
        device=device,
    )


def lifter_settings(profile: Profile, cache: Path, device: str, n_train: int | None) -> TrainConfig:
    """The benchmark's lifter settings on ``cache`` (``flow`` and ``out`` set per run)."""
    budget = profile.lifter
    return TrainConfig(
        data=str(cache),
        flow="",
        out="",
        epochs=budget.epochs,
        epoch_samples=budget.epoch_samples,
        hidden=budget.hidden,
        batch_size=budget.batch_size,
        precision=budget.precision,
        lr=budget.lr,
        lr_decay=lr_decay_per_epoch(budget.epoch_samples, n_train),
        eval_samples=budget.check_samples,
        reliability_rotations=budget.check_rotations,
        elevation_warmup_steps=budget.elevation_warmup_steps,
        device=device,
    )


def _main_lifters(profile: Profile) -> dict[str, tuple[str, dict[str, Any], str]]:
    """Sections 1-4 and 6's lifters: name -> (flow run, settings changed, label)."""
    lifters: dict[str, tuple[str, dict[str, Any], str]] = {}
    for seed in (0, *(s for s in profile.seeds if s != 0)):
        name = rows.seed_run(seed)
        lifters[name] = (rows.FLOW, {} if seed == 0 else {"seed": seed}, rows.lifter_label(name, seed=seed))
    lifters[rows.FP32] = (rows.FLOW, {"precision": "fp32"}, rows.lifter_label(rows.FP32))
    lifters[rows.FIXED_PRIOR] = (rows.FLOW, _FIXED, rows.lifter_label(rows.FIXED_PRIOR))
    true_prior = {"elevation": False, "elevation_prior": "normal:12,6"}
    lifters[rows.FIXED_PRIOR_TRUE] = (rows.FLOW, true_prior, rows.lifter_label(rows.FIXED_PRIOR_TRUE))
    # The loop builds no elevation branch for the supervised bound.
    lifters[rows.SUPERVISED] = (rows.FLOW, {"supervised": True}, rows.lifter_label(rows.SUPERVISED))
    for name, changes in _ABLATIONS_WITHOUT_PCA.items():
        lifters[name] = (rows.pca_flow(None), changes, rows.lifter_label(name))
    for bases in profile.pca_sweep:
        if rows.pca_lifter(bases) not in lifters:
            name = rows.pca_lifter(bases)
            lifters[name] = (rows.pca_flow(bases), {}, rows.lifter_label(name, pca_bases=bases))
    if profile.lifter_rows is not None:
        lifters = {name: lifters[name] for name in profile.lifter_rows}
    return lifters


def plan_runs(profile: Profile, work: Path, cache: Path, device: str, n_train: int | None = None) -> list[Run]:
    """Every run of ``profile`` in execution order (cache, flows, lifters, sections 8 and 9, 7, speed).

    ``n_train``: the cache's training poses, for the learning-rate decay per short epoch (None
    before the cache is built)."""
    flow_base = flow_settings(profile, cache, device)
    lifter_base = lifter_settings(profile, cache, device, n_train)
    lifters = _main_lifters(profile)
    flows: dict[str, int | None] = {rows.FLOW: 26, rows.pca_flow(None): None}
    flows.update({rows.pca_flow(bases): bases for bases in profile.pca_sweep})
    needed = {flow for flow, _, _ in lifters.values()} | {rows.FLOW}
    runs = [Run(rows.CACHE, "cache", "Bandai benchmark cache", cache)]
    for name, bases in flows.items():
        if name in needed:
            label = "flow, no PCA" if bases is None else f"flow, {bases} PCA bases"
            config = replace(flow_base, out=str(work / name), pca_bases=bases)
            runs.append(Run(name, "flow", label, work / name, config, (rows.CACHE,)))
    for name, (flow, changes, label) in lifters.items():
        config = replace(lifter_base, flow=str(work / flow), out=str(work / name), **changes)
        runs.append(Run(name, "lifter", label, work / name, config, (rows.CACHE, flow)))
    runs += _camera_runs(profile, work, cache, flow_base, lifter_base)
    runs += _option_runs(profile, work, flow_base, lifter_base)
    if profile.own2d is not None:
        label = "Train on your own 2D: fit on detector files (dataset 1), transferred and cache-path lifters"
        config = (flow_base, lifter_base)
        runs.append(Run(rows.OWN2D, "own2d", label, work / rows.OWN2D, config, (rows.CACHE, rows.MAIN)))
    if profile.domain is not None:
        label = "Another domain: fit on CMU from the Bandai lifter, transferred, supervised bound"
        config = (flow_base, lifter_base)
        runs.append(Run(rows.DOMAIN, "domain", label, work / rows.DOMAIN, config, (rows.CACHE, rows.MAIN)))
    if profile.speed is not None:
        needs = (rows.CACHE, rows.FLOW, rows.MAIN)
        runs.append(Run(rows.SPEED, "speed", "speed measurements", work / "speed.json", None, needs))
    return runs


def camera_distributions(profile: Profile) -> list[tuple[str, float, float]]:
    """Section 8's distributions, the default cameras first: ``(name, mean deg, std deg)``."""
    if profile.cameras is None or not profile.cameras.distributions:
        return []
    default = CameraOptions()
    return [("default", default.elevation_mean_deg, default.elevation_std_deg), *profile.cameras.distributions]


def _section_budget(profile: Profile, lifter_base: TrainConfig) -> TrainConfig:
    """The lifter settings of sections 8 and 9: ``lifter_base`` at their length, width and rate."""
    budget = profile.cameras
    assert budget is not None
    return replace(lifter_base, epochs=budget.epochs, hidden=budget.hidden, lr=budget.lr)


def _camera_runs(
    profile: Profile, work: Path, cache: Path, flow_base: FlowConfig, lifter_base: TrainConfig
) -> list[Run]:
    """Section 8's runs: a cache and flow per other distribution, and ElePose, the fixed U(-20, 20)
    prior and the fixed prior at the cameras' true N(mean, std) on each distribution."""
    runs: list[Run] = []
    for name, mean, std in camera_distributions(profile):
        cache_name, flow_name = rows.camera_cache(name), rows.camera_flow(name)
        cache_dir = cache if name == "default" else work / cache_name
        if name != "default":
            options = BuildOptions(cameras=replace(CameraOptions(), elevation_mean_deg=mean, elevation_std_deg=std))
            label = f"Bandai cache, camera elevation N({mean:g}, {std:g}) deg"
            runs.append(Run(cache_name, "cache", label, cache_dir, options))
            flow = replace(flow_base, data=str(cache_dir), out=str(work / flow_name), pca_bases=26)
            label = f"flow, 26 PCA bases, cameras {name}"
            runs.append(Run(flow_name, "flow", label, work / flow_name, flow, (cache_name,)))
        variants = {
            rows.MAIN: ({}, "ElePose"),
            rows.FIXED_PRIOR: (_FIXED, "fixed prior U(-20,20)"),
            rows.FIXED_PRIOR_TRUE: ({"elevation": False, "elevation_prior": f"normal:{mean:g},{std:g}"},
                                    f"fixed prior N({mean:g},{std:g})"),
        }  # fmt: skip
        for variant in rows.CAMERA_VARIANTS:
            changes, label = variants[variant]
            run_name = rows.camera_run(name, variant)
            config = replace(
                _section_budget(profile, lifter_base),
                data=str(cache_dir),
                flow=str(work / flow_name),
                out=str(work / run_name),
                **changes,
            )
            needs = tuple(dict.fromkeys((rows.CACHE, cache_name, flow_name)))
            label = f"{label}, cameras N({mean:g},{std:g}) deg"
            runs.append(Run(run_name, "lifter", label, work / run_name, config, needs))
    return runs


def _option_runs(profile: Profile, work: Path, flow_base: FlowConfig, lifter_base: TrainConfig) -> list[Run]:
    """Section 9's runs: ElePose with one option changed, at section 8's budget on the default cameras
    (its baseline is section 8's default-cameras ElePose, so both sections run together)."""
    if not (profile.options and camera_distributions(profile)):
        return []
    runs: list[Run] = []
    for scale in sorted({scale for scale, _, _ in OPTION_VARIANTS.values() if scale is not None}):
        out = work / rows.scale_flow(scale)
        config = replace(flow_base, out=str(out), pca_bases=26, scale=scale)
        runs.append(Run(out.name, "flow", f"flow, 26 PCA bases, 2D scale {scale}", out, config, (rows.CACHE,)))
    for name, (scale, changes, label) in OPTION_VARIANTS.items():
        flow = work / (rows.FLOW if scale is None else rows.scale_flow(scale))
        out = work / rows.option_run(name)
        config = replace(_section_budget(profile, lifter_base), flow=str(flow), out=str(out), **changes)
        runs.append(Run(out.name, "lifter", f"ElePose, {label}", out, config, (rows.CACHE, flow.name)))
    return runs


def select(runs: list[Run], only: list[str] | None) -> list[Run]:
    """The runs ``--only`` names and every run they need, in plan order (all of them for None)."""
    if not only:
        return runs
    by_name = {r.name: r for r in runs}
    unknown = [n for n in only if n not in by_name]
    if unknown:
        raise ValueError(f"--only: unknown run(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    wanted: set[str] = set()
    stack = list(only)
    while stack:
        name = stack.pop()
        if name not in wanted:
            wanted.add(name)
            stack.extend(by_name[name].needs)
    return [r for r in runs if r.name in wanted]


ROW_SECTIONS = (rows.DOMAIN,)
"""The runs whose rows ``--only RUN/ROW`` can pick one by one (each row is a fit of its own)."""


def split_rows(only: list[str] | None) -> tuple[list[str] | None, dict[str, list[str]]]:
    """``--only``'s names as run names and, per section of :data:`ROW_SECTIONS`, the rows asked for.

    ``["domain/fit-distill-1pct", "domain/fit-distill-10pct"]`` -> ``(["domain"], {"domain": [both
    rows]})``: the domain run, its other rows not run. A run named alone as well runs whole.
    Raises ValueError for a row of a run that has no rows of its own.
    """
    if not only:
        return only, {}
    names: list[str] = []
    picked: dict[str, list[str]] = {}
    for name in only:
        run, _, row = name.partition("/")
        if row and run not in ROW_SECTIONS:
            raise ValueError(f"--only {name}: expected RUN/ROW only for {', '.join(ROW_SECTIONS)}")
        if run not in names:
            names.append(run)
        if row:
            picked.setdefault(run, []).append(row)
    whole = {n for n in only if "/" not in n}
    return names, {run: r for run, r in picked.items() if run not in whole}
