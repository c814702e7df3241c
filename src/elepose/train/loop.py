"""Training loops: flow pretraining and lifter training (single process or ``torchrun`` DDP).

Both loops read top to bottom: set up (data, networks, optimizer), resume or start the run
folder, then per epoch shuffle and step, then evaluate, log and checkpoint. Schedules default to
the paper's (:mod:`elepose.train.config`, SPEC sections 4 and 6). Every epoch ends with an
atomic checkpoint, and ``resume=True`` continues from it exactly: each epoch's data order comes
from a generator seeded by ``(seed, epoch)`` and the sampling generator's state, the global step
and the optimizer are saved with it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from elepose import __version__
from elepose.atomic import recover_folder, replace_folder
from elepose.data.cache import PoseSplit, load_manifest, load_split
from elepose.errors import InputError, TrainingDiverged
from elepose.evaluate.evaluation import evaluate_during_training
from elepose.evaluate.reliability import calibrate_reliability
from elepose.losses import distillation_loss, supervised_loss
from elepose.models import io as run_files
from elepose.models.flow import PoseFlow
from elepose.models.lifter import LiftingNetwork, lift_poses
from elepose.models.normalisation import Normalisation, normalise, select_2d, supervised_targets
from elepose.models.records import FlowRecord, LifterRecord
from elepose.runtime import Distributed, autocast, pick_device, seed_everything, setup_distributed
from elepose.skeleton import H36M_BONE_RATIOS, MPI_INF_3DHP_BONE_RATIOS, bone_ratios
from elepose.train.config import FlowConfig, TrainConfig, elevation_stats_window
from elepose.train.distillation import distillation_targets
from elepose.train.objective import ElevationWindow, LossWeights, elepose_losses
from elepose.train.run_folder import (
    Deadline,
    claim_run_folder,
    cleanup_if_no_epoch,
    gather_rng,
    restore,
    resume_state,
    rng_state,
    save_resume,
    start_folder,
    stop_all,
)
from elepose.train.runlog import RunLog
from elepose.train.steps import (
    LossMeter,
    epoch_batches,
    epoch_label,
    epoch_order,
    lifter_param_groups,
    make_adam,
    track_pair_order,
)
from elepose.train.validation import validate_without_3d
from elepose.views import parse_elevation_prior

__all__ = [
    "TrainingDiverged",
    "make_adam",
    "lifter_param_groups",
    "train_flow",
    "train_lifter",
    "epoch_summary",
    "BEST_FOLDER",
    "kept_figure",
]


# ---------------------------------------------------------------------------- shared pieces


def _load_train_test(data: str) -> tuple[PoseSplit, PoseSplit, dict[str, Any]]:
    folder = Path(data)
    return load_split(folder / "train.npz"), load_split(folder / "test.npz"), load_manifest(folder)


# ---------------------------------------------------------------------------- flow pretraining


def train_flow(config: FlowConfig, progress: bool = True) -> dict[str, float]:
    """Fit the PCA and pretrain the flow; returns the last epoch's metrics (mean NLL per split)."""
    device = pick_device(config.device)
    out = Path(config.out)
    seed_everything(config.seed)
    train, test, manifest = _load_train_test(config.data)
    scale = manifest.get("recommended_scale", "dataset") if config.scale == "auto" else config.scale
    norm = Normalisation.fit(scale, train.poses_2d)
    x_train = normalise(select_2d(train, config.input), norm)
    x_test = normalise(select_2d(test, config.input), norm).to(device)
    record = FlowRecord(
        pca_bases=config.pca_bases, blocks=config.blocks, hidden=config.hidden, normalisation=norm, seed=config.seed,
        input=config.input, data=str(config.data), data_sources=manifest.get("sources"), elepose=__version__,
    )  # fmt: skip

    initial = None
    if config.init is not None:  # fine-tune another run's flow: its sizes and its PCA
        initial, sizes = run_files.load_flow(config.init)
        record = replace(record, pca_bases=sizes.pca_bases, blocks=sizes.blocks, hidden=sizes.hidden)
    flow = run_files.new_flow(record)
    generator = torch.Generator().manual_seed(config.seed)
    start_epoch, state, fresh = 0, None, True
    if config.resume:
        state = resume_state(out, config, run_files.FLOW_KIND)
        flow.load_state_dict(state["model"])
    else:
        fresh = claim_run_folder(out, config, run_files.FLOW_KIND)
        if initial is not None:
            flow.load_state_dict(initial.state_dict())
        elif config.pca_bases is not None:
            flow.fit_pca(x_train.double())
    optimizer = make_adam(flow.parameters(), config.lr, config.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(config.lr_milestones), gamma=0.1)
    if state is not None:
        start_epoch = restore(state, optimizer, scheduler, generator)
    else:
        start_folder(out, config)
    flow.to(device)
    log, deadline = RunLog(out), Deadline(config.max_minutes)
    if state is not None:
        log.resume_at(start_epoch, state.get("metrics"))

    metrics: dict[str, float] = {}
    kept = _kept_flow_epoch(out) if state is not None and config.patience is not None else None
    with cleanup_if_no_epoch(out, fresh, log):
        for epoch in range(start_epoch, config.epochs):
            if config.patience is not None and kept is not None and epoch - kept[0] >= config.patience:
                break  # resumed after the early stop
            samples_per_s, train_nll = _flow_epoch(
                flow, optimizer, x_train, config, epoch, device, deadline, progress, out
            )
            scheduler.step()
            flow.eval()
            with torch.no_grad():
                test_nll = float(torch.cat([flow.nll(b) for b in x_test.split(8192)]).mean())
            lr = optimizer.param_groups[0]["lr"]
            metrics = {"train_nll": train_nll, "test_nll": test_nll, "lr": lr, "samples_per_s": samples_per_s}
            save_resume(out, epoch, flow, optimizer, scheduler, rng_state(generator), 0, 0.0, metrics)
            log.log(epoch + 1, metrics)
            if config.patience is None or kept is None or test_nll < kept[1]:  # the published flow
                kept = (epoch + 1, test_nll)
                record = replace(record, epoch=epoch + 1, metrics=metrics)
                run_files.save_flow(out, flow, record)
            if progress:
                tqdm.write(f"flow epoch {epoch + 1}: train NLL {train_nll:.3f}, test NLL {test_nll:.3f}")
            if config.patience is not None and epoch + 1 - kept[0] >= config.patience:
                if progress:
                    tqdm.write(
                        f"flow: held-out NLL lowest at epoch {kept[0]}; stopped at {epoch + 1} (patience {config.patience})"
                    )
                break
            if deadline.passed():
                if progress:
                    tqdm.write(f"flow: stopped after {config.max_minutes} min (--max-minutes)")
                break
    log.close()
    return metrics


