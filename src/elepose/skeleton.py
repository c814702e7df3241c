"""The 17-joint Human3.6M skeleton (VideoPose3D order) and conversions from detector formats.

Joint order, parents, bones and left/right sets follow VideoPose3D's ``h36m_skeleton`` with the
17 joints it keeps (facts from VideoPose3D ``common/h36m_dataset.py``). COCO-17 -> H36M-17
follows MMPose's ``H36MToCOCO``-inverse convention (SPEC section 2).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "JOINT_NAMES",
    "NUM_JOINTS",
    "PARENTS",
    "BONES",
    "LEFT_JOINTS",
    "RIGHT_JOINTS",
    "PELVIS",
    "HEAD",
    "H36M_BONE_RATIOS",
    "MPI_INF_3DHP_BONE_RATIOS",
    "COCO17_NAMES",
    "OPENPOSE_BODY25_NAMES",
    "OPENPOSE_COCO18_NAMES",
    "bone_lengths",
    "bone_ratios",
    "coco17_to_h36m",
    "h36m_to_coco17",
    "face_keypoints",
    "FACE_OFFSETS",
    "LAYOUT_DEFINITIONS",
    "as_defined_by",
    "halpe26_to_h36m",
    "openpose_body25_to_h36m",
    "openpose_coco18_to_h36m",
]

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "spine",
    "thorax",
    "neck",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
)
NUM_JOINTS = 17
PELVIS = 0
HEAD = 10
THORAX = 8
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
BONES: tuple[tuple[int, int], ...] = tuple((PARENTS[j], j) for j in range(1, NUM_JOINTS))
LEFT_JOINTS: tuple[int, ...] = (4, 5, 6, 11, 12, 13)
RIGHT_JOINTS: tuple[int, ...] = (1, 2, 3, 14, 15, 16)

# Relative bone lengths (bone / mean bone of the pose), in BONES order.
# Source: the ElePose authors' code (SPEC section 6), H36M training set.
H36M_BONE_RATIOS: tuple[float, ...] = (
    0.5181,
    1.7371,
    1.7229,
    0.5181,
    1.7371,
    1.7229,
    0.9209,
    0.9879,
    0.4481,
    0.4450,
    0.5746,
    1.0812,
    0.9652,
    0.5746,
    1.0812,
    0.9652,
)
# Source: the ElePose authors' code, commit c1620ec, commented out (SPEC section 6).
MPI_INF_3DHP_BONE_RATIOS: tuple[float, ...] = (
    0.4806,
    1.8415,
    1.4971,
    0.4806,
    1.8379,
    1.4971,
    0.9078,
    0.9938,
    0.3468,
    0.6938,
    0.5722,
    1.2108,
    0.9254,
    0.5784,
    1.2108,
    0.9254,
)

COCO17_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
# OpenPose output formats (facts from OpenPose doc/02_output.md).
OPENPOSE_BODY25_NAMES: tuple[str, ...] = (
    "Nose",
    "Neck",
    "RShoulder",
    "RElbow",
    "RWrist",
    "LShoulder",
    "LElbow",
    "LWrist",
    "MidHip",
    "RHip",
    "RKnee",
    "RAnkle",
    "LHip",
    "LKnee",
    "LAnkle",
    "REye",
    "LEye",
    "REar",
    "LEar",
    "LBigToe",
    "LSmallToe",
    "LHeel",
    "RBigToe",
    "RSmallToe",
    "RHeel",
)
OPENPOSE_COCO18_NAMES: tuple[str, ...] = (
    "Nose",
    "Neck",
    "RShoulder",
    "RElbow",
    "RWrist",
    "LShoulder",
    "LElbow",
    "LWrist",
    "RHip",
    "RKnee",
    "RAnkle",
    "LHip",
    "LKnee",
    "LAnkle",
    "REye",
    "LEye",
    "REar",
    "LEar",
)


def bone_lengths(poses: np.ndarray) -> np.ndarray:
    """Bone lengths of ``poses (..., 17, D)`` -> ``(..., 16)`` in the poses' units, BONES order."""
    parents = np.array([a for a, _ in BONES])
    children = np.array([b for _, b in BONES])
    return np.linalg.norm(poses[..., children, :] - poses[..., parents, :], axis=-1)


