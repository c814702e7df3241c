"""The pose cache: one ``.npz`` per split plus ``manifest.json`` (SPEC section 8).

Every source (motion capture with virtual cameras, Human3.6M, MPI-INF-3DHP, 3DPW) is written in
this one format, so training and evaluation never care where poses came from.

Arrays of a split file (N poses, V camera views, C clips):

=====================  ==============  ====================================================
``poses_2d``           (N, 17, 2) f32  ground-truth 2D, pixels
``poses_2d_detected``  (N, 17, 2) f32  "detected" 2D (noisy or a real detector), pixels
``poses_3d``           (N, 17, 3) f32  3D in the camera frame, metres (x right, y down, z fwd)
``view``               (N,) i32        index into the camera arrays
``frame``              (N,) i32        frame number in the source clip (native frame rate)
``camera_K``           (V, 3, 3) f32   intrinsics, pixels
``camera_R``           (V, 3, 3) f32   world -> camera rotation, det +1
``camera_t``           (V, 3) f32      world -> camera translation, metres (x_c = R x_w + t)
``camera_elevation``   (V,) f32        elevation in degrees, looking down positive
``camera_clip``        (V,) i32        index into ``clip_names``
``clip_names``         (C,) str        clip identifiers (file stems)
``clip_source``        (C,) str        dataset of each clip (e.g. ``bandai-1``, ``h36m``)
=====================  ==============  ====================================================

Files are written to a temporary name and renamed, so a failed build leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from elepose import __version__
from elepose.atomic import atomic_write, write_json
from elepose.geometry import pelvis_head_scale
from elepose.outputs import building_prefix, remove_stale_temporaries
from elepose.skeleton import BONES, JOINT_NAMES, bone_ratios

__all__ = [
    "PoseSplit",
    "PoseCache",
    "cache_manifest",
    "write_cache",
    "random_subset",
    "save_split",
    "load_split",
    "load_manifest",
    "SPLITS",
]

SPLITS = ("train", "test")


_OPTIONAL = ("poses_3d", "camera_K", "camera_R", "camera_t", "camera_elevation")
"""Fields a 2D-only cache (built from detector output, no 3D and no known cameras) leaves out."""


@dataclass(frozen=True, kw_only=True)
class PoseSplit:
    """One split of the cache; shapes and units in the module docstring.

    A 2D-only split (``elepose data build --source keypoints``) has no ``poses_3d`` and no camera
    parameters (None): its "views" are the people's tracks in the source videos (one person each, as a
    motion-capture view is), ``camera_clip`` maps each to its source video.
    """

    poses_2d: np.ndarray
    poses_2d_detected: np.ndarray
    view: np.ndarray
    frame: np.ndarray
    camera_clip: np.ndarray
    clip_names: np.ndarray
    clip_source: np.ndarray
    poses_3d: np.ndarray | None = None
    camera_K: np.ndarray | None = None
    camera_R: np.ndarray | None = None
    camera_t: np.ndarray | None = None
    camera_elevation: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.poses_2d.shape[0])

    @property
    def has_3d(self) -> bool:
        """Whether the split holds 3D poses and cameras (False for a 2D-only cache)."""
        return self.poses_3d is not None

    @property
    def elevation_deg(self) -> np.ndarray:
        """True camera elevation of every pose ``(N,)`` degrees, looking down positive."""
        if self.camera_elevation is None:
            raise ValueError("this split has no cameras (a 2D-only cache): camera elevations need 3D data")
        return self.camera_elevation[self.view]

    @property
    def pose_clip(self) -> np.ndarray:
        """Clip index of every pose ``(N,)``."""
        return self.camera_clip[self.view]

    @property
    def pose_source(self) -> np.ndarray:
        """Dataset name of every pose ``(N,)``."""
        return self.clip_source[self.pose_clip]

    def validate(self, where: str = "split") -> None:
        """Check shapes, dtypes and finiteness; raise ``ValueError`` naming ``where`` and the field."""
        n = len(self)
        present = [name for name in _OPTIONAL if getattr(self, name) is not None]
        if present and len(present) != len(_OPTIONAL):
            missing = sorted(set(_OPTIONAL) - set(present))
            raise ValueError(f"{where}: holds {', '.join(present)} but not {', '.join(missing)}; expected all or none")
        expect = {"poses_2d": (n, 17, 2), "poses_2d_detected": (n, 17, 2), "view": (n,), "frame": (n,)}
        if self.has_3d:
            expect["poses_3d"] = (n, 17, 3)
        for name, shape in expect.items():
            got = getattr(self, name).shape
            if got != shape:
                raise ValueError(f"{where}: field {name!r} has shape {got}, expected {shape}")
        v = self.camera_clip.shape[0]
        cameras = {"camera_clip": (v,)}
        if self.has_3d:
            cameras |= {"camera_K": (v, 3, 3), "camera_R": (v, 3, 3), "camera_t": (v, 3), "camera_elevation": (v,)}
        for name, shape in cameras.items():
            got = getattr(self, name).shape
            if got != shape:
                raise ValueError(f"{where}: field {name!r} has shape {got}, expected {shape}")
        for name in ("poses_2d", "poses_2d_detected") + (("poses_3d",) if self.has_3d else ()):
            if not np.isfinite(getattr(self, name)).all():
                raise ValueError(f"{where}: field {name!r} holds NaN or inf values")
        if n and (self.view.min() < 0 or self.view.max() >= v):
            raise ValueError(f"{where}: field 'view' indexes outside the {v} cameras")
        c = self.clip_names.shape[0]
        if v and (self.camera_clip.min() < 0 or self.camera_clip.max() >= c):
            raise ValueError(f"{where}: field 'camera_clip' indexes outside the {c} clips")

    def subset(self, index: np.ndarray) -> PoseSplit:
        """The poses selected by ``index`` (mask or integer array); cameras and clips are kept."""
        per_pose = {"poses_2d", "poses_2d_detected", "poses_3d", "view", "frame"}
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = value[index] if f.name in per_pose and value is not None else value
        return PoseSplit(**values)


_DTYPES: dict[str, Any] = {
    "poses_2d": np.float32,
    "poses_2d_detected": np.float32,
    "poses_3d": np.float32,
    "view": np.int32,
    "frame": np.int32,
    "camera_K": np.float32,
    "camera_R": np.float32,
    "camera_t": np.float32,
    "camera_elevation": np.float32,
    "camera_clip": np.int32,
    "clip_names": str,
    "clip_source": str,
}


def random_subset(split: PoseSplit, samples: int | None, seed: int = 0) -> PoseSplit:
    """A fixed random subset of ``samples`` poses of ``split`` in their original order (all when None or more)."""
    if samples is None or samples >= len(split):
        return split
    idx = np.sort(np.random.default_rng(seed).choice(len(split), samples, replace=False))
    return split.subset(idx)


def save_split(path: str | Path, split: PoseSplit) -> None:
    """Write ``split`` to ``path`` (``.npz``, uncompressed, deterministic bytes) atomically."""
    path = Path(path)
    split.validate(str(path))
    arrays = {
        f.name: np.asarray(getattr(split, f.name), dtype=_DTYPES[f.name])
        for f in fields(split)
        if getattr(split, f.name) is not None
    }

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def load_split(path: str | Path) -> PoseSplit:
    """Read a split written by :func:`save_split`; clear errors for missing files and fields."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such cache file (build one with `elepose data build`)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [f.name for f in fields(PoseSplit) if f.name not in data.files and f.name not in _OPTIONAL]
            if missing:
                raise ValueError(f"{path}: not an elepose cache split; missing fields {missing}")
            split = PoseSplit(**{f.name: data[f.name] for f in fields(PoseSplit) if f.name in data.files})
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(
            f"{path}: unreadable cache file ({err}); expected a split written by `elepose data build`"
        ) from None
    split.validate(str(path))
    return split


