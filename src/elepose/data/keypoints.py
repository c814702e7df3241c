"""Reading people's 2D detector output into :class:`Detections` (H36M-17 joints, pixels, scores).

Every reader returns :class:`Detections`: all people of all frames stacked in H36M-17 order
(:mod:`elepose.skeleton`), with per-joint scores and the frame each person belongs to. Frames
with nobody in them are kept as names with zero people.

Formats (facts from each tool's documentation, named per reader):

==============  ==========================================================================
``mmpose``      MMPose inferencer ``--pred-out-dir`` JSON: an image's list of instances
                ``{"keypoints": [[x, y]] * K, "keypoint_scores": [s] * K, "track_id"?}``; a
                video's list ``[{"frame_id": i, "instances": [...]}]``; or a folder of image
                JSONs. K as for ``coco``.
``coco``        COCO keypoint results ``[{"image_id", "category_id": 1, "keypoints": [x, y, s]
                * K, "score"}]`` (AlphaPose, Detectron); grouped by ``image_id``; AlphaPose's
                ``idx`` is the track id. K = 17 (COCO), 26 (Halpe, AlphaPose's default),
                133 (COCO-WholeBody) or 136 (Halpe full body).
``coco-dataset`` COCO dataset annotations ``{"images", "annotations"}`` (COCO, COCO-WholeBody,
                Halpe): grouped by image, frame names from ``file_name``, ``iscrowd`` and
                ``num_keypoints == 0`` skipped, visibility 0 = missing.
``openpose``    A folder of OpenPose ``--write_json`` files (one per frame) with
                ``{"people": [{"pose_keypoints_2d": [x, y, c] * 25 or * 18}]}``.
``videopose3d`` VideoPose3D ``.npz``: ``positions_2d`` = {video: {"custom": [(F, 17, 2|3)]}}
                in COCO order (``layout_name`` "coco"), or {subject: {action: [per camera]}}
                in H36M order ("h36m"); pickled dicts, read with
                :func:`elepose.data.h36m.read_videopose3d_npz` (numpy arrays only, no code). A
                third channel that is not a 0-1 confidence is ignored (see ``notes``).
``array``       ``.npy`` (N, 17, 2|3) or ``.csv`` rows of 34|51 values, H36M order, one person
                per frame.
==============  ==========================================================================

COCO-17, Halpe and OpenPose sources are converted by :mod:`elepose.skeleton` (Halpe's own head
top, neck and pelvis replace COCO-17's guesses); a derived joint (a midpoint) gets the *minimum*
score of its sources, so a midpoint of a missing joint is missing.

>>> import numpy as np, tempfile, os
>>> from elepose.skeleton import coco17_to_h36m
>>> folder = tempfile.mkdtemp()
>>> coco = np.random.default_rng(0).uniform(0, 500, (3, 17, 2))
>>> np.save(os.path.join(folder, "poses.npy"), coco17_to_h36m(coco).astype(np.float32))
>>> read_keypoints(os.path.join(folder, "poses.npy")).keypoints.shape
(3, 17, 2)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from elepose.data.detections import (
    _COUNTS_EXPECTED,
    _LAYOUT_BY_COUNT,
    _NUMBERS_EXPECTED,
    _UTF8_BOM,
    Detections,
    _assemble,
    _cached_json,
    _field,
    _Frames,
    _json_files,
    _numbers,
    _quote,
    _read_json,
    _track_id,
    convert_to_h36m,
)
from elepose.data.keypoint_arrays import read_array, read_videopose3d

__all__ = [
    "FORMATS",
    "Detections",
    "read_keypoints",
    "is_mmpose_video",
    "detect_format",
    "convert_to_h36m",
]

FORMATS: tuple[str, ...] = ("mmpose", "coco", "coco-dataset", "openpose", "videopose3d", "array")


# --------------------------------------------------------------------------- MMPose


def _mmpose_instances(path: Path, frames: _Frames, instances: Any, where: str) -> None:
    if not isinstance(instances, list):
        got = type(instances).__name__
        raise ValueError(f"{path}: {where or 'top level'}: expected a list of instances, got {got}")
    local = where.rsplit(": ", 1)[-1]  # the location inside this file, without a file-name prefix
    for k, inst in enumerate(instances):
        at = f"{local}[{k}]"
        raw = _field(path, inst, "keypoints", at)
        count = len(raw) if isinstance(raw, list) else 0
        layout = _LAYOUT_BY_COUNT.get(count)
        if layout is None:
            shape = (len(raw), len(raw[0])) if count and isinstance(raw[0], list) else np.shape(raw) if count else raw
            raise ValueError(
                f"{path}: {at}.keypoints: expected {_COUNTS_EXPECTED} [[x, y], ...], got shape {_quote(shape)}"
            )
        if isinstance(raw[0], list) and len(raw[0]) == 3:
            raise ValueError(
                f"{path}: {at}.keypoints: 3D keypoints [[x, y, z], ...] (an elepose or MMPose 3D result); "
                "expected 2D detections [[x, y], ...] (read 3D results with elepose.lift.exports.read_mmpose_3d)"
            )
        xy = _numbers(path, f"{at}.keypoints", raw, (count, 2), f"{count} keypoints [[x, y], ...]")
        scores = _field(path, inst, "keypoint_scores", at)
        scores = _numbers(path, f"{at}.keypoint_scores", scores, (count,), f"{count} scores")
        frames.set_layout(path, layout, at)
        frames.add(xy, scores, f"{where}[{k}]", _track_id(path, inst, ("track_id",), at))


def _read_mmpose_content(path: Path, content: Any, frames: _Frames, name: str, prefix: str = "") -> None:
    """One MMPose JSON: an image's instance list (one frame) or a video's frame list."""
    if not isinstance(content, list):
        raise ValueError(f"{path}: top level: expected a JSON list (MMPose predictions), got {type(content).__name__}")
    if content and isinstance(content[0], dict) and "instances" in content[0]:
        for i, entry in enumerate(content):
            frame_id = _field(path, entry, "frame_id", f"[{i}]")
            frames.names.append(str(frame_id))
            _mmpose_instances(path, frames, _field(path, entry, "instances", f"[{i}]"), f"[{i}].instances")
    else:
        frames.names.append(name)
        _mmpose_instances(path, frames, content, prefix)


def is_mmpose_video(content: Any) -> bool:
    """Whether parsed JSON is MMPose's per-video layout, a list of ``{"frame_id", "instances"}`` frames."""
    return isinstance(content, list) and bool(content) and isinstance(content[0], dict) and "instances" in content[0]


