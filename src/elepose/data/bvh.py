"""BVH motion capture: reader, forward kinematics, and conversion to the 17 H36M joints.

BVH (Biovision Hierarchy) conventions followed here:

- ``HIERARCHY`` lists ``ROOT``/``JOINT`` blocks with an ``OFFSET`` (position in the parent's
  frame, file units) and ``CHANNELS``; ``End Site`` blocks carry an ``OFFSET`` only.
- Rotation channels are Euler angles in degrees, composed in the order written:
  ``CHANNELS 3 Zrotation Xrotation Yrotation`` gives ``R = Rz @ Rx @ Ry`` (intrinsic),
  the local-to-parent rotation of that joint.
- Position channels replace the matching ``OFFSET`` component (the MotionBuilder / Blender
  reading). The Bandai files, which give every joint 6 channels, confirm it: their position
  channels repeat the offsets, so adding them would double every bone.
- A joint's world position is ``p_parent + R_parent_world @ t_local`` and its world rotation
  ``R_parent_world @ R_local``; the motion columns follow the joints in file order.

End sites become extra named points ``"<Parent>_end"`` (``"<Parent>_end2"``... when a joint
has several).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from elepose.data.mocap_mapping import MappingSpec, apply_mapping, resolve_mapping

__all__ = [
    "BvhJoint",
    "Bvh",
    "Mocap17",
    "read_bvh",
    "parse_bvh",
    "euler_to_matrix",
    "forward_kinematics",
    "load_h36m_joints",
]

_CHANNEL_NAMES = {f"{axis}{kind}".lower(): f"{axis}{kind}" for axis in "XYZ" for kind in ("position", "rotation")}


@dataclass(frozen=True, eq=False)
class BvhJoint:
    """One point of a BVH hierarchy: a joint, or an end site (no channels).

    ``parent``: index into ``Bvh.joints`` (-1 for a root); ``offset``: (3,) file units, in the
    parent's frame; ``channels``: e.g. ``("Xposition", ..., "Zrotation")``; ``first_column``:
    the motion column of its first channel.
    """

    name: str
    parent: int
    offset: np.ndarray
    channels: tuple[str, ...]
    first_column: int
    is_end_site: bool


@dataclass(frozen=True, eq=False)
class Bvh:
    """A parsed BVH file. ``joints`` (end sites included) are in file order, parents first;
    ``motion``: (F, C) channel values (file units, degrees); ``frame_time``: seconds."""

    path: str
    joints: tuple[BvhJoint, ...]
    motion: np.ndarray
    frame_time: float

    @property
    def names(self) -> tuple[str, ...]:
        """Names of all points, end sites included, in ``joints`` order."""
        return tuple(j.name for j in self.joints)

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def fps(self) -> float:
        """1 / frame_time, snapped to the nearest integer when within 0.01 % (files round
        the frame time, e.g. 0.0333333 for 30 fps)."""
        fps = 1.0 / self.frame_time
        nearest = round(fps)
        return float(nearest) if nearest > 0 and abs(fps - nearest) < 1e-4 * fps else fps


@dataclass(frozen=True, eq=False)
class Mocap17:
    """A motion-capture clip as the 17 H36M joints (``elepose.skeleton.JOINT_NAMES`` order).

    ``positions``: (F, 17, 3) float64 metres, world frame, right-handed, Z up;
    ``fps``: frames per second; ``name``: the file stem; ``source_joints``: the names of the
    file's joints (end sites excluded).
    """

    positions: np.ndarray
    fps: float
    name: str
    source_joints: tuple[str, ...]


MAX_DEPTH = 256
"""Deepest joint nesting read (real skeletons, fingers included, nest a few dozen deep)."""
MIN_FRAME_TIME, MAX_FRAME_TIME = 1e-5, 10.0
"""Frame times read, seconds: 100 kHz to 0.1 Hz."""


def _bad(path: str, what: str) -> ValueError:
    return ValueError(f"{path}: {what}")


def _parse_number(token: str, path: str, field: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise _bad(path, f"{field}: expected a number, got {token!r}") from None
    if not np.isfinite(value):
        raise _bad(path, f"{field}: expected a finite number, got {token!r}")
    return value


def _parse_channels(tokens: list[str], i: int, name: str, path: str) -> tuple[tuple[str, ...], int]:
    """Parse ``CHANNELS n c1 .. cn`` of joint ``name`` at ``tokens[i]``; returns the channels and the next index."""
    if i + 2 > len(tokens):
        raise _bad(path, f"hierarchy ends early: expected CHANNELS of {name!r}")
    if tokens[i] != "CHANNELS":
        raise _bad(path, f"joint {name!r}: expected 'CHANNELS', got {tokens[i]!r}")
    try:
        count = int(tokens[i + 1])
    except ValueError:
        raise _bad(path, f"joint {name!r}: CHANNELS count {tokens[i + 1]!r} is not an integer") from None
    if i + 2 + count > len(tokens):
        raise _bad(path, f"hierarchy ends early: expected {count} channel names of {name!r}")
    raw = tokens[i + 2 : i + 2 + count]
    unknown = [c for c in raw if c.lower() not in _CHANNEL_NAMES]
    if count < 0 or unknown:
        raise _bad(path, f"joint {name!r}: unknown channel(s) {unknown}; expected Xposition ... Zrotation")
    channels = tuple(_CHANNEL_NAMES[c.lower()] for c in raw)
    if len(set(channels)) != len(channels):
        raise _bad(path, f"joint {name!r}: repeated channel in {list(raw)}")
    return channels, i + 2 + count


def _parse_hierarchy(tokens: list[str], path: str) -> tuple[list[BvhJoint], int]:
    """Parse the HIERARCHY tokens; returns the points and the total channel count."""
    if not tokens or tokens[0] != "HIERARCHY":
        raise _bad(path, "expected the file to start with 'HIERARCHY'")
    joints: list[BvhJoint] = []
    num_columns = 0
    end_counts: dict[int, int] = {}
    i = 1
    n = len(tokens)

    def need(count: int, what: str) -> None:
        if i + count > n:
            raise _bad(path, f"hierarchy ends early: expected {what}")

    def parse_block(parent: int, kind: str, depth: int = 0) -> None:
        # On entry tokens[i] is ROOT, JOINT or End.
        nonlocal i, num_columns
        if depth > MAX_DEPTH:
            raise _bad(path, f"hierarchy nested deeper than {MAX_DEPTH} joints; expected a skeleton")
        is_end = kind == "End"
        i += 1
        if is_end:
            need(1, "'Site' after 'End'")
            if tokens[i] != "Site":
                raise _bad(path, f"expected 'End Site', got 'End {tokens[i]}'")
            i += 1
            k = end_counts.get(parent, 0) + 1
            end_counts[parent] = k
            name = f"{joints[parent].name}_end" + ("" if k == 1 else str(k))
        else:
            name_tokens = []
            while i < n and tokens[i] != "{":
                name_tokens.append(tokens[i])
                i += 1
            if not name_tokens:
                raise _bad(path, f"{kind} without a name")
            name = " ".join(name_tokens)
        need(1, f"'{{' opening {name!r}")
        if tokens[i] != "{":
            raise _bad(path, f"expected '{{' after {kind} {name!r}, got {tokens[i]!r}")
        i += 1
        need(4, f"OFFSET x y z of {name!r}")
        if tokens[i] != "OFFSET":
            raise _bad(path, f"joint {name!r}: expected 'OFFSET', got {tokens[i]!r}")
        offset = np.array([_parse_number(t, path, f"OFFSET of {name!r}") for t in tokens[i + 1 : i + 4]])
        i += 4
        channels: tuple[str, ...] = ()
        if not is_end:
            channels, i = _parse_channels(tokens, i, name, path)
        index = len(joints)
        joints.append(BvhJoint(name, parent, offset, channels, num_columns, is_end))
        num_columns += len(channels)
        while True:
            need(1, f"'}}' closing {name!r}")
            token = tokens[i]
            if token == "}":
                i += 1
                return
            if token in ("JOINT", "End") and not is_end:
                parse_block(index, token, depth + 1)
            else:
                expected = "'}'" if is_end else "'JOINT', 'End Site' or '}'"
                raise _bad(path, f"inside {name!r}: expected {expected}, got {token!r}")

    while i < n:
        if tokens[i] != "ROOT":
            raise _bad(path, f"expected 'ROOT' or 'MOTION', got {tokens[i]!r}")
        parse_block(-1, "ROOT")
    if not joints:
        raise _bad(path, "the hierarchy has no ROOT joint")
    names = [j.name for j in joints]
    duplicates = sorted({x for x in names if names.count(x) > 1})
    if duplicates:
        raise _bad(path, f"joint names must be unique, repeated: {duplicates}")
    return joints, num_columns


_MOTION_HEADER = re.compile(r"\bMOTION\s+Frames:\s*(\S+)\s+Frame\s+Time:\s*(\S+)[^\S\n]*(?:\n|$)")


def parse_bvh(text: str, path: str = "<string>") -> Bvh:
    """Parse the text of a BVH file; ``path`` only names the file in error messages."""
    split = re.search(r"\bMOTION\b", text)
    if split is None:
        raise _bad(path, "no MOTION section")
    joints, num_columns = _parse_hierarchy(text[: split.start()].split(), path)
    header = _MOTION_HEADER.match(text, split.start())
    if header is None:
        raise _bad(path, "expected 'MOTION', 'Frames: N' and 'Frame Time: T' lines")
    try:
        num_frames = int(header.group(1))
    except ValueError:
        raise _bad(path, f"Frames: expected an integer, got {header.group(1)!r}") from None
    frame_time = _parse_number(header.group(2), path, "Frame Time")
    if num_frames < 1:
        raise _bad(path, f"Frames: expected at least 1 frame, got {num_frames}")
    if not MIN_FRAME_TIME <= frame_time <= MAX_FRAME_TIME:
        raise _bad(
            path,
            f"Frame Time: expected seconds per frame in [{MIN_FRAME_TIME:g}, {MAX_FRAME_TIME:g}], got {frame_time}",
        )

    body = text[header.end() :]
    # np.fromstring reads whitespace-separated numbers in C; it warns (or raises) when it
    # stops at a token that is not a number.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = np.fromstring(body, dtype=np.float64, sep=" ")
        except (ValueError, DeprecationWarning):
            raise _bad(path, "motion data: expected only numbers after 'Frame Time:'") from None
    rows = sum(1 for line in body.splitlines() if line.strip())
    if rows != num_frames or values.size != num_frames * num_columns:
        raise _bad(
            path,
            f"motion data: header says {num_frames} frames x {num_columns} channels, "
            f"found {rows} rows and {values.size} values (truncated or malformed file?)",
        )
    motion = values.reshape(num_frames, num_columns)
    if not np.isfinite(motion).all():
        frame, column = np.argwhere(~np.isfinite(motion))[0]
        raise _bad(path, f"motion data: non-finite value at frame {frame}, channel column {column}")
    return Bvh(path, tuple(joints), motion, frame_time)


def read_bvh(path: str | os.PathLike[str]) -> Bvh:
    """Read a BVH file (see the module docstring for the conventions)."""
    path_str = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _bad(path_str, "not a text (UTF-8/ASCII) BVH file") from None
    return parse_bvh(text, path_str)


def _axis_rotation(axis: str, angle_rad: np.ndarray) -> np.ndarray:
    """(F,) radians -> (F, 3, 3) rotation about the x, y or z axis (right-handed)."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    out = np.zeros(angle_rad.shape + (3, 3))
    a, b = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    k = 3 - a - b
    out[..., k, k] = 1.0
    out[..., a, a] = c
    out[..., b, b] = c
    out[..., a, b] = -s
    out[..., b, a] = s
    return out