def _kept_flow_epoch(out: Path) -> tuple[int, float] | None:
    """The published flow's epoch and held-out NLL (a run with ``patience`` publishes its best epoch)."""
    record = run_files.load_record(out)
    nll = record.metrics.get("test_nll")
    return None if nll is None or record.epoch == 0 else (record.epoch, float(nll))


def _flow_epoch(
    flow: PoseFlow,
    optimizer: torch.optim.Optimizer,
    x_train: torch.Tensor,
    config: FlowConfig,
    epoch: int,
    device: torch.device,
    deadline: Deadline,
    progress: bool,
    out: Path,
) -> tuple[float, float]:
    """One pass of NLL steps over this epoch's samples -> ``(samples per second, mean train NLL)``."""
    flow.train()
    order = epoch_order(len(x_train), config.seed, epoch, config.epoch_samples, Distributed())
    batches = list(epoch_batches(order, config.batch_size))
    meter, t0 = LossMeter(device, len(batches)), time.perf_counter()
    label = epoch_label("flow", epoch, config.epochs, config.max_minutes)
    bar = tqdm(batches, desc=label, disable=None if progress else True, leave=False)  # None: off when not a terminal
    for step, idx in enumerate(bar):
        x = x_train[idx].to(device)
        with autocast(device, config.precision):
            nll = flow.nll(x).mean()
        optimizer.zero_grad(set_to_none=True)
        nll.backward()
        optimizer.step()
        if meter.add({"total": nll}, len(idx), step):
            meter.check(epoch, out)
            if progress:
                bar.set_postfix(nll=f"{meter.means()['total']:.3f}")
        if deadline.passed():
            break
    meter.check(epoch, out)
    count, total = meter.count, meter.means().get("total", float("nan"))
    return count / max(time.perf_counter() - t0, 1e-9), total