def load_manifest(cache_dir: str | Path) -> dict[str, Any]:
    """Read ``manifest.json`` of a cache folder."""
    path = Path(cache_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; is {cache_dir} an elepose cache folder?")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (ValueError, RecursionError) as err:
        raise ValueError(
            f"{path}: unreadable manifest ({type(err).__name__}); expected JSON written by elepose"
        ) from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(manifest).__name__}")
    return manifest


@dataclass(frozen=True)
class PoseCache:
    """A built cache: the two splits and the manifest (a JSON-ready dict)."""

    train: PoseSplit
    test: PoseSplit
    manifest: dict[str, Any]


def _split_counts(split: PoseSplit) -> dict[str, Any]:
    sources = split.pose_source
    frames = {(int(c), int(f)) for c, f in zip(split.pose_clip, split.frame)}
    per_dataset: dict[str, Any] = {}
    for dataset in sorted(set(split.clip_source.tolist())):
        clip_ids = set(np.nonzero(split.clip_source == dataset)[0].tolist())
        per_dataset[dataset] = {
            "clips": len(clip_ids),
            "frames": sum(1 for c, _ in frames if c in clip_ids),
            "poses": int((sources == dataset).sum()),
        }
    elevation = np.zeros(0) if split.camera_elevation is None else split.camera_elevation.astype(np.float64)
    return {
        "clips": int(len(split.clip_names)),
        "cameras": int(len(split.camera_K)) if split.has_3d else 0,
        "frames": len(frames),
        "poses": len(split),
        "per_dataset": per_dataset,
        "camera_elevation_deg": {
            "mean": float(elevation.mean()) if len(elevation) else None,
            "std": float(elevation.std()) if len(elevation) else None,
            "min": float(elevation.min()) if len(elevation) else None,
            "max": float(elevation.max()) if len(elevation) else None,
        },
    }