def _read_mmpose(path: Path, parsed: dict[Path, Any]) -> Detections:
    # Layout: MMPose docs, user_guides/inference.md ("--pred-out-dir"); MMPoseInferencer
    # writes one JSON per image, or per video a list of {"frame_id", "instances"}.
    frames = _Frames.empty()
    if path.is_dir():
        for file in _json_files(path):
            content = _cached_json(file, parsed)
            if is_mmpose_video(content):
                raise ValueError(
                    f"{file}: a video's frame list inside a folder of per-image MMPose JSONs; read it on its own"
                )
            _read_mmpose_content(file, content, frames, file.stem, f"{file.name}: ")
    else:
        _read_mmpose_content(path, _cached_json(path, parsed), frames, path.stem)
    return _assemble(path, "mmpose", frames, "coco17", ".keypoints", ".keypoint_scores")


# --------------------------------------------------------------------------- COCO results


def _read_coco(path: Path, parsed: dict[Path, Any]) -> Detections:
    # Layout: COCO "results format" for keypoint detection (cocodataset.org/#format-results):
    # [{"image_id": int, "category_id": int, "keypoints": [x1, y1, v1, ...], "score": float}].
    content = _cached_json(path, parsed)
    if not isinstance(content, list):
        got = type(content).__name__
        raise ValueError(f"{path}: top level: expected a JSON list of COCO keypoint results, got {got}")
    frames = _Frames.empty()
    index: dict[str, int] = {}
    grouped: list[list[tuple[int, Any]]] = []
    for i, entry in enumerate(content):
        image_id = _field(path, entry, "image_id", f"[{i}]")
        category = entry.get("category_id", 1)
        if category != 1:
            raise ValueError(f"{path}: [{i}].category_id: expected 1 (person), got {_quote(category)}")
        key = str(image_id)
        if key not in index:
            index[key] = len(grouped)
            grouped.append([])
        grouped[index[key]].append((i, entry))
    for key, entries in zip(index, grouped):
        frames.names.append(key)
        for i, entry in entries:
            values = _field(path, entry, "keypoints", f"[{i}]")
            count = len(values) // 3 if isinstance(values, list) and len(values) % 3 == 0 else 0
            layout = _LAYOUT_BY_COUNT.get(count)
            if layout is None:
                got = f"shape ({len(values)},)" if isinstance(values, list) else _quote(values)
                raise ValueError(f"{path}: [{i}].keypoints: expected {_NUMBERS_EXPECTED}, got {got}")
            values = _numbers(path, f"[{i}].keypoints", values, (3 * count,), f"{3 * count} numbers")
            frames.set_layout(path, layout, f"[{i}].keypoints")
            joints = values.reshape(count, 3)
            frames.add(joints[:, :2], joints[:, 2], f"[{i}]", _track_id(path, entry, ("track_id", "idx"), f"[{i}]"))
    return _assemble(path, "coco", frames, "coco17", ".keypoints", ".keypoints")


