"""Training loops: flow pretraining and lifter training (single process or ``torchrun`` DDP).

Both loops read top to bottom: set up (data, networks, optimizer), resume or start the run
folder, then per epoch shuffle and step, then evaluate, log and checkpoint. Schedules default to
the paper's (:mod:`elepose.train.config`, SPEC sections 4 and 6). Every epoch ends with an
atomic checkpoint, and ``resume=True`` continues from it exactly: each epoch's data order comes
from a generator seeded by ``(seed, epoch)`` and the sampling generator's state, the global step
and the optimizer are saved with it.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from elepose import __version__
from elepose.atomic import recover_folder, replace_folder
from elepose.data.cache import PoseSplit, load_manifest, load_split
from elepose.errors import InputError, TrainingDiverged
from elepose.evaluate.evaluation import evaluate_during_training
from elepose.evaluate.reliability import calibrate_reliability
from elepose.losses import supervised_loss
from elepose.models import io as run_files
from elepose.models.flow import PoseFlow
from elepose.models.lifter import LiftingNetwork, lift_poses
from elepose.models.normalisation import Normalisation, normalise, select_2d, supervised_targets
from elepose.models.records import FlowRecord, LifterRecord
from elepose.outputs import claim_folder, clear_run_files, folder_kind
from elepose.runtime import Distributed, autocast, pick_device, seed_everything, setup_distributed
from elepose.skeleton import H36M_BONE_RATIOS, MPI_INF_3DHP_BONE_RATIOS, bone_ratios
from elepose.train.config import FlowConfig, TrainConfig, elevation_stats_window
from elepose.train.objective import ElevationWindow, LossWeights, elepose_losses
from elepose.train.runlog import RunLog
from elepose.train.runstate import changed_settings
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


def lifter_param_groups(lifter: LiftingNetwork, lr: float, elevation_lr_scale: float = 1.0) -> list[dict[str, Any]]:
    """The lifter's parameters as Adam groups: the elevation branch and head (when it has them) at
    ``lr * elevation_lr_scale``, everything else at ``lr``; one group when the scale is 1."""
    if elevation_lr_scale == 1.0 or not lifter.has_elevation:
        return [{"params": list(lifter.parameters()), "lr": lr}]
    modules = [m for m in (lifter.elevation_branch, lifter.elevation_head) if m is not None]
    elevation = {id(p) for module in modules for p in module.parameters()}
    return [
        {"params": [p for p in lifter.parameters() if id(p) not in elevation], "lr": lr},
        {"params": [p for p in lifter.parameters() if id(p) in elevation], "lr": lr * elevation_lr_scale},
    ]


def make_adam(
    params: Iterable[torch.nn.Parameter] | list[dict[str, Any]], lr: float, weight_decay: float
) -> torch.optim.Adam:
    """Adam as the SPEC sets it, in its fused form (one kernel per step instead of a chain of
    element-wise ops: 16 % more samples/s in fp32 and 36 % in bf16 on 2 CPU cores)."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)


def _epoch_order(n: int, seed: int, epoch: int, samples: int | None, dist_info: Distributed) -> torch.Tensor:
    """This rank's sample indices for ``epoch``: a permutation seeded by (seed, epoch), sharded by rank."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=gen)
    if samples is not None:
        order = order[: min(samples, n)]
    per_rank = len(order) // dist_info.world_size
    return order[dist_info.rank * per_rank : (dist_info.rank + 1) * per_rank]


def _batches(order: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Full batches only (the elevation std needs several samples; the last partial batch is dropped)."""
    for start in range(0, len(order) - batch_size + 1, batch_size):
        yield order[start : start + batch_size]
    if len(order) < batch_size and len(order) >= 2:
        yield order


