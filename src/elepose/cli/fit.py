"""``elepose fit``: train a lifter on your own 2D detections, with no 3D at all."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from elepose.cli.errors import user_errors


def fit(
    paths: list[Path] = typer.Argument(..., help="Detector output: files or folders in any format `lift` reads."),
    out: Path = typer.Option(..., "--out", help="Folder of the fit: cache/, flow/, lifter/ and fit.json."),
    minutes: Optional[float] = typer.Option(
        None, "--minutes", help="A cap on the training time (a quarter for the flow); fit says what it cut short."
    ),
    keypoint_format: Optional[str] = typer.Option(None, "--format", help="The detector format (default: detected)."),
    min_score: float = typer.Option(0.3, "--min-score", help="Joints scoring below this are missing."),
    missing: str = typer.Option("drop", "--missing", help="drop people with a missing joint, or fill them from a PCA."),
    min_visible: int = typer.Option(12, "--min-visible", help="With --missing fill: joints a training pose needs."),
    stride: int = typer.Option(1, "--stride", help="Use every N-th frame."),
    min_motion: float = typer.Option(0.05, "--min-motion", help="Drop poses that moved less (share of pelvis-head)."),
    bone_ratios: str = typer.Option(
        "2d", "--bone-ratios", help="2d (every bone measured on your 2D) or h36m (Human3.6M limbs, head measured)."
    ),
    group_by: Optional[str] = typer.Option(
        None,
        "--group-by",
        help="A regular expression naming each file's clip, for a held-out split by motion (default: camera tags dropped).",
    ),
    samples: int = typer.Option(
        360_000, "--samples", help="Training samples per stage: the same lifter on any machine (the benchmark's)."
    ),
    hidden: int = typer.Option(512, "--hidden", help="Lifter width (1024 is the paper's; 512 trains twice as fast)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda"),
    seed: int = typer.Option(0, "--seed"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start afresh in an --out that holds other files."),
    init: Optional[Path] = typer.Option(
        None,
        "--init",
        help="A trained lifter run (e.g. the benchmark's) to fine-tune instead of starting from scratch.",
    ),
    init_flow: bool = typer.Option(
        False, "--init-flow", help="With --init: start the flow from that run's too (default: learn it afresh)."
    ),
    rehearse: Optional[Path] = typer.Option(
        None,
        "--rehearse",
        help="With --init: a cache of the start's own domain (e.g. the benchmark's); its 2D is pooled with yours.",
    ),
    rehearse_poses: int = typer.Option(10_000, "--rehearse-poses", help="With --rehearse: how many of its poses."),
    distill: str = typer.Option(
        "auto",
        "--distill",
        metavar="auto|off|CACHE",
        help="With --init: keep the start's lifts of a cache of its own domain (e.g. the benchmark's) while fitting. "
        "auto: the start's own training cache when you have under 2,000 training poses (measured to help there).",
    ),
    distill_weight: float = typer.Option(1000.0, "--distill-weight", help="With --distill: the weight of L_distill."),
    distill_poses: int = typer.Option(20_000, "--distill-poses", help="With --distill: how many of its poses."),
    track_pairs: bool = typer.Option(
        False,
        "--track-pairs",
        help="Train on pairs of frames of one tracked person: their deformation and bone proportions must agree.",
    ),
    keep: str = typer.Option(
        "last",
        "--keep",
        help="The lifter lift is pointed at: last (epoch) or best (lowest held-out 2D reprojection, OUT/lifter/best).",
    ),
) -> None:
    """Build a 2D-only cache from your detections, pretrain the flow, train and calibrate the lifter."""
    from elepose.data.keypoint_cache import KeypointCacheOptions
    from elepose.train.fit import FitConfig
    from elepose.train.fit import fit as run_fit

    with user_errors():
        config = FitConfig(
            paths=tuple(str(p) for p in paths),
            out=str(out),
            minutes=minutes,
            format=keypoint_format,
            selection=KeypointCacheOptions(
                min_score=min_score,
                min_visible=min_visible,
                stride=stride,
                min_motion=min_motion,
                missing=missing,
                bone_ratios=bone_ratios,
                group_by=group_by,
            ),
            samples=samples,
            hidden=hidden,
            device=device,
            seed=seed,
            overwrite=overwrite,
            init=None if init is None else str(init),
            init_flow=init_flow,
            rehearse=None if rehearse is None else str(rehearse),
            rehearse_poses=rehearse_poses,
            track_pairs=track_pairs,
            distill=None if distill == "off" else distill,
            distill_weight=distill_weight,
            distill_poses=distill_poses,
            keep=keep,
        )
        run_fit(config, say=lambda message: typer.echo(message, err=True))


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)