# --------------------------------------------------------------------------- COCO dataset annotations


def _read_coco_dataset(path: Path, parsed: dict[Path, Any]) -> Detections:
    # Layout: COCO "object keypoint" annotations (cocodataset.org/#format-data): {"images": [{"id",
    # "file_name"}], "annotations": [{"image_id", "keypoints": [x, y, v] * K, "num_keypoints",
    # "iscrowd"}]} with visibility v = 0 (not labelled), 1 (labelled, hidden), 2 (visible).
    # COCO-WholeBody keeps the body's 17 in "keypoints" (feet, face, hands in other fields);
    # Halpe's files hold all 136 there.
    content = _cached_json(path, parsed)
    images = _field(path, content, "images", "")
    annotations = _field(path, content, "annotations", "")
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise ValueError(f"{path}: images, annotations: expected two JSON lists")
    frames = _Frames.empty()
    order: dict[Any, int] = {}
    for i, image in enumerate(images):
        image_id = _field(path, image, "id", f"images[{i}]")
        name = image.get("file_name", str(image_id)) if isinstance(image, dict) else str(image_id)
        order.setdefault(image_id, len(order))
        frames.names.append(str(name))
    people: list[list[tuple[int, Any]]] = [[] for _ in order]
    for i, entry in enumerate(annotations):
        image_id = _field(path, entry, "image_id", f"annotations[{i}]")
        if image_id not in order:
            raise ValueError(f"{path}: annotations[{i}].image_id: {_quote(image_id)} names no entry of 'images'")
        if entry.get("iscrowd", 0) or entry.get("num_keypoints", 1) == 0:
            continue  # crowd regions and people without a labelled keypoint are no training poses
        people[order[image_id]].append((i, entry))
    names, frames.names = frames.names, []
    for name, entries in zip(names, people):
        frames.names.append(name)
        for i, entry in entries:
            at = f"annotations[{i}].keypoints"
            values = _field(path, entry, "keypoints", f"annotations[{i}]")
            count = len(values) // 3 if isinstance(values, list) and len(values) % 3 == 0 else 0
            layout = _LAYOUT_BY_COUNT.get(count)
            if layout is None:
                got = f"shape ({len(values)},)" if isinstance(values, list) else _quote(values)
                raise ValueError(f"{path}: {at}: expected {_NUMBERS_EXPECTED}, got {got}")
            joints = _numbers(path, at, values, (3 * count,), f"{3 * count} numbers").reshape(count, 3)
            frames.set_layout(path, layout, at)
            visible = (joints[:, 2] > 0).astype(np.float64)  # v = 0: not labelled -> missing
            frames.add(joints[:, :2], visible, f"annotations[{i}]", _track_id(path, entry, ("track_id",), at))
    note = "COCO visibility flags read as scores: v = 0 (not labelled) is missing, v = 1 or 2 is present"
    return _assemble(path, "coco-dataset", frames, "coco17", ".keypoints", ".keypoints", notes=(note,))


# --------------------------------------------------------------------------- OpenPose

_OPENPOSE_LAYOUTS = {25 * 3: "body25", 18 * 3: "coco18"}


def _read_openpose(path: Path, parsed: dict[Path, Any]) -> Detections:
    # Layout: OpenPose doc/02_output.md (--write_json): {"version", "people": [{"person_id",
    # "pose_keypoints_2d": [x, y, c] * J, "face_keypoints_2d", ...}]}; undetected = (0, 0, 0).
    files = _json_files(path) if path.is_dir() else [path]
    frames = _Frames.empty()
    layout = None
    for file in files:
        content = _cached_json(file, parsed)
        people = _field(file, content, "people", "")
        if not isinstance(people, list):
            raise ValueError(f"{file}: people: expected a list, got {type(people).__name__}")
        frames.names.append(file.stem)
        for k, person in enumerate(people):
            at = f"{file.name}: people[{k}]" if path.is_dir() else f"people[{k}]"
            field = f"people[{k}].pose_keypoints_2d"
            raw = _field(file, person, "pose_keypoints_2d", f"people[{k}]")
            expected = "a flat list [x, y, c] * 25 (BODY_25) or * 18 (COCO-18)"
            if not isinstance(raw, list):
                raise ValueError(f"{file}: {field}: expected {expected}, got {type(raw).__name__}")
            values = _numbers(file, field, raw, (len(raw),), expected)
            this = _OPENPOSE_LAYOUTS.get(values.size)
            if this is None:
                raise ValueError(f"{file}: {field}: expected 75 (BODY_25) or 54 (COCO-18) values, got {values.size}")
            if layout is not None and this != layout:
                raise ValueError(f"{file}: {field}: {this} person among {layout} people; expected one model")
            layout = this
            joints = values.reshape(-1, 3)
            frames.add(joints[:, :2], joints[:, 2], at, _track_id(file, person, ("person_id",), f"people[{k}]"))
    return _assemble(path, "openpose", frames, layout or "body25", ".pose_keypoints_2d", ".pose_keypoints_2d")