def cache_manifest(train: PoseSplit, test: PoseSplit, sources: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """The manifest of a cache of any source: sources, counts per split and dataset, the training
    3D's bone ratios (``bone_ratios``, the value training uses by default), the 2D dataset scale
    (mean pelvis-head px of the training ground truth) and software versions; ``extra`` keys are
    added (and may override ``bone_ratios``). Raises ``ValueError`` for an empty training split.
    """

    if len(train) == 0:
        raise ValueError("build: the training split holds no poses")
    if not train.has_3d and "bone_ratios" not in extra:
        raise ValueError("build: a 2D-only cache needs its bone ratios given (there is no 3D to measure them on)")
    ratios = [float(r) for r in bone_ratios(train.poses_3d.astype(np.float64))] if train.has_3d else None
    manifest = {
        "format": "elepose-pose-cache",
        "has_3d": bool(train.has_3d),
        "sources": sources,
        "counts": {"train": _split_counts(train), "test": _split_counts(test)},
        "bone_ratios": ratios,
        "bone_ratio_bones": [f"{JOINT_NAMES[a]}->{JOINT_NAMES[b]}" for a, b in BONES],
        "scale_2d": pelvis_head_scale(train.poses_2d),
        "software": {"elepose": __version__, "numpy": np.__version__},
    }
    manifest.update(extra)
    return manifest


def _current_umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def write_cache(out: str | Path, cache: PoseCache) -> None:
    """Write ``train.npz``, ``test.npz`` and ``manifest.json`` into a fresh folder ``out``.

    Both splits must hold poses (a cache without a test split would fail later, in training).

    Everything is written into a temporary folder beside ``out`` and renamed into place; an
    existing ``out`` is replaced only after that succeeded, so a failure leaves it untouched.
    """
    out = Path(out)
    for name, split in (("train", cache.train), ("test", cache.test)):
        if len(split) == 0:
            raise ValueError(
                f"{out}: {name} split: holds no poses; expected poses in both splits (with motion capture "
                "a content group needs 5 clips to give one to the test split: use more clips)"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # left by builds that were killed
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=building_prefix(out), suffix=".building"))
    try:
        save_split(tmp / "train.npz", cache.train)
        save_split(tmp / "test.npz", cache.test)
        write_json(tmp / "manifest.json", cache.manifest)
        umask = _current_umask()  # temporary files and folders are private; give the result normal modes
        for path in tmp.iterdir():
            path.chmod(0o666 & ~umask)
        tmp.chmod(0o777 & ~umask)
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=building_prefix(out), suffix=".old"))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