def euler_to_matrix(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """Intrinsic Euler angles -> rotation matrices, BVH style.

    ``angles_deg``: (F, len(order)) degrees; ``order``: axes as written, e.g. ``"zxy"``.
    Returns (F, 3, 3) ``R = R_order[0] @ R_order[1] @ ...``.
    """
    angles = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    out = np.broadcast_to(np.eye(3), angles.shape[:-1] + (3, 3)).copy()
    for k, axis in enumerate(order.lower()):
        out = out @ _axis_rotation(axis, angles[..., k])
    return out


def forward_kinematics(bvh: Bvh) -> np.ndarray:
    """World positions of every point (joints and end sites), vectorised over frames.

    Returns (F, P, 3) in file units and the file's axes, ``P = len(bvh.joints)``.
    """
    num_frames = bvh.num_frames
    positions = np.empty((num_frames, len(bvh.joints), 3))
    world_rot: list[np.ndarray | None] = []
    for j, joint in enumerate(bvh.joints):
        translation = np.broadcast_to(joint.offset, (num_frames, 3)).copy()
        order = ""
        rot_columns = []
        for k, channel in enumerate(joint.channels):
            column = bvh.motion[:, joint.first_column + k]
            axis = "xyz".index(channel[0].lower())
            if channel.endswith("position"):
                translation[:, axis] = column
            else:
                order += channel[0].lower()
                rot_columns.append(column)
        local_rot = euler_to_matrix(np.stack(rot_columns, axis=-1), order) if order else None
        parent_rot = world_rot[joint.parent] if joint.parent >= 0 else None
        if joint.parent < 0:
            positions[:, j] = translation
        elif parent_rot is None:
            positions[:, j] = positions[:, joint.parent] + translation
        else:
            rotated = np.einsum("fij,fj->fi", parent_rot, translation)
            positions[:, j] = positions[:, joint.parent] + rotated
        if parent_rot is None:
            world_rot.append(local_rot)
        elif local_rot is None:
            world_rot.append(parent_rot)
        else:
            world_rot.append(parent_rot @ local_rot)
    return positions


def load_h36m_joints(path: str | os.PathLike[str], mapping: MappingSpec = None) -> Mocap17:
    """Read a BVH file and convert it to the 17 H36M joints.

    ``mapping``: None (detect the built-in skeleton from the joint names), a built-in name
    (``elepose.data.mocap_mapping.BUILTIN_MAPPINGS``), a dict, or a path to a JSON mapping
    file (format in ``elepose.data.mocap_mapping``). Returns ``Mocap17`` with positions
    (F, 17, 3) metres, right-handed, Z up; F excludes the mapping's ``drop_first_frames``.
    """
    bvh = read_bvh(path)
    source_joints = tuple(j.name for j in bvh.joints if not j.is_end_site)
    resolved = resolve_mapping(mapping, bvh.names, bvh.path)
    if bvh.num_frames <= resolved.drop_first_frames:
        raise _bad(
            bvh.path,
            f"Frames: expected more than the {resolved.drop_first_frames} frame(s) mapping "
            f"{resolved.name!r} drops, got {bvh.num_frames}",
        )
    points = forward_kinematics(bvh)[resolved.drop_first_frames :]
    positions = apply_mapping(points, bvh.names, resolved, bvh.path)
    return Mocap17(positions, bvh.fps, Path(path).stem, source_joints)
