"""``elepose lift``: a practitioner's 2D detections -> 3D poses, elevation and reliability.

Argument parsing over the library: :meth:`elepose.lift.lifter.Lifter.lift` lifts,
:mod:`elepose.lift.save` arranges (``--frame``, ``--smooth``) and writes, all or nothing.
``--out OUT`` is a path prefix: the command writes ``OUT.npz`` and ``OUT.json`` (a trailing
``.npz`` or ``.json`` on OUT is dropped first, so ``--out walk.json`` also gives ``walk.npz``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from elepose.cli.errors import InputError, user_errors
from elepose.lift.save import FRAMES, HTML_MARK, LIFT_KIND, SaveOptions, arrange, check_outputs, output_paths, save

__all__ = ["output_paths", "lift", "register", "HTML_MARK", "LIFT_KIND"]

_AXES = {
    "camera": "camera frame (x right, y down, z forward), pelvis-centred",
    "upright": "upright (de-rotated by the predicted elevation; x right, y up, z towards the camera; lower ankle on y = 0)",
}


def _frame_option(frame: str, render_frame: int | None) -> tuple[str, int | None]:
    """``--frame camera|upright``; an integer there is the old spelling of ``--render-frame``."""
    if frame.lstrip("-").isdigit():
        typer.echo(
            f"note: --frame {frame} is read as --render-frame {frame} (--frame now takes camera or upright)", err=True
        )
        return "camera", int(frame)
    if frame not in FRAMES:
        raise InputError(f"--frame {frame}: expected camera or upright")
    return frame, render_frame


def lift(
    input_path: Path = typer.Argument(
        ...,
        help="2D keypoints: MMPose / COCO / AlphaPose JSON, a COCO annotation file, an OpenPose folder, "
        "VideoPose3D .npz, .npy/.csv (H36M order).",
    ),
    checkpoint_dir: Path = typer.Option(..., "--checkpoint", help="Lifter run folder from `elepose train`."),
    out: Path = typer.Option(..., "--out", help="Output prefix: writes OUT.npz and OUT.json."),
    format: Optional[str] = typer.Option(
        None, "--format", help="mmpose, coco, coco-dataset, openpose, videopose3d or array (default: detected)."
    ),
    min_score: float = typer.Option(
        0.3, "--min-score", help="Joints scoring below this are missing and filled from the PCA subspace."
    ),
    min_visible: int = typer.Option(10, "--min-visible", help="Skip people with fewer visible joints."),
    height: Optional[float] = typer.Option(
        None, "--height", help="The person's height in metres: also write 3D in metres."
    ),
    scale: Optional[str] = typer.Option(
        None,
        "--scale",
        help="2D normalisation: checkpoint (its own scale) or per-pose (each pose's own size; default for pose-scale checkpoints).",
    ),
    rotations: int = typer.Option(16, "--rotations", help="Virtual views averaged into each pose's NLL."),
    export: list[str] = typer.Option(
        [], "--export", help="Also write mmpose3d (OUT.mmpose3d.json), bvh or trc (per track); repeatable."
    ),
    fps: Optional[float] = typer.Option(None, "--fps", help="Frame rate of the input video (BVH and TRC need it)."),
    frame_mode: str = typer.Option(
        "camera",
        "--frame",
        help="camera (x right, y down, z forward) or upright (de-rotated by the elevation, y up, feet on 0).",
    ),
    smooth: bool = typer.Option(False, "--smooth", help="Savitzky-Golay filter each person's 3D over time."),
    smooth_window: int = typer.Option(9, "--smooth-window", help="Frames in the --smooth window (odd)."),
    render: Optional[Path] = typer.Option(
        None, "--render", help="Picture: out.png (one frame), out.gif / out.mp4 (sequence), out.html (interactive 3D)."
    ),
    render_frame: Optional[int] = typer.Option(
        None, "--render-frame", help="Frame index drawn by --render x.png (default: the first with a person)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    batch_size: int = typer.Option(8192, "--batch-size", help="Poses per lifter call (the NLL picks its own chunks)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace output files that elepose did not write."),
) -> None:
    """Lift 2D detections to 3D: joints, camera elevation, NLL and a reliability percentile."""
    from elepose.lift.lifter import Lifter
    from elepose.lift.notes import lift_notes

    with user_errors():
        frame_mode, render_frame = _frame_option(frame_mode, render_frame)
        if batch_size < 1:
            raise InputError(f"--batch-size: expected at least 1, got {batch_size}")
        options = SaveOptions(
            exports=tuple(export), fps=fps, height_m=height, render=render, render_frame=render_frame,
            frame=frame_mode, overwrite=overwrite, inputs=(input_path, checkpoint_dir),
        )  # fmt: skip
        npz_path, json_path = check_outputs(out, options)  # before any lifting
        lifter = Lifter.load(checkpoint_dir, device=device)
        result = lifter.lift(
            input_path, min_score=min_score, format=format, height_m=height, rotations=rotations, scale=scale,
            min_visible=min_visible, batch_size=batch_size,
        )  # fmt: skip
        if smooth:  # in the camera frame, its 3D and elevation, and scored again
            result = lifter.smooth(result, smooth_window, rotations=rotations)
        result = arrange(result, frame_mode)
        used_scale = scale or lifter.default_scale
        notes = lift_notes(result, lifter, used_scale, asked=scale is not None)
        meta = {
            "checkpoint": str(checkpoint_dir), "input": str(input_path), "format": format, "min_score": min_score,
            "min_visible": min_visible, "height_m": height, "scale": used_scale, "layout": result.layout,
            "lift_notes": notes,
            "rotations": rotations, "frame": frame_mode, "smooth_window": smooth_window if smooth else None,
            "fps": fps,
            "units": f"poses_3d: {_AXES[frame_mode]}, normalised lifter units; "
            "*_metres: scaled to height_m; elevation in degrees, looking down positive",
        }  # fmt: skip
        options = SaveOptions(**{**options.__dict__, "meta": meta})
        written = save(result, out, options)
    for note in result.notes:
        typer.echo(f"note: {input_path}: {note}", err=True)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(
        f"lifted {len(result)} people in {len(result.frame_names)} frames ({len(result.skipped)} skipped, "
        f"{len(set(result.track.tolist()))} tracks); wrote {npz_path} and {json_path}"
    )
    for path in written:
        if path not in (npz_path, json_path, render):
            typer.echo(f"exported {path}")
    if render is not None:
        typer.echo(f"picture written to {render}")


def register(app: typer.Typer) -> None:
    app.command("lift")(lift)
