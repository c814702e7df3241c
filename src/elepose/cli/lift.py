"""``elepose lift``: a practitioner's 2D detections -> 3D poses, elevation and reliability.

``--out OUT`` is a path prefix: the command writes ``OUT.npz`` and ``OUT.json`` (a trailing
``.npz`` or ``.json`` on OUT is dropped first, so ``--out walk.json`` also gives ``walk.npz``).
Everything (reading, lifting, the picture) is computed and checked before anything is written;
then every file is written under a temporary name and renamed, so an error leaves no output.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from elepose.atomic import commit, json_text, temp_path
from elepose.cli.errors import InputError, user_errors
from elepose.outputs import claim_file, is_our_png, starts_with_mark
from elepose.skeleton import H36M_BONE_RATIOS

__all__ = ["output_paths", "lift", "register"]

_RENDER_SUFFIXES = (".png", ".gif", ".mp4", ".html")


def output_paths(out: Path) -> tuple[Path, Path]:
    """``(OUT.npz, OUT.json)`` for the ``--out`` prefix (a ``.npz`` / ``.json`` suffix is dropped)."""
    if out.suffix.lower() in (".npz", ".json"):
        out = out.with_suffix("")
    if not out.name:
        raise InputError(f"--out {out}: expected a file name prefix such as results/walk")
    return Path(f"{out}.npz"), Path(f"{out}.json")


def _check_render(render: Path | None) -> None:
    if render is None:
        return
    suffix = render.suffix.lower()
    if suffix not in _RENDER_SUFFIXES:
        raise InputError(
            f"--render {render}: expected a .png (one frame), .gif or .mp4 (the sequence) or .html (interactive) file name"
        )
    if suffix == ".mp4":
        import matplotlib

        if shutil.which(matplotlib.rcParams["animation.ffmpeg_path"]) is None:
            raise InputError(f"--render {render}: writing .mp4 needs ffmpeg, which is not installed; use .gif")


def _render(path: Path, result: Any, frame: int | None, fps: float | None = None, y_up: bool = False) -> None:
    """Draw one frame (PNG), the first person of every frame (GIF / MP4) or every person (HTML) to ``path``."""
    from elepose.lift.render import render_html, render_pose, render_sequence

    poses = result.poses_3d if result.poses_3d_metres is None else result.poses_3d_metres
    if len(result) == 0:
        raise InputError(f"--render {path}: nobody was lifted, nothing to draw")
    if path.suffix.lower() == ".html":
        render_html(
            path, result.frame_names, result.frame, result.track, poses, result.reliability, fps, HTML_MARK, y_up
        )
        return
    if path.suffix.lower() == ".png":
        if frame is None:
            row = 0
        else:
            if not 0 <= frame < len(result.frame_names):
                raise InputError(f"--render-frame {frame}: the input has frames 0..{len(result.frame_names) - 1}")
            rows = np.flatnonzero(result.frame == frame)
            if len(rows) == 0:
                raise InputError(f"--render-frame {frame}: nobody was lifted in frame {result.frame_names[frame]!r}")
            row = int(rows[0])
        title = f"frame {result.frame_names[result.frame[row]]}, person {result.person[row]}: elevation {result.elevation_deg[row]:.1f} deg, reliability {result.reliability[row]:.0f}"
        render_pose(path, result.keypoints_2d[row], poses[row], title=title, missing=result.missing[row])
    else:
        _, first = np.unique(result.frame, return_index=True)  # the first person of each frame with people
        render_sequence(path, result.keypoints_2d[first], poses[first], missing=result.missing[first])


LIFT_KIND = "elepose-lift"
"""The ``kind`` of a ``lift`` JSON output: a later run may replace files that say so."""


def _our_npz(path: Path) -> bool:
    """Whether ``path`` is an ``.npz`` that ``elepose lift`` wrote (its arrays say so)."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return {"poses_3d", "joint_names", "frame_names"} <= set(arrays.files)
    except Exception:  # not an npz at all
        return False