# ---------------------------------------------------------------------------- lifter training


def resolve_bone_ratios(choice: str, train: PoseSplit, manifest: dict[str, Any]) -> tuple[float, ...]:
    """``--bone-ratios``: ``data`` (the cache's, or computed from its training 3D), ``h36m``, ``3dhp`` or a JSON file."""
    if choice == "data":
        if manifest.get("bone_ratios") is not None:
            return tuple(float(v) for v in manifest["bone_ratios"])
        if not train.has_3d:
            raise InputError("--bone-ratios data: this 2D-only cache's manifest has none; give h36m, 3dhp or a file")
        return tuple(float(v) for v in bone_ratios(train.poses_3d))
    if choice == "h36m":
        return H36M_BONE_RATIOS
    if choice == "3dhp":
        return MPI_INF_3DHP_BONE_RATIOS
    path = Path(choice)
    if path.is_file():
        values = json.loads(path.read_text(encoding="utf-8"))
        if not (isinstance(values, list) and len(values) == 16):
            raise ValueError(f"{path}: expected a JSON list of 16 bone ratios (BONES order)")
        return tuple(float(v) for v in values)
    raise ValueError(f"--bone-ratios {choice!r}: expected data, h36m, 3dhp or a JSON file of 16 numbers")


@dataclass
class _LifterRun:
    """What one lifter run holds while it trains (set up once by :func:`_prepare_lifter`)."""

    config: TrainConfig
    out: Path
    device: torch.device
    dist: Distributed
    test: PoseSplit
    x_train: torch.Tensor
    view: torch.Tensor  # (N,) the training poses' views (one person's track each): --track-pairs pairs within them
    flow: PoseFlow
    lifter: LiftingNetwork
    model: torch.nn.Module  # the lifter, or its DDP wrapper: the training step calls this one
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    record: LifterRecord
    loss: Callable[..., dict[str, torch.Tensor]]  # chosen once by _choose_loss
    start_epoch: int = 0
    global_step: int = 0
    train_seconds: float = 0.0


def train_lifter(
    config: TrainConfig,
    progress: bool = True,
    on_epoch_end: Callable[[int, torch.nn.Module], None] | None = None,
) -> dict[str, float]:
    """Train the lifter against the frozen flow (or supervised); returns the last epoch's metrics.

    ``on_epoch_end(epoch, lifter)`` is called on every rank after each epoch (tests use it to
    compare ranks under DDP).
    """
    device = pick_device(config.device)
    with setup_distributed(device) as dist_info:
        if dist_info.enabled and device.type == "cuda":
            device = torch.device("cuda", torch.cuda.current_device())
        run = _prepare_lifter(config, device, dist_info)
        state, fresh = None, False
        if config.resume:
            state = resume_state(run.out, config, run_files.LIFTER_KIND)
            run.lifter.load_state_dict(state["model"])
            run.start_epoch = restore(state, run.optimizer, run.scheduler, run.generator, run)
        elif dist_info.is_main:
            fresh = claim_run_folder(run.out, config, run_files.LIFTER_KIND)
            start_folder(run.out, config)
        log, deadline = RunLog(run.out, enabled=dist_info.is_main), Deadline(config.max_minutes)
        if state is not None:
            log.resume_at(run.start_epoch, state.get("metrics"))

        metrics: dict[str, float] = {}
        with cleanup_if_no_epoch(run.out, fresh, log):
            for epoch in range(run.start_epoch, config.epochs):
                metrics = _lifter_epoch(run, epoch, deadline, progress)
                run.scheduler.step()
                if dist_info.is_main:
                    metrics = _end_lifter_epoch(run, epoch, metrics, log, progress)
                else:
                    gather_rng(run.generator, dist_info)
                if on_epoch_end is not None:
                    on_epoch_end(epoch + 1, run.lifter)
                if stop_all(deadline, dist_info):
                    if progress and dist_info.is_main:
                        tqdm.write(f"stopped after {config.max_minutes} min (--max-minutes)")
                    break
        log.close()
        run.model = run.lifter  # drop the DDP wrapper before the process group goes
        return metrics


