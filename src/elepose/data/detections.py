"""The people of a detector file as :class:`Detections` (H36M-17 joints, pixels, scores), the
conversion of each keypoint layout to H36M-17, and the checks and helpers every reader of
:mod:`elepose.data.keypoints` shares (numbers, fields, frames, track ids, JSON files)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from elepose.errors import short_repr
from elepose.skeleton import (
    NUM_JOINTS,
    coco17_to_h36m,
    halpe26_to_h36m,
    openpose_body25_to_h36m,
    openpose_coco18_to_h36m,
)

__all__ = ["Detections", "convert_to_h36m", "MAX_COORDINATE_PX"]


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
