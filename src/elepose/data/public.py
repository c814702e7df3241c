"""The public datasets of the paper's tables (Human3.6M, MPI-INF-3DHP, 3DPW) as pose caches.

Each dataset is read by its loader (:mod:`elepose.data.h36m`, :mod:`elepose.data.mpi_inf_3dhp`,
:mod:`elepose.data.threedpw`) and written as the common cache (``train.npz``, ``test.npz``,
``manifest.json``) through :func:`elepose.data.cache.write_cache`, replaced only on success.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elepose.data import mpi_inf_3dhp, threedpw
from elepose.data.cache import PoseCache, cache_manifest, write_cache
from elepose.data.h36m import H36M_TEST_STRIDE, H36M_TEST_SUBJECTS, H36M_TRAIN_SUBJECTS, load_videopose3d_h36m
from elepose.errors import InputError
from elepose.skeleton import H36M_BONE_RATIOS, MPI_INF_3DHP_BONE_RATIOS

__all__ = ["PUBLIC_SOURCES", "DATASET_NAMES", "build_public_cache"]

PUBLIC_SOURCES = ("h36m", "3dhp", "3dpw")
"""``--source`` values read by the public-dataset loaders (anything else is motion capture)."""

DATASET_NAMES = {"h36m": "Human3.6M", "3dhp": "MPI-INF-3DHP", "3dpw": "3DPW"}
"""Human-readable names of the ``--source`` values."""


def _load_public(
    source: str,
    root: Path | None,
    h36m_3d: Path | None,
    h36m_2d: Path | None,
    h36m_detections: Path | None,
    train_stride: int | None,
    test_stride: int | None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Read a public dataset: ``(splits, source entry for the manifest, extra manifest keys)``."""
    strides = {k: v for k, v in (("train_stride", train_stride), ("test_stride", test_stride)) if v is not None}
    if source == "h36m":
        if h36m_3d is None or h36m_2d is None:
            raise InputError("--source h36m needs --h36m-3d data_3d_h36m.npz and --h36m-2d data_2d_h36m_gt.npz")
        splits = load_videopose3d_h36m(h36m_3d, h36m_2d, h36m_detections, **strides)
        entry: dict[str, Any] = {
            "source": "h36m",
            "label": "h36m",
            "datasets": ["h36m"],
            "files": {
                "positions_3d": str(h36m_3d),
                "positions_2d_gt": str(h36m_2d),
                "positions_2d_detected": None if h36m_detections is None else str(h36m_detections),
            },
            "train_subjects": list(H36M_TRAIN_SUBJECTS),
            "test_subjects": list(H36M_TEST_SUBJECTS),
            "train_stride": strides.get("train_stride", 1),
            "test_stride": H36M_TEST_STRIDE,
            "poses_2d_detected": "copy of the ground-truth 2D"
            if h36m_detections is None
            else f"from {h36m_detections}",
        }
        authors: dict[str, Any] = {
            "values": list(H36M_BONE_RATIOS),
            "source": "ElePose authors' code (SPEC section 6)",
            "train_option": "--bone-ratios h36m",
        }
    elif source == "3dhp":
        splits, metadata = mpi_inf_3dhp.load_3dhp(Path(str(root)), **strides)
        metadata.pop("bone_ratios", None)
        entry = {
            "source": "3dhp",
            "label": mpi_inf_3dhp.SOURCE,
            "datasets": [mpi_inf_3dhp.SOURCE],
            "metadata": metadata,
        }
        authors = {
            "values": list(MPI_INF_3DHP_BONE_RATIOS),
            "source": "ElePose authors' code, commit c1620ec (commented out); SPEC section 6",
            "train_option": "--bone-ratios 3dhp",
        }
    else:
        splits, metadata = threedpw.load_3dpw(Path(str(root)), **strides)
        metadata.pop("bone_ratios", None)
        entry = {"source": "3dpw", "label": threedpw.SOURCE, "datasets": [threedpw.SOURCE], "metadata": metadata}
        authors = {"values": None, "source": "none published for 3DPW"}
    sets = {"authors": authors}
    return splits, entry, sets


def build_public_cache(
    source: str,
    out: Path,
    root: Path | None = None,
    h36m_3d: Path | None = None,
    h36m_2d: Path | None = None,
    h36m_detections: Path | None = None,
    train_stride: int | None = None,
    test_stride: int | None = None,
) -> dict[str, Any]:
    """Read ``source`` (``h36m``, ``3dhp`` or ``3dpw``) and write its cache to ``out``; returns the manifest.

    The manifest is :func:`elepose.data.cache.cache_manifest`'s (``bone_ratios`` = computed
    from the training 3D, the default of ``elepose train --bone-ratios data``) plus
    ``bone_ratio_sets``: ``train_split`` (those values) and ``authors`` (published constants,
    with the ``elepose train`` option that selects them; none for 3DPW). ``None`` strides take
    each loader's default. Nothing is written unless the whole cache was built.
    """
    if source not in PUBLIC_SOURCES:
        raise InputError(f"--source {source}: expected one of {', '.join(PUBLIC_SOURCES)}")
    if source != "h36m" and root is None:
        raise InputError(f"--source {source}: needs the dataset's root folder")
    splits, entry, sets = _load_public(source, root, h36m_3d, h36m_2d, h36m_detections, train_stride, test_stride)
    train, test = splits["train"], splits["test"]
    if len(test) == 0:
        raise ValueError(f"{DATASET_NAMES[source]}: the test split holds no poses")
    manifest = cache_manifest(train, test, [entry])
    manifest["bone_ratio_sets"] = {
        "train_split": {
            "values": manifest["bone_ratios"],
            "source": "elepose.skeleton.bone_ratios of this cache's training 3D (camera frame)",
            "train_option": "--bone-ratios data (the default)",
        },
        **sets,
    }
    write_cache(out, PoseCache(train, test, manifest))
    return manifest
