"""Motion capture (Bandai, CMU, any BVH folder) -> a pose cache: clips -> split -> cameras -> 2D (SPEC section 8).

The core works on in-memory clips (anything with ``positions (F, 17, 3)`` world metres Z up,
``fps`` and ``name``); :func:`build_cache` adds BVH loading and the atomic cache folder.

Choices made where SPEC section 8 leaves room:

- **10 fps**: every ``round(fps / 10)``-th frame starting at frame 0 (30 fps: every 3rd,
  120 fps: every 12th; below 15 fps every frame). ``frame`` in the cache indexes the clip's
  positions as the reader returns them (after any frames its mapping drops, e.g. CMU's T-pose).
- **40 mm filter** (training clips only): the first 10 fps frame is kept; a later one is kept
  when some joint, pelvis-relative, lies >= 40 mm from where it was in the last kept frame.
- **Split**: clips are grouped by *content*. A Bandai stem ``dataset-N_{content}_{style}_{take}``
  belongs to the group ``dataset-N_{content}`` (dataset 1 and 2 both have ``walk``, recorded
  differently, so they are separate groups). Any other stem belongs to one group per source
  (``cmu`` or the folder's name). Each group is sorted by ``(zlib.crc32(stem), stem)`` and the
  clips at positions 4, 9, 14, ... (0-based, every 5th) go to test, so groups of fewer than 5
  clips stay in train. The split is decided on all clips of the source before ``--limit-clips``
  picks a subset, so a clip's split never depends on which other clips were loaded.
- **Random draws**: each clip has its own ``numpy.random.default_rng([seed, crc32(stem)])``;
  it draws the cameras of every window (see :func:`elepose.data.cameras.draw_window_cameras`),
  then the detection noise of every 10 fps frame and view, before any frame or view is dropped.
  A clip therefore gets the same cameras and noise whatever its split and whatever else is built.
- **Detected 2D**: ground truth + N(0, 4 px) on each coordinate; independently, with
  probability 0.02 per joint (per pose), an outlier offset of length 25 px in a direction
  drawn uniformly from [0, 2 pi) is added on top.
- **Views**: a (frame, camera) pair is dropped when any joint projects outside
  ``0 <= u, v < 1000`` or lies behind the camera. Every drawn camera is recorded.
- **Order**: clips by stem; within a clip, frames in time order, each frame's views by camera.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import re
import signal
import sys
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from elepose.data.bvh import load_h36m_joints
from elepose.data.cache import PoseCache, PoseSplit, cache_manifest, write_cache
from elepose.data.cameras import (
    CameraOptions,
    Cameras,
    draw_window_cameras,
    in_image,
    pelvis_windows,
    project_points,
    to_camera_frame,
)
from elepose.skeleton import NUM_JOINTS, PELVIS

__all__ = [
    "ClipLike",
    "BuildOptions",
    "RenderedClip",
    "subsample_indices",
    "motion_filter",
    "content_group",
    "dataset_label",
    "assign_splits",
    "clip_rng",
    "detection_noise",
    "render_clip",
    "assemble_split",
    "build_from_clips",
    "find_clip_files",
    "limit_files",
    "build_cache",
]

_BANDAI_STEM = re.compile(r"^dataset-(\d+)_([^_]+)_([^_]+)_([^_]+)$")
TEST_EVERY = 5
"""Every 5th clip of a content group (positions 4, 9, ... after sorting by crc32) is a test clip."""


class ClipLike(Protocol):
    """A motion-capture clip: ``positions (F, 17, 3)`` world metres (Z up), ``fps``, ``name`` (file stem)."""

    positions: np.ndarray
    fps: float
    name: str


@dataclass(frozen=True)
class BuildOptions:
    """How a benchmark is built from clips (SPEC section 8); lengths in metres, noise in pixels."""

    seed: int = 0
    cameras: CameraOptions = field(default_factory=CameraOptions)
    target_fps: float = 10.0
    min_motion: float = 0.040
    noise_px: float = 4.0
    outlier_prob: float = 0.02
    outlier_px: float = 25.0


@dataclass(frozen=True)
class RenderedClip:
    """The posed views of one clip; M = kept (frame, view) pairs, V = the clip's cameras.

    ``frame (M,)`` native frame index, ``view (M,)`` index into ``cameras``,
    ``poses_2d``/``poses_2d_detected (M, 17, 2)`` px, ``poses_3d (M, 17, 3)`` camera frame metres.
    """

    name: str
    dataset: str
    split: str
    frame: np.ndarray
    view: np.ndarray
    poses_2d: np.ndarray
    poses_2d_detected: np.ndarray
    poses_3d: np.ndarray
    cameras: Cameras


def subsample_indices(num_frames: int, fps: float, target_fps: float = 10.0) -> np.ndarray:
    """Frame indices ``(K,)`` for ``target_fps``: every ``max(1, round(fps / target_fps))``-th from 0."""
    if not fps > 0:
        raise ValueError(f"frame rate: expected a positive number of frames per second, got {fps}")
    step = max(1, int(round(fps / target_fps)))
    return np.arange(0, num_frames, step)


def motion_filter(positions: np.ndarray, min_motion: float = 0.040) -> np.ndarray:
    """Indices ``(K,)`` of the frames kept from ``positions (F, 17, 3)`` metres by the motion filter.

    Frame 0 is kept; a later frame is kept when its largest per-joint distance, pelvis-relative,
    to the last kept frame is >= ``min_motion`` metres (the usual Human3.6M preprocessing).
    """
    relative = positions - positions[:, PELVIS : PELVIS + 1]
    kept: list[int] = []
    for i in range(len(relative)):
        if not kept or np.linalg.norm(relative[i] - relative[kept[-1]], axis=-1).max() >= min_motion:
            kept.append(i)
    return np.asarray(kept, dtype=np.int64)


def content_group(stem: str, source: str) -> str:
    """Content group of a clip for the split: ``dataset-N_{content}`` for Bandai stems, else ``source``."""
    match = _BANDAI_STEM.match(stem)
    return f"dataset-{match.group(1)}_{match.group(2)}" if match else source


def dataset_label(stem: str, source: str) -> str:
    """Dataset a clip is reported under: ``bandai-N`` for Bandai stems, else ``source``."""
    match = _BANDAI_STEM.match(stem)
    return f"bandai-{match.group(1)}" if match else source


def assign_splits(stems: Sequence[str], source: str) -> dict[str, str]:
    """``{stem: "train" | "test"}``: every 5th clip of each content group, sorted by crc32, is test."""
    groups: dict[str, list[str]] = {}
    for stem in stems:
        groups.setdefault(content_group(stem, source), []).append(stem)
    splits: dict[str, str] = {}
    for members in groups.values():
        ordered = sorted(members, key=lambda s: (zlib.crc32(s.encode("utf-8")), s))
        for position, stem in enumerate(ordered):
            splits[stem] = "test" if position % TEST_EVERY == TEST_EVERY - 1 else "train"
    return splits


def clip_rng(seed: int, stem: str) -> np.random.Generator:
    """The clip's own generator, seeded by ``(seed, crc32(stem))``."""
    return np.random.default_rng([int(seed), zlib.crc32(stem.encode("utf-8"))])