class _LossMeter:
    """Loss terms summed on the device, read by the host every ``check_every`` steps and at the end.

    No step waits for the device to report its loss: the sums and the first step whose loss was
    NaN or inf stay on the device, and :meth:`check` (one synchronisation) raises
    :class:`TrainingDiverged` for a bad step before anything of that epoch is saved.
    """

    def __init__(self, device: torch.device, steps: int, check_every: int = 50) -> None:
        self.check_every = check_every
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.first_bad = torch.tensor(-1, device=device)
        self.step_index = torch.arange(max(steps, 1), device=device)  # indexed, not built, per step: no copy

    def add(self, terms: dict[str, torch.Tensor], n: int, step: int) -> bool:
        """Add one step's terms (``n`` samples); returns whether it is time to :meth:`check`."""
        for key, value in terms.items():
            value = value.detach().float() * n
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        bad = ~torch.isfinite(terms["total"].detach())
        self.first_bad = torch.where(bad & (self.first_bad < 0), self.step_index[step], self.first_bad)
        self.count += n
        return (step + 1) % self.check_every == 0

    def check(self, epoch: int, out: Path) -> None:
        """Raise :class:`TrainingDiverged` when a step of this epoch had a NaN or inf loss."""
        step = int(self.first_bad)
        if step < 0:
            return
        broken = ", ".join(k for k, v in self.means().items() if not math.isfinite(v)) or "total"
        saved = (
            f"The last good checkpoint in {out} is intact"
            if (out / "resume.pt").is_file()
            else "No epoch had finished, so nothing was saved"
        )
        raise TrainingDiverged(
            f"loss became NaN or inf at epoch {epoch + 1}, step {step + 1} (non-finite: {broken}); training stopped. "
            f"{saved}: lower --lr, try --precision fp32, or check the input data."
        )

    def means(self) -> dict[str, float]:
        """Mean of each term over the samples added (one synchronisation)."""
        if not self.sums:
            return {}
        keys = list(self.sums)
        values = (torch.stack([self.sums[k] for k in keys]) / max(self.count, 1)).tolist()
        return dict(zip(keys, values))


def _load_train_test(data: str) -> tuple[PoseSplit, PoseSplit, dict[str, Any]]:
    folder = Path(data)
    manifest = load_manifest(folder)
    return load_split(folder / "train.npz"), load_split(folder / "test.npz"), manifest