# --------------------------------------------------------------------------- detection


def _json_kind(content: Any) -> str | None:
    """The format a parsed JSON looks like, or None."""
    if isinstance(content, dict):
        if "images" in content and "annotations" in content:
            return "coco-dataset"
        return "openpose" if "people" in content else None
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        return None
    first = content[0]
    if "instances" in first:
        return "mmpose"
    if "image_id" in first:
        return "coco"
    keypoints = first.get("keypoints")
    if isinstance(keypoints, list) and keypoints:
        return "mmpose" if isinstance(keypoints[0], list) else "coco"
    return None


_JSON_EXPECTED = "expected MMPose, COCO results, a COCO dataset annotation file or OpenPose JSON"


def detect_format(path: str | Path) -> str:
    """The format of ``path`` (file or folder), judged by content; ValueError when unknown or mixed."""
    return _detect(Path(path))[0]


def _detect(path: Path) -> tuple[str, dict[Path, Any]]:
    """The format of ``path`` and the JSON files parsed on the way (so readers parse each once)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        parsed = {file: _read_json(file) for file in _json_files(path)}
        kinds: dict[str, Path] = {}
        for file, content in parsed.items():
            kind = "mmpose" if content == [] else _json_kind(content)
            if kind is None:
                raise ValueError(f"{file}: unknown JSON layout; {_JSON_EXPECTED}")
            if kind in ("coco", "coco-dataset"):
                raise ValueError(f"{file}: COCO JSON in a folder; pass the COCO JSON file itself")
            kinds.setdefault(kind, file)
        if len(kinds) > 1:
            (a, fa), (b, fb) = list(kinds.items())[:2]
            raise ValueError(
                f"{path}: folder mixes formats ({a}: {fa.name}, {b}: {fb.name}); expected one format per folder"
            )
        return next(iter(kinds)), parsed
    with open(path, "rb") as f:
        head = f.read(4096).removeprefix(_UTF8_BOM)
    if not head.strip():
        raise ValueError(f"{path}: file is empty; expected detector output")
    if head.startswith(b"PK\x03\x04"):
        return "videopose3d", {}
    if head.startswith(b"\x93NUMPY"):
        return "array", {}
    if head.lstrip()[:1] in (b"[", b"{"):
        content = _read_json(path)
        if content == []:
            raise ValueError(f"{path}: an empty JSON list: no detections, and no way to tell the format; pass format=")
        kind = _json_kind(content)
        if kind is None:
            raise ValueError(f"{path}: unknown JSON layout; {_JSON_EXPECTED}")
        return kind, {path: content}
    return "array", {}


def read_keypoints(path: str | Path, format: str | None = None) -> Detections:
    """Read detector output at ``path`` (file or folder) into :class:`Detections`.

    ``format`` (one of :data:`FORMATS`) overrides detection by content. Raises ``ValueError``
    naming the file, the field and the expected form on bad input.
    """
    path = Path(path)
    parsed: dict[Path, Any] = {}
    if format is None:
        format, parsed = _detect(path)
    elif format not in FORMATS:
        raise ValueError(f"unknown keypoint format {format!r}; expected one of {', '.join(FORMATS)}")
    elif not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir() and format not in ("mmpose", "openpose"):
        raise ValueError(f"{path}: a folder; format {format!r} is one file (folders hold MMPose or OpenPose JSONs)")
    if path.is_file() and path.stat().st_size == 0:
        raise ValueError(f"{path}: file is empty; expected {format} detector output")
    if format == "mmpose":
        detections = _read_mmpose(path, parsed)
    elif format == "coco":
        detections = _read_coco(path, parsed)
    elif format == "coco-dataset":
        detections = _read_coco_dataset(path, parsed)
    elif format == "openpose":
        detections = _read_openpose(path, parsed)
    elif format == "videopose3d":
        detections = read_videopose3d(path)
    else:
        detections = read_array(path)
    if detections.num_frames == 0:
        raise ValueError(f"{path}: holds no frames; expected at least one frame of detections")
    return detections