def bone_ratios(poses_3d: np.ndarray) -> np.ndarray:
    """Mean relative bone lengths (bone / the pose's mean bone) over ``poses_3d (N, 17, 3)`` -> ``(16,)``."""
    lengths = bone_lengths(poses_3d)
    return (lengths / lengths.mean(axis=-1, keepdims=True)).mean(axis=0)


def _mid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 0.5 * (a + b)


def coco17_to_h36m(keypoints: np.ndarray) -> np.ndarray:
    """COCO-17 keypoints ``(..., 17, C)`` -> H36M-17 ``(..., 17, C)`` (any trailing channels).

    Derived joints are midpoints (pelvis = mid hips, thorax = mid shoulders, spine = mid
    pelvis-thorax, head = mid eyes). A score channel is averaged the same way; callers that
    need "missing if any source is missing" convert scores before or after. Convention from MMPose.
    """
    k = np.asarray(keypoints)
    if k.shape[-2] != 17:
        raise ValueError(f"COCO-17 keypoints need 17 joints on axis -2, got shape {k.shape}")
    out = np.empty_like(k)
    pelvis = _mid(k[..., 11, :], k[..., 12, :])
    thorax = _mid(k[..., 5, :], k[..., 6, :])
    out[..., 0, :] = pelvis
    out[..., 1, :], out[..., 2, :], out[..., 3, :] = k[..., 12, :], k[..., 14, :], k[..., 16, :]
    out[..., 4, :], out[..., 5, :], out[..., 6, :] = k[..., 11, :], k[..., 13, :], k[..., 15, :]
    out[..., 7, :] = _mid(pelvis, thorax)
    out[..., 8, :] = thorax
    out[..., 9, :] = k[..., 0, :]
    out[..., 10, :] = _mid(k[..., 1, :], k[..., 2, :])
    out[..., 11, :], out[..., 12, :], out[..., 13, :] = k[..., 5, :], k[..., 7, :], k[..., 9, :]
    out[..., 14, :], out[..., 15, :], out[..., 16, :] = k[..., 6, :], k[..., 8, :], k[..., 10, :]
    return out


# COCO-17 index of each H36M limb joint, and the H36M joint each COCO-17 keypoint is read from
# (the eyes and ears are then moved off the head joint by FACE_OFFSETS).
_COCO_FROM_H36M = (9, 10, 10, 10, 10, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3)

FACE_OFFSETS: tuple[tuple[float, float], ...] = ((0.25, 0.20), (0.25, -0.20), (0.06, 0.47), (0.06, -0.47))
"""Where a COCO-17 detector puts the left eye, right eye, left ear and right ear: ``(a, b)`` with
keypoint = nose + a * (head top - nose) + b * (left shoulder - right shoulder) / 2.

Measured on real detections: a least-squares fit to AlphaPose's Halpe-26 output of
``../shared/real2d/alphapose-halpe26-single.json`` (44 frames; Halpe's "Head" is the top of the
head), left and right averaged with the lateral sign flipped; the fit's residual is 4-6 % of the
nose-to-head-top distance. The shoulder term carries the head's turn into the image as the
shoulders' span does (a side view brings the eyes together, as a detector sees them).
"""


def face_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """COCO-17's eyes and ears ``(..., 4, C)`` from H36M-17 joints ``(..., 17, C)``, placed by :data:`FACE_OFFSETS`.

    Works in 2D (pixels) and 3D alike (any units); H36M's neck/nose joint stands for the nose
    and its head joint for the top of the head. Any channel beyond the coordinates is combined
    the same way (so give scores separately).
    """
    k = np.asarray(keypoints, dtype=np.float64)
    nose, up = k[..., 9, :], k[..., 10, :] - k[..., 9, :]
    across = (k[..., 11, :] - k[..., 14, :]) / 2
    return np.stack([nose + a * up + b * across for a, b in FACE_OFFSETS], axis=-2)


