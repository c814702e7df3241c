"""Pictures of lifted poses: the 2D input beside the 3D pose (PNG), or a sequence (GIF / MP4).

Matplotlib figures on an Agg canvas (no display, no pyplot state). Left limbs are drawn in one colour, right
limbs in another, the trunk in a third; joints marked missing (filled in, not detected) are drawn
hollow and their bones dashed. The 3D pose is in the camera frame (x right, y down, z forward)
and shown upright: camera y down is plotted up, depth goes into the picture.

>>> import numpy as np, tempfile, os
>>> pose_3d = np.random.default_rng(0).normal(0, 0.3, (17, 3)) + [0, 0, 5]
>>> pose_2d = 1000 * pose_3d[:, :2] / pose_3d[:, 2:] + 500
>>> path = os.path.join(tempfile.mkdtemp(), "pose.png")
>>> render_pose(path, pose_2d, pose_3d, title="example")
>>> os.path.getsize(path) > 0
True
"""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib
import numpy as np
import plotly.graph_objects as go
from matplotlib.animation import FFMpegWriter, PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from elepose.atomic import atomic_write
from elepose.evaluate.figures import draw_skeleton, upright
from elepose.outputs import PNG_SOFTWARE
from elepose.skeleton import BONES, NUM_JOINTS

__all__ = ["render_pose", "render_sequence", "render_html"]


def _missing_mask(missing: np.ndarray | None) -> np.ndarray:
    if missing is None:
        return np.zeros(NUM_JOINTS, dtype=bool)
    missing = np.asarray(missing, dtype=bool)
    if missing.shape != (NUM_JOINTS,):
        raise ValueError(f"missing: expected shape ({NUM_JOINTS},) bool, got {missing.shape}")
    return missing


def _check(name: str, array: np.ndarray, shape: tuple[int | None, ...]) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape)):
        expected = ", ".join("F" if s is None else str(s) for s in shape)
        raise ValueError(f"{name}: expected shape ({expected}), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: holds NaN or inf values; expected finite coordinates")
    return array


def _limits(points: np.ndarray, margin: float = 0.1) -> tuple[np.ndarray, float]:
    """Centre and half-width of a cube (square) holding ``points (..., D)``, for equal aspect."""
    flat = points.reshape(-1, points.shape[-1])
    low, high = flat.min(axis=0), flat.max(axis=0)
    half = max(float((high - low).max()) / 2 * (1 + margin), 1e-6)
    return (low + high) / 2, half


class _Figure:
    """A two-panel figure (2D input, 3D lift) with fixed limits, redrawn per pose."""

    def __init__(self, keypoints_2d: np.ndarray, poses_3d: np.ndarray) -> None:
        # A bare Figure on an Agg canvas: no pyplot state, no window, whatever the backend.
        self.figure = Figure(figsize=(10, 5), dpi=100)
        FigureCanvasAgg(self.figure)
        self.ax_2d = self.figure.add_subplot(1, 2, 1)
        self.ax_3d = self.figure.add_subplot(1, 2, 2, projection="3d")
        self.centre_2d, self.half_2d = _limits(keypoints_2d)
        self.centre_3d, self.half_3d = _limits(upright(poses_3d))

    def draw(self, keypoints_2d: np.ndarray, pose_3d: np.ndarray, missing: np.ndarray, title: str | None) -> None:
        ax = self.ax_2d
        ax.clear()
        draw_skeleton(ax, keypoints_2d, missing)
        (cx, cy), h = self.centre_2d, self.half_2d
        ax.set_xlim(cx - h, cx + h)
        ax.set_ylim(cy + h, cy - h)  # image rows grow downwards
        ax.set_aspect("equal")
        ax.set_title("2D input (pixels)")
        ax.set_xlabel("u")
        ax.set_ylabel("v")

        ax = self.ax_3d
        ax.clear()
        draw_skeleton(ax, upright(pose_3d), missing)
        for k, (c, label) in enumerate(zip(self.centre_3d, ("x (m)", "depth z (m)", "-y, up (m)"))):
            getattr(ax, f"set_{'xyz'[k]}lim")(c - self.half_3d, c + self.half_3d)
            getattr(ax, f"set_{'xyz'[k]}label")(label)
        ax.set_box_aspect((1, 1, 1))
        ax.view_init(elev=15, azim=-70)
        ax.set_title("3D lift (camera frame)")
        self.figure.suptitle(title or "")


def render_pose(
    path: str | Path,
    keypoints_2d: np.ndarray,
    pose_3d: np.ndarray,
    title: str | None = None,
    missing: np.ndarray | None = None,
) -> None:
    """Write a PNG of ``keypoints_2d (17, 2)`` pixels beside ``pose_3d (17, 3)`` metres, camera frame.

    ``missing (17,)`` bool marks joints that were not detected (drawn hollow, bones dashed).
    """
    keypoints_2d = _check("keypoints_2d", keypoints_2d, (NUM_JOINTS, 2))
    pose_3d = _check("pose_3d", pose_3d, (NUM_JOINTS, 3))
    missing = _missing_mask(missing)
    figure = _Figure(keypoints_2d, pose_3d)
    figure.draw(keypoints_2d, pose_3d, missing, title)
    atomic_write(Path(path), lambda tmp: figure.figure.savefig(tmp, format="png", metadata={"Software": PNG_SOFTWARE}))