def _our_json(path: Path) -> bool:
    """Whether ``path`` is a JSON file that ``elepose lift`` wrote."""
    return starts_with_mark(path, f'"kind": "{LIFT_KIND}"')


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


FRAMES = ("camera", "upright")


def _export_plan(
    out: Path, exports: list[str], result: Any, fps: float | None, height: float | None
) -> list[tuple[str, Path, int | None]]:
    """``(format, path, track)`` of every export file: one MMPose JSON; a BVH and a TRC per track."""
    from elepose.lift.exports import EXPORT_FORMATS

    plan: list[tuple[str, Path, int | None]] = []
    tracks = sorted(set(result.track.tolist()))
    for fmt in dict.fromkeys(exports):
        if fmt not in EXPORT_FORMATS:
            raise InputError(f"--export {fmt}: expected one of {', '.join(EXPORT_FORMATS)}")
        if len(result) == 0:
            raise InputError(
                f"--export {fmt}: nobody was lifted in {len(result.frame_names)} frames; nothing to export"
            )
        if fmt == "mmpose3d":
            plan.append((fmt, Path(f"{out}.mmpose3d.json"), None))
            continue
        if fps is None:
            raise InputError(f"--export {fmt}: needs --fps (the frame rate of the input video)")
        if height is None:
            raise InputError(f"--export {fmt}: needs --height (the person's height in metres: {fmt} is in metres)")
        for t in tracks:
            name = f"{out}.{fmt}" if len(tracks) == 1 else f"{out}.track{t}.{fmt}"
            plan.append((fmt, Path(name), t))
    return plan


def _export_text(
    fmt: str, path: Path, track: int | None, result: Any, fps: float | None, height: float | None, bone_ratios: Any
) -> str:
    from elepose.lift.exports import bone_lengths_for_height, bvh_text, mmpose_3d, track_sequence, trc_text

    poses = result.poses_3d if result.poses_3d_metres is None else result.poses_3d_metres
    if fmt == "mmpose3d":
        content = mmpose_3d(
            result.frame_names, result.frame, result.track, poses, result.reliability, result.elevation_deg
        )
        return json_text(content, indent=None, sort_keys=False, allow_nan=False)
    sequence, first = track_sequence(result.poses_3d_metres, result.track, result.frame, track)
    if fmt == "trc":
        return trc_text(sequence, fps, path.name, "m", first)
    return bvh_text(sequence, fps, bone_lengths_for_height(bone_ratios, height))


