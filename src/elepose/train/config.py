"""The settings of ``elepose flow`` and ``elepose train``: one frozen dataclass per command.

Defaults are the paper's schedules (SPEC sections 4-6); the command line, the benchmark and the
speed measurements all take their defaults from here. Every run folder holds its settings as
``run.json``. This module imports nothing heavy, so the command line can read the defaults
without loading torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from elepose.errors import InputError

__all__ = ["FlowConfig", "TrainConfig", "KEEP_BEST_METRICS", "elevation_stats_window", "lr_decay_per_epoch"]


def lr_decay_per_epoch(epoch_samples: int | None, pass_samples: int | None, per_pass: float = 0.95) -> float:
    """The lifter's learning-rate factor per epoch for the paper's ``per_pass`` (0.95) per pass over the data.

    ``pass_samples``: the training poses (one pass); ``epoch_samples``: the samples an epoch draws
    (None: a whole pass). Shorter epochs get the root that makes ``per_pass`` over a pass, so the
    rate falls with the samples seen whatever the epoch length; an epoch longer than a pass still
    gets ``per_pass`` (the paper's epochs are passes). An empty or unknown set (0, None): ``per_pass``.

    Example:
        >>> lr_decay_per_epoch(None, 1000), round(lr_decay_per_epoch(250, 1000) ** 4, 6), lr_decay_per_epoch(5000, 1000)
        (0.95, 0.95, 0.95)
    """
    if epoch_samples is None or pass_samples is None or pass_samples <= 0:
        return per_pass
    return per_pass ** (min(epoch_samples, pass_samples) / pass_samples)


def _check(config: object, positive_ints: tuple[str, ...], positive_floats: tuple[str, ...]) -> None:
    """Refuse settings no run can use (``--epochs 0``, ``--lr nan``): one line naming the option."""
    for name in positive_ints:
        value = getattr(config, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"--{name.replace('_', '-')}: expected a positive integer, got {value!r}")
    for name in positive_floats:
        value = getattr(config, name)
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise InputError(f"--{name.replace('_', '-')}: expected a positive number, got {value!r}")


@dataclass(frozen=True)
class FlowConfig:
    """``elepose flow``: PCA + normalizing-flow pretraining on normalised 2D training poses (``data``: a cache folder, ``out``: the run folder)."""

    data: str = ""
    out: str = ""
    pca_bases: int | None = 26
    blocks: int = 8
    hidden: int = 1024
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-4
    weight_decay: float = 1e-5
    lr_milestones: tuple[int, ...] = (10, 20, 30)
    scale: str = "auto"  # auto: the cache's recommended_scale (pose for detector output), else dataset
    input: str = "gt"
    epoch_samples: int | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    max_minutes: float | None = None
    resume: bool = False
    overwrite: bool = False  # replace what --out holds (see elepose.outputs)
    init: str | None = None  # a flow or lifter run whose flow (PCA included) starts this one
    # Stop once the held-out NLL has not fallen for this many epochs, and keep (publish) the epoch
    # with the lowest; None: every epoch, the last kept (the paper's schedule).
    patience: int | None = None

    def __post_init__(self) -> None:
        _check(self, ("blocks", "hidden", "epochs", "batch_size", "epoch_samples", "patience"), ("lr", "max_minutes"))
        if self.batch_size < 2:
            raise InputError(f"--batch-size: expected at least 2, got {self.batch_size}")


KEEP_BEST_METRICS = ("val_reprojection", "val_nf")
"""What ``--keep-best`` may select by: the held-out 2D cycle reprojection error, or the held-out
flow NLL of the lifted-and-reprojected poses (both measured without 3D, lower is better)."""


def elevation_stats_window(text: str) -> int | None:
    """Parse ``--elevation-stats``: ``batch`` or ``detached`` -> None, ``window:K`` -> K (batches, 1-1000)."""
    kind, _, count = text.partition(":")
    if kind in ("batch", "detached") and not count:
        return None
    if kind == "window" and count.isdigit() and 1 <= int(count) <= 1000:
        return int(count)
    raise InputError(f"--elevation-stats: got {text!r}; expected batch, detached or window:K (1 <= K <= 1000 batches)")


@dataclass(frozen=True)
class TrainConfig:
    """``elepose train``: the lifter with the frozen flow (or 3D supervision with ``supervised``); ``flow``: a flow run folder."""

    data: str = ""
    flow: str = ""
    out: str = ""
    epochs: int = 100
    batch_size: int = 256
    lr: float = 2e-4
    weight_decay: float = 1e-5
    lr_decay: float = 0.95
    hidden: int = 1024
    variant: str = "shared"
    elevation: bool = True
    elevation_prior: str = "learned"
    elevation_init_deg: float = 10.0
    elevation_warmup_steps: int = 300
    bone_prior: bool = True
    bone_ratios: str = "data"
    supervised: bool = False
    input: str = "gt"
    epoch_samples: int | None = None
    eval_samples: int | None = 4096
    reliability_rotations: int = 100
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    max_minutes: float | None = None
    resume: bool = False
    overwrite: bool = False  # replace what --out holds (see elepose.outputs)
    init: str | None = None  # a lifter run whose weights start this one (its width and layout are kept)
    keep_best: str | None = None  # a 2D-only validation figure (KEEP_BEST_METRICS): its lowest epoch goes to OUT/best
    elevation_stats: str = "batch"  # the learned prior's mu_e, sigma_e: batch (paper), detached, or window:K batches
    elevation_lr_scale: float = 1.0  # the elevation branch's and head's learning rate, a multiple of lr
    grad_clip: float | None = None  # clip the lifter's gradient to this total L2 norm per step (None: no clipping)
    # Batches of frame pairs of one person (the cache's views): L_def across time and L_track (not in the paper).
    track_pairs: bool = False
    # With init: a cache of the start's domain; each step also pays distill_weight * L_distill (not in the paper).
    distill: str | None = None
    distill_weight: float = 1000.0
    distill_poses: int = 20_000

    def __post_init__(self) -> None:
        elevation_stats_window(self.elevation_stats)
        if self.distill is not None and (self.init is None or self.supervised):
            raise InputError(
                "--distill: expected --init RUN (the lifter whose lifts are kept) and the ElePose objective"
            )
        if not (math.isfinite(self.distill_weight) and self.distill_weight >= 0) or self.distill_poses < 1:
            raise InputError(
                f"--distill-weight, --distill-poses: expected a weight >= 0 and at least 1 pose, got "
                f"{self.distill_weight} and {self.distill_poses}"
            )
        if self.keep_best is not None and self.keep_best not in KEEP_BEST_METRICS:
            raise InputError(f"--keep-best: got {self.keep_best!r}; expected one of {', '.join(KEEP_BEST_METRICS)}")
        _check(
            self,
            ("hidden", "epochs", "batch_size", "epoch_samples", "eval_samples", "reliability_rotations"),
            ("lr", "lr_decay", "max_minutes", "elevation_lr_scale", "grad_clip"),
        )
        if self.batch_size < 2:
            raise InputError(
                f"--batch-size: expected at least 2 (the elevation statistics need a batch), got {self.batch_size}"
            )
        if self.track_pairs and (self.batch_size % 2 or self.supervised):
            raise InputError(
                f"--track-pairs: expected an even --batch-size and the ElePose objective, got {self.batch_size}"
                + (" and --supervised" if self.supervised else "")
            )
        if self.elevation_warmup_steps < 0 or not math.isfinite(self.elevation_init_deg):
            raise InputError("--elevation-warmup: expected steps >= 0; --elevation-init: a finite angle")