def h36m_to_coco17(keypoints: np.ndarray) -> np.ndarray:
    """H36M-17 keypoints ``(..., 17, C)`` -> COCO-17 ``(..., 17, C)``, as a COCO detector would place them.

    Limbs map one to one; the nose is H36M's neck/nose joint; the eyes and ears are placed
    around it as a detector places them (:func:`face_keypoints`). :func:`coco17_to_h36m` of the
    result returns the limbs and the nose as they were, while pelvis, spine and thorax become
    COCO's mid-hips, mid-pelvis-thorax and mid-shoulders and the head the mid-eyes (the
    definitions a COCO detector's user has).
    """
    k = np.asarray(keypoints)
    if k.shape[-2] != 17:
        raise ValueError(f"H36M-17 keypoints need 17 joints on axis -2, got shape {k.shape}")
    out = k[..., list(_COCO_FROM_H36M), :].copy()
    out[..., 1:5, :] = face_keypoints(k).astype(out.dtype)
    return out


# Halpe-26 (AlphaPose's default body model; Fang-Haoshu/Halpe-FullBody README): COCO-17 in
# indices 0-16, then 17 Head (top of the head), 18 Neck, 19 Hip (the pelvis), 20-25 toes and heels.
# Halpe-136 starts with the same 26; COCO-WholeBody-133 starts with COCO-17 (body), then feet,
# face and hands.
HALPE_HEAD, HALPE_NECK, HALPE_HIP = 17, 18, 19


def halpe26_to_h36m(keypoints: np.ndarray) -> np.ndarray:
    """Halpe-26 keypoints ``(..., 26, C)`` (or the first 26 of Halpe-136) -> H36M-17 ``(..., 17, C)``.

    Where Halpe has the joint itself it is used instead of COCO-17's guess: pelvis = Halpe "Hip"
    (not the mid-hips), thorax = Halpe "Neck" (the base of the neck, not the mid-shoulders),
    head = Halpe "Head" (the top of the head, as H36M's head joint, not the mid-eyes); spine =
    mid pelvis-thorax, neck/nose = the nose; limbs as COCO-17.
    """
    k = np.asarray(keypoints)
    if k.shape[-2] not in (26, 136):
        raise ValueError(f"Halpe keypoints need 26 (or 136) joints on axis -2, got shape {k.shape}")
    out = coco17_to_h36m(k[..., :17, :])
    pelvis, thorax = k[..., HALPE_HIP, :], k[..., HALPE_NECK, :]
    out[..., 0, :] = pelvis
    out[..., 7, :] = _mid(pelvis, thorax)
    out[..., 8, :] = thorax
    out[..., 10, :] = k[..., HALPE_HEAD, :]
    return out


def _openpose_to_h36m(k: np.ndarray, idx: dict[str, int], pelvis: np.ndarray) -> np.ndarray:
    out = np.empty(k.shape[:-2] + (NUM_JOINTS, k.shape[-1]), dtype=k.dtype)
    thorax = k[..., idx["Neck"], :]
    out[..., 0, :] = pelvis
    for h36m, op in (
        (1, "RHip"),
        (2, "RKnee"),
        (3, "RAnkle"),
        (4, "LHip"),
        (5, "LKnee"),
        (6, "LAnkle"),
        (9, "Nose"),
        (11, "LShoulder"),
        (12, "LElbow"),
        (13, "LWrist"),
        (14, "RShoulder"),
        (15, "RElbow"),
        (16, "RWrist"),
    ):
        out[..., h36m, :] = k[..., idx[op], :]
    out[..., 7, :] = _mid(pelvis, thorax)
    out[..., 8, :] = thorax
    out[..., 10, :] = _mid(k[..., idx["REye"], :], k[..., idx["LEye"], :])
    return out


