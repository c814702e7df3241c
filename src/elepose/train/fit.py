"""``elepose fit``: from a user's detector output to a calibrated lifter, with no 3D at all.

One call builds the 2D-only cache (:mod:`elepose.data.keypoint_cache`), pretrains the flow on
it and trains the lifter against that flow, each for a budget of training samples (360k by
default; ``--minutes`` caps the time and says how far short a stage stopped), and the lifter's
reliability is calibrated on the same 2D. The schedule is chosen from the budget and the
data's size, printed, and recorded in ``OUT/fit.json``; an interrupted ``fit`` run again with
the same ``--out`` continues where it stopped (a finished stage is kept, a started one resumed).

Folder: ``OUT/cache`` (the 2D cache), ``OUT/flow``, ``OUT/lifter`` (the lifter run, its last
epoch) with ``OUT/lifter/best`` (the epoch with the lowest held-out 2D reprojection), and
``OUT/fit.json``, whose ``lifter`` names the one ``elepose lift --checkpoint`` should take
(``--keep last``, the default, or ``best``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from elepose.atomic import write_json
from elepose.data.cache import load_manifest
from elepose.data.keypoint_cache import KeypointCacheOptions, build_keypoint_cache
from elepose.errors import InputError
from elepose.models.io import load_lifter_record, load_record
from elepose.outputs import claim_folder, clear_run_files, folder_kind
from elepose.train.config import FlowConfig, TrainConfig
from elepose.train.fit_checks import compare_with_start, failed_checks_warning, judge_fit
from elepose.train.loop import BEST_FOLDER, kept_figure, train_flow, train_lifter
from elepose.train.rehearsal import pool_caches
from elepose.train.runlog import read_metrics
from elepose.train.runstate import RERUN_MAY_CHANGE, changed_settings, run_state

__all__ = [
    "FitConfig",
    "Schedule",
    "plan_schedule",
    "fit",
    "reprojection_drift",
    "DISTILL_AUTO",
    "DISTILL_AUTO_BELOW_POSES",
]

FIT_KIND = "elepose-fit"
DISTILL_AUTO = "auto"  # FitConfig.distill: the start's own training cache when the user's 2D is little
DEFAULT_SAMPLES = 360_000
"""fit's default budget, training samples per stage: the benchmark's fits (section 7), 2-5 minutes
on 2 cores for 2,700-24,108 poses; a time budget made the lifter depend on the machine's load
(31 small epochs on a busy machine ended at a 47 degree elevation, reported in issue 22)."""
_DECAY_SAMPLES = 100_000  # the lifter's learning rate falls by 0.95 per this many samples


@dataclass(frozen=True)
class FitConfig:
    """``elepose fit``: detector files or folders in, a lifter out, after ``samples`` training samples
    per stage (the same lifter on any machine), stopped early when ``minutes`` (a cap) run out."""

    # What a setting absent from an earlier fit's record meant, where its default has changed since
    # (runstate.changed_settings): fits made before --distill existed did not distil.
    ABSENT_MEANS: ClassVar[dict[str, Any]] = {"distill": None}

    paths: tuple[str, ...]
    out: str
    minutes: float | None = None  # a cap on the training time (a quarter for the flow); None: none
    format: str | None = None
    selection: KeypointCacheOptions = field(default_factory=KeypointCacheOptions)
    hidden: int = 512
    flow_hidden: int = 1024  # the paper's flow width (measured: a 512-wide flow trains worse lifters, see README)
    precision: str = "bf16"  # the lifter's autocast (the benchmark's; 2-3x faster on CPU, same accuracy)
    lr: float = 5e-4
    device: str = "auto"
    seed: int = 0
    overwrite: bool = False
    init: str | None = None  # a trained lifter run (with its flow) that both stages start from
    samples: int = DEFAULT_SAMPLES  # the training samples per stage (the benchmark's fits: section 7)
    init_flow: bool = False  # with ``init``: start the flow from the init's too (measured worse: see the README)
    rehearse: str | None = None  # with ``init``: a cache of the start's domain whose 2D is pooled with the user's
    rehearse_poses: int = 10_000  # how many of its training poses
    track_pairs: bool = False  # the lifter's batches as frame pairs of one person: L_def across time, L_track
    # With ``init``: a cache of the start's domain whose lifts by the start are kept. DISTILL_AUTO:
    # the start's own training cache under DISTILL_AUTO_BELOW_POSES training poses (measured there, see
    # _distill_cache); None: off.
    distill: str | None = DISTILL_AUTO
    distill_weight: float = 1000.0  # L_distill's weight (measured: see the README's fit section)
    distill_poses: int = 20_000  # how many of its training poses
    keep: str = "last"  # which lifter `lift` is told to use: the last epoch, or best (lowest held-out 2D reprojection)

    def __post_init__(self) -> None:
        if self.keep not in ("best", "last"):
            raise InputError(f"--keep: got {self.keep!r}; expected best or last")
        if self.minutes is not None and not (math.isfinite(self.minutes) and 0.5 <= self.minutes <= 10_000):
            raise InputError(f"--minutes: expected a cap of 0.5 to 10000 minutes, got {self.minutes}")
        if self.init_flow and self.init is None:
            raise InputError("--init-flow: expected --init RUN (the run whose flow starts this one)")
        if not 1_000 <= self.samples <= 10**10:
            raise InputError(f"--samples: expected 1000 to 1e10 training samples, got {self.samples}")
        if not self.paths:
            raise InputError("fit: expected detector files or folders")
        if self.rehearse is not None and self.init is None:
            raise InputError("--rehearse: expected --init RUN (rehearsal keeps the start's domain in view)")
        if self.distill == DISTILL_AUTO and self.init is None:
            object.__setattr__(self, "distill", None)  # nothing to keep without a start
        if self.distill is not None and self.init is None:
            raise InputError("--distill: expected --init RUN (the lifter whose lifts of CACHE are kept)")
        if not (math.isfinite(self.distill_weight) and self.distill_weight >= 0):
            raise InputError(f"--distill-weight: expected a weight >= 0, got {self.distill_weight}")
        if not 1 <= self.distill_poses <= 10**7:
            raise InputError(f"--distill-poses: expected 1 to 1e7 poses, got {self.distill_poses}")
        if not 1 <= self.rehearse_poses <= 10**7:
            raise InputError(f"--rehearse-poses: expected 1 to 1e7 poses, got {self.rehearse_poses}")


@dataclass(frozen=True)
class Schedule:
    """What ``fit`` chose: minutes per stage (None: no time limit), batch size, epochs.

    With a time budget the epochs are upper bounds (the time limit ends a stage); with a sample
    budget they are the schedule itself.
    """

    flow_minutes: float | None
    lifter_minutes: float | None
    batch_size: int
    flow_epochs: int
    lifter_epochs: int
    lr_decay: float
    elevation_warmup_steps: int
    training_poses: int
    flow_lr_milestones: tuple[int, ...] = ()
    flow_patience: int | None = None  # the flow stops when its held-out NLL has not fallen for this many epochs

    def __post_init__(self) -> None:
        object.__setattr__(self, "flow_lr_milestones", tuple(int(m) for m in self.flow_lr_milestones))


def plan_schedule(minutes: float | None, training_poses: int, samples: int | None = None) -> Schedule:
    """A quarter of the time for the flow, the rest for the lifter; batches that fit small data.

    Epochs are passes over the training poses: with a budget of ``samples``, as many as make that
    many samples for the flow and for the lifter (the same run gives the same lifter on any
    machine), ``minutes`` (or None) a cap on each stage's time; without, as many as the time
    allows (bounded so a stage ends by itself).
    The lifter's learning rate decays by 0.95 per 100k samples whatever the data's size, and its
    elevation is held for the first 300 steps (fewer on little data). The flow's falls by 10x
    once, after two thirds of a sample budget (measured: Bandai dataset 1 as MMPose files, 360k
    samples, a lifter from scratch: 75.6 mm PA-MPJPE with that drop, 94.7 without); with a time
    budget, at the paper's epochs 10, 20 and 30. The flow stops early (``flow_patience``) and
    keeps its epoch of lowest held-out NLL.
    """
    if samples is None and minutes is None:
        raise ValueError("plan_schedule: expected samples, minutes or both")
    batch = int(min(256, max(16, training_poses // 8)))
    steps_per_epoch = max(1, training_poses // batch)
    per_epoch = steps_per_epoch * batch
    epochs = None if samples is None else max(1, round(samples / per_epoch))
    milestones = (10, 20, 30) if epochs is None else (max(1, round(2 * epochs / 3)),)
    return Schedule(
        flow_minutes=None if minutes is None else 0.25 * minutes,
        lifter_minutes=None if minutes is None else 0.75 * minutes,
        batch_size=batch,
        flow_epochs=100 if epochs is None else epochs,
        lifter_epochs=100_000 if epochs is None else epochs,
        lr_decay=0.95 ** (min(training_poses, per_epoch) / _DECAY_SAMPLES),
        elevation_warmup_steps=int(min(300, max(10, 20 * steps_per_epoch))),
        training_poses=training_poses,
        flow_lr_milestones=milestones,
        flow_patience=max(_MIN_PATIENCE, round(_PATIENCE_SHARE * (100 if epochs is None else epochs))),
    )


_MIN_PATIENCE = 5
_PATIENCE_SHARE = 0.1
# The flow's early stop: the fit keeps the flow's epoch with the lowest held-out NLL and stops when
# it has not fallen for a tenth of the planned epochs (at least 5). Without it the benchmark's fits
# (section 7, 360k samples) ended far past their best on little 2D: one clip of Bandai dataset 1
# (148 poses, a flow fine-tuned from the init's) best -103.7 at epoch 161 of 2,500, last +467; the
# real AlphaPose file (1,055 poses) from scratch best -80.5 at epoch 27 of 344, last 2,771; --init
# best -103.0 at 97, last -86.1; while on 2,700 poses and more the last epoch was within 1 nat of the best.


_FINE_TUNE_FLOW_LR = 1e-4  # the paper's rates: a warm start continues training, it does not restart it
_FINE_TUNE_LIFTER_LR = 2e-4
# A warm start's gradient norm is clipped to this (TrainConfig.grad_clip). A fine-tune starts near
# a minimum, and on a few thousand poses a rare step with a spike of the flow NLL (an epoch's mean
# gradient norm 600-840 against its usual 60-100) threw it into a worse basin for good: Bandai
# dataset 1 as MMPose files, 30 % of the clips, --init from a dataset-2 lifter, 360k samples:
# 83.3 mm PA-MPJPE, the held-out 2D reprojection 0.13 -> 0.19 at the spike; clipped at 100: 60.0
# (10 %: 62.3 -> 61.5, all clips: 60.3 -> 60.9). From scratch large gradients are the normal early
# regime and clipping only slowed it (all clips: 75.6 -> 93.5 mm), so fits from scratch are not clipped.
_FINE_TUNE_GRAD_CLIP = 100.0
# Why the flow starts afresh by default under --init: the init's PCA basis and flow were fitted to
# other 2D (other joint definitions, another scale); fine-tuned on the user's 2D from there, the flow
# began at a training NLL of ~9,300 and ended at a held-out NLL of -93.0 against -97.5 for a flow
# trained from scratch, and the lifter fine-tuned against it drifted to a 43 deg elevation (Bandai
# dataset 1 as MMPose files, --init from a dataset-2 lifter, 360k samples: PA-MPJPE 101 mm).


_POOLED = "cache-pooled"


def _rehearsal(config: FitConfig, out: Path, record: dict[str, Any], say: Callable[[str], None]) -> int:
    """Pool the user's training 2D with ``--rehearse``'s (once); returns the pooled training poses."""
    pooled = out / _POOLED
    if not (pooled / "manifest.json").is_file():
        assert config.rehearse is not None
        record["rehearsal"] = pool_caches(out / "cache", Path(config.rehearse), pooled, config.rehearse_poses,
                                          config.seed)  # fmt: skip
    manifest = load_manifest(pooled)
    record["rehearsal"] = manifest["rehearsal"]
    said = manifest["rehearsal"]
    say(f"rehearsal: {said['user_poses']} of your poses with {said['poses']} of {said['source']}")
    return int(manifest["counts"]["train"]["poses"])


def _warm_start(init: str | None) -> dict[str, Any] | None:
    """What fine-tuning the lifter run ``init`` keeps: its layout, and the 2D scaling its networks saw.

    A run trained with a dataset scale (a fixed pixel size) gets the per-pose pelvis-to-head
    scale (``pose-head``), the same input on average, since pixel sizes mean nothing across the
    user's videos; a per-pose run keeps its own. Its elevation is not held (it is trained).
    """
    if init is None:
        return None
    record = load_lifter_record(init)
    if not record.elevation_branch:
        raise InputError(f"--init {init}: a lifter without an elevation branch; expected an ElePose lifter")
    scale = record.normalisation.mode if record.normalisation.mode != "dataset" else "pose-head"
    reason = f"width {record.hidden}, 2D scale {record.normalisation.mode} -> {scale}"
    return {"hidden": record.hidden, "variant": record.variant, "scale": scale, "reason": reason, "data": record.data}


def _stage_finished(folder: Path, config: Any) -> bool:
    """Whether a stage finished: its config reached the planned epoch, or its time limit ended it
    (``fit-stage.json``, written when the stage returned)."""
    state = run_state(folder, config)
    marked = state.status != "fresh" and _json(folder / "fit-stage.json").get("finished") is True
    return state.status == "finished" or marked


def _mark_done(folder: Path) -> None:
    write_json(folder / "fit-stage.json", {"finished": True})


def _open(config: FitConfig) -> tuple[Path, dict[str, Any]]:
    """Claim ``config.out`` (or check an earlier fit there had the same settings); returns it and ``fit.json``'s record."""
    out = Path(config.out)
    state_path = out / "fit.json"
    resuming = out.is_dir() and state_path.is_file() and _json(state_path).get("kind") == FIT_KIND
    if not resuming:
        found = claim_folder(out, FIT_KIND, config.overwrite, [Path(p) for p in config.paths], same_kind_ok=False)
        if found not in (None, "empty"):
            for stage in ("flow", "lifter"):
                if (out / stage).is_dir():
                    clear_run_files(out / stage)
    elif changed_settings(_json(state_path).get("settings") or {}, config):
        raise InputError(
            f"{state_path}: an earlier fit with other settings; expected the same command (or a new --out)"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out, _json(state_path) if resuming else {"kind": FIT_KIND, "settings": _settings(config)}


def _cache(config: FitConfig, out: Path, say: Callable[[str], None]) -> tuple[int, dict[str, Any]]:
    """Build (or find) the fit's 2D cache ``OUT/cache``; returns its training poses and how it was split."""
    cache = out / "cache"
    if (cache / "manifest.json").is_file() and folder_kind(cache) == "cache":
        say(f"cache: {cache} (built earlier)")
    else:
        say(f"cache: reading {len(config.paths)} path(s) ...")
        built = build_keypoint_cache(
            [Path(p) for p in config.paths], cache, config.selection, config.format,
            warn=lambda m: say(f"warning: {m}"), fine_tune=config.init is not None,
        )  # fmt: skip
        say(f"cache: {len(built['sources'][0]['per_source'])} source video(s), {built['split_rule']}")
    manifest = load_manifest(cache)
    split = {"rule": manifest.get("split_rule"), **manifest.get("split", {})}
    return int(manifest["counts"]["train"]["poses"]), split


def _announce(
    config: FitConfig, schedule: Schedule, poses: int, start: dict | None, distill_why: str, say: Callable[[str], None]
) -> None:
    """Print the schedule chosen, what a warm start fine-tunes, and what it distils (``config.distill`` resolved)."""
    held = f"elevation held for {schedule.elevation_warmup_steps} steps" if start is None else "elevation not held"
    budget = f"flow and lifter {schedule.lifter_epochs} epochs each (about {config.samples} samples)"
    if schedule.flow_minutes is not None and schedule.lifter_minutes is not None:
        budget += f", capped at {schedule.flow_minutes:.1f} and {schedule.lifter_minutes:.1f} min (--minutes)"
    say(
        f"schedule: {poses} training poses, batch {schedule.batch_size}; {budget}; lr decay {schedule.lr_decay:.4f} "
        f"per epoch, {held}"
    )
    if start is not None:
        what = "the lifter (the flow learns your 2D afresh)"
        if _warm_flow(config, poses):
            what = "the flow and lifter" + (
                "" if config.init_flow else f" (under {_MIN_FLOW_POSES} poses: too few for a flow of their own)"
            )
        say(
            f"init: fine-tuning {what} of {config.init} ({start['reason']}; lr {_FINE_TUNE_LIFTER_LR:g}, "
            f"gradient norm clipped at {_FINE_TUNE_GRAD_CLIP:g})"
        )
    if config.distill is not None:
        say(
            f"distill: each lifter step also keeps the start's lifts of {config.distill_poses} poses of "
            f"{config.distill} (weight {config.distill_weight:g}; {distill_why})"
        )
    elif start is not None:
        say(f"distill: off ({distill_why})")


_MIN_FLOW_POSES = 2000
# Below this many training poses fit --init fine-tunes the init's flow (its PCA too) instead of
# learning one afresh: fresh flows on the real AlphaPose file's 1,055 poses (benchmark section 7)
# ended with a held-out NLL of 3,355 and 5,551 against about -100 on Bandai, while fresh flows on
# 2,371 poses (10 % of dataset 1's clips) gave fits that beat the transferred lifter. The init's
# flow cannot be kept as it is: it scores the user's 2D (COCO-17 files, other joint definitions)
# at a mean NLL of 430 (held out 582) on one clip of dataset 1, where a fine-tune reaches -103.7.
# Fine-tuned to the end of the budget it overfits (held out +467 after 2,500 epochs on 148 poses),
# hence the flow's early stop (plan_schedule).
DISTILL_AUTO_BELOW_POSES = _MIN_FLOW_POSES  # --distill auto distils under this many training poses


def _distill_cache(config: FitConfig, training_poses: int, start: dict[str, Any] | None) -> tuple[str | None, str]:
    """The cache whose lifts by the start a warm start keeps (None: none), and why.

    ``--distill auto`` (the default) takes the start's own training cache (``start["data"]``, from
    :func:`_warm_start`: the start's record's ``data``)
    under DISTILL_AUTO_BELOW_POSES training poses. Measured with weight 1000 on the benchmark's 1 % shares
    (PA-MPJPE, detected 2D): Bandai dataset 1, 148 poses, 61.9 mm against 73.2 for a plain
    ``fit --init`` and 63.0 for the start (section 7); CMU, 512 poses, 70.2 against 80.1 and 68.3
    on the target's test split, 54.3 against 50.1 and 75.9 on the fitted clips' own later frames
    (section 10). With more 2D it costs: CMU, 3,200 poses, 68.7 against 64.8 plain and 68.2 for
    the start (benchmarks/domain/distill, on another machine's start), so it is left off there.
    """
    if config.distill != DISTILL_AUTO:
        return config.distill, "--distill off" if config.distill is None else "asked (--distill)"
    if training_poses >= DISTILL_AUTO_BELOW_POSES:
        return None, (
            f"{training_poses} training poses: measured to help only under {DISTILL_AUTO_BELOW_POSES}; "
            "--distill CACHE to ask for it"
        )
    assert start is not None  # FitConfig turns auto off without a start
    data = start["data"]
    if not data or not (Path(data) / "manifest.json").is_file():
        return None, f"the start's training cache {data or '(not recorded)'} is not here; --distill CACHE to name one"
    return data, f"auto: under {DISTILL_AUTO_BELOW_POSES} training poses, the start's own training cache"


def _warm_flow(config: FitConfig, training_poses: int) -> bool:
    """Whether a warm start's flow starts from the init's: asked (``--init-flow``) or too little 2D."""
    return config.init is not None and (config.init_flow or training_poses < _MIN_FLOW_POSES)


def _stage_configs(
    config: FitConfig, out: Path, schedule: Schedule, start: dict | None
) -> tuple[FlowConfig, TrainConfig]:
    """The flow and lifter settings of a fit."""
    warm_flow = start is not None and _warm_flow(config, schedule.training_poses)
    cache = out / (_POOLED if config.rehearse is not None else "cache")
    flow_config = FlowConfig(
        data=str(cache), out=str(out / "flow"), hidden=config.flow_hidden, epochs=schedule.flow_epochs,
        batch_size=schedule.batch_size, lr=_FINE_TUNE_FLOW_LR if warm_flow else config.lr,
        scale="auto" if start is None else start["scale"], device=config.device, seed=config.seed,
        max_minutes=schedule.flow_minutes, init=config.init if warm_flow else None,
        lr_milestones=schedule.flow_lr_milestones, patience=schedule.flow_patience,
    )  # fmt: skip
    lifter_config = TrainConfig(
        data=str(cache), flow=str(out / "flow"), out=str(out / "lifter"),
        hidden=config.hidden if start is None else start["hidden"],
        variant="shared" if start is None else start["variant"],
        epochs=schedule.lifter_epochs, batch_size=schedule.batch_size - (schedule.batch_size % 2) * config.track_pairs,
        lr=config.lr if start is None else _FINE_TUNE_LIFTER_LR, lr_decay=schedule.lr_decay,
        elevation_warmup_steps=schedule.elevation_warmup_steps if start is None else 0,
        precision=config.precision, eval_samples=2048, reliability_rotations=10, device=config.device,
        seed=config.seed, grad_clip=None if start is None else _FINE_TUNE_GRAD_CLIP,
        max_minutes=schedule.lifter_minutes, init=config.init, track_pairs=config.track_pairs,
        distill=config.distill, distill_weight=config.distill_weight, distill_poses=config.distill_poses,
        keep_best=_KEEP_BY,  # always kept (OUT/lifter/best); --keep says which one lift is pointed at
    )  # fmt: skip
    return flow_config, lifter_config


def fit(config: FitConfig, progress: bool = True, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or continue) a fit; returns what ``fit.json`` records."""
    out, record = _open(config)
    state_path = out / "fit.json"
    started = time.monotonic()
    poses, record["split"] = _cache(config, out, say)
    start = _warm_start(config.init)
    distill, distill_why = _distill_cache(config, poses, start)  # on the user's poses, before any pooling
    config = replace(config, distill=distill)
    record["distill"] = {"cache": distill, "why": distill_why}
    if config.rehearse is not None:
        poses = _rehearsal(config, out, record, say)
    schedule = (
        Schedule(**record["schedule"]) if "schedule" in record else plan_schedule(config.minutes, poses, config.samples)
    )
    record["schedule"] = asdict(schedule)
    write_json(state_path, record)
    used = float(record.get("minutes_used", 0.0))
    _announce(config, schedule, poses, start, distill_why, say)
    flow_config, lifter_config = _stage_configs(config, out, schedule, start)
    used = _stage(out / "flow", flow_config, train_flow, progress, say, used, record, state_path)
    used = _stage(out / "lifter", lifter_config, train_lifter, progress, say, used, record, state_path)
    lifter_record, flow_record = load_lifter_record(out / "lifter"), load_record(out / "flow")
    record.update(
        {
            "finished": True,
            "lifter_epochs_run": lifter_record.epoch,
            "flow_epochs_run": len(read_metrics(out / "flow" / "metrics.csv")),
            "flow_epoch_kept": flow_record.epoch,  # its lowest held-out NLL
            "flow_nll": {k: flow_record.metrics.get(k) for k in ("train_nll", "test_nll")},
            "last_epoch": lifter_record.metrics,
            "minutes_this_call": (time.monotonic() - started) / 60.0,
        }
    )
    _say_short(schedule, record, say)
    result = _choose_lifter(config, out, record, say)
    record["checks"] = judge_fit(record["flow_nll"], flow_record.pca_bases or 34, load_lifter_record(result).metrics)
    warning = failed_checks_warning(record["checks"], poses, config.init is not None)
    start_kept = False
    if config.init is not None:  # a warm start may only help: else keep the start
        check = compare_with_start(result, Path(config.init), out / "cache", config.device, checks=record["checks"])
        record["start_check"] = check
        if not check["better"]:
            say(
                f"warning: the fitted lifter is not better than the one it started from on your held-out 2D "
                f"({check['figure']} {check['fitted']:.3f} against {check['start']:.3f}, the mean elevation moved "
                f"{check['elevation_shift_deg']:+.1f} deg), so fit keeps the start: "
                f"lift with {config.init} (more of your video may let a fit help)"
            )
            result, start_kept = Path(config.init), True
            warning = None  # the checks judged the fitted lifter, which lift is not pointed at
    if warning is not None:
        say(warning)
    note = None if config.init is None else fitted_to_these_videos(record["split"], start_kept)
    record["fitted_to_these_videos"] = note is not None
    if note is not None:
        say(note)
    record["lifter"] = str(result)
    write_json(state_path, record, allow_nan=True)
    say(f"fit finished: {result} ({record['lifter_epochs_run']} lifter epochs, {used:.1f} min of training)")
    say(f"lift with it: elepose lift --checkpoint {result} YOUR_KEYPOINTS --out results/mine")
    return record


def fitted_to_these_videos(split: dict[str, Any], start_kept: bool) -> str | None:
    """The note for a warm start's fitted lifter whose held-out 2D was later frames of its own videos, else None.

    ``split``: ``fit.json``'s split (``by_motion`` false: fewer than 5 clips, the last fifth of
    each video held out). Such a check sees the fit's own motion only: in benchmark section 10 a
    fit on one 1 s segment (512 poses) lifted that segment's held-out frames at 50.1 mm
    PA-MPJPE against its start's 75.9, and other motions at 80.1 against 68.3.
    """
    if split.get("by_motion", True) or start_kept:
        return None
    return (
        "note: your 2D holds fewer than 5 clips, so fit held out later frames of the same videos: this "
        "lifter is fitted to their motion; lift these videos with it, other videos with the start "
        "(benchmark section 10, one 1 s clip: 50.1 mm PA-MPJPE on its held-out frames against the start's "
        "75.9, but 80.1 on other motions against 68.3)"
    )


def _say_short(schedule: Schedule, record: dict[str, Any], say: Callable[[str], None]) -> None:
    """Record which stages the ``--minutes`` cap stopped short of their planned epochs, and warn."""
    flow_run, lifter_run = record["flow_epochs_run"], record["lifter_epochs_run"]
    early_stop = schedule.flow_patience is not None and flow_run - record["flow_epoch_kept"] >= schedule.flow_patience
    short = {}
    if flow_run < schedule.flow_epochs and not early_stop:
        short["flow"] = {"epochs_run": flow_run, "epochs_planned": schedule.flow_epochs}
    if lifter_run < schedule.lifter_epochs:
        short["lifter"] = {"epochs_run": lifter_run, "epochs_planned": schedule.lifter_epochs}
    record["stopped_by_minutes"] = short
    if short:
        parts = ", ".join(
            f"the {k} at epoch {v['epochs_run']} of {v['epochs_planned']} ({v['epochs_run'] / v['epochs_planned']:.0%})"
            for k, v in short.items()
        )
        say(
            f"warning: the --minutes cap stopped {parts} of the sample budget: this lifter depends on the "
            f"machine's speed and load; for the whole budget run fit without --minutes (or a larger one) in a new --out"
        )


def _choose_lifter(config: FitConfig, out: Path, record: dict[str, Any], say: Callable[[str], None]) -> Path:
    """The lifter ``lift`` is pointed at (the last epoch, or ``--keep best``'s), after a drift warning."""
    drift = reprojection_drift(out / "lifter" / "metrics.csv")
    if drift is not None:
        record["reprojection_drift"] = drift
    result = out / "lifter"
    kept = kept_figure(result / BEST_FOLDER, _KEEP_BY)
    if kept is not None:
        record["lowest_reprojection_epoch"] = kept[0]
    if config.keep == "best" and kept is not None:
        result = result / BEST_FOLDER
        say(
            f"kept epoch {kept[0]} of {record['lifter_epochs_run']}: the lowest held-out 2D reprojection "
            f"({kept[1]:.3f}; the last epoch's {record['last_epoch'].get(_KEEP_BY, math.nan):.3f})"
        )
    elif drift is not None:
        say(
            f"warning: the held-out 2D reprojection rose from {drift['best']:.3f} (epoch {drift['best_epoch']}) to "
            f"{drift['last']:.3f}: the lifter may have drifted (one such Bandai fit lifted 20 mm worse than its "
            f"other seeds); epoch {drift['best_epoch']} is in {result / BEST_FOLDER} (--keep best points lift at it)"
        )
    return result


def _stage(
    folder: Path,
    config: Any,
    train: Callable[..., dict[str, float]],
    progress: bool,
    say: Callable[[str], None],
    used: float,
    record: dict[str, Any],
    state_path: Path,
) -> float:
    """Train one stage unless it finished before; resume it when it started. Returns the minutes used so far."""
    name = folder.name
    if _stage_finished(folder, config):
        say(f"{name}: finished earlier, kept")
        return used
    resume = run_state(folder, config).status == "partial"
    if not resume and folder.exists():
        clear_run_files(folder)
    limit = f"up to {config.max_minutes:.1f} min" if config.max_minutes is not None else f"{config.epochs} epochs"
    say(f"{name}: {'resuming' if resume else 'training'} for {limit}")
    started = time.monotonic()
    train(replace(config, resume=resume), progress=progress)
    _mark_done(folder)
    used += (time.monotonic() - started) / 60.0
    record["minutes_used"] = used
    write_json(state_path, record)
    return used


_KEEP_BY = "val_reprojection"
# fit also keeps the lifter epoch with the lowest held-out 2D reprojection (OUT/lifter/best).
# Across the benchmark's fits on Bandai dataset 1 (section 7) that figure told good fits from bad
# (0.12-0.15 for those near 60 mm PA-MPJPE, 0.19-0.28 for those at 75-101 mm), but within a
# (clipped) warm start it picked 60.5, 66.1 (epoch 4 of 61), 60.4 mm at 10 / 30 / 100 % of the
# clips against the last epochs' 61.5, 60.0, 60.9: 1 mm gained twice, 6 lost once. So the last
# epoch is the default and best/ an option.

_DRIFT_RATIO = 1.3  # last / best held-out 2D reprojection above this is reported


def reprojection_drift(metrics_csv: Path, ratio: float = _DRIFT_RATIO) -> dict[str, float] | None:
    """The held-out 2D reprojection's best and last values when the last exceeds ``ratio`` x the best, else None.

    Without 3D this is the sign of a fit gone wrong that the benchmark found: across its fits on
    Bandai dataset 1 the held-out reprojection (``val_reprojection`` of ``metrics.csv``) was
    0.12-0.15 for those at about 60 mm PA-MPJPE and 0.19-0.28 for those at 75-101 mm, and the one
    warm start that went wrong rose from 0.13 to 0.19 as it drifted.
    """
    rows = read_metrics(metrics_csv)
    values = [
        (int(r["epoch"]), r["val_reprojection"]) for r in rows if math.isfinite(r.get("val_reprojection", math.nan))
    ]
    if not values:
        return None
    best_epoch, best = min(values, key=lambda item: item[1])
    last = values[-1][1]
    if last <= ratio * best:
        return None
    return {"best": best, "best_epoch": best_epoch, "last": last}


def _settings(config: FitConfig) -> dict[str, Any]:
    """The settings ``fit.json`` records (JSON values); a rerun must repeat those outside
    :data:`elepose.train.runstate.RERUN_MAY_CHANGE`."""
    return {k: v for k, v in json.loads(json.dumps(asdict(config))).items() if k not in RERUN_MAY_CHANGE}


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
