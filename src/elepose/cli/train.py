"""``elepose flow`` and ``elepose train``: pretrain the flow, train the lifter."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

import typer

from elepose.cli.errors import user_errors
from elepose.train.config import FlowConfig, TrainConfig

_FLOW = FlowConfig()  # the defaults of every option below (the paper's schedule)
_TRAIN = TrainConfig()

DEVICE_HELP = "auto (CUDA when present), cpu or cuda"

# Which command-line parameters set each config field (for --resume: fields no given option sets
# come from the run's run.json, so `--resume` alone continues a run with its own settings).
_FLOW_OPTIONS = {"pca_bases": ("pca_bases", "no_pca"), "input": ("input_2d",)}
_TRAIN_OPTIONS = {
    "flow": ("flow_dir",),
    "elevation": ("no_elevation",),
    "elevation_prior": ("elevation_prior", "no_elevation"),
    "elevation_init_deg": ("elevation_init",),
    "elevation_warmup_steps": ("elevation_warmup",),
    "bone_prior": ("no_bone_prior",),
    "input": ("input_2d",),
}


def _resumed(ctx: typer.Context, config: Any, options: dict[str, tuple[str, ...]]) -> Any:
    """On ``--resume``, the run's own settings (``run.json``) for every field no given option sets."""
    from elepose.train.runstate import resumed_config

    def typed(name: str) -> bool:
        sources = [ctx.get_parameter_source(p) for p in options.get(name, (name,))]
        return any(s is not None and s.name not in ("DEFAULT", "DEFAULT_MAP") for s in sources)

    return resumed_config(config, [f.name for f in dataclasses.fields(config) if typed(f.name)])


def flow(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Cache folder from `elepose data build`."),
    out: Path = typer.Option(Path("runs/flow"), "--out", help="Run folder to write."),
    pca_bases: int = typer.Option(_FLOW.pca_bases, "--pca-bases", help="PCA bases before the flow (paper: 26)."),
    no_pca: bool = typer.Option(False, "--no-pca", help="Ablation: flow on the raw 34-D 2D pose."),
    blocks: int = typer.Option(_FLOW.blocks, "--blocks", help="Affine coupling blocks."),
    hidden: int = typer.Option(_FLOW.hidden, "--hidden", help="Width of each coupling subnet."),
    epochs: int = typer.Option(_FLOW.epochs, "--epochs"),
    batch_size: int = typer.Option(_FLOW.batch_size, "--batch-size"),
    lr: float = typer.Option(_FLOW.lr, "--lr"),
    scale: str = typer.Option(
        _FLOW.scale,
        "--scale",
        help="2D normalisation: dataset (mean pelvis-head px), pose (per-pose RMS) or auto (the cache's recommendation: pose for detector output, else dataset).",
    ),
    input_2d: str = typer.Option(_FLOW.input, "--input", help="Train on gt or detected 2D."),
    epoch_samples: Optional[int] = typer.Option(
        None, "--epoch-samples", help="Random training samples per epoch (default: all)."
    ),
    max_minutes: Optional[float] = typer.Option(
        None, "--max-minutes", help="Stop after this many minutes (checkpoint kept)."
    ),
    precision: str = typer.Option(_FLOW.precision, "--precision", help="fp32 or bf16 (autocast; log-det stays fp32)."),
    device: str = typer.Option(_FLOW.device, "--device", help=DEVICE_HELP),
    seed: int = typer.Option(_FLOW.seed, "--seed"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last epoch."),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Start afresh in an --out that holds a run or other files (a run's files are replaced).",
    ),
) -> None:
    """Fit the PCA and pretrain the normalizing flow on 2D training poses (SPEC section 4)."""
    from elepose.train.loop import train_flow

    with user_errors():
        config = FlowConfig(
            data=str(data),
            out=str(out),
            pca_bases=None if no_pca else pca_bases,
            blocks=blocks,
            hidden=hidden,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            scale=scale,
            input=input_2d,
            epoch_samples=epoch_samples,
            seed=seed,
            device=device,
            precision=precision,
            max_minutes=max_minutes,
            resume=resume,
            overwrite=overwrite,
        )
        config = _resumed(ctx, config, _FLOW_OPTIONS)
        metrics = train_flow(config)
    typer.echo(f"flow written to {out} (test NLL {metrics.get('test_nll', float('nan')):.3f})")


