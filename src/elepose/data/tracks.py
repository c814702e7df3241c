"""Tracks: which detections of a sequence are the same person.

:func:`link_tracks` keeps the input's own track ids where every person has one, else links people
frame to frame by their 2D pelvis.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from elepose.skeleton import HEAD, PELVIS

__all__ = ["link_tracks"]


def link_tracks(
    frame: np.ndarray, keypoints_2d: np.ndarray, given: np.ndarray, max_gap: int = 10, reach: float = 1.0
) -> np.ndarray:
    """A track id ``(P,)`` for each lifted person.

    ``frame (P,)`` frame indices (non-decreasing), ``keypoints_2d (P, 17, 2)`` px, ``given (P,)``
    the input's track ids (-1 = none). When every person has an id, those are kept. Otherwise
    people are linked to the tracks of earlier frames by the distance of their pelvis: a
    one-to-one assignment (Hungarian) accepting a match within ``reach`` times the person's
    pelvis-to-head distance (at least 20 px), to a track last seen at most ``max_gap`` frames
    before; the rest start new tracks (ids 0, 1, ... in order of appearance).
    """
    given = np.asarray(given, dtype=np.int64)
    if len(given) and (given >= 0).all():
        return given.astype(np.int32)
    pelvis = keypoints_2d[:, PELVIS].astype(np.float64)
    size = np.maximum(np.linalg.norm(keypoints_2d[:, HEAD] - keypoints_2d[:, PELVIS], axis=-1), 20.0)
    out = np.full(len(frame), -1, dtype=np.int32)
    active: dict[int, tuple[int, np.ndarray]] = {}  # track -> (last frame, last pelvis)
    next_id = 0
    for f in np.unique(frame):
        rows = np.flatnonzero(frame == f)
        tracks = [t for t, (last, _) in active.items() if f - last <= max_gap]
        if tracks:
            cost = np.linalg.norm(pelvis[rows, None] - np.stack([active[t][1] for t in tracks])[None], axis=-1)
            for r, c in zip(*linear_sum_assignment(cost)):
                if cost[r, c] <= reach * size[rows[r]]:
                    out[rows[r]] = tracks[c]
        for row in rows:
            if out[row] < 0:
                out[row] = next_id
                next_id += 1
            active[int(out[row])] = (int(f), pelvis[row])
    return out
