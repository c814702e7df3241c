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
>>> folder = tempfile.mkdtemp()
>>> coco = np.random.default_rng(0).uniform(0, 500, (3, 17, 2))
>>> np.save(os.path.join(folder, "poses.npy"), coco17_to_h36m(coco).astype(np.float32))
>>> read_keypoints(os.path.join(folder, "poses.npy")).keypoints.shape
(3, 17, 2)
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from elepose.data.h36m import read_videopose3d_npz
from elepose.errors import short_repr
from elepose.skeleton import (
    NUM_JOINTS,
    coco17_to_h36m,
    halpe26_to_h36m,
    openpose_body25_to_h36m,
    openpose_coco18_to_h36m,
)

__all__ = [
    "FORMATS",
    "Detections",
    "read_keypoints",
    "is_mmpose_video",
    "detect_format",
    "convert_to_h36m",
]

FORMATS: tuple[str, ...] = ("mmpose", "coco", "coco-dataset", "openpose", "videopose3d", "array")


@dataclass(frozen=True)
class Detections:
    """People found in a sequence of frames, H36M-17 order.

    keypoints: (P, 17, 2) float32 pixels, every person of every frame stacked.
    scores: (P, 17) float32 detector confidence per joint (1.0 where the format has none).
    frame: (P,) int32 index into ``frame_names`` of each person.
    person: (P,) int32 index of each person within its frame.
    frame_names: one name per frame, frames with nobody included.
    source_format: one of :data:`FORMATS`.
    path: the file or folder read.
    layout: the source's keypoint layout (:data:`LAYOUTS`): which definition of "head", "neck"
        and "pelvis" the H36M-17 joints come from (a COCO-17 "head" is the mid-eyes, a Halpe one
        the top of the head).
    track: (P,) int32 the input's own track id of each person, -1 where the format has none.
    notes: what the reader did that a user should know (e.g. a third channel ignored as scores).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    frame: np.ndarray
    person: np.ndarray
    frame_names: tuple[str, ...]
    source_format: str
    path: str
    layout: str = "h36m"
    track: np.ndarray | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        p = self.keypoints.shape[0]
        if self.track is None:
            object.__setattr__(self, "track", np.full(p, -1, dtype=np.int32))
        for name, shape in {
            "keypoints": (p, NUM_JOINTS, 2),
            "scores": (p, NUM_JOINTS),
            "frame": (p,),
            "person": (p,),
            "track": (p,),
        }.items():
            if getattr(self, name).shape != shape:
                got = getattr(self, name).shape
                raise ValueError(f"{self.path}: Detections.{name} has shape {got}, expected {shape}")
        if p and (self.frame.min() < 0 or self.frame.max() >= len(self.frame_names)):
            raise ValueError(f"{self.path}: Detections.frame indexes outside the {len(self.frame_names)} frames")

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def num_frames(self) -> int:
        """Number of frames, empty ones included."""
        return len(self.frame_names)

    def missing(self, threshold: float) -> np.ndarray:
        """``(P, 17)`` bool: joints whose score is below ``threshold``."""
        return self.scores < threshold


# --------------------------------------------------------------------------- conversion

_CONVERTERS: dict[str, tuple[int, Callable[[np.ndarray], np.ndarray]]] = {
    "coco17": (17, coco17_to_h36m),
    "halpe26": (26, halpe26_to_h36m),
    "halpe136": (136, halpe26_to_h36m),  # its first 26 joints are Halpe-26
    "wholebody133": (133, lambda k: coco17_to_h36m(k[..., :17, :])),  # COCO-WholeBody: body first
    "body25": (25, openpose_body25_to_h36m),
    "coco18": (18, openpose_coco18_to_h36m),
    "h36m": (17, lambda k: k),
}
LAYOUTS: tuple[str, ...] = tuple(_CONVERTERS)
"""Keypoint layouts read: COCO-17, Halpe-26/136 (AlphaPose), COCO-WholeBody-133, OpenPose BODY_25 /
COCO-18, and H36M-17 itself."""
_LAYOUT_BY_COUNT = {17: "coco17", 26: "halpe26", 133: "wholebody133", 136: "halpe136"}
_COUNTS_EXPECTED = "17 (COCO), 26 (Halpe), 133 (COCO-WholeBody) or 136 (Halpe full body) keypoints"
_NUMBERS_EXPECTED = "51 (COCO-17), 78 (Halpe-26), 399 (COCO-WholeBody) or 408 (Halpe-136) numbers [x, y, score] * K"


def _sources(layout: str) -> np.ndarray:
    """``(17, J)`` bool: which source joints each H36M joint is computed from.

    Read off the skeleton converter itself: feeding it the identity (joint i carries channel i)
    returns, per H36M joint, the weights of its sources.
    """
    n, convert = _CONVERTERS[layout]
    return convert(np.eye(n)) > 0


def convert_to_h36m(keypoints: np.ndarray, scores: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Source-order ``keypoints (..., J, 2)``, ``scores (..., J)`` -> H36M ``(..., 17, 2)``, ``(..., 17)``.

    ``layout`` is "coco17", "body25", "coco18" or "h36m". Coordinates follow
    :mod:`elepose.skeleton`; a derived joint's score is the minimum of its sources' scores.
    """
    n, convert = _CONVERTERS[layout]
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if keypoints.shape[-2:] != (n, 2) or scores.shape != keypoints.shape[:-1]:
        raise ValueError(
            f"{layout} keypoints need shape (..., {n}, 2) and scores (..., {n}); got {keypoints.shape}, {scores.shape}"
        )
    xy = convert(keypoints)
    h36m_scores = np.where(_sources(layout), scores[..., None, :], np.inf).min(axis=-1)
    return xy, h36m_scores