def _arranged(result: Any, frame_mode: str, smooth_window: int | None) -> Any:
    """``result`` with its 3D poses in ``frame_mode`` and, with a window, smoothed per track."""
    import dataclasses

    from elepose.lift.exports import smooth, upright

    changes = {}
    for name in ("poses_3d", "poses_3d_metres"):
        poses = getattr(result, name)
        if poses is None or len(poses) == 0:
            continue
        if frame_mode == "upright":
            poses = upright(poses, result.elevation)
        if smooth_window is not None:
            poses = smooth(poses, result.track, result.frame, smooth_window)
        changes[name] = poses
    return dataclasses.replace(result, **changes) if changes else result


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

    with user_errors():
        frame_mode, render_frame = _frame_option(frame_mode, render_frame)
        npz_path, json_path = output_paths(out)
        prefix = npz_path.with_suffix("")
        _check_render(render)
        inputs = [input_path, checkpoint_dir]
        claim_file(npz_path, _our_npz, overwrite, inputs)
        claim_file(json_path, _our_json, overwrite, inputs)
        if render is not None:
            claim_file(render, _our_picture, overwrite, inputs, what="--render")
            if len({npz_path.resolve(), json_path.resolve(), render.resolve()}) < 3:
                raise InputError(f"--render {render}: is one of the --out files; expected another name")
        if batch_size < 1:
            raise InputError(f"--batch-size: expected at least 1, got {batch_size}")
        if fps is not None and not (np.isfinite(fps) and 0 < fps <= 10_000):
            raise InputError(f"--fps: expected a frame rate in (0, 10000], got {fps}")
        for fmt in ("bvh", "trc"):
            if fmt in export and fps is None:
                raise InputError(f"--export {fmt}: needs --fps (the frame rate of the input video)")
            if fmt in export and height is None:
                raise InputError(f"--export {fmt}: needs --height (the person's height in metres: {fmt} is in metres)")
        lifter = Lifter.load(checkpoint_dir, device=device)
        result = lifter.lift(
            input_path,
            min_score=min_score,
            format=format,
            height_m=height,
            rotations=rotations,
            scale=scale,
            min_visible=min_visible,
            batch_size=batch_size,
        )
        result = _arranged(result, frame_mode, smooth_window if smooth else None)
        plan = _export_plan(prefix, export, result, fps, height)
        for _, path, _ in plan:
            claim_file(path, _our_export, overwrite, inputs, what="--export")
        axes = (
            "camera frame (x right, y down, z forward), pelvis-centred"
            if frame_mode == "camera"
            else "upright (de-rotated by the predicted elevation; x right, y up, z towards the camera; lower ankle on y = 0)"
        )
        meta = {
            "kind": LIFT_KIND,
            "checkpoint": str(checkpoint_dir),
            "input": str(input_path),
            "format": format,
            "min_score": min_score,
            "min_visible": min_visible,
            "height_m": height,
            "scale": scale or lifter.default_scale,
            "rotations": rotations,
            "frame": frame_mode,
            "smooth_window": smooth_window if smooth else None,
            "fps": fps,
            "exports": [str(path) for _, path, _ in plan],
            "units": f"poses_3d: {axes}, normalised lifter units; "
            "*_metres: scaled to height_m; elevation in degrees, looking down positive",
        }
        temps: list[tuple[Path, Path]] = []
        try:
            if render is not None:
                temps.append((temp_path(render), render))
                _render(temps[-1][0], result, render_frame, fps, y_up=frame_mode == "upright")
            for fmt, path, track in plan:
                temps.append((temp_path(path), path))
                ratios = lifter.record.bone_ratios or H36M_BONE_RATIOS
                text = _export_text(fmt, path, track, result, fps, height, ratios)
                temps[-1][0].write_text(text, encoding="utf-8")
            tmp = temp_path(npz_path)
            temps.append((tmp, npz_path))
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **result.to_arrays())
            tmp = temp_path(json_path)
            temps.append((tmp, json_path))
            tmp.write_text(
                json_text({**meta, **result.to_json()}, indent=1, sort_keys=False, allow_nan=False), encoding="utf-8"
            )
            for tmp, final in temps:
                commit(tmp, final)
        finally:
            for tmp, _ in temps:
                tmp.unlink(missing_ok=True)
    lifted, skipped = len(result), len(result.skipped)
    for note in result.notes:
        typer.echo(f"note: {input_path}: {note}", err=True)
    typer.echo(
        f"lifted {lifted} people in {len(result.frame_names)} frames ({skipped} skipped, "
        f"{len(set(result.track.tolist()))} tracks); wrote {npz_path} and {json_path}"
    )
    for _, path, _ in plan:
        typer.echo(f"exported {path}")
    if render is not None:
        typer.echo(f"picture written to {render}")


def _our_export(path: Path) -> bool:
    """Whether an export file was written by elepose (BVH/TRC by their first line, MMPose JSON by its keys)."""
    return starts_with_mark(path, "HIERARCHY\nROOT pelvis", "PathFileType\t4\t(X/Y/Z)", '"frame_name"')


def _our_picture(path: Path) -> bool:
    """A PNG elepose drew, or an HTML view it wrote."""
    return starts_with_mark(path, HTML_MARK) if path.suffix.lower() == ".html" else is_our_png(path)


HTML_MARK = "<!-- elepose lift view -->"


def register(app: typer.Typer) -> None:
    app.command("lift")(lift)