def detection_noise(rng: np.random.Generator, shape: tuple[int, ...], options: BuildOptions) -> np.ndarray:
    """Pixel offsets ``shape + (2,)`` for "detected" 2D: Gaussian jitter plus rare fixed-length outliers.

    Draw order: the Gaussian ``(..., 2)``, the outlier coin ``(...)``, the outlier direction ``(...)``.
    """
    jitter = rng.normal(0.0, options.noise_px, size=shape + (2,))
    is_outlier = rng.random(size=shape) < options.outlier_prob
    angle = rng.uniform(0.0, 2.0 * np.pi, size=shape)
    outlier = options.outlier_px * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    return jitter + np.where(is_outlier[..., None], outlier, 0.0)


def _check_clip(clip: ClipLike) -> np.ndarray:
    positions = np.asarray(clip.positions, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[1:] != (NUM_JOINTS, 3) or len(positions) == 0:
        raise ValueError(f"{clip.name}: positions: expected shape (F>0, 17, 3), got {positions.shape}")
    if not np.isfinite(positions).all():
        raise ValueError(f"{clip.name}: positions: NaN or inf values")
    return positions


def render_clip(clip: ClipLike, split: str, dataset: str, options: BuildOptions) -> RenderedClip:
    """Subsample, place cameras, project, add detection noise, filter (train) and drop views of one clip."""
    if split not in ("train", "test"):
        raise ValueError(f"{clip.name}: split: expected 'train' or 'test', got {split!r}")
    positions = _check_clip(clip)
    rng = clip_rng(options.seed, clip.name)
    frames = subsample_indices(len(positions), clip.fps, options.target_fps)
    world = positions[frames]
    pelvis = world[:, PELVIS]
    windows = pelvis_windows(pelvis, options.cameras.window_travel)
    num_windows = int(windows.max()) + 1
    cameras = Cameras.concatenate(
        [draw_window_cameras(rng, pelvis[windows == w], options.cameras) for w in range(num_windows)]
    )
    per_window = options.cameras.views_per_window
    views = windows[:, None] * per_window + np.arange(per_window)  # (K, 4) camera of each frame's views
    noise = detection_noise(rng, views.shape + (NUM_JOINTS,), options)

    rotation, translation = cameras.R[views][:, :, None], cameras.t[views][:, :, None]
    poses_3d = to_camera_frame(world[:, None], rotation, translation)  # (K, 4, 17, 3)
    pixels, depth = project_points(world[:, None], cameras.K[views][:, :, None], rotation, translation)
    size = options.cameras.image_size
    visible = in_image(pixels, depth, size, size)  # (K, 4)

    if split == "train":
        keep_frame = np.zeros(len(frames), dtype=bool)
        keep_frame[motion_filter(world, options.min_motion)] = True
        visible &= keep_frame[:, None]
    rows, cols = np.nonzero(visible)
    return RenderedClip(
        name=clip.name,
        dataset=dataset,
        split=split,
        frame=frames[rows],
        view=views[rows, cols],
        poses_2d=pixels[rows, cols],
        poses_2d_detected=pixels[rows, cols] + noise[rows, cols],
        poses_3d=poses_3d[rows, cols],
        cameras=cameras,
    )


def assemble_split(clips: Sequence[RenderedClip]) -> PoseSplit:
    """Concatenate rendered clips (in the given order) into one :class:`PoseSplit`."""
    offsets = np.cumsum([0] + [len(c.cameras) for c in clips])
    cameras = Cameras.concatenate([c.cameras for c in clips])

    def cat(name: str, shape: tuple[int, ...]) -> np.ndarray:
        parts = [getattr(c, name) for c in clips]
        return np.concatenate(parts) if parts else np.zeros((0,) + shape)

    return PoseSplit(
        poses_2d=cat("poses_2d", (NUM_JOINTS, 2)).astype(np.float32),
        poses_2d_detected=cat("poses_2d_detected", (NUM_JOINTS, 2)).astype(np.float32),
        poses_3d=cat("poses_3d", (NUM_JOINTS, 3)).astype(np.float32),
        view=np.concatenate([c.view + offsets[i] for i, c in enumerate(clips)] or [np.zeros(0)]).astype(np.int32),
        frame=np.concatenate([c.frame for c in clips] or [np.zeros(0)]).astype(np.int32),
        camera_K=cameras.K.astype(np.float32),
        camera_R=cameras.R.astype(np.float32),
        camera_t=cameras.t.astype(np.float32),
        camera_elevation=cameras.elevation_deg.astype(np.float32),
        camera_clip=np.repeat(np.arange(len(clips)), [len(c.cameras) for c in clips]).astype(np.int32),
        clip_names=np.array([c.name for c in clips], dtype=str),
        clip_source=np.array([c.dataset for c in clips], dtype=str),
    )


def _manifest(
    train: PoseSplit, test: PoseSplit, options: BuildOptions, sources: list[dict[str, Any]]
) -> dict[str, Any]:
    if len(train) == 0:
        raise ValueError("build: the training split holds no poses (no clip had a view with every joint in the image)")
    return cache_manifest(train, test, sources, seed=options.seed, options=asdict(options))


def build_from_clips(
    clips: Iterable[RenderedClip] | Iterable[tuple[ClipLike, str, str]],
    options: BuildOptions,
    sources: list[dict[str, Any]] | None = None,
) -> PoseCache:
    """Build both splits and the manifest.

    ``clips``: rendered clips, or ``(clip, split, dataset)`` triples that are rendered here
    (``split`` as from :func:`assign_splits`, ``dataset`` as from :func:`dataset_label`).
    Clips are ordered by name in the output.
    """
    rendered = [c if isinstance(c, RenderedClip) else render_clip(c[0], c[1], c[2], options) for c in clips]
    names = [c.name for c in rendered]
    if len(set(names)) != len(names):
        raise ValueError(
            f"build: clip names must be unique, repeated: {sorted({n for n in names if names.count(n) > 1})}"
        )
    rendered.sort(key=lambda c: c.name)
    train = assemble_split([c for c in rendered if c.split == "train"])
    test = assemble_split([c for c in rendered if c.split == "test"])
    return PoseCache(train, test, _manifest(train, test, options, sources or []))


def find_clip_files(source: str, data_root: str | Path) -> tuple[list[Path], str]:
    """The BVH files of a source and its label: ``bandai`` (both datasets under
    ``data_root/bandai/*/data``), ``cmu`` (``data_root/cmu``) or a folder of ``.bvh`` files."""
    root = Path(data_root)
    if source == "bandai":
        files = sorted(root.glob("bandai/*/data/*.bvh"))
        where = f"{root / 'bandai'}/*/data"
    elif source == "cmu":
        files, where = sorted((root / "cmu").glob("*.bvh")), str(root / "cmu")
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: --source expects bandai, cmu or a folder of .bvh files")
        files, where, source = sorted(folder.glob("*.bvh")), str(folder), folder.resolve().name
    if not files:
        raise FileNotFoundError(f"{where}: no .bvh files found")
    stems = [f.stem for f in files]
    repeated = sorted({s for s in stems if stems.count(s) > 1})
    if repeated:
        raise ValueError(f"{where}: clip names (file stems) must be unique, repeated: {repeated}")
    return files, source


def limit_files(files: Sequence[Path], limit: int | None, splits: dict[str, str] | None = None) -> list[Path]:
    """A deterministic subset: the ``limit`` files with the smallest ``crc32("subset/" + stem)``.

    The prefix decorrelates this order from the split's ``crc32(stem)`` order, which would
    otherwise pick mostly the first clips of each content group, i.e. training clips. With
    ``splits`` (stem -> split) and ``limit >= 2``, the subset holds at least one test clip
    (the first in that order replaces the last pick), so a small build still has a test split.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"--limit-clips: expected a positive number of clips, got {limit}")
    if limit is None or limit >= len(files):
        return list(files)
    key = lambda f: (zlib.crc32(f"subset/{f.stem}".encode()), f.stem)  # noqa: E731
    ordered = sorted(files, key=key)
    chosen = ordered[:limit]
    if splits is not None and limit >= 2 and all(splits[f.stem] != "test" for f in chosen):
        tests = [f for f in ordered[limit:] if splits[f.stem] == "test"]
        if tests:
            chosen = chosen[:-1] + tests[:1]
    return sorted(chosen)


def _load_and_render(path: Path, mapping: Any, split: str, dataset: str, options: BuildOptions) -> RenderedClip:
    try:
        clip = load_h36m_joints(path, mapping=mapping)
    except (ValueError, KeyError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise ValueError(message if str(path) in message else f"{path}: {message}") from None
    return render_clip(clip, split, dataset, options)


def _die_with_parent(parent_pid: int) -> None:
    """Worker initializer: ask Linux to end this worker when the building process dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # no prctl: the worker ends when its pipe closes
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def build_cache(
    source: str,
    out: str | Path,
    options: BuildOptions = BuildOptions(),
    mapping: Any = None,
    data_root: str | Path = "../shared/data",
    limit_clips: int | None = None,
    workers: int = 2,
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
) -> dict[str, Any]:
    """Read a source's BVH files, build the benchmark and write it to ``out``; returns the manifest.

    ``source``: ``bandai``, ``cmu`` or a folder of ``.bvh`` files. ``mapping``: as
    :func:`elepose.data.bvh.load_h36m_joints` takes it (``bandai`` is used for the Bandai source
    when None). ``workers`` > 1 loads clips in that many processes (output is identical).
    ``progress(iterable, total)`` wraps the per-clip loop (e.g. a tqdm bar).
    """
    all_files, label = find_clip_files(source, data_root)
    splits = assign_splits([f.stem for f in all_files], label)
    files = limit_files(all_files, limit_clips, splits)
    if mapping is None and source == "bandai":
        mapping = "bandai"
    jobs = [(f, mapping, splits[f.stem], dataset_label(f.stem, label), options) for f in files]
    wrap = progress or (lambda iterable, total: iterable)
    if workers > 1 and len(jobs) > 1:
        # "spawn": workers start clean (no forked torch threads); results come back in job order.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_die_with_parent, initargs=(os.getpid(),)
        ) as pool:
            futures = [pool.submit(_load_and_render, *job) for job in jobs]
            try:
                rendered = [f.result() for f in wrap(futures, len(futures))]
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    else:
        rendered = [_load_and_render(*job) for job in wrap(jobs, len(jobs))]
    datasets = sorted({job[3] for job in jobs})
    sources = [
        {
            "source": source if source in ("bandai", "cmu") else str(Path(source)),
            "label": label,
            "data_root": str(data_root) if source in ("bandai", "cmu") else None,
            "mapping": mapping if mapping is None or isinstance(mapping, str) else "custom",
            "files_found": len(all_files),
            "files_used": len(files),
            "datasets": datasets,
            "limit_clips": limit_clips,
        }
    ]
    cache = build_from_clips(rendered, options, sources)
    write_cache(out, cache)
    return cache.manifest