def _prepare_lifter(config: TrainConfig, device: torch.device, dist_info: Distributed) -> _LifterRun:
    """Data, the frozen flow, a fresh lifter, its optimizer and schedule, and the loss of this run."""
    seed_everything(config.seed + dist_info.rank)
    train, test, manifest = _load_train_test(config.data)
    if config.keep_best is not None and test.has_3d:
        raise InputError(
            f"--keep-best {config.keep_best}: {config.data} has 3D in its test split, which must not pick the epoch; "
            "expected a 2D-only cache (its validation split is held-out 2D)"
        )
    flow, flow_record = run_files.load_flow(config.flow)
    flow.to(device).eval()
    for p in flow.parameters():
        p.requires_grad_(False)
    norm = flow_record.normalisation
    x_train = normalise(select_2d(train, config.input), norm)
    ratios = resolve_bone_ratios(config.bone_ratios, train, manifest)
    record = LifterRecord(
        hidden=config.hidden, variant=config.variant, elevation_branch=config.elevation and not config.supervised,
        normalisation=norm, flow=flow_record, elevation_prior=config.elevation_prior, supervised=config.supervised,
        bone_prior=config.bone_prior, bone_ratios=ratios, input=config.input, data=str(config.data),
        elepose=__version__, keypoints=manifest.get("keypoint_layout"), )  # fmt: skip
    view = torch.as_tensor(train.view, dtype=torch.long)
    loss = _choose_loss(config, train, norm, flow, ratios, device, view, manifest.get("keypoint_layout"))
    lifter = run_files.new_lifter(record, elevation_init_deg=config.elevation_init_deg)
    if config.init is not None and not config.resume:  # fine-tune another run's lifter
        start = run_files.load_lifter_record(config.init)
        if (start.hidden, start.variant, start.elevation_branch) != (
            record.hidden,
            record.variant,
            record.elevation_branch,
        ):
            raise InputError(
                f"--init {config.init}: a lifter of width {start.hidden} ({start.variant}, elevation branch "
                f"{start.elevation_branch}); expected the same layout as this run's"
            )
        run_files.load_lifter_weights(config.init, lifter)
    generator = torch.Generator().manual_seed(config.seed * 7919 + dist_info.rank)
    lifter.to(device)
    model: torch.nn.Module = lifter
    if dist_info.enabled:
        # The elevation head gets no gradient while it is held during the warm-up.
        model = DistributedDataParallel(lifter, find_unused_parameters=config.elevation_warmup_steps > 0)
    optimizer = make_adam(
        lifter_param_groups(lifter, config.lr, config.elevation_lr_scale), config.lr, config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
    return _LifterRun(
        config=config, out=Path(config.out), device=device, dist=dist_info, test=test, x_train=x_train,
        view=view, flow=flow,
        lifter=lifter, model=model, optimizer=optimizer, scheduler=scheduler, generator=generator, record=record,
        loss=loss,
    )  # fmt: skip


def _choose_loss(
    config: TrainConfig,
    train: PoseSplit,
    norm: Normalisation,
    flow: PoseFlow,
    ratios: tuple[float, ...],
    device: torch.device,
    view: torch.Tensor,
    layout: str | None = None,
) -> Callable[..., dict[str, torch.Tensor]]:
    """The loss of one step, chosen once: ``loss(model, x, idx, global_step, generator) -> terms`` with ``terms["total"]``.

    Supervised: L2 to the 3D targets of the batch's poses. ElePose: Eq. 13 with the elevation held
    at ``elevation_init_deg`` for the first ``elevation_warmup_steps`` global steps; with
    ``track_pairs``, each pair of the batch is flagged one person's when both poses share a ``view (N,)``;
    with ``distill``, plus ``distill_weight`` times ``L_distill`` on a batch of the start's domain
    (:mod:`elepose.train.distillation`, through the cache's keypoint ``layout``) of the batch's size,
    drawn with ``generator``.
    """
    if config.supervised:
        if not train.has_3d:
            raise InputError(f"{config.data}: a 2D-only cache; --supervised needs 3D ground truth")
        targets = supervised_targets(train, config.input, norm)

        def supervised(model: torch.nn.Module, x: torch.Tensor, idx: torch.Tensor, step: int, generator: Any) -> dict:
            poses_3d, _ = lift_poses(model, x)
            return {"total": supervised_loss(poses_3d, targets[idx].to(device))}

        return supervised

    elevation_prior = parse_elevation_prior(config.elevation_prior, elevation_branch=config.elevation)
    ratios_t = torch.tensor(ratios, device=device)
    held_rad = math.radians(config.elevation_init_deg) if config.elevation else None
    weights = LossWeights()
    window_batches = elevation_stats_window(config.elevation_stats)
    # The window starts empty on a resume too: it refills within its K batches.
    window = ElevationWindow(window_batches) if window_batches is not None else None
    detach_stats = config.elevation_stats == "detached"

    def elepose(model: torch.nn.Module, x: torch.Tensor, idx: torch.Tensor, step: int, generator: Any) -> dict:
        hold = held_rad if step < config.elevation_warmup_steps else None
        pairs = len(idx) // 2
        same = (
            (view[idx[0 : 2 * pairs : 2]] == view[idx[1 : 2 * pairs : 2]]).to(x.device) if config.track_pairs else None
        )
        return elepose_losses(
            model, flow.nll, x, ratios_t, elevation_prior, generator, weights=weights,
            use_bone_prior=config.bone_prior, hold_elevation_rad=hold, detach_stats=detach_stats, window=window,
            same_person=same,
        )  # fmt: skip

    if config.distill is None:
        return elepose
    assert config.init is not None  # TrainConfig checks it
    kept = distillation_targets(config.init, config.distill, layout, norm, config.distill_poses, config.seed).to(device)

    def distilled(model: torch.nn.Module, x: torch.Tensor, idx: torch.Tensor, step: int, generator: Any) -> dict:
        terms = elepose(model, x, idx, step, generator)
        pick = torch.randint(len(kept.inputs), (len(idx),), generator=generator).to(device)
        out = model(kept.inputs[pick])
        elevation = None if out.elevation is None or kept.elevation is None else out.elevation.float()
        teacher_elevation = None if elevation is None else kept.elevation[pick]  # type: ignore[index]
        term = distillation_loss(out.depth.float(), kept.depth[pick], elevation, teacher_elevation)
        return {**terms, "distill": term.detach(), "total": terms["total"] + config.distill_weight * term}

    return distilled


def _lifter_epoch(run: _LifterRun, epoch: int, deadline: Deadline, progress: bool) -> dict[str, float]:
    """Steps over this epoch's samples -> mean loss terms (``train_*``) and samples/s."""
    config = run.config
    run.model.train()
    order = epoch_order(len(run.x_train), config.seed, epoch, config.epoch_samples, run.dist)
    if config.track_pairs:
        order = track_pair_order(order, run.view, config.seed, epoch)
    batches = list(epoch_batches(order, config.batch_size))
    meter, t0 = LossMeter(run.device, len(batches)), time.perf_counter()
    show = progress and run.dist.is_main
    label = epoch_label("train", epoch, config.epochs, config.max_minutes)
    bar = tqdm(batches, desc=label, disable=None if show else True, leave=False)
    for step, idx in enumerate(bar):
        x = run.x_train[idx].to(run.device)
        with autocast(run.device, config.precision):
            terms = run.loss(run.model, x, idx, run.global_step, run.generator)
        run.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        if config.grad_clip is not None:
            # The norm before clipping, averaged into the epoch's train_grad_norm (no host sync here).
            terms = {**terms, "grad_norm": torch.nn.utils.clip_grad_norm_(run.model.parameters(), config.grad_clip)}
        run.optimizer.step()
        run.global_step += 1
        if meter.add(terms, len(idx), step):
            meter.check(epoch, run.out)
            if show:
                bar.set_postfix(loss=f"{meter.means()['total']:.3f}")
        if deadline.passed():
            break
    meter.check(epoch, run.out)
    seconds = time.perf_counter() - t0
    run.train_seconds += seconds
    metrics = {f"train_{k}": v for k, v in meter.means().items()}
    count = meter.count
    for key in ("train_elevation_mu", "train_elevation_sigma"):
        if key in metrics:
            metrics[key + "_deg"] = math.degrees(metrics.pop(key))
    metrics["samples_per_s"] = count * run.dist.world_size / max(seconds, 1e-9)
    metrics["lr"] = run.optimizer.param_groups[0]["lr"]
    metrics["train_seconds"] = run.train_seconds  # cumulative, training steps only
    return metrics


def _end_lifter_epoch(
    run: _LifterRun, epoch: int, metrics: dict[str, float], log: RunLog, progress: bool
) -> dict[str, float]:
    """Rank 0: validate on the test subset, calibrate reliability, log, checkpoint."""
    config = run.config
    run.lifter.eval()
    if run.test.has_3d:
        checks = evaluate_during_training(
            run.lifter, run.test, run.record.normalisation, config.input, config.eval_samples, run.device
        )
    else:  # a 2D-only cache: what can be measured without 3D
        prior = parse_elevation_prior(config.elevation_prior, elevation_branch=config.elevation)
        checks = validate_without_3d(
            run.lifter, run.flow, run.test, run.record.normalisation, config.input, run.record.bone_ratios,
            prior, config.eval_samples, run.device, seed=config.seed,
        )  # fmt: skip
    metrics = {**metrics, **checks}
    learned, calibration = calibrate_reliability(
        run.lifter, run.flow, run.x_train, run.device, rotations=config.reliability_rotations, seed=config.seed
    )
    metrics["elevation_mu_train_deg"] = math.degrees(learned.mu_rad)
    metrics["elevation_sigma_train_deg"] = math.degrees(learned.sigma_rad)
    run.record = replace(
        run.record, epoch=epoch + 1, metrics=metrics, learned_elevation=learned, reliability=calibration
    )
    if config.keep_best is not None:
        # Before the resume state: a kill in between redoes this epoch, which finds the same figure.
        _keep_best(run, config.keep_best)
    rng = gather_rng(run.generator, run.dist)
    save_resume(
        run.out, epoch, run.lifter, run.optimizer, run.scheduler, rng, run.global_step, run.train_seconds, metrics
    )
    log.log(epoch + 1, metrics)
    run_files.save_lifter(run.out, run.lifter, run.flow, run.record)
    if progress:
        tqdm.write(f"epoch {epoch + 1}: loss {metrics['train_total']:.3f}, {epoch_summary(metrics)}")
    return metrics


BEST_FOLDER = "best"
"""The sub-folder of a lifter run that holds the epoch kept by ``--keep-best`` (a lifter folder itself)."""


def kept_figure(folder: Path, metric: str) -> tuple[int, float] | None:
    """``(epoch, value of metric)`` of the lifter folder ``folder`` (a run's ``best/``), or None if it has none.

    A swap that a kill interrupted is finished first (:func:`elepose.atomic.recover_folder`).
    """
    recover_folder(folder)
    if not (folder / "config.json").is_file():
        return None
    record = run_files.load_lifter_record(folder)
    value = (record.metrics or {}).get(metric)
    return None if value is None else (int(record.epoch), float(value))


def _keep_best(run: _LifterRun, metric: str) -> None:
    """Copy this epoch's lifter to ``OUT/best`` when its ``metric`` is the lowest so far (whole or not at all)."""
    value = run.record.metrics.get(metric)
    if value is None or not math.isfinite(value):
        return
    folder = run.out / BEST_FOLDER
    kept = kept_figure(folder, metric)
    if kept is not None and kept[1] <= value:
        return
    replace_folder(folder, lambda new: run_files.save_lifter(new, run.lifter, run.flow, run.record))


def epoch_summary(metrics: dict[str, float]) -> str:
    """One line of an epoch's checks: 3D errors when the validation split has 3D, else the 2D-only checks."""
    if "pa_mpjpe" in metrics:
        return (
            f"PA-MPJPE {metrics['pa_mpjpe']:.1f} mm, N-MPJPE {metrics['n_mpjpe']:.1f} mm, "
            f"{metrics['samples_per_s']:.0f} samples/s"
        )
    return (
        f"validation (no 3D): flow NLL {metrics['val_nf']:.3f}, 2D reprojection {metrics['val_reprojection']:.4f}, "
        f"elevation {metrics['val_elevation_mean_deg']:.1f} +- {metrics['val_elevation_spread_deg']:.1f} deg "
        f"(learned mu_e {metrics['elevation_mu_train_deg']:.1f}, sigma_e {metrics['elevation_sigma_train_deg']:.1f}), "
        f"{metrics['samples_per_s']:.0f} samples/s"
    )


# ---------------------------------------------------------------------------- resuming

# Settings a resumed run may change: how long it runs, where it runs, and where its folder now lies.
