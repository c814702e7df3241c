"""Detector output as arrays: VideoPose3D ``.npz`` files and plain ``.npy`` / ``.csv`` arrays (H36M order),
read into :class:`~elepose.data.detections.Detections`."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from elepose.data.detections import Detections, _assemble, _Frames, _quote
from elepose.data.h36m import read_videopose3d_npz

__all__ = ["read_videopose3d", "read_array"]


# --------------------------------------------------------------------------- VideoPose3D npz


def read_videopose3d(path: Path) -> Detections:
    # Layout: VideoPose3D INFERENCE.md and data/prepare_data_2d_custom.py: np.savez_compressed(
    # positions_2d={video: {"custom": [(F, 17, 2|3) COCO order]}}, metadata={"layout_name": "coco",
    # "num_joints": 17, "keypoints_symmetry": ..., "video_metadata": {video: {"w", "h"}}}); its
    # Human3.6M detections use layout_name "h36m" and {subject: {action: [(F, 17, 2|3) per camera]}}
    # (or one array (C, F, 17, 2|3)) in H36M-17 order. The dicts are pickles: read_videopose3d_npz
    # unpickles only numpy arrays.
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
    except zipfile.BadZipFile:
        raise ValueError(f"{path}: not an .npz archive; expected VideoPose3D's data_2d_custom_*.npz") from None
    if "positions_2d.npy" not in members:
        raise ValueError(f"{path}: missing field 'positions_2d'; expected VideoPose3D's data_2d_custom_*.npz")
    positions = read_videopose3d_npz(path, "positions_2d")
    metadata = read_videopose3d_npz(path, "metadata") if "metadata.npy" in members else {}
    layout_name = metadata.get("layout_name", "coco") if isinstance(metadata, dict) else "coco"
    if layout_name not in ("coco", "h36m"):
        raise ValueError(f"{path}: metadata.layout_name: expected 'coco' or 'h36m', got {_quote(layout_name)}")
    if not isinstance(positions, dict) or not positions:
        raise ValueError(f"{path}: positions_2d: expected a non-empty dict {{video: {{'custom': [array (F, 17, 2)]}}}}")
    arrays: list[tuple[str, str, np.ndarray]] = []  # (frame-name prefix, field, (F, 17, 2|3))
    for video, actions in positions.items():
        at = f"positions_2d[{video!r}]"
        if not isinstance(actions, dict) or not actions:
            raise ValueError(f"{path}: {at}: expected {{'custom': [array (F, 17, 2)]}}, got {_quote(actions)}")
        for action, cameras in actions.items():
            field = f"{at}[{action!r}]"
            if isinstance(cameras, np.ndarray) and cameras.ndim == 4:
                cameras = list(cameras)
            if not isinstance(cameras, list):
                raise ValueError(f"{path}: {field}: expected a list of arrays (F, 17, 2|3), got {_quote(cameras)}")
            base = f"{video}/" if action == "custom" else f"{video}/{action}/"
            for c, array in enumerate(cameras):
                if not isinstance(array, np.ndarray) or array.ndim != 3 or array.shape[1:] not in ((17, 2), (17, 3)):
                    shape = getattr(array, "shape", type(array).__name__)
                    raise ValueError(f"{path}: {field}[{c}]: expected an array (F, 17, 2) or (F, 17, 3), got {shape}")
                if not np.issubdtype(array.dtype, np.number):
                    raise ValueError(f"{path}: {field}[{c}]: expected numbers, got dtype {array.dtype}")
                arrays.append((base if len(cameras) == 1 else f"{base}{c}/", f"{field}[{c}]", array.astype(np.float64)))
    third = [a[..., 2] for _, _, a in arrays if a.shape[2] == 3]
    confidences, notes = _confidence_channel(np.concatenate([t.ravel() for t in third]) if third else None)
    frames = _Frames.empty()
    for prefix, field, array in arrays:
        for i in range(array.shape[0]):
            frames.names.append(f"{prefix}{i}")
            scores = array[i, :, 2] if array.shape[2] == 3 and confidences else np.ones(17)
            frames.add(array[i, :, :2], scores, f"{field}[{i}]")
    return _assemble(path, "videopose3d", frames, "coco17" if layout_name == "coco" else "h36m", notes=notes)


def _confidence_channel(values: np.ndarray | None) -> tuple[bool, tuple[str, ...]]:
    """Whether a file's third channel ``values`` are 0-1 detector confidences, and a note when not.

    A detector's confidences reach near 1 on visible joints; a channel that never exceeds 0.5,
    or leaves [0, 1], is something else (VideoPose3D's skater file holds 0.0001-0.04), so it is
    not used as scores: every joint counts as detected.
    """
    if values is None or values.size == 0:
        return False, ()
    finite = values[np.isfinite(values)]
    if finite.size and 0.0 <= finite.min() and finite.max() <= 1.0 and finite.max() > 0.5:
        return True, ()
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (math.nan, math.nan)
    return False, (
        f"third channel ({low:.3g} to {high:.3g}) is not a 0-1 confidence; ignored: every joint counts as detected",
    )


# --------------------------------------------------------------------------- plain arrays


def read_array(path: Path) -> Detections:
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        _check_npy_header(path)
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, EOFError, OSError) as err:
            raise ValueError(f"{path}: unreadable .npy ({err}); expected a numeric array (N, 17, 2|3)") from None
        if array.ndim != 3 or array.shape[1:] not in ((17, 2), (17, 3)):
            raise ValueError(f"{path}: array: expected shape (N, 17, 2) or (N, 17, 3) in H36M order, got {array.shape}")
        if not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"{path}: array: expected numbers, got dtype {array.dtype}")
        array = array.astype(np.float64)
    else:
        array = _read_csv(path)
    if array.shape[0] == 0:
        raise ValueError(f"{path}: holds no poses; expected (N, 17, 2|3) with N >= 1")
    frames = _Frames.empty()
    for i in range(array.shape[0]):
        frames.names.append(str(i))
        frames.add(array[i, :, :2], array[i, :, 2] if array.shape[2] == 3 else np.ones(17), f"row {i}")
    return _assemble(path, "array", frames, "h36m")


def _check_npy_header(path: Path) -> None:
    """Refuse an ``.npy`` whose header promises more data than the file holds (before allocating it)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f, max_header_size=10_000)
            offset = f.tell()
    except (ValueError, EOFError, OSError) as err:
        raise ValueError(f"{path}: unreadable .npy header ({err}); expected a numeric array (N, 17, 2|3)") from None
    needed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    available = path.stat().st_size - offset
    if needed > available:
        raise ValueError(
            f"{path}: header: declares shape {shape} ({needed:,} bytes) but the file holds {available:,}; "
            "expected a complete .npy file"
        )


def _read_csv(path: Path) -> np.ndarray:
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file; expected .npy or .csv poses") from None
    if not lines:
        raise ValueError(f"{path}: file is empty; expected one row of 34 or 51 values per pose")
    rows = []
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.split(",")]
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            if i == 0:
                continue  # header line
            expected = "34 or 51 comma-separated numbers"
            raise ValueError(f"{path}: line {i + 1}: expected {expected}, got {_quote(line)}") from None
        if len(cells) not in (34, 51):
            expected = "34 (x, y) or 51 (x, y, score) values per pose"
            raise ValueError(f"{path}: line {i + 1}: expected {expected}, got {len(cells)}")
        if len(rows[-1]) != len(rows[0]):
            raise ValueError(f"{path}: line {i + 1}: {len(cells)} values after rows of {len(rows[0])}")
    if not rows:
        raise ValueError(f"{path}: holds a header but no poses")
    values = np.asarray(rows)
    return values.reshape(len(rows), 17, values.shape[1] // 17)