def openpose_body25_to_h36m(keypoints: np.ndarray) -> np.ndarray:
    """OpenPose BODY_25 ``(..., 25, C)`` -> H36M-17 ``(..., 17, C)``; pelvis = MidHip, thorax = Neck."""
    k = np.asarray(keypoints)
    if k.shape[-2] != 25:
        raise ValueError(f"OpenPose BODY_25 keypoints need 25 joints on axis -2, got shape {k.shape}")
    idx = {n: i for i, n in enumerate(OPENPOSE_BODY25_NAMES)}
    return _openpose_to_h36m(k, idx, k[..., idx["MidHip"], :])


def openpose_coco18_to_h36m(keypoints: np.ndarray) -> np.ndarray:
    """OpenPose COCO-18 ``(..., 18, C)`` -> H36M-17 ``(..., 17, C)``; pelvis = mid hips, thorax = Neck."""
    k = np.asarray(keypoints)
    if k.shape[-2] != 18:
        raise ValueError(f"OpenPose COCO-18 keypoints need 18 joints on axis -2, got shape {k.shape}")
    idx = {n: i for i, n in enumerate(OPENPOSE_COCO18_NAMES)}
    return _openpose_to_h36m(k, idx, _mid(k[..., idx["RHip"], :], k[..., idx["LHip"], :]))


LAYOUT_DEFINITIONS: dict[str, tuple[str, ...]] = {
    "coco17": ("pelvis = mid-hips", "thorax = mid-shoulders", "head = mid-eyes"),
    "wholebody133": ("pelvis = mid-hips", "thorax = mid-shoulders", "head = mid-eyes"),
    "body25": ("pelvis = mid-hips", "head = mid-eyes"),
    "coco18": ("pelvis = mid-hips", "head = mid-eyes"),
    "halpe26": (),
    "halpe136": (),
    "h36m": (),
}
"""Which H36M-17 joints a keypoint layout defines otherwise (its ``*_to_h36m`` conversion): the
joints a lifter trained on that layout's 2D predicts in 3D. OpenPose's MidHip is taken as the
mid-hips and its Neck as H36M's thorax; Halpe's Hip, Neck and Head as H36M's pelvis, thorax and
head top; spine is then always the middle of pelvis and thorax."""


def as_defined_by(keypoints: np.ndarray, layout: str | None) -> np.ndarray:
    """H36M-17 joints ``(..., 17, D)`` (2D pixels or 3D, any units) as ``layout``'s detector defines them.

    Applies :data:`LAYOUT_DEFINITIONS`: pelvis -> mid-hips, thorax -> mid-shoulders, head ->
    mid-eyes (the eyes placed by :func:`face_keypoints`), spine -> mid pelvis-thorax when either
    moved; a layout of none of them (``h36m``, Halpe, None) returns a copy. For ``coco17`` this
    equals ``coco17_to_h36m(h36m_to_coco17(keypoints))``.
    """
    k = np.array(keypoints, dtype=np.float64)
    if k.shape[-2] != NUM_JOINTS:
        raise ValueError(f"H36M-17 keypoints need 17 joints on axis -2, got shape {k.shape}")
    rules = LAYOUT_DEFINITIONS.get(layout or "h36m")
    if rules is None:
        raise ValueError(f"keypoint layout {layout!r} unknown; expected one of {sorted(LAYOUT_DEFINITIONS)}")
    out = k.copy()
    if "head = mid-eyes" in rules:
        out[..., 10, :] = face_keypoints(k)[..., 0:2, :].mean(axis=-2)
    if "pelvis = mid-hips" in rules:
        out[..., 0, :] = _mid(k[..., 1, :], k[..., 4, :])
    if "thorax = mid-shoulders" in rules:
        out[..., 8, :] = _mid(k[..., 11, :], k[..., 14, :])
    if rules:
        out[..., 7, :] = _mid(out[..., 0, :], out[..., 8, :])
    return out
