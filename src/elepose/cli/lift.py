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
from elepose.outputs import claim_file, is_our_png

__all__ = ["output_paths", "lift", "register"]

_RENDER_SUFFIXES = (".png", ".gif", ".mp4")


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
        raise InputError(f"--render {render}: expected a .png (one frame), .gif or .mp4 (the sequence) file name")
    if suffix == ".mp4":
        import matplotlib

        if shutil.which(matplotlib.rcParams["animation.ffmpeg_path"]) is None:
            raise InputError(f"--render {render}: writing .mp4 needs ffmpeg, which is not installed; use .gif")


def _render(path: Path, result: Any, frame: int | None) -> None:
    """Draw one frame (PNG) or the first person of every frame (GIF / MP4) to ``path``."""
    from elepose.lift.render import render_pose, render_sequence

    poses = result.poses_3d if result.poses_3d_metres is None else result.poses_3d_metres
    if len(result) == 0:
        raise InputError(f"--render {path}: nobody was lifted, nothing to draw")
    if path.suffix.lower() == ".png":
        if frame is None:
            row = 0
        else:
            if not 0 <= frame < len(result.frame_names):
                raise InputError(f"--frame {frame}: the input has frames 0..{len(result.frame_names) - 1}")
            rows = np.flatnonzero(result.frame == frame)
            if len(rows) == 0:
                raise InputError(f"--frame {frame}: nobody was lifted in frame {result.frame_names[frame]!r}")
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
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
    return f'"kind": "{LIFT_KIND}"' in head


def lift(
    input_path: Path = typer.Argument(
        ..., help="2D keypoints: MMPose/COCO JSON, OpenPose folder, VideoPose3D .npz, .npy/.csv (H36M order)."
    ),
    checkpoint_dir: Path = typer.Option(..., "--checkpoint", help="Lifter run folder from `elepose train`."),
    out: Path = typer.Option(..., "--out", help="Output prefix: writes OUT.npz and OUT.json."),
    format: Optional[str] = typer.Option(
        None, "--format", help="mmpose, coco, openpose, videopose3d or array (default: detected)."
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
    render: Optional[Path] = typer.Option(
        None, "--render", help="Picture: out.png (one frame), out.gif or out.mp4 (sequence)."
    ),
    frame: Optional[int] = typer.Option(
        None, "--frame", help="Frame index drawn by --render x.png (default: the first with a person)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    batch_size: int = typer.Option(8192, "--batch-size", help="Poses per lifter call (the NLL picks its own chunks)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace output files that elepose did not write."),
) -> None:
    """Lift 2D detections to 3D: joints, camera elevation, NLL and a reliability percentile."""
    from elepose.lift.lifter import Lifter

    with user_errors():
        npz_path, json_path = output_paths(out)
        _check_render(render)
        inputs = [input_path, checkpoint_dir]
        claim_file(npz_path, _our_npz, overwrite, inputs)
        claim_file(json_path, _our_json, overwrite, inputs)
        if render is not None:
            claim_file(render, is_our_png, overwrite, inputs, what="--render")
            if len({npz_path.resolve(), json_path.resolve(), render.resolve()}) < 3:
                raise InputError(f"--render {render}: is one of the --out files; expected another name")
        if batch_size < 1:
            raise InputError(f"--batch-size: expected at least 1, got {batch_size}")
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
            "units": "poses_3d: camera frame (x right, y down, z forward), pelvis-centred, normalised lifter units; "
            "*_metres: scaled to height_m; elevation in degrees, looking down positive",
        }
        temps: list[tuple[Path, Path]] = []
        try:
            if render is not None:
                temps.append((temp_path(render), render))
                _render(temps[-1][0], result, frame)
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
    typer.echo(
        f"lifted {lifted} people in {len(result.frame_names)} frames ({skipped} skipped); wrote {npz_path} and {json_path}"
    )
    if render is not None:
        typer.echo(f"picture written to {render}")


def register(app: typer.Typer) -> None:
    app.command("lift")(lift)