# --------------------------------------------------------------------------- reading helpers


@dataclass
class _Frames:
    """What a reader collects before conversion: source-order people with their locations."""

    names: list[str]
    keypoints: list[np.ndarray]  # per person (J, 2)
    scores: list[np.ndarray]  # per person (J,)
    frame: list[int]
    where: list[str]  # per person, e.g. "[3].instances[1]"
    track: list[int]
    layout: str | None = None

    @classmethod
    def empty(cls) -> _Frames:
        return cls([], [], [], [], [], [])

    def add(self, keypoints: np.ndarray, scores: np.ndarray, where: str, track: int = -1) -> None:
        self.keypoints.append(keypoints)
        self.scores.append(scores)
        self.frame.append(len(self.names) - 1)
        self.where.append(where)
        self.track.append(track)

    def set_layout(self, path: Path, layout: str, where: str) -> None:
        """One keypoint layout per input: a person of another layout is refused."""
        if self.layout is not None and layout != self.layout:
            raise ValueError(f"{path}: {where}: a {layout} person among {self.layout} people; expected one layout")
        self.layout = layout


MAX_COORDINATE_PX = 1e7
"""Largest pixel coordinate or score magnitude accepted (larger values are damaged data, and
would overflow the lift's JSON output)."""


def _numbers(path: Path, field: str, value: Any, shape: tuple[int, ...], expected: str) -> np.ndarray:
    """``value`` as a float64 array of ``shape``, or a ValueError naming file, field and form.

    JSON numbers only: strings and booleans are refused, and so are magnitudes above
    :data:`MAX_COORDINATE_PX`. NaN and inf pass here; the caller's finite checks name them.
    """
    if not _only_numbers(value):
        raise ValueError(f"{path}: {field}: expected {expected} (JSON numbers), got {_quote(value)}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {field}: expected {expected}, got {_quote(value)}") from None
    if array.shape != shape:
        raise ValueError(f"{path}: {field}: expected {expected}, got shape {array.shape}")
    finite = array[np.isfinite(array)]
    if finite.size and np.abs(finite).max() > MAX_COORDINATE_PX:
        raise ValueError(
            f"{path}: {field}: expected pixel coordinates and scores below 1e7, got {np.abs(finite).max():g}"
        )
    return array


