"""Rehearsal for ``fit --init``: the user's training 2D pooled with 2D of the start's own domain.

A lifter fine-tuned on a little of the user's 2D forgets what it knew of other motions (benchmark
sections 7 and 10); training the flow and the lifter on the user's 2D together with poses the
start was trained on keeps both in view. :func:`pool_caches` writes that pooled cache:

- the fit's own cache's training split, unchanged, then ``poses`` poses of the source cache's
  training split drawn at random (fixed seed), their *detected* 2D when the source has it, taken
  through the joint definitions of the user's detector (:func:`elepose.evaluate.evaluation.defined_as`)
  so that one flow models one skeleton; the source's 3D and cameras are not carried over;
- the fit's validation split unchanged (every held-out check stays on the user's 2D);
- the fit cache's manifest (its bone ratios, scale and layout), with a ``rehearsal`` record.

Each source view becomes a view of the pooled split, its clip named ``rehearsal/{clip}`` and its
dataset ``rehearsal``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from elepose.data.cache import PoseCache, PoseSplit, load_manifest, load_split, random_subset, write_cache
from elepose.errors import InputError
from elepose.evaluate.evaluation import defined_as

__all__ = ["pool_caches", "draw_source", "REHEARSAL_DATASET"]

REHEARSAL_DATASET = "rehearsal"


def _as_2d_only(split: PoseSplit, clip_prefix: str, dataset: str) -> PoseSplit:
    """``split``'s detected 2D as a 2D-only split (no 3D, no cameras), its clips renamed."""
    detected = split.poses_2d_detected if split.poses_2d_detected is not None else split.poses_2d
    views, view = np.unique(split.view, return_inverse=True)
    return PoseSplit(
        poses_2d=detected.astype(np.float32),
        poses_2d_detected=detected.astype(np.float32),
        view=view.astype(split.view.dtype),
        frame=split.frame,
        camera_clip=split.camera_clip[views],
        clip_names=np.array([f"{clip_prefix}{name}" for name in split.clip_names]),
        clip_source=np.array([dataset] * len(split.clip_names)),
    )


def _concatenate(first: PoseSplit, second: PoseSplit) -> PoseSplit:
    """Both 2D-only splits in one: ``second``'s views and clips numbered after ``first``'s."""
    views, clips = len(first.camera_clip), len(first.clip_names)
    return PoseSplit(
        poses_2d=np.concatenate([first.poses_2d, second.poses_2d.astype(first.poses_2d.dtype)]),
        poses_2d_detected=np.concatenate(
            [first.poses_2d_detected, second.poses_2d_detected.astype(first.poses_2d_detected.dtype)]
        ),
        view=np.concatenate([first.view, second.view.astype(first.view.dtype) + views]),
        frame=np.concatenate([first.frame, second.frame.astype(first.frame.dtype)]),
        camera_clip=np.concatenate([first.camera_clip, second.camera_clip.astype(first.camera_clip.dtype) + clips]),
        clip_names=np.concatenate([first.clip_names.astype(str), second.clip_names.astype(str)]),
        clip_source=np.concatenate([first.clip_source.astype(str), second.clip_source.astype(str)]),
    )


def draw_source(
    source_cache: str | Path, poses: int, layout: str | None, seed: int, option: str
) -> tuple[PoseSplit, int]:
    """``poses`` poses of ``source_cache``'s training split drawn at random (``seed``), taken through
    the joint definitions of ``layout`` (None: as they are), and the split's size; ``option`` names
    the flag in the error."""
    if not (Path(source_cache) / "train.npz").is_file():
        raise InputError(f"{option} {source_cache}: expected an elepose cache folder (train.npz, manifest.json)")
    source = load_split(Path(source_cache) / "train.npz")
    drawn = random_subset(source, poses, seed)
    return (defined_as(drawn, layout) if layout else drawn), len(source)


def pool_caches(fit_cache: Path, source_cache: Path, out: Path, poses: int, seed: int = 0) -> dict[str, Any]:
    """Write the pooled cache ``out`` (atomically; see the module docstring); returns its ``rehearsal`` record.

    ``fit_cache``: the fit's own 2D cache; ``source_cache``: a cache the start was trained on (any
    elepose cache with a training split of 17-joint 2D); ``poses``: how many of its training poses.
    """
    manifest = load_manifest(fit_cache)
    drawn, available = draw_source(source_cache, poses, manifest.get("keypoint_layout"), seed, "--rehearse")
    train, validation = load_split(Path(fit_cache) / "train.npz"), load_split(Path(fit_cache) / "test.npz")
    pooled = _concatenate(train, _as_2d_only(drawn, f"{REHEARSAL_DATASET}/", REHEARSAL_DATASET))
    record = {
        "source": str(source_cache),
        "poses": len(drawn),
        "of": available,
        "seed": seed,
        "defined_as": manifest.get("keypoint_layout"),
        "user_poses": len(train),
    }
    manifest = {**manifest, "rehearsal": record}
    manifest["counts"] = {**manifest["counts"], "train": {**manifest["counts"]["train"], "poses": len(pooled)}}
    write_cache(out, PoseCache(pooled, validation, manifest))
    return record
