"""Writers of the keypoint formats that :mod:`elepose.data.keypoints` reads, for test fixtures.

Each writes a file the way its tool does (MMPose, COCO results, OpenPose, VideoPose3D, arrays),
so the readers are tested on files in the real layouts.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from elepose.atomic import atomic_write, write_json
from elepose.skeleton import JOINT_NAMES


def _atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    def to_file(tmp: str) -> None:
        with open(tmp, "wb") as f:
            write(f)

    atomic_write(path, to_file)


def _write_json(path: Path, obj: Any) -> None:
    write_json(path, obj, indent=1, sort_keys=False)


def _people(
    frames: Sequence[np.ndarray], scores: Sequence[np.ndarray] | None, joints: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for i, people in enumerate(frames):
        people = np.asarray(people, dtype=np.float64).reshape(-1, joints, 2)
        s = np.ones(people.shape[:2]) if scores is None else np.asarray(scores[i], dtype=np.float64).reshape(-1, joints)
        out.append((people, s))
    return out


def _mmpose_instances_json(people: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
    return [
        {
            "keypoints": xy.tolist(),
            "keypoint_scores": s.tolist(),
            "bbox": [[*xy.min(axis=0).tolist(), *xy.max(axis=0).tolist()]],
            "bbox_score": float(s.mean()),
        }
        for xy, s in zip(people, scores)
    ]


def write_mmpose_json(
    path: str | Path, frames: Sequence[np.ndarray], scores: Sequence[np.ndarray] | None = None
) -> None:
    """Write MMPose's video layout ``[{"frame_id", "instances"}]``; ``frames[i]`` is (K_i, 17, 2) COCO-17 px."""
    video = [
        {"frame_id": i, "instances": _mmpose_instances_json(people, s)}
        for i, (people, s) in enumerate(_people(frames, scores, 17))
    ]
    _write_json(Path(path), video)


def write_mmpose_folder(
    folder: str | Path, frames: Sequence[np.ndarray], scores: Sequence[np.ndarray] | None = None
) -> None:
    """Write one MMPose image JSON per frame, ``{i:06d}.json``; ``frames[i]`` is (K_i, 17, 2) COCO-17 px."""
    for i, (people, s) in enumerate(_people(frames, scores, 17)):
        _write_json(Path(folder) / f"{i:06d}.json", _mmpose_instances_json(people, s))


def write_coco_json(
    path: str | Path,
    frames: Sequence[np.ndarray],
    scores: Sequence[np.ndarray] | None = None,
    image_ids: Sequence[Any] | None = None,
) -> None:
    """Write COCO keypoint results; ``frames[i]`` is (K_i, 17, 2) COCO-17 px (empty frames leave no trace)."""
    results = []
    for i, (people, s) in enumerate(_people(frames, scores, 17)):
        for xy, sc in zip(people, s):
            results.append(
                {
                    "image_id": i if image_ids is None else image_ids[i],
                    "category_id": 1,
                    "keypoints": np.concatenate([xy, sc[:, None]], axis=1).ravel().tolist(),
                    "score": float(sc.mean()),
                }
            )
    _write_json(Path(path), results)


def write_openpose_folder(
    folder: str | Path,
    frames: Sequence[np.ndarray],
    scores: Sequence[np.ndarray] | None = None,
    prefix: str = "video",
) -> None:
    """Write OpenPose ``--write_json`` files ``{prefix}_{i:012d}_keypoints.json``.

    ``frames[i]``: (K_i, 25, 2) BODY_25 or (K_i, 18, 2) COCO-18 pixels.
    """
    for i, people in enumerate(frames):
        joints = np.shape(people)[-2] if np.ndim(people) == 3 else 25
        people, s = _people([people], None if scores is None else [scores[i]], joints)[0]
        content = {
            "version": 1.3,
            "people": [
                {
                    "person_id": [-1],
                    "pose_keypoints_2d": np.concatenate([xy, sc[:, None]], axis=1).ravel().tolist(),
                    "face_keypoints_2d": [],
                    "hand_left_keypoints_2d": [],
                    "hand_right_keypoints_2d": [],
                    "pose_keypoints_3d": [],
                    "face_keypoints_3d": [],
                    "hand_left_keypoints_3d": [],
                    "hand_right_keypoints_3d": [],
                }
                for xy, sc in zip(people, s)
            ],
        }
        _write_json(Path(folder) / f"{prefix}_{i:012d}_keypoints.json", content)


def write_videopose3d_npz(
    path: str | Path, videos: Mapping[str, np.ndarray], image_size: tuple[int, int] = (1000, 1000)
) -> None:
    """Write VideoPose3D's custom 2D dataset; ``videos[name]`` is (F, 17, 2) COCO-17 px, ``image_size`` (w, h)."""
    positions = {name: {"custom": [np.asarray(k, dtype=np.float32)]} for name, k in videos.items()}
    metadata = {
        "layout_name": "coco",
        "num_joints": 17,
        # COCO left / right joints, as VideoPose3D's prepare_data_2d_custom.py records them.
        "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]],
        "video_metadata": {name: {"w": int(image_size[0]), "h": int(image_size[1])} for name in videos},
    }
    _atomic_write(Path(path), lambda f: np.savez_compressed(f, positions_2d=positions, metadata=metadata))


def write_array(path: str | Path, keypoints: np.ndarray, scores: np.ndarray | None = None) -> None:
    """Write ``keypoints (N, 17, 2)`` H36M px (plus ``scores (N, 17)``) as ``.npy`` or ``.csv``."""
    path = Path(path)
    array = np.asarray(keypoints, dtype=np.float64)
    if scores is not None:
        array = np.concatenate([array, np.asarray(scores, dtype=np.float64)[..., None]], axis=-1)
    if path.suffix.lower() == ".npy":
        _atomic_write(path, lambda f: np.save(f, array.astype(np.float32), allow_pickle=False))
    elif path.suffix.lower() == ".csv":
        channels = ("x", "y", "score")[: array.shape[-1]]
        header = ",".join(f"{j}_{c}" for j in JOINT_NAMES for c in channels)
        rows = "\n".join(",".join(repr(float(v)) for v in row) for row in array.reshape(len(array), -1))
        _atomic_write(path, lambda f: f.write(f"{header}\n{rows}\n".encode()))
    else:
        raise ValueError(f"{path}: expected a .npy or .csv path for poses")
