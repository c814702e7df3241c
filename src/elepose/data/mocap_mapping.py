"""Joint-name mappings from motion-capture skeletons to the 17 H36M joints (SPEC section 8).

A mapping is JSON (or a dict) from each of the 17 names of ``elepose.skeleton.JOINT_NAMES``
to one of

- ``"SourceJoint"``: that joint (end sites are named ``"<Parent>_end"``, see ``bvh.py``);
- ``{"extend": [FROM, TO], "metres": M}``: the point M metres beyond TO along FROM -> TO;
- ``{"mean": [A, B]}``: the midpoint of A and B;

plus optional top-level keys ``"units_to_metres"`` (float, default 1), ``"up"``
(``"y"`` or ``"z"``, the file's up axis, default ``"y"`` as in most BVH files),
``"drop_first_frames"`` (int, default 0) and ``"description"`` (free text). Example::

    {"units_to_metres": 0.01, "up": "y",
     "pelvis": "Hips", "head": {"extend": ["Neck", "Head"], "metres": 0.2}, ...}

Outputs are metres in a right-handed, Z-up world. A Y-up file is turned Z-up by the proper
rotation (x, y, z) -> (x, -z, y) (determinant +1, so the person's left stays on the left).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from elepose.skeleton import JOINT_NAMES

__all__ = [
    "Joint",
    "Extend",
    "Mean",
    "MocapMapping",
    "MappingSpec",
    "BUILTIN_MAPPINGS",
    "Y_UP_TO_Z_UP",
    "parse_mapping",
    "load_mapping_file",
    "detect_mapping",
    "resolve_mapping",
    "apply_mapping",
]


@dataclass(frozen=True)
class Joint:
    """A source point used as is."""

    name: str


@dataclass(frozen=True)
class Extend:
    """The point ``metres`` beyond ``to`` along ``from_`` -> ``to``."""

    from_: str
    to: str
    metres: float


@dataclass(frozen=True)
class Mean:
    """The midpoint of two source points."""

    a: str
    b: str


Target = Union[Joint, Extend, Mean]


@dataclass(frozen=True)
class MocapMapping:
    """A parsed mapping: ``targets[k]`` gives H36M joint ``JOINT_NAMES[k]``."""

    name: str
    targets: tuple[Target, ...]
    units_to_metres: float = 1.0
    up: str = "y"
    drop_first_frames: int = 0

    def source_points(self) -> set[str]:
        """Every source point name the mapping reads."""
        names: set[str] = set()
        for target in self.targets:
            if isinstance(target, Joint):
                names.add(target.name)
            elif isinstance(target, Extend):
                names.update((target.from_, target.to))
            else:
                names.update((target.a, target.b))
        return names


MappingSpec = Union[None, str, os.PathLike, Mapping[str, Any]]

# (x, y, z) in a Y-up frame -> (x, -z, y) in a Z-up frame: a rotation of +90 deg about x.
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

# Built-in mappings. Correspondence with H36M's 17 joints (SPEC section 2): H36M "thorax" is
# the base of the neck, level with the shoulders; "spine" lies about halfway between pelvis
# and thorax; "neck/nose" halfway between thorax and head top (H36M bone ratios 0.448 and
# 0.445); "head" is the top of the head. Where a choice was open, we prefer source joints
# whose distance along the H36M bone is fixed by the skeleton (a direct parent-child link,
# possibly through a zero-length joint), so the 3D bones stay rigid as in Human3.6M.
BUILTIN_MAPPINGS: dict[str, dict[str, Any]] = {
    # Bandai-Namco-Research-Motiondataset 1 and 2: 21 joints, Y up, centimetres (dataset
    # README). Hips -> Spine 15.7 cm -> Chest 9.0 cm -> Neck 16.4 cm -> Head 6.5 cm.
    # thorax = Neck: the base of the neck, 3.4 cm above the clavicle roots (Shoulder_L/R);
    # Chest lies 16 cm lower, mid-chest. spine = Spine (15.7 cm up) or Chest (24.7 cm up)
    # straddle the middle of Hips -> Neck (41.1 cm, where H36M's spine lies); neither keeps
    # both spine bones rigid. With Spine, pelvis -> spine is rigid and spine -> thorax
    # varies by <= 12.7 mm over the shared clips; with Chest, pelvis -> spine varies by up
    # to 39 mm (dance-short), so Spine. neck = Head: the only joint between the base of the
    # neck and the head top. head = 20 cm beyond Head along Neck -> Head (SPEC section 8).
    # Shoulders are UpperArm_*, the shoulder joints (Shoulder_* are the clavicle roots), so
    # thorax -> shoulder follows the clavicles: it varies by up to 27 mm (shrugs in
    # dance-short), like any 17-joint reduction of a skeleton with clavicles.
    "bandai": {
        "description": "Bandai-Namco-Research-Motiondataset (21 joints, Y up, cm)",
        "units_to_metres": 0.01,
        "up": "y",
        "pelvis": "Hips",
        "right_hip": "UpperLeg_R",
        "right_knee": "LowerLeg_R",
        "right_ankle": "Foot_R",
        "left_hip": "UpperLeg_L",
        "left_knee": "LowerLeg_L",
        "left_ankle": "Foot_L",
        "spine": "Spine",
        "thorax": "Neck",
        "neck": "Head",
        "head": {"extend": ["Neck", "Head"], "metres": 0.20},
        "left_shoulder": "UpperArm_L",
        "left_elbow": "LowerArm_L",
        "left_wrist": "Hand_L",
        "right_shoulder": "UpperArm_R",
        "right_elbow": "LowerArm_R",
        "right_wrist": "Hand_R",
    },
    # CMU, MotionBuilder-friendly BVH release (cgspeed; 31 joints, Y up). Each BVH joint sits
    # at the start of the ASF bone of that name. Units: CMU length units, the same scale as
    # the 3ds Max release (thigh 7.43 units here vs 7.21 for subject 131 there) -> x 0.05644
    # (CMU FAQ: (1 / 0.45) inch). Frame 0 is an added T-pose (release README): dropped.
    # Hips -> Spine 2.04 -> Spine1 2.05 units; Neck, LeftShoulder and RightShoulder sit at
    # Spine1 (zero offset), so Spine1 is the base of the neck = thorax and Spine the middle
    # of the back = spine. neck/nose: Neck1 (end of the lower neck, 9.9 cm above Spine1)
    # and Head (skull base, 19.9 cm up) split thorax -> head top 1:2 and 2:1 where H36M has
    # 1:1; Neck1 keeps thorax -> neck rigid (Spine1 -> Head varies by 1 cm in 05_06), so
    # Neck1. The release has no head top (Head's end site has zero offset).
    # We put it 0.10 m beyond Head along Neck1 -> Head: CMU's head bone is about as long as
    # its upper neck (subject 131 in the 3ds Max release: 1.63 vs 1.60 units), and this
    # skeleton's upper neck (Neck1 -> Head) is 1.77 units = 0.10 m.
    "cmu-motionbuilder": {
        "description": "CMU mocap, MotionBuilder-friendly BVH release (31 joints, Y up)",
        "units_to_metres": 0.05644,
        "up": "y",
        "drop_first_frames": 1,
        "pelvis": "Hips",
        "right_hip": "RightUpLeg",
        "right_knee": "RightLeg",
        "right_ankle": "RightFoot",
        "left_hip": "LeftUpLeg",
        "left_knee": "LeftLeg",
        "left_ankle": "LeftFoot",
        "spine": "Spine",
        "thorax": "Spine1",
        "neck": "Neck1",
        "head": {"extend": ["Neck1", "Head"], "metres": 0.10},
        "left_shoulder": "LeftArm",
        "left_elbow": "LeftForeArm",
        "left_wrist": "LeftHand",
        "right_shoulder": "RightArm",
        "right_elbow": "RightForeArm",
        "right_wrist": "RightHand",
    },
    # CMU, 3ds Max-friendly BVH release (cgspeed; Y up, CMU length units x 0.05644 = metres,
    # CMU FAQ). Frame 0 is an added T-pose: dropped. Hips -> Chest 1.99 -> Chest2 1.99 units;
    # lowerneck and both collars sit at Chest2 = thorax; Chest = spine (the middle).
    # Neck (end of the lower neck, 9.1 cm above Chest2) = neck/nose, as for the MotionBuilder
    # release. This release keeps the head bone: Head's end site is the top of the head.
    "cmu-3dsmax": {
        "description": "CMU mocap, 3ds Max-friendly BVH release (Y up, CMU length units)",
        "units_to_metres": 0.05644,
        "up": "y",
        "drop_first_frames": 1,
        "pelvis": "Hips",
        "right_hip": "RightHip",
        "right_knee": "RightKnee",
        "right_ankle": "RightAnkle",
        "left_hip": "LeftHip",
        "left_knee": "LeftKnee",
        "left_ankle": "LeftAnkle",
        "spine": "Chest",
        "thorax": "Chest2",
        "neck": "Neck",
        "head": "Head_end",
        "left_shoulder": "LeftShoulder",
        "left_elbow": "LeftElbow",
        "left_wrist": "LeftWrist",
        "right_shoulder": "RightShoulder",
        "right_elbow": "RightElbow",
        "right_wrist": "RightWrist",
    },
}

_OPTIONAL_KEYS = ("units_to_metres", "up", "drop_first_frames", "description")


def _bad(source: str, what: str) -> ValueError:
    return ValueError(f"{source}: {what}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def _point_name(value: Any, source: str, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(source, f"{field}: expected a source joint name, got {value!r}")
    return value


def _parse_target(value: Any, source: str, joint: str) -> Target:
    if isinstance(value, str):
        return Joint(_point_name(value, source, joint))
    expected = 'a joint name, {"extend": [FROM, TO], "metres": M} or {"mean": [A, B]}'
    if isinstance(value, Mapping):
        keys = set(value)
        pair = value.get("extend", value.get("mean"))
        if not (isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2):
            raise _bad(source, f"{joint}: expected {expected}, got {value!r}")
        a = _point_name(pair[0], source, joint)
        b = _point_name(pair[1], source, joint)
        if keys == {"mean"}:
            return Mean(a, b)
        if keys == {"extend", "metres"}:
            metres = value["metres"]
            if not _is_number(metres):
                raise _bad(source, f"{joint}.metres: expected a finite number, got {metres!r}")
            return Extend(a, b, float(metres))
    raise _bad(source, f"{joint}: expected {expected}, got {value!r}")


def parse_mapping(raw: Mapping[str, Any], source: str = "<mapping>") -> MocapMapping:
    """Validate a mapping dict (format in the module docstring); ``source`` names it in errors."""
    if not isinstance(raw, Mapping):
        what = type(raw).__name__
        raise _bad(source, f"expected a JSON object keyed by H36M joint names, got {what}")
    unknown = sorted(k for k in raw if k not in JOINT_NAMES and k not in _OPTIONAL_KEYS)
    if unknown:
        raise _bad(
            source,
            f"unknown key(s) {unknown}; expected the 17 H36M joints {list(JOINT_NAMES)} "
            f"and optionally {list(_OPTIONAL_KEYS)}",
        )
    missing = [k for k in JOINT_NAMES if k not in raw]
    if missing:
        raise _bad(source, f"missing H36M joint(s) {missing}; all 17 of {list(JOINT_NAMES)} are needed")
    units = raw.get("units_to_metres", 1.0)
    if not (_is_number(units) and units > 0):
        raise _bad(source, f"units_to_metres: expected a positive number, got {units!r}")
    up = raw.get("up", "y")
    if up not in ("y", "z"):
        raise _bad(source, f'up: expected "y" or "z", got {up!r}')
    drop = raw.get("drop_first_frames", 0)
    if isinstance(drop, bool) or not isinstance(drop, int) or drop < 0:
        raise _bad(source, f"drop_first_frames: expected a non-negative integer, got {drop!r}")
    targets = tuple(_parse_target(raw[k], source, k) for k in JOINT_NAMES)
    return MocapMapping(source, targets, float(units), up, drop)


def load_mapping_file(path: str | os.PathLike[str]) -> MocapMapping:
    """Read and validate a JSON mapping file."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _bad(str(path), "mapping file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _bad(str(path), f"not valid JSON ({err})") from None
    return parse_mapping(raw, str(path))