class _Deadline:
    def __init__(self, max_minutes: float | None) -> None:
        self.end = None if max_minutes is None else time.monotonic() + 60.0 * max_minutes

    def passed(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end


def _start_folder(out: Path, config: Any) -> None:
    """Create the run folder and write its settings (``run.json``)."""
    out.mkdir(parents=True, exist_ok=True)
    run_files.save_config(out / "run.json", {"kind": "run-settings", "elepose": __version__, **asdict(config)})


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    return {"sampling": generator.get_state(), "torch": torch.get_rng_state()}


def _restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    generator.set_state(state["sampling"])
    torch.set_rng_state(state["torch"])


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
        state = _resume_state(out, config, run_files.FLOW_KIND)
        flow.load_state_dict(state["model"])
    else:
        fresh = _claim_run_folder(out, config, run_files.FLOW_KIND)
        if initial is not None:
            flow.load_state_dict(initial.state_dict())
        elif config.pca_bases is not None:
            flow.fit_pca(x_train.double())
    optimizer = make_adam(flow.parameters(), config.lr, config.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(config.lr_milestones), gamma=0.1)
    if state is not None:
        start_epoch = _restore(state, optimizer, scheduler, generator)
    else:
        _start_folder(out, config)
    flow.to(device)
    log, deadline = RunLog(out), _Deadline(config.max_minutes)
    if state is not None:
        log.resume_at(start_epoch, state.get("metrics"))

    metrics: dict[str, float] = {}
    with _cleanup_if_no_epoch(out, fresh, log):
        for epoch in range(start_epoch, config.epochs):
            samples_per_s, train_nll = _flow_epoch(
                flow, optimizer, x_train, config, epoch, device, deadline, progress, out
            )
            scheduler.step()
            flow.eval()
            with torch.no_grad():
                test_nll = float(torch.cat([flow.nll(b) for b in x_test.split(8192)]).mean())
            lr = optimizer.param_groups[0]["lr"]
            metrics = {"train_nll": train_nll, "test_nll": test_nll, "lr": lr, "samples_per_s": samples_per_s}
            _save_resume(out, epoch, flow, optimizer, scheduler, _rng_state(generator), 0, 0.0, metrics)
            log.log(epoch + 1, metrics)
            record = replace(record, epoch=epoch + 1, metrics=metrics)
            run_files.save_flow(out, flow, record)
            if progress:
                tqdm.write(f"flow epoch {epoch + 1}: train NLL {train_nll:.3f}, test NLL {test_nll:.3f}")
            if deadline.passed():
                if progress:
                    tqdm.write(f"flow: stopped after {config.max_minutes} min (--max-minutes)")
                break
    log.close()
    return metrics


def _flow_epoch(
    flow: PoseFlow,
    optimizer: torch.optim.Optimizer,
    x_train: torch.Tensor,
    config: FlowConfig,
    epoch: int,
    device: torch.device,
    deadline: _Deadline,
    progress: bool,
    out: Path,
) -> tuple[float, float]:
    """One pass of NLL steps over this epoch's samples -> ``(samples per second, mean train NLL)``."""
    flow.train()
    order = _epoch_order(len(x_train), config.seed, epoch, config.epoch_samples, Distributed())
    batches = list(_batches(order, config.batch_size))
    meter, t0 = _LossMeter(device, len(batches)), time.perf_counter()
    bar = tqdm(batches, desc=f"flow {epoch + 1}/{config.epochs}", disable=not progress, leave=False)
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
            state = _resume_state(run.out, config, run_files.LIFTER_KIND)
            run.lifter.load_state_dict(state["model"])
            run.start_epoch = _restore(state, run.optimizer, run.scheduler, run.generator, run)
        elif dist_info.is_main:
            fresh = _claim_run_folder(run.out, config, run_files.LIFTER_KIND)
            _start_folder(run.out, config)
        log, deadline = RunLog(run.out, enabled=dist_info.is_main), _Deadline(config.max_minutes)
        if state is not None:
            log.resume_at(run.start_epoch, state.get("metrics"))

        metrics: dict[str, float] = {}
        with _cleanup_if_no_epoch(run.out, fresh, log):
            for epoch in range(run.start_epoch, config.epochs):
                metrics = _lifter_epoch(run, epoch, deadline, progress)
                run.scheduler.step()
                if dist_info.is_main:
                    metrics = _end_lifter_epoch(run, epoch, metrics, log, progress)
                else:
                    _gather_rng(run.generator, dist_info)
                if on_epoch_end is not None:
                    on_epoch_end(epoch + 1, run.lifter)
                if _stop_all(deadline, dist_info):
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
        bone_prior=config.bone_prior, bone_ratios=ratios, input=config.input, data=str(config.data), elepose=__version__,
    )  # fmt: skip
    loss = _choose_loss(config, train, norm, flow, ratios, device)
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
        config=config, out=Path(config.out), device=device, dist=dist_info, test=test, x_train=x_train, flow=flow,
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
) -> Callable[..., dict[str, torch.Tensor]]:
    """The loss of one step, chosen once: ``loss(model, x, idx, global_step, generator) -> terms`` with ``terms["total"]``.

    Supervised: L2 to the 3D targets of the batch's poses. ElePose: Eq. 13 with the elevation held
    at ``elevation_init_deg`` for the first ``elevation_warmup_steps`` global steps.
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
        return elepose_losses(
            model, flow.nll, x, ratios_t, elevation_prior, generator, weights=weights,
            use_bone_prior=config.bone_prior, hold_elevation_rad=hold, detach_stats=detach_stats, window=window,
        )  # fmt: skip

    return elepose


def _lifter_epoch(run: _LifterRun, epoch: int, deadline: _Deadline, progress: bool) -> dict[str, float]:
    """Steps over this epoch's samples -> mean loss terms (``train_*``) and samples/s."""
    config = run.config
    run.model.train()
    order = _epoch_order(len(run.x_train), config.seed, epoch, config.epoch_samples, run.dist)
    batches = list(_batches(order, config.batch_size))
    meter, t0 = _LossMeter(run.device, len(batches)), time.perf_counter()
    show = progress and run.dist.is_main
    bar = tqdm(batches, desc=f"train {epoch + 1}/{config.epochs}", disable=not show, leave=False)
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
    rng = _gather_rng(run.generator, run.dist)
    _save_resume(
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


def _claim_run_folder(out: Path, config: Any, kind: str) -> bool:
    """Check ``out`` may become a new run of ``kind`` (clearing an old run's files with ``overwrite``).

    Returns whether the folder was new or empty (a failed first epoch then removes what it wrote).
    """
    inputs = [Path(config.data)] + ([Path(config.flow)] if isinstance(config, TrainConfig) else [])
    inputs += [Path(config.init)] if config.init is not None else []
    found = claim_folder(out, kind, config.overwrite, inputs, same_kind_ok=False)
    if found not in (None, "empty"):
        clear_run_files(out)
    return found in (None, "empty")


# Settings a resumed run may change: how long it runs, where it runs, and where its folder now lies.
def _resume_state(out: Path, config: Any, kind: str) -> dict[str, Any]:
    """The resume state of the run in ``out``, after checking it is a ``kind`` run with ``config``'s settings."""
    found = folder_kind(out) if out.is_dir() else None
    if found != kind:
        what = "nothing" if found in (None, "empty") else f"an {found} folder"
        raise InputError(f"--out {out}: holds {what}; expected a {kind} run to resume")
    settings = run_files.load_config(out / "run.json")
    for name, (before, value) in changed_settings(settings, config).items():
        if name not in settings:
            continue
        flag = "--" + name.replace("_", "-")
        raise InputError(
            f"{out / 'run.json'}: field {name!r}: the run has {before!r}, this command {value!r}; "
            f"expected the run's own settings on --resume (drop {flag}, or start a new run)"
        )
    return run_files.load_resume_state(out / "resume.pt")


@contextlib.contextmanager
def _cleanup_if_no_epoch(out: Path, fresh: bool, log: RunLog) -> Iterator[None]:
    """If training stops by an error before its first epoch was saved in a folder it created, remove what it wrote."""
    try:
        yield
    except BaseException:
        if fresh and not (out / "resume.pt").exists():
            log.close()
            clear_run_files(out)
            with contextlib.suppress(OSError):
                out.rmdir()
        raise


def _save_resume(
    out: Path,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    rng: Any,
    global_step: int,
    train_seconds: float,
    metrics: dict[str, float],
) -> None:
    """``resume.pt``: everything ``--resume`` needs in one atomically written file, weights included.

    Written first at the end of an epoch, so a kill at any later point leaves a state to resume
    from; ``config.json``, written last, records the SHA-256 of the weights it belongs to.
    """
    run_files.save_resume_state(
        out / "resume.pt",
        {
            "epoch": epoch,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng,
            "global_step": global_step,
            "train_seconds": train_seconds,
            "metrics": metrics,
        },
    )


def _restore(
    state: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator,
    run: _LifterRun | None = None,
) -> int:
    """Load a resume state into the optimizer, schedule and generators -> the epoch to start at."""
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    if run is not None:
        rng = rng[run.dist.rank] if isinstance(rng, list) else rng
        run.global_step = int(state["global_step"])
        run.train_seconds = float(state.get("train_seconds", 0.0))
    _restore_rng(rng, generator)
    return int(state["epoch"]) + 1


def _gather_rng(generator: torch.Generator, dist_info: Distributed) -> Any:
    """Each rank's sampling state (a list over ranks under DDP), collected on every rank."""
    state = _rng_state(generator)
    if not dist_info.enabled:
        return state
    states: list[Any] = [None] * dist_info.world_size
    dist.all_gather_object(states, state)
    return states


def _stop_all(deadline: _Deadline, dist_info: Distributed) -> bool:
    """Whether the time limit passed, agreed across ranks so all stop together."""
    flag = torch.tensor([1.0 if deadline.passed() else 0.0])
    if dist_info.enabled:
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item() > 0)