def _only_numbers(value: Any) -> bool:
    """Whether ``value`` is a (nested) list of ints and floats, bools and strings excluded."""
    if isinstance(value, bool) or isinstance(value, str):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_only_numbers(v) for v in value)
    return isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.number)


def _quote(value: Any) -> str:
    return short_repr(value, 80)


def _field(path: Path, obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: {where or 'top level'}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise ValueError(f"{path}: {where or 'top level'}: missing field {key!r}")
    return obj[key]


def _assemble(
    path: Path,
    fmt: str,
    frames: _Frames,
    layout: str,
    xy_field: str = "",
    score_field: str = "",
    notes: tuple[str, ...] = (),
) -> Detections:
    """Check values (finite coordinates, scores >= 0), convert to H36M and stack.

    ``xy_field`` / ``score_field`` (e.g. ".keypoints") follow a person's location in messages.
    """
    layout = frames.layout or layout
    n = _CONVERTERS[layout][0]
    p = len(frames.keypoints)
    source_xy = np.stack(frames.keypoints) if p else np.zeros((0, n, 2))
    source_scores = np.stack(frames.scores) if p else np.zeros((0, n))
    bad = ~np.isfinite(source_xy).all(axis=-1)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"{path}: {frames.where[i]}{xy_field}: joint {j} is NaN or inf; expected finite pixel coordinates"
        )
    bad = ~(np.isfinite(source_scores) & (source_scores >= 0))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"{path}: {frames.where[i]}{score_field}: joint {j} has score {source_scores[i, j]}; "
            "expected a finite score >= 0"
        )
    xy, scores = convert_to_h36m(source_xy, source_scores, layout)
    frame = np.asarray(frames.frame, dtype=np.int32)  # non-decreasing: people are added frame by frame
    person = (np.arange(p) - np.searchsorted(frame, frame, side="left")).astype(np.int32)
    return Detections(
        keypoints=xy.astype(np.float32),
        scores=scores.astype(np.float32),
        frame=frame,
        person=person,
        frame_names=tuple(frames.names),
        source_format=fmt,
        path=str(path),
        layout=layout,
        track=np.asarray(frames.track, dtype=np.int32),
        notes=notes,
    )


def _track_id(path: Path, entry: Any, keys: tuple[str, ...], where: str) -> int:
    """The input's track id of a person (MMPose ``track_id``, AlphaPose ``idx``), -1 when absent."""
    for key in keys:
        value = entry.get(key) if isinstance(entry, dict) else None
        if isinstance(value, list) and len(value) == 1:  # AlphaPose writes idx as [n] in some versions
            value = value[0]
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value != int(value)
        ):
            raise ValueError(f"{path}: {where}.{key}: expected a track id (an integer), got {_quote(value)}")
        return int(value) if value >= 0 else -1  # OpenPose writes -1 for "no id"
    return -1


def _cached_json(path: Path, parsed: dict[Path, Any]) -> Any:
    return parsed[path] if path in parsed else _read_json(path)


def _read_json(path: Path) -> Any:
    text = path.read_bytes().removeprefix(_UTF8_BOM)
    if not text.strip():
        raise ValueError(f"{path}: file is empty; expected JSON detector output")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: invalid JSON ({err})") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply; expected detector output") from None


_UTF8_BOM = b"\xef\xbb\xbf"


def _natural_key(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _json_files(folder: Path) -> list[Path]:
    files = [f for f in folder.iterdir() if f.suffix.lower() == ".json" and not f.name.startswith(".") and f.is_file()]
    files.sort(key=_natural_key)
    if not files:
        raise ValueError(f"{folder}: folder holds no .json files; expected one detector JSON per frame")
    return files


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


# --------------------------------------------------------------------------- VideoPose3D npz


def _read_videopose3d(path: Path) -> Detections:
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


def _read_array(path: Path) -> Detections:
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
        detections = _read_videopose3d(path)
    else:
        detections = _read_array(path)
    if detections.num_frames == 0:
        raise ValueError(f"{path}: holds no frames; expected at least one frame of detections")
    return detections
