"""A 2D-only pose cache from people's own detector output: training data with no 3D at all.

``elepose data build --source keypoints PATH...`` reads every file or folder
(:func:`elepose.data.keypoints.read_keypoints`, every format ``lift`` reads) and writes the
common cache (:mod:`elepose.data.cache`) without ``poses_3d`` or cameras:

- **Which poses**: joints scoring below ``min_score`` are missing. ``missing="drop"`` (the
  default) keeps only people with every joint present; ``missing="fill"`` keeps people with at
  least ``min_visible`` (12) and fills their missing joints from a PCA of the complete poses
  (:func:`_fill`).
- **Frames**: every ``stride``-th frame; then, per track (:func:`elepose.data.tracks.link_tracks`),
  a pose is kept only when some joint moved at least ``min_motion`` (a share of the pose's
  pelvis-to-head distance) since the track's last kept pose, so a static stretch of video does
  not fill the cache with copies (the 2D analogue of the motion-capture 40 mm filter).
- **Split by clip, never by frame**: sources (files or folders) of one clip (:func:`clip_of`: the
  name without camera tags such as ``_camera2``, or ``group_by``'s match) go to one side; clips
  sorted by ``crc32(name)``, every 5th is validation. With fewer than 5 clips, each source's last
  ``validation_share`` of frames (time order) is validation instead, with a warning, and the
  manifest says so.
- **Normalisation**: ``recommended_scale`` ``"pose"`` (per-pose), since a dataset scale in
  pixels means nothing across videos of other resolutions; ``elepose flow --scale auto`` takes it.
- **Keypoint definition and bone ratios**: the layout (COCO-17, Halpe, ...) is recorded. The
  bone-length prior's ratios are measured on the training 2D (``bone_ratios="2d"``, the
  default, :func:`bone_ratios_from_2d`): the people in the user's video and the detector's
  joint definitions (COCO's pelvis is the mid-hips, its "head" the mid-eyes) decide them, not
  Human3.6M's actors. ``"h36m"`` keeps the Human3.6M constants for limbs and trunk and measures
  only the two head bones (:func:`head_bone_ratios`).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from elepose.data.cache import PoseCache, PoseSplit, cache_manifest, write_cache
from elepose.data.keypoint_options import BONE_RATIO_CHOICES, KeypointCacheOptions
from elepose.data.keypoints import Detections, is_mmpose_video, read_keypoints
from elepose.data.tracks import link_tracks
from elepose.errors import InputError
from elepose.filling import fill_missing_joints, principal_components
from elepose.geometry import normalise_2d
from elepose.skeleton import BONES, H36M_BONE_RATIOS, HEAD, LEFT_JOINTS, NUM_JOINTS, PELVIS, RIGHT_JOINTS

__all__ = [
    "KeypointCacheOptions",
    "bone_ratios_from_2d",
    "head_bone_ratios",
    "build_keypoint_cache",
    "expand_sources",
    "KEYPOINT_DEFINITIONS",
    "MIN_TRAINING_POSES",
    "MIN_FINE_TUNE_POSES",
    "BONE_RATIO_CHOICES",
]

KEYPOINT_DEFINITIONS = {
    "coco17": "COCO-17 derived: pelvis = mid-hips, thorax = mid-shoulders, neck/nose = nose, head = mid-eyes",
    "wholebody133": "COCO-WholeBody body joints, as COCO-17: head = mid-eyes, neck/nose = nose",
    "halpe26": "Halpe-26: pelvis = Hip, thorax = Neck, neck/nose = nose, head = Head (top of the head)",
    "halpe136": "Halpe-136 body joints, as Halpe-26: head = Head (top of the head)",
    "body25": "OpenPose BODY_25: pelvis = MidHip, thorax = Neck, neck/nose = nose, head = mid-eyes",
    "coco18": "OpenPose COCO-18: pelvis = mid-hips, thorax = Neck, neck/nose = nose, head = mid-eyes",
    "h36m": "Human3.6M-17 as given",
}
_FILL_BASES = 26  # the flow's PCA size (ElePose): the subspace the missing joints are filled from
_HEAD_BONES = (9, 10)  # children of the thorax -> neck/nose and neck/nose -> head bones
_LIMB_BONES = (2, 3, 5, 6, 12, 13, 15, 16)  # children of thighs, shins, upper arms, forearms
# Each bone's mirror image in BONES order (a bone is named by its child joint; trunk bones are their own).
_MIRROR_JOINT = {**dict(zip(LEFT_JOINTS, RIGHT_JOINTS)), **dict(zip(RIGHT_JOINTS, LEFT_JOINTS))}
_BONE_OF_CHILD = {child: b for b, (_, child) in enumerate(BONES)}
_MIRROR_BONES = np.array([_BONE_OF_CHILD[_MIRROR_JOINT.get(child, child)] for _, child in BONES])


def head_bone_ratios(poses_2d: np.ndarray, quantile: float = 0.75) -> dict[int, float]:
    """Bone ratios of the two head bones, measured on complete 2D poses ``(N, 17, 2)`` px.

    Each pose's scale is its limbs' 2D length over their Human3.6M ratios (the mean over thighs,
    shins, upper and lower arms); a head bone's 2D length over that scale is its ratio in that
    view. A 2D bone is the 3D bone foreshortened, so views seeing it side-on give the largest
    values; the ``quantile`` over all poses (not the maximum, which outliers decide) estimates
    the 3D ratio. Returns {child joint: ratio} for the thorax -> neck/nose and neck/nose -> head bones.
    """
    index = {child: b for b, (_, child) in enumerate(BONES)}
    lengths = np.stack([np.linalg.norm(poses_2d[:, c] - poses_2d[:, p], axis=-1) for p, c in BONES], axis=1)
    limb = np.array([index[c] for c in _LIMB_BONES])
    scale = (lengths[:, limb] / np.asarray(H36M_BONE_RATIOS)[limb]).mean(axis=1)
    ok = scale > 1e-6
    return {c: float(np.quantile(lengths[ok, index[c]] / scale[ok], quantile)) for c in _HEAD_BONES}


def bone_ratios_from_2d(poses_2d: np.ndarray, quantile: float = 0.75) -> np.ndarray:
    """Every bone's ratio (bone / the pose's mean bone, :data:`BONES` order), measured on 2D poses ``(N, 17, 2)``.

    A 2D bone is its 3D bone foreshortened by the view; over many poses and views the
    ``quantile`` (not the maximum, which outliers decide) of each bone's share of its pose's
    summed 2D bone length estimates its share in 3D. Left and right bones are averaged (people
    are near-symmetric; a detector's left/right swaps would otherwise bias one side) and the
    result is scaled to a mean of 1, as :func:`elepose.skeleton.bone_ratios` is. Measured on the
    Bandai benchmark's detected views of dataset 1 against its 3D: mean absolute error 0.04
    per bone, where the Human3.6M constants are off by 0.12.
    """
    lengths = np.stack([np.linalg.norm(poses_2d[:, c] - poses_2d[:, p], axis=-1) for p, c in BONES], axis=1)
    total = lengths.sum(axis=1)
    ok = total > 1e-6
    if not ok.any():
        raise ValueError("bone_ratios_from_2d: every pose has zero size")
    ratios = np.quantile(lengths[ok] / total[ok, None], quantile, axis=0)
    ratios = 0.5 * (ratios + ratios[_MIRROR_BONES])
    return ratios / ratios.mean()


def _bone_ratios(poses_2d: np.ndarray, choice: str) -> tuple[list[float], dict[str, float], str]:
    """The cache's bone ratios, what was measured, and where they come from."""
    if choice == "2d":
        ratios = bone_ratios_from_2d(poses_2d)
        measured = {f"bone->{child}": float(ratios[b]) for b, (_, child) in enumerate(BONES)}
        return ratios.tolist(), measured, "every bone measured on the training 2D (bone_ratios_from_2d)"
    ratios = np.asarray(H36M_BONE_RATIOS, dtype=np.float64).copy()
    index = {child: b for b, (_, child) in enumerate(BONES)}
    head = head_bone_ratios(poses_2d)
    for child, value in head.items():
        ratios[index[child]] = value
    source = (
        "Human3.6M constants (ElePose authors' code) for limbs and trunk; the head bones measured "
        "on the training 2D (head_bone_ratios)"
    )
    return ratios.tolist(), {f"bone->{child}": value for child, value in head.items()}, source


def _motion_keep(keypoints: np.ndarray, frame: np.ndarray, track: np.ndarray, min_motion: float) -> np.ndarray:
    """``(P,)`` bool: the first pose of each track, then poses that moved ``>= min_motion`` pelvis-head lengths."""
    keep = np.zeros(len(frame), dtype=bool)
    centred = keypoints - keypoints[:, PELVIS : PELVIS + 1]
    size = np.maximum(np.linalg.norm(centred[:, HEAD], axis=-1), 1e-6)
    for t in np.unique(track):
        rows = np.flatnonzero(track == t)
        rows = rows[np.argsort(frame[rows], kind="stable")]
        last = None
        for r in rows:
            if last is None or np.linalg.norm(centred[r] - centred[last], axis=-1).max() >= min_motion * size[r]:
                keep[r] = True
                last = r
    return keep


@dataclass
class _Source:
    name: str
    keypoints: np.ndarray  # (M, 17, 2) kept poses
    frame: np.ndarray  # (M,) frame index within the source
    missing: np.ndarray  # (M, 17) bool: joints that scored below min_score
    counts: dict[str, int]
    track: np.ndarray  # (M,) the person's track within the source (link_tracks)

    @property
    def complete(self) -> np.ndarray:
        """(M,) bool: every joint scored >= min_score."""
        return ~self.missing.any(axis=1)


def _select(detections: Detections, name: str, options: KeypointCacheOptions) -> _Source:
    visible = (~detections.missing(options.min_score)).sum(axis=1)
    needed = NUM_JOINTS if options.missing == "drop" else options.min_visible
    # A pose whose head lies on its pelvis has no size to normalise by (a detector's placeholder).
    sized = np.linalg.norm(detections.keypoints[:, HEAD] - detections.keypoints[:, PELVIS], axis=-1) >= 1.0
    usable = (visible >= needed) & sized & (detections.frame % options.stride == 0)
    keypoints, frame = detections.keypoints[usable].astype(np.float64), detections.frame[usable]
    missing = detections.missing(options.min_score)[usable]
    track = link_tracks(frame, keypoints, detections.track[usable])
    moving = _motion_keep(keypoints, frame, track, options.min_motion)
    counts = {
        "frames": int(detections.num_frames),
        "people": len(detections),
        "complete_enough": int((visible >= needed).sum()),
        "after_stride": int(usable.sum()),
        "after_motion_filter": int(moving.sum()),
        "tracks": int(len(np.unique(track))) if len(track) else 0,
    }
    return _Source(name, keypoints[moving], frame[moving], missing[moving], counts, track[moving])


def _fill(sources: list[_Source]) -> int:
    """Fill the missing joints of every selected pose from a PCA of the complete ones (in place).

    The PCA (:func:`elepose.filling.principal_components`, 26 bases like the flow's) is fitted
    on the complete poses, each pelvis-centred and divided by its RMS size; the missing joints
    are then read off the variance-weighted fit of :func:`elepose.filling.fill_missing_joints`.
    Returns the number of poses filled.
    """
    complete = np.concatenate([s.keypoints[s.complete] for s in sources])
    if len(complete) <= _FILL_BASES:
        raise InputError(
            f"--missing fill: {len(complete)} complete poses; expected more than {_FILL_BASES} to fit the PCA"
        )
    normalised = normalise_2d(torch.as_tensor(complete))
    mean, components, ratio = principal_components(normalised.reshape(len(complete), -1), _FILL_BASES)
    count = 0
    for source in sources:
        rows = ~source.complete
        if rows.any():
            source.keypoints[rows] = fill_missing_joints(
                source.keypoints[rows], source.missing[rows], mean, components, ratio
            )
            count += int(rows.sum())
    return count


_CAMERA_TAG = re.compile(r"(?i)[_. -]?(?:camera|cam|view)[_-]?\d+")
"""A camera's tag in a file name (``_camera3``, ``cam-1``, ``view2``): files that differ only by it are one clip."""


def clip_of(name: str, group_by: str | None = None) -> str:
    """The clip a source named ``name`` shows, for the split by motion.

    ``group_by`` None: the name without its extension and without camera tags (:data:`_CAMERA_TAG`,
    in any folder of the name too), so ``walk_camera1.json`` and ``walk_camera2.json`` are one clip.
    Otherwise a regular expression: the clip is its first match in ``name`` (the match's first
    group when it has one); a name it does not match is a clip of its own.
    """
    if group_by is not None:
        match = re.search(group_by, name)
        if match is None:
            return name
        return match.group(1) if match.re.groups else match.group(0)
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix else name
    return _CAMERA_TAG.sub("", stem)


@dataclass(frozen=True)
class _SplitPlan:
    """How the sources were split: the rule in words, the number of clips, whether it is by motion."""

    rule: str
    clips: int
    by_motion: bool


def _split(
    sources: list[_Source], share: float, group_by: str | None = None
) -> tuple[list[tuple[_Source, np.ndarray]], list[tuple[_Source, np.ndarray]], _SplitPlan]:
    """(train, validation) lists of (source, row mask) and the plan: every 5th clip by crc32, or the tail of each source.

    Sources of one clip (:func:`clip_of`) go to the same side, so the same motion seen by another
    camera is never on both sides; with fewer than 5 clips each source's last ``share`` of frames
    is validation instead.
    """
    clips = sorted({clip_of(s.name, group_by) for s in sources}, key=lambda c: (zlib.crc32(c.encode()), c))
    how = "named by --group-by" if group_by is not None else "camera tags dropped from the names"
    order = sorted(sources, key=lambda s: (zlib.crc32(s.name.encode()), s.name))
    if len(clips) >= 5:
        validation = {c for i, c in enumerate(clips) if i % 5 == 4}
        held = [clip_of(s.name, group_by) in validation for s in order]
        train = [(s, np.ones(len(s.frame), bool)) for s, h in zip(order, held) if not h]
        val = [(s, np.ones(len(s.frame), bool)) for s, h in zip(order, held) if h]
        rule = f"every 5th clip by crc32 of its name is validation ({len(sources)} sources, {len(clips)} clips: {how})"
        return train, val, _SplitPlan(rule, len(clips), True)
    train, val = [], []
    for s in order:
        if len(s.frame) == 0:
            continue
        cut = np.quantile(s.frame, 1.0 - share)
        tail = s.frame > cut if (s.frame > cut).any() else s.frame >= cut
        train.append((s, ~tail))
        val.append((s, tail))
    rule = (
        f"fewer than 5 clips ({len(sources)} sources, {len(clips)} clips: {how}): the last {share:.0%} "
        "of each source's frames are validation"
    )
    return train, val, _SplitPlan(rule, len(clips), False)


def _to_split(parts: list[tuple[_Source, np.ndarray]], label: str) -> PoseSplit:
    """The poses of ``parts`` as a 2D-only split: each person's track in a source is a view of its own.

    A view is one person seen by one camera (as in the motion-capture caches), so the training
    loop can pair frames of one person (``--track-pairs``); ``camera_clip`` maps every view to
    its source, ``clip_names`` names the sources.
    """
    keypoints, frames, views, clip_of_view = [], [], [], []
    for i, (source, mask) in enumerate(parts):
        keypoints.append(source.keypoints[mask])
        frames.append(source.frame[mask])
        tracks, local = np.unique(source.track[mask], return_inverse=True)
        views.append(local.reshape(-1) + len(clip_of_view))
        clip_of_view += [i] * len(tracks)
    poses = np.concatenate(keypoints) if keypoints else np.zeros((0, NUM_JOINTS, 2))
    return PoseSplit(
        poses_2d=poses.astype(np.float32),
        poses_2d_detected=poses.astype(np.float32),
        view=(np.concatenate(views) if views else np.zeros(0)).astype(np.int32),
        frame=(np.concatenate(frames) if frames else np.zeros(0)).astype(np.int32),
        camera_clip=np.array(clip_of_view, dtype=np.int32),
        clip_names=np.array([s.name for s, _ in parts], dtype=str),
        clip_source=np.array([label] * len(parts)),
    )


_VIDEO_FILE_SUFFIXES = (".json", ".npy", ".npz", ".csv")
MIN_TRAINING_POSES = 64
"""Training poses a cache needs to train a flow and a lifter of its own."""
MIN_FINE_TUNE_POSES = 16
"""Training poses a cache needs to fine-tune a trained lifter (``fit --init``): one short clip."""


def _is_frame_folder(folder: Path) -> bool:
    """Whether ``folder`` is one video as per-frame JSONs (MMPose images, OpenPose frames)."""
    for file in sorted(folder.iterdir()):
        if file.suffix.lower() != ".json" or file.name.startswith(".") or not file.is_file():
            continue
        try:
            content = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return True  # read_keypoints will say what is wrong with it
        return not is_mmpose_video(content)
    return False  # no JSON: a folder of arrays or CSVs, one video each


def expand_sources(paths: Sequence[Path]) -> list[Path]:
    """Files and folders -> one path per video: a folder of per-video files becomes its files.

    A folder is one video when it holds per-frame JSONs (MMPose per image, OpenPose per frame);
    a folder of video frame lists (MMPose JSON per video), arrays or CSVs gives each file as a
    source of its own, so the split by source keeps each video on one side.
    """
    out: list[Path] = []
    for path in paths:
        if not path.is_dir() or _is_frame_folder(path):
            out.append(path)
            continue
        files = sorted(
            f for f in path.iterdir() if f.is_file() and f.suffix.lower() in _VIDEO_FILE_SUFFIXES and f.name[0] != "."
        )
        if not files:
            raise InputError(f"{path}: a folder without detector files; expected {', '.join(_VIDEO_FILE_SUFFIXES)}")
        out.extend(files)
    return out


def _read_sources(
    paths: list[Path],
    names: list[str],
    format: str | None,
    options: KeypointCacheOptions,
    wrap: Callable[[Iterable[Any], int], Iterable[Any]],
) -> tuple[list[_Source], str, list[str]]:
    """Read and select every file; returns the selected sources, their one layout and the readers' notes."""
    sources, layouts, notes = [], {}, []
    for path, name in wrap(list(zip(paths, names)), len(paths)):
        detections = read_keypoints(path, format)
        layouts.setdefault(detections.layout, path)
        if len(layouts) > 1:
            (a, pa), (b, pb) = list(layouts.items())[:2]
            raise InputError(
                f"{path}: keypoint layout {b}, but {pa} is {a}; expected one keypoint definition for a training set"
            )
        notes += [f"{path}: {n}" for n in detections.notes]
        sources.append(_select(detections, name, options))
    return sources, next(iter(layouts)), notes


def _check_size(first: Path, train: int, validation: int, fine_tune: bool, warn: Callable[[str], None]) -> None:
    """Refuse a cache too small to train on (smaller for fine-tuning, with a warning); ``first`` names the input."""
    least = MIN_FINE_TUNE_POSES if fine_tune else MIN_TRAINING_POSES
    if train < least or validation < 2:
        raise InputError(
            f"{first}: {train} training and {validation} validation poses after selection; "
            f"expected at least {least} and 2 (more video, or a lower --min-motion / --min-visible"
            + (", or --init a trained lifter to fine-tune" if not fine_tune else "")
            + ")"
        )
    if train < MIN_TRAINING_POSES:
        warn(
            f"only {train} training poses: enough to fine-tune the --init lifter a little, not to learn a "
            "flow or a lifter of their own; compare the fit with the lifter it started from before you rely on it"
        )


def build_keypoint_cache(
    paths: Sequence[str | Path],
    out: str | Path,
    options: KeypointCacheOptions = KeypointCacheOptions(),
    format: str | None = None,
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
    warn: Callable[[str], None] = lambda message: None,
    fine_tune: bool = False,
) -> dict[str, Any]:
    """Read detector output at ``paths``, select and split training poses, write a 2D-only cache to ``out``.

    ``fine_tune``: the cache is for fine-tuning a trained lifter (``fit --init``), so
    :data:`MIN_FINE_TUNE_POSES` training poses suffice (one short clip), with a warning below
    :data:`MIN_TRAINING_POSES`.

    Returns the manifest. Raises :class:`InputError` naming the file for unusable input (no
    usable person, layouts mixed across files, too few poses to train); ``warn`` receives the
    fallbacks taken (one source: split by time).
    """
    paths = expand_sources([Path(p) for p in paths])
    if not paths:
        raise InputError("--source keypoints: expected files or folders of detector output")
    names = [p.name or str(p) for p in paths]
    if len(set(names)) != len(names):
        names = [str(p) for p in paths]
    sources, layout, notes = _read_sources(paths, names, format, options, progress or (lambda items, total: items))
    usable = sum(len(s.frame) for s in sources)
    if usable == 0:
        raise InputError(
            f"{paths[0]}: no usable person: expected people with "
            + ("all 17 joints" if options.missing == "drop" else f"at least {options.min_visible} joints")
            + f" scoring >= {options.min_score} (lower --min-score, or --missing fill)"
        )
    filled = _fill(sources) if options.missing == "fill" else 0
    train_parts, val_parts, plan = _split(sources, options.validation_share, options.group_by)
    split_rule = plan.rule
    if not plan.by_motion:
        warn(
            f"the split cannot be made by motion: {split_rule} (the held-out frames continue the training motion, "
            "so held-out checks overstate accuracy; more clips, or --group-by if your file names say the clip)"
        )
    train, validation = _to_split(train_parts, "keypoints"), _to_split(val_parts, "keypoints")
    _check_size(paths[0], len(train), len(validation), fine_tune, warn)
    complete = np.concatenate([s.complete[m] for s, m in train_parts])
    if complete.sum() < 16:
        raise InputError(
            f"{paths[0]}: {int(complete.sum())} training poses with every joint; expected 16 to measure the head"
        )
    ratios, measured, ratio_source = _bone_ratios(train.poses_2d[complete].astype(np.float64), options.bone_ratios)
    entry = {
        "source": "keypoints",
        "label": "keypoints",
        "datasets": ["keypoints"],
        "files": [str(p) for p in paths],
        "format": format,
        "per_source": {s.name: s.counts for s in sources},
        "filled_poses": filled,
        "notes": notes,
    }
    manifest = cache_manifest(
        train,
        validation,
        [entry],
        bone_ratios=ratios,
        bone_ratio_sets={
            "keypoints": {
                "values": ratios,
                "source": ratio_source,
                "measured": measured,
            }
        },
        keypoint_layout=layout,
        keypoint_definition=KEYPOINT_DEFINITIONS.get(layout, layout),
        recommended_scale="pose",
        split_rule=split_rule,
        split={"by_motion": plan.by_motion, "clips": plan.clips, "sources": len(sources), "group_by": options.group_by},
        selection=asdict(options),
    )
    write_cache(out, PoseCache(train, validation, manifest))
    return manifest