def detect_mapping(point_names: Sequence[str], source: str = "<bvh>") -> str:
    """The built-in mapping whose source joints are all in ``point_names``."""
    present = set(point_names)
    matches = [name for name, raw in BUILTIN_MAPPINGS.items() if parse_mapping(raw, name).source_points() <= present]
    if len(matches) != 1:
        needs = {
            name: sorted(parse_mapping(raw, name).source_points() - present) for name, raw in BUILTIN_MAPPINGS.items()
        }
        raise _bad(
            source,
            f"cannot tell the skeleton from its joint names (matches: {matches}; missing per "
            f"built-in mapping: {needs}); pass a mapping name or a JSON mapping file",
        )
    return matches[0]


def resolve_mapping(mapping: MappingSpec, point_names: Sequence[str], source: str = "<bvh>") -> MocapMapping:
    """``mapping`` (None = detect from ``point_names``, a built-in name, a dict, or a JSON
    file path) -> ``MocapMapping``; ``source`` names the BVH file in errors."""
    if mapping is None:
        name = detect_mapping(point_names, source)
        return parse_mapping(BUILTIN_MAPPINGS[name], name)
    if isinstance(mapping, Mapping):
        return parse_mapping(mapping, "<mapping dict>")
    if isinstance(mapping, str) and mapping in BUILTIN_MAPPINGS:
        return parse_mapping(BUILTIN_MAPPINGS[mapping], mapping)
    if isinstance(mapping, os.PathLike) or str(mapping).lower().endswith(".json") or Path(str(mapping)).is_file():
        return load_mapping_file(mapping)
    raise ValueError(
        f"{source}: unknown mapping {mapping!r}; expected one of the built-in mappings "
        f"{sorted(BUILTIN_MAPPINGS)} or a path to a .json mapping file"
    )


