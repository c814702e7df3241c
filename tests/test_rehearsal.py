"""Rehearsal: the user's training 2D pooled with the start's own domain, for ``fit --init --rehearse``."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from elepose.cli import _register_all, app
from elepose.data.cache import PoseCache, load_manifest, load_split, random_subset, write_cache
from elepose.errors import InputError
from elepose.skeleton import as_defined_by
from elepose.train.rehearsal import pool_caches
from tests.synthetic import make_split
from tests.synthetic import write_cache as write_synthetic_cache


def _user_cache(folder, layout="coco17"):
    """A 2D-only cache like the one fit builds from detector files."""
    train, test = make_split(300, 6, seed=3, clips=3), make_split(80, 2, seed=4)

    def two_d(split):
        return replace(split, poses_3d=None, camera_K=None, camera_R=None, camera_t=None, camera_elevation=None,
                       clip_source=np.array(["keypoints"] * len(split.clip_names)))  # fmt: skip

    manifest = {"keypoint_layout": layout, "bone_ratios": [1.0] * 16, "counts": {"train": {"poses": 300}}}
    write_cache(folder, PoseCache(two_d(train), two_d(test), manifest))
    return folder


def test_the_pooled_cache_keeps_the_users_poses_and_adds_source_poses_through_the_users_definitions(tmp_path):
    user = _user_cache(tmp_path / "user")
    source = write_synthetic_cache(tmp_path / "source", n_train=1000, n_test=64, clips=4)
    record = pool_caches(user, source, tmp_path / "pooled", poses=250, seed=7)
    assert record["poses"] == 250 and record["of"] == 1000 and record["user_poses"] == 300
    mine, pooled = load_split(user / "train.npz"), load_split(tmp_path / "pooled" / "train.npz")
    assert len(pooled) == 550
    assert np.array_equal(pooled.poses_2d[:300], mine.poses_2d) and np.array_equal(pooled.view[:300], mine.view)
    # The drawn source poses: the same fixed subset, detected 2D, COCO-defined (computed here by another route).
    drawn = random_subset(load_split(source / "train.npz"), 250, 7)
    expected = as_defined_by(drawn.poses_2d_detected.astype(np.float64), "coco17")
    assert np.allclose(pooled.poses_2d[300:], expected, atol=1e-4)
    assert np.allclose(pooled.poses_2d_detected[300:], expected, atol=1e-4)
    # Their views and clips come after the user's, named and labelled as rehearsal.
    assert pooled.view[300:].min() == len(mine.camera_clip)
    names = pooled.clip_names[pooled.pose_clip[300:]]
    assert all(str(n).startswith("rehearsal/") for n in names)
    assert set(pooled.pose_source[300:].tolist()) == {"rehearsal"}
    assert set(pooled.pose_source[:300].tolist()) == {"keypoints"}
    assert not pooled.has_3d
    # Validation: the user's, unchanged; the manifest says what was pooled.
    assert np.array_equal(load_split(tmp_path / "pooled" / "test.npz").poses_2d, load_split(user / "test.npz").poses_2d)
    manifest = load_manifest(tmp_path / "pooled")
    assert manifest["rehearsal"] == record and manifest["counts"]["train"]["poses"] == 550


def test_rehearsal_needs_a_cache_and_a_warm_start(tmp_path):
    user = _user_cache(tmp_path / "user")
    with pytest.raises(InputError, match="expected an elepose cache folder"):
        pool_caches(user, tmp_path / "nothing", tmp_path / "pooled", poses=10)
    assert not (tmp_path / "pooled").exists()
    _register_all()
    result = CliRunner().invoke(app, ["fit", str(user), "--out", str(tmp_path / "fit"), "--rehearse", str(user)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "error: --rehearse: expected --init RUN (rehearsal keeps the start's domain in view)"
    )
    assert not (tmp_path / "fit").exists()
