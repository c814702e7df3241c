"""Saving a lift: the upright frame, smoothing, the export plan and the all-or-nothing write.

:func:`arrange` puts a :class:`~elepose.lift.lifter.LiftResult`'s 3D in the camera or upright
frame and smooths it per track; :func:`save` (also :meth:`LiftResult.save`) claims every output
(never a file elepose did not write, unless ``overwrite``), then writes ``OUT.npz``, ``OUT.json``,
the exports (MMPose-3D JSON, a BVH and a TRC per track) and a picture under temporary names and
renames them together, so an error leaves no output.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from elepose.atomic import json_text, write_together
from elepose.errors import InputError
from elepose.outputs import claim_file, is_our_png, starts_with_mark

__all__ = [
    "SaveOptions",
    "output_paths",
    "check_render",
    "check_outputs",
    "arrange",
    "save",
    "LIFT_KIND",
    "HTML_MARK",
    "FRAMES",
]

LIFT_KIND = "elepose-lift"
"""The ``kind`` of a ``lift`` JSON output: a later run may replace files that say so."""

HTML_MARK = "<!-- elepose lift view -->"

FRAMES = ("camera", "upright")

_RENDER_SUFFIXES = (".png", ".gif", ".mp4", ".html")


def output_paths(out: Path) -> tuple[Path, Path]:
    """``(OUT.npz, OUT.json)`` for the ``--out`` prefix (a ``.npz`` / ``.json`` suffix is dropped)."""
    if out.suffix.lower() in (".npz", ".json"):
        out = out.with_suffix("")
    if not out.name:
        raise InputError(f"--out {out}: expected a file name prefix such as results/walk")
    return Path(f"{out}.npz"), Path(f"{out}.json")


def check_render(render: Path | None) -> None:
    """Refuse a picture name of another kind, or an .mp4 without ffmpeg."""
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


def _export_text(fmt: str, path: Path, track: int | None, result: Any, fps: float | None) -> str:
    from elepose.lift.exports import bvh_text, mmpose_3d, track_sequence, trc_text

    poses = result.poses_3d if result.poses_3d_metres is None else result.poses_3d_metres
    if fmt == "mmpose3d":
        content = mmpose_3d(
            result.frame_names, result.frame, result.track, poses, result.reliability, result.elevation_deg
        )
        return json_text(content, indent=None, sort_keys=False, allow_nan=False)
    sequence, first = track_sequence(result.poses_3d_metres, result.track, result.frame, track)
    if fmt == "trc":
        return trc_text(sequence, fps, path.name, "m", first)
    return bvh_text(sequence, fps)  # the track's own bone lengths, at --height


def arrange(result: Any, frame_mode: str = "camera", smooth_window: int | None = None) -> Any:
    """``result`` with, given a window, its 3D poses and elevations smoothed per track (in the camera
    frame), then its 3D in ``frame_mode``. The NLL and reliability stay those of the lift:
    :meth:`elepose.lift.lifter.Lifter.smooth` smooths and scores again."""
    import dataclasses

    from elepose.lift.exports import smooth, upright

    if smooth_window is not None and len(result):
        track, frame = result.track, result.frame
        smoothed = {
            name: smooth(getattr(result, name), track, frame, smooth_window)
            for name in ("poses_3d", "poses_3d_metres")
            if getattr(result, name) is not None
        }
        elevation = smooth(result.elevation[:, None, None], track, frame, smooth_window)[:, 0, 0]
        result = dataclasses.replace(result, elevation=elevation, **smoothed)
    changes = {}
    if frame_mode == "upright":
        for name in ("poses_3d", "poses_3d_metres"):
            poses = getattr(result, name)
            if poses is not None and len(poses):
                changes[name] = upright(poses, result.elevation)
    return dataclasses.replace(result, **changes) if changes else result


def _our_export(path: Path) -> bool:
    """Whether an export file was written by elepose (BVH/TRC by their first line, MMPose JSON by its keys)."""
    return starts_with_mark(path, "HIERARCHY\nROOT pelvis", "PathFileType\t4\t(X/Y/Z)", '"frame_name"')


def _our_picture(path: Path) -> bool:
    """A PNG elepose drew, or an HTML view it wrote."""
    return starts_with_mark(path, HTML_MARK) if path.suffix.lower() == ".html" else is_our_png(path)


@dataclass(frozen=True)
class SaveOptions:
    """What :func:`save` writes beside ``OUT.npz`` and ``OUT.json``: ``exports`` (mmpose3d, bvh, trc),
    ``fps`` and ``height_m`` (BVH and TRC need both), a ``render`` picture (``.png`` of
    ``render_frame``, ``.gif`` / ``.mp4`` / ``.html``), the ``frame`` of the 3D (camera or upright),
    and ``meta``: what to record in ``OUT.json`` about how the result was made."""

    exports: tuple[str, ...] = ()
    fps: float | None = None
    height_m: float | None = None
    render: Path | None = None
    render_frame: int | None = None
    frame: str = "camera"
    overwrite: bool = False
    inputs: tuple[Path, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


def _check(options: SaveOptions, npz_path: Path, json_path: Path) -> None:
    check_render(options.render)
    inputs = list(options.inputs)
    claim_file(npz_path, _our_npz, options.overwrite, inputs)
    claim_file(json_path, _our_json, options.overwrite, inputs)
    if options.render is not None:
        claim_file(options.render, _our_picture, options.overwrite, inputs, what="--render")
        if len({npz_path.resolve(), json_path.resolve(), options.render.resolve()}) < 3:
            raise InputError(f"--render {options.render}: is one of the --out files; expected another name")
    if options.fps is not None and not (np.isfinite(options.fps) and 0 < options.fps <= 10_000):
        raise InputError(f"--fps: expected a frame rate in (0, 10000], got {options.fps}")
    for fmt in ("bvh", "trc"):
        if fmt in options.exports and options.fps is None:
            raise InputError(f"--export {fmt}: needs --fps (the frame rate of the input video)")
        if fmt in options.exports and options.height_m is None:
            raise InputError(f"--export {fmt}: needs --height (the person's height in metres: {fmt} is in metres)")


def check_outputs(out: Path, options: SaveOptions) -> tuple[Path, Path]:
    """Refuse, before any lifting, outputs that :func:`save` may not write; returns ``(OUT.npz, OUT.json)``."""
    npz_path, json_path = output_paths(out)
    _check(options, npz_path, json_path)
    return npz_path, json_path


def save(result: Any, out: Path, options: SaveOptions) -> list[Path]:
    """Write ``result`` (already through :func:`arrange`) to the ``out`` prefix, all or nothing.

    A BVH skeleton has each track's own bone lengths (their medians over its frames, at
    ``height_m``). Returns every path written: the exports, the picture, ``OUT.npz`` and ``OUT.json``."""
    npz_path, json_path = check_outputs(out, options)
    prefix = npz_path.with_suffix("")
    plan = _export_plan(prefix, list(options.exports), result, options.fps, options.height_m)
    for _, path, _ in plan:
        claim_file(path, _our_export, options.overwrite, list(options.inputs), what="--export")
    meta = {"kind": LIFT_KIND, **options.meta, "exports": [str(path) for _, path, _ in plan]}
    writers: list[tuple[Path, Any]] = []
    if options.render is not None:
        y_up = options.frame == "upright"
        writers.append((options.render, lambda tmp: _render(tmp, result, options.render_frame, options.fps, y_up=y_up)))
    for fmt, path, track in plan:
        text = _export_text(fmt, path, track, result, options.fps)
        writers.append((path, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8")))

    def write_npz(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **result.to_arrays())

    text = json_text({**meta, **result.to_json()}, indent=1, sort_keys=False, allow_nan=False)
    writers += [(npz_path, write_npz), (json_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))]
    write_together(writers)
    return [path for path, _ in writers]