def apply_mapping(
    points: np.ndarray, point_names: Sequence[str], mapping: MocapMapping, source: str = "<bvh>"
) -> np.ndarray:
    """Source points -> the 17 H36M joints.

    ``points``: (F, P, 3) file units and axes, ``point_names``: P names. Returns (F, 17, 3)
    metres, right-handed, Z up.
    """
    index = {name: k for k, name in enumerate(point_names)}
    missing = sorted(mapping.source_points() - set(index))
    if missing:
        raise _bad(
            source,
            f"mapping {mapping.name!r} needs joint(s) {missing} that the file lacks; it has {list(point_names)}",
        )
    metres = np.asarray(points, dtype=np.float64) * mapping.units_to_metres
    if mapping.up == "y":
        metres = metres @ Y_UP_TO_Z_UP.T
    out = np.empty(metres.shape[:1] + (len(JOINT_NAMES), 3))
    for k, target in enumerate(mapping.targets):
        if isinstance(target, Joint):
            out[:, k] = metres[:, index[target.name]]
        elif isinstance(target, Mean):
            out[:, k] = 0.5 * (metres[:, index[target.a]] + metres[:, index[target.b]])
        else:
            start, end = metres[:, index[target.from_]], metres[:, index[target.to]]
            direction = end - start
            length = np.linalg.norm(direction, axis=-1, keepdims=True)
            if np.any(length < 1e-9):
                raise _bad(
                    source,
                    f"{JOINT_NAMES[k]}: cannot extend {target.from_} -> {target.to}, the two points coincide",
                )
            out[:, k] = end + target.metres * direction / length
    return out