def render_sequence(
    path: str | Path,
    keypoints_2d: np.ndarray,
    poses_3d: np.ndarray,
    fps: float = 10,
    missing: np.ndarray | None = None,
) -> None:
    """Write an animation of ``keypoints_2d (F, 17, 2)`` px beside ``poses_3d (F, 17, 3)`` m.

    ``.mp4`` needs ffmpeg on the PATH; ``.gif`` is written with Pillow. ``missing (F, 17)``
    bool is optional. Axis limits are shared by all frames, so motion is visible.
    """
    path = Path(path)
    keypoints_2d = _check("keypoints_2d", keypoints_2d, (None, NUM_JOINTS, 2))
    poses_3d = _check("poses_3d", poses_3d, (keypoints_2d.shape[0], NUM_JOINTS, 3))
    if keypoints_2d.shape[0] == 0:
        raise ValueError("keypoints_2d: no frames to render")
    if missing is None:
        missing = np.zeros(keypoints_2d.shape[:2], dtype=bool)
    missing = np.asarray(missing, dtype=bool)
    if missing.shape != keypoints_2d.shape[:2]:
        raise ValueError(f"missing: expected shape {keypoints_2d.shape[:2]}, got {missing.shape}")
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        if shutil.which(matplotlib.rcParams["animation.ffmpeg_path"]) is None:
            raise ValueError(f"{path}: writing .mp4 needs ffmpeg, which is not installed; install ffmpeg or use .gif")
        writer = FFMpegWriter(fps=fps)
    elif suffix == ".gif":
        writer = PillowWriter(fps=fps)
    else:
        raise ValueError(f"{path}: expected a .gif or .mp4 file name for an animation")
    figure = _Figure(keypoints_2d, poses_3d)

    def write(tmp: str) -> None:
        with writer.saving(figure.figure, tmp, dpi=100):
            for f in range(keypoints_2d.shape[0]):
                figure.draw(keypoints_2d[f], poses_3d[f], missing[f], f"frame {f}")
                writer.grab_frame()

    atomic_write(path, write)


def render_html(
    path: str | Path,
    frame_names: tuple[str, ...],
    frame: np.ndarray,
    track: np.ndarray,
    poses_3d: np.ndarray,
    reliability: np.ndarray,
    fps: float | None = None,
    mark: str = "",
    y_up: bool = False,
) -> None:
    """One self-contained interactive 3D view (plotly, its script inlined: opens with no network).

    Every person ``poses_3d (P, 17, 3)`` of every frame (``frame (P,)`` into ``frame_names``),
    one colour per ``track``; drag to rotate, the slider or the play button scrubs frames.
    Camera-frame poses (y down) are drawn with the image's up as up; ``y_up`` for upright poses.
    ``mark`` is written first (an HTML comment a later run recognises).
    """
    poses = _check("poses_3d", poses_3d, (None, NUM_JOINTS, 3))
    shown = (
        np.stack([poses[..., 0], poses[..., 2], -poses[..., 1]], -1) if not y_up else poses[..., [0, 2, 1]] * [1, -1, 1]
    )
    tracks = sorted(set(np.asarray(track).tolist()))
    palette = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
    used_frames = sorted(set(np.asarray(frame).tolist()))

    def traces(f: int) -> list:
        out = []
        for k, t in enumerate(tracks):
            rows = np.flatnonzero((frame == f) & (track == t))
            xs, ys, zs = [], [], []
            for r in rows:
                for a, b in BONES:
                    for j in (a, b):
                        xs.append(shown[r, j, 0]), ys.append(shown[r, j, 1]), zs.append(shown[r, j, 2])
                    xs.append(None), ys.append(None), zs.append(None)
            label = f"track {t}" + (f", reliability {reliability[rows[0]]:.0f}" if len(rows) else "")
            colour = palette[k % len(palette)]
            out.append(go.Scatter3d(x=xs, y=ys, z=zs, mode="lines+markers", name=label,
                                    line={"color": colour, "width": 5}, marker={"size": 2, "color": colour}))  # fmt: skip
        return out

    low, high = shown.reshape(-1, 3).min(0), shown.reshape(-1, 3).max(0)
    centre, half = (low + high) / 2, float((high - low).max()) / 2 * 1.1 + 1e-6
    axes = {f"{a}axis": {"range": [centre[i] - half, centre[i] + half], "title": t}
            for i, (a, t) in enumerate(zip("xyz", ("x", "depth", "up")))}  # fmt: skip
    duration = 1000.0 / fps if fps else 100.0
    figure = go.Figure(
        data=traces(used_frames[0]),
        frames=[go.Frame(data=traces(f), name=str(f)) for f in used_frames],
        layout=go.Layout(
            title=f"elepose lift: {len(frame)} poses, {len(used_frames)} frames, {len(tracks)} tracks",
            scene={**axes, "aspectmode": "cube"},
            updatemenus=[
                {
                    "type": "buttons",
                    "buttons": [
                        {
                            "label": "play",
                            "method": "animate",
                            "args": [None, {"frame": {"duration": duration}, "fromcurrent": True}],
                        },
                        {"label": "pause", "method": "animate", "args": [[None], {"mode": "immediate"}]},
                    ],
                }
            ],  # fmt: skip
            sliders=[
                {
                    "steps": [
                        {"label": frame_names[f], "method": "animate", "args": [[str(f)], {"mode": "immediate"}]}
                        for f in used_frames
                    ]
                }
            ],  # fmt: skip
        ),
    )
    html = figure.to_html(full_html=True, include_plotlyjs=True)
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(f"{mark}\n{html}", encoding="utf-8"))