def train(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Cache folder from `elepose data build`."),
    flow_dir: Path = typer.Option(Path("runs/flow"), "--flow", help="Flow run folder from `elepose flow`."),
    out: Path = typer.Option(Path("runs/lifter"), "--out", help="Run folder to write."),
    epochs: int = typer.Option(_TRAIN.epochs, "--epochs"),
    batch_size: int = typer.Option(_TRAIN.batch_size, "--batch-size"),
    lr: float = typer.Option(_TRAIN.lr, "--lr"),
    lr_decay: float = typer.Option(_TRAIN.lr_decay, "--lr-decay", help="Exponential learning-rate decay per epoch."),
    hidden: int = typer.Option(_TRAIN.hidden, "--hidden"),
    variant: str = typer.Option(
        _TRAIN.variant, "--variant", help="shared (authors' code: shared trunk) or towers (paper: separate towers)."
    ),
    no_elevation: bool = typer.Option(
        False, "--no-elevation", help="Ablation: no elevation branch, fixed elevation prior."
    ),
    elevation_prior: Optional[str] = typer.Option(
        None,
        "--elevation-prior",
        help="learned (default with the branch), uniform:LO,HI or normal:MEAN,STD in degrees (default without the branch: uniform:-20,20).",
    ),
    elevation_init: float = typer.Option(
        _TRAIN.elevation_init_deg,
        "--elevation-init",
        help="Starting elevation of the branch, degrees (looking down positive): picks the real pose over its mirror image.",
    ),
    elevation_warmup: int = typer.Option(
        _TRAIN.elevation_warmup_steps,
        "--elevation-warmup",
        help="Steps during which the elevation is held at --elevation-init while the depth forms.",
    ),
    no_bone_prior: bool = typer.Option(False, "--no-bone-prior", help="Ablation: drop L_bone."),
    bone_ratios: str = typer.Option(
        _TRAIN.bone_ratios,
        "--bone-ratios",
        help="data (from the cache's training 3D), h36m, 3dhp, or a JSON file of 16 numbers.",
    ),
    supervised: bool = typer.Option(
        False, "--supervised", help="The supervised bound: same lifter, L2 loss on 3D ground truth."
    ),
    input_2d: str = typer.Option(_TRAIN.input, "--input", help="Train on gt or detected 2D."),
    epoch_samples: Optional[int] = typer.Option(
        None, "--epoch-samples", help="Random training samples per epoch (default: all)."
    ),
    eval_samples: int = typer.Option(_TRAIN.eval_samples, "--eval-samples", help="Test poses scored after each epoch."),
    max_minutes: Optional[float] = typer.Option(
        None, "--max-minutes", help="Stop after this many minutes (checkpoint kept)."
    ),
    precision: str = typer.Option(_TRAIN.precision, "--precision", help="fp32 or bf16 (autocast)."),
    elevation_stats: str = typer.Option(
        _TRAIN.elevation_stats,
        "--elevation-stats",
        help="The learned prior's mu_e, sigma_e: batch (the paper's, with gradient), detached (no gradient), "
        "or window:K (this batch pooled with the last K batches' elevations).",
    ),
    elevation_lr_scale: float = typer.Option(
        _TRAIN.elevation_lr_scale,
        "--elevation-lr-scale",
        help="The elevation branch's and head's learning rate as a multiple of --lr (1: the paper's).",
    ),
    grad_clip: Optional[float] = typer.Option(
        None,
        "--grad-clip",
        help="Clip the lifter's gradient to this total L2 norm per step (default: no clipping; "
        "`fit --init` clips its fine-tunes at 100). The epoch's mean norm before clipping is logged.",
    ),
    track_pairs: bool = typer.Option(
        False,
        "--track-pairs",
        help="Batches of pairs of frames of one person (one view of the cache): L_def across time and "
        "50 L_track on their bone proportions (not in the paper).",
    ),
    keep_best: Optional[str] = typer.Option(
        None,
        "--keep-best",
        help="2D-only caches: also keep the epoch with the lowest val_reprojection (or val_nf) in OUT/best.",
    ),
    device: str = typer.Option(_TRAIN.device, "--device", help=DEVICE_HELP),
    seed: int = typer.Option(_TRAIN.seed, "--seed"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last epoch."),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Start afresh in an --out that holds a run or other files (a run's files are replaced).",
    ),
) -> None:
    """Train the lifting network with the frozen flow (SPEC sections 5 and 6)."""
    from elepose.train.loop import train_lifter

    chosen_prior = elevation_prior or ("uniform:-20,20" if no_elevation else "learned")
    with user_errors():
        config = TrainConfig(
            data=str(data),
            flow=str(flow_dir),
            out=str(out),
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            lr_decay=lr_decay,
            hidden=hidden,
            variant=variant,
            elevation=not no_elevation,
            elevation_prior=chosen_prior,
            elevation_init_deg=elevation_init,
            elevation_warmup_steps=elevation_warmup,
            bone_prior=not no_bone_prior,
            bone_ratios=bone_ratios,
            supervised=supervised,
            input=input_2d,
            epoch_samples=epoch_samples,
            eval_samples=eval_samples,
            seed=seed,
            device=device,
            precision=precision,
            keep_best=keep_best,
            elevation_stats=elevation_stats,
            elevation_lr_scale=elevation_lr_scale,
            grad_clip=grad_clip,
            track_pairs=track_pairs,
            max_minutes=max_minutes,
            resume=resume,
            overwrite=overwrite,
        )
        config = _resumed(ctx, config, _TRAIN_OPTIONS)
        metrics = train_lifter(config)
    if metrics:
        from elepose.train.loop import epoch_summary

        typer.echo(f"lifter written to {out} (last epoch: {epoch_summary(metrics)})")


def register(app: typer.Typer) -> None:
    app.command("flow")(flow)
    app.command("train")(train)
