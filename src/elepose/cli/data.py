"""``elepose data build`` and ``elepose data summary``: the pose cache of every data source.

Sources: motion capture (``bandai``, ``cmu`` or a folder of ``.bvh`` files; virtual cameras,
SPEC section 8) and the public datasets of the paper's tables, read by their loaders:

- ``--source h36m --h36m-3d data_3d_h36m.npz --h36m-2d data_2d_h36m_gt.npz
  [--h36m-detections data_2d_h36m_cpn_ft_h36m_dbb.npz]`` (:mod:`elepose.data.h36m`);
- ``--source 3dhp ROOT`` (:mod:`elepose.data.mpi_inf_3dhp`) and ``--source 3dpw ROOT``
  (:mod:`elepose.data.threedpw`); ``ROOT`` is the second positional argument or ``--path ROOT``.

Every source writes the same cache (``train.npz``, ``test.npz``, ``manifest.json``) through
:func:`elepose.data.cache.write_cache` with the manifest of
:func:`elepose.data.cache.cache_manifest`; the cache folder is replaced only on success.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer

from elepose.cli.errors import user_errors
from elepose.data.cameras import CameraOptions
from elepose.data.keypoint_options import KeypointCacheOptions
from elepose.errors import InputError
from elepose.outputs import claim_folder

__all__ = ["format_counts", "register"]

data_app = typer.Typer(
    help="Build and inspect pose caches: motion capture, public datasets, your own detections.",
    no_args_is_help=True,
    add_completion=False,
)


def _mapping_argument(mapping: Optional[str]) -> Any:
    """``--mapping``: a built-in skeleton name or a JSON mapping file."""
    if mapping is None:
        return None
    if Path(mapping).is_file():
        return Path(mapping)
    from elepose.data.mocap_mapping import BUILTIN_MAPPINGS

    if mapping in BUILTIN_MAPPINGS:
        return mapping
    raise InputError(
        f"--mapping {mapping}: expected a JSON mapping file or one of {', '.join(sorted(BUILTIN_MAPPINGS))}"
    )


_MOCAP_ONLY = (
    "mapping",
    "seed",
    "elevation_mean",
    "elevation_std",
    "distance",
    "focal",
    "data_root",
    "limit_clips",
    "workers",
)
_H36M_ONLY = ("h36m_3d", "h36m_2d", "h36m_detections")


_CAMERAS = CameraOptions()  # the defaults of the camera options below
_SELECTION = KeypointCacheOptions()  # and of the keypoint options


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the parameter ``name`` was set on the command line (or environment), not defaulted."""
    origin = ctx.get_parameter_source(name)
    return origin is not None and origin.name not in ("DEFAULT", "DEFAULT_MAP")


def _option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@data_app.command("build")
def build(
    ctx: typer.Context,
    source: str = typer.Option(
        ...,
        "--source",
        help="bandai, cmu, a folder of .bvh files, a public dataset (h36m, 3dhp, 3dpw), or keypoints (your detector output, no 3D).",
    ),
    paths: Optional[list[Path]] = typer.Argument(
        None,
        metavar="PATH...",
        help="3dhp / 3dpw: the dataset's root folder (or --path); keypoints: detector files or folders.",
        show_default=False,
    ),
    path_option: Optional[Path] = typer.Option(
        None, "--path", help="3dhp / 3dpw: the dataset's root folder (same as the positional PATH)."
    ),
    h36m_3d: Optional[Path] = typer.Option(None, "--h36m-3d", help="h36m: VideoPose3D's data_3d_h36m.npz."),
    h36m_2d: Optional[Path] = typer.Option(
        None, "--h36m-2d", help="h36m: VideoPose3D's data_2d_h36m_gt.npz (ground-truth 2D)."
    ),
    h36m_detections: Optional[Path] = typer.Option(
        None,
        "--h36m-detections",
        help="h36m: detected 2D, e.g. data_2d_h36m_cpn_ft_h36m_dbb.npz (default: copy of the ground truth).",
    ),
    train_stride: Optional[int] = typer.Option(
        None, "--train-stride", help="h36m/3dhp/3dpw: every N-th training frame (default h36m 1, 3dhp 10, 3dpw 1)."
    ),
    test_stride: Optional[int] = typer.Option(
        None, "--test-stride", help="3dhp/3dpw: every N-th test frame (default 1; h36m's test protocol is every 64th)."
    ),
    mapping: Optional[str] = typer.Option(
        None, "--mapping", help="Mocap: joint mapping, a built-in name or a JSON file (default: detect)."
    ),
    seed: int = typer.Option(0, "--seed", help="Mocap: seed of the cameras and detection noise."),
    elevation_mean: float = typer.Option(
        _CAMERAS.elevation_mean_deg,
        "--elevation-mean",
        help="Mocap: mean camera elevation, degrees (looking down positive).",
    ),
    elevation_std: float = typer.Option(
        _CAMERAS.elevation_std_deg,
        "--elevation-std",
        help="Mocap: standard deviation of the camera elevation, degrees.",
    ),
    distance: float = typer.Option(
        _CAMERAS.distance, "--distance", help="Mocap: camera distance in metres (plus each window's pelvis excursion)."
    ),
    focal: float = typer.Option(_CAMERAS.focal, "--focal", help="Mocap: focal length, pixels (1000x1000 images)."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Cache folder to write (default: cache/SOURCE); replaced only on success."
    ),
    data_root: Path = typer.Option(
        Path("../shared/data"), "--data-root", help="Mocap: folder holding bandai/ and cmu/."
    ),
    limit_clips: Optional[int] = typer.Option(
        None, "--limit-clips", help="Mocap: use only this many clips (a fixed subset)."
    ),
    workers: int = typer.Option(2, "--workers", help="Mocap: processes loading clips (1: none)."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an --out folder that holds something other than an elepose cache."
    ),
    min_score: float = typer.Option(
        _SELECTION.min_score, "--min-score", help="keypoints: joints scoring below this are missing."
    ),
    missing: str = typer.Option(
        _SELECTION.missing,
        "--missing",
        help="keypoints: drop people with a missing joint, or fill them (from a PCA of the complete ones).",
    ),
    min_visible: int = typer.Option(
        _SELECTION.min_visible,
        "--min-visible",
        help="keypoints with --missing fill: a training pose needs this many joints present.",
    ),
    stride: int = typer.Option(_SELECTION.stride, "--stride", help="keypoints: use every N-th frame."),
    min_motion: float = typer.Option(
        _SELECTION.min_motion,
        "--min-motion",
        help="keypoints: drop a pose that moved less than this share of its pelvis-head length.",
    ),
    keypoint_format: Optional[str] = typer.Option(
        None, "--format", help="keypoints: the detector format (default: read from each file's content)."
    ),
    bone_ratios: str = typer.Option(
        _SELECTION.bone_ratios,
        "--bone-ratios",
        help="keypoints: 2d (every bone measured on the training 2D) or h36m (H36M limbs).",
    ),
    group_by: Optional[str] = typer.Option(
        None,
        "--group-by",
        help="keypoints: a regular expression naming each file's clip for the split (default: camera tags dropped).",
    ),
) -> None:
    """Build a cache (train.npz, test.npz, manifest.json) from motion capture or a public dataset.

    Motion capture -> 17 joints -> virtual cameras -> 2D (--source bandai|cmu|FOLDER);
    Human3.6M from VideoPose3D's files (--source h36m --h36m-3d F --h36m-2d F);
    MPI-INF-3DHP and 3DPW from their download folders (--source 3dhp ROOT, --source 3dpw ROOT).
    """
    from elepose.data.public import PUBLIC_SOURCES

    path = paths[0] if paths and len(paths) == 1 else None
    with user_errors():
        if source == "keypoints":
            _build_keypoints(
                ctx, list(paths or []) + ([path_option] if path_option else []), out, overwrite,
                KeypointCacheOptions(
                    min_score=min_score, min_visible=min_visible, stride=stride, min_motion=min_motion, missing=missing,
                    bone_ratios=bone_ratios, group_by=group_by,
                ),
                keypoint_format,
            )  # fmt: skip
            return
        only_keypoints = [
            _option_flag(n)
            for n in ("min_score", "min_visible", "stride", "min_motion", "missing", "bone_ratios", "group_by")
            if _given(ctx, n)
        ]
        if only_keypoints or keypoint_format is not None:
            raise InputError(f"{', '.join(only_keypoints) or '--format'}: only for --source keypoints")
        if paths and len(paths) > 1:
            raise InputError(f"PATH: {len(paths)} paths given; --source {source} takes one dataset folder")
        if source in PUBLIC_SOURCES:
            _build_public(ctx, source, path, path_option, out, overwrite, (h36m_3d, h36m_2d, h36m_detections),
                          (train_stride, test_stride))  # fmt: skip
            return
        misplaced = [_option_flag(n) for n in (*_H36M_ONLY, "train_stride", "test_stride") if _given(ctx, n)]
        if path is not None or path_option is not None:
            misplaced.append("PATH/--path")
        if misplaced:
            raise InputError(
                f"{', '.join(misplaced)}: only for --source {'|'.join(PUBLIC_SOURCES)}; a folder of .bvh files goes in --source"
            )
        _build_mocap(
            source,
            mapping,
            seed,
            elevation_mean,
            elevation_std,
            distance,
            focal,
            out,
            data_root,
            limit_clips,
            workers,
            overwrite,
        )


def _build_public(
    ctx: typer.Context, source: str, path: Optional[Path], path_option: Optional[Path], out: Optional[Path],
    overwrite: bool, h36m: tuple[Optional[Path], Optional[Path], Optional[Path]],
    strides: tuple[Optional[int], Optional[int]],
) -> None:  # fmt: skip
    """``data build --source h36m|3dhp|3dpw``: check the options, claim the folder, build the cache."""
    from elepose.data.public import DATASET_NAMES, build_public_cache

    h36m_3d, h36m_2d, h36m_detections = h36m
    train_stride, test_stride = strides
    misplaced = [_option_flag(n) for n in _MOCAP_ONLY if _given(ctx, n)]
    if misplaced:
        raise InputError(
            f"{', '.join(misplaced)}: only for motion-capture sources (bandai, cmu, a .bvh folder), not --source {source}"
        )
    root = _dataset_root(source, path, path_option)
    if source != "h36m" and any(_given(ctx, n) for n in _H36M_ONLY):
        raise InputError(f"--h36m-3d/--h36m-2d/--h36m-detections: only for --source h36m, not --source {source}")
    if source == "h36m" and test_stride is not None:
        raise InputError("--test-stride: Human3.6M's test protocol is fixed (frames 0, 64, 128, ... of S9 and S11)")
    if source == "h36m" and (h36m_3d is None or h36m_2d is None):
        raise InputError("--source h36m needs --h36m-3d data_3d_h36m.npz and --h36m-2d data_2d_h36m_gt.npz")
    for name, value in (("--train-stride", train_stride), ("--test-stride", test_stride)):
        if value is not None and value < 1:
            raise InputError(f"{name}: expected a positive number of frames, got {value}")
    target = out if out is not None else Path("cache") / source
    inputs = [p for p in (root, h36m_3d, h36m_2d, h36m_detections) if p is not None]
    claim_folder(target, "cache", overwrite, inputs)
    started = time.perf_counter()
    typer.echo(f"reading {DATASET_NAMES[source]} ...", err=True)
    manifest = build_public_cache(
        source,
        target,
        root=root,
        h36m_3d=h36m_3d,
        h36m_2d=h36m_2d,
        h36m_detections=h36m_detections,
        train_stride=train_stride,
        test_stride=test_stride,
    )
    typer.echo(format_counts(manifest))
    typer.echo(f"wrote {target} in {time.perf_counter() - started:.1f} s")


def _build_keypoints(
    ctx: typer.Context,
    paths: list[Path],
    out: Optional[Path],
    overwrite: bool,
    options: Any,
    keypoint_format: Optional[str],
) -> None:
    """``--source keypoints PATH...``: a 2D-only cache from detector output (no 3D anywhere)."""
    from tqdm import tqdm

    from elepose.data.keypoint_cache import build_keypoint_cache

    misplaced = [_option_flag(n) for n in (*_MOCAP_ONLY, *_H36M_ONLY, "train_stride", "test_stride") if _given(ctx, n)]
    if misplaced:
        raise InputError(f"{', '.join(misplaced)}: not for --source keypoints")
    if not paths:
        raise InputError(
            "--source keypoints needs detector files or folders: elepose data build --source keypoints PATH..."
        )
    target = out if out is not None else Path("cache") / "keypoints"
    claim_folder(target, "cache", overwrite, paths)
    started = time.perf_counter()
    manifest = build_keypoint_cache(
        paths,
        target,
        options,
        format=keypoint_format,
        progress=lambda items, total: tqdm(
            items, total=total, desc="files", unit="file", disable=True if total < 2 else None
        ),
        warn=lambda message: typer.echo(f"warning: {message}", err=True),
    )
    for note in manifest["sources"][0]["notes"]:
        typer.echo(f"note: {note}", err=True)
    typer.echo(format_counts(manifest))
    typer.echo(f"keypoints: {manifest['keypoint_definition']}; split: {manifest['split_rule']}")
    typer.echo(f"wrote {target} (2D only, no 3D) in {time.perf_counter() - started:.1f} s")


def _dataset_root(source: str, path: Optional[Path], path_option: Optional[Path]) -> Optional[Path]:
    """The dataset folder of ``--source 3dhp|3dpw`` from PATH or ``--path`` (None for h36m)."""
    if path is not None and path_option is not None and path != path_option:
        raise InputError(f"PATH {path} and --path {path_option}: give the dataset folder once")
    root = path if path is not None else path_option
    if source == "h36m":
        if root is not None:
            raise InputError(
                "--source h36m reads files: give --h36m-3d FILE --h36m-2d FILE [--h36m-detections FILE], not a folder"
            )
        return None
    if root is None:
        raise InputError(
            f"--source {source} needs the dataset folder: elepose data build --source {source} ROOT (or --path ROOT)"
        )
    return root


def _build_mocap(
    source: str,
    mapping: Optional[str],
    seed: int,
    elevation_mean: float,
    elevation_std: float,
    distance: float,
    focal: float,
    out: Optional[Path],
    data_root: Path,
    limit_clips: Optional[int],
    workers: int,
    overwrite: bool,
) -> None:
    """``--source bandai|cmu|FOLDER``: the virtual-camera benchmark (SPEC section 8)."""
    from tqdm import tqdm

    from elepose.data.cameras import CameraOptions
    from elepose.data.mocap import BuildOptions, build_cache

    for flag, value, low, high in (
        ("--elevation-mean", elevation_mean, -80.0, 80.0),
        ("--elevation-std", elevation_std, 0.0, 45.0),
        ("--distance", distance, 0.5, 1000.0),
        ("--focal", focal, 10.0, 1e5),
    ):
        if not low <= value <= high:  # also refuses NaN
            raise InputError(f"{flag}: expected a number in [{low:g}, {high:g}], got {value}")
    if workers < 1 or (limit_clips is not None and limit_clips < 1):
        raise InputError("--workers and --limit-clips: expected positive numbers")
    options = BuildOptions(
        seed=seed,
        cameras=CameraOptions(
            elevation_mean_deg=elevation_mean, elevation_std_deg=elevation_std, distance=distance, focal=focal
        ),
    )
    target = out if out is not None else Path("cache") / Path(source).name
    source_folder = Path(data_root) / source if source in ("bandai", "cmu") else Path(source)
    claim_folder(target, "cache", overwrite, [source_folder])
    started = time.perf_counter()
    bars: list[tqdm] = []

    def progress(items: Any, total: int) -> Any:
        bars.append(tqdm(items, total=total, desc="clips", unit="clip", disable=None))  # off when not a terminal
        return bars[-1]

    try:
        manifest = build_cache(
            source,
            target,
            options,
            mapping=_mapping_argument(mapping),
            data_root=data_root,
            limit_clips=limit_clips,
            workers=workers,
            progress=progress,
        )
    finally:
        for bar in bars:  # end the bar's line so an error message starts on its own
            bar.close()
    typer.echo(format_counts(manifest))
    typer.echo(f"wrote {target} in {time.perf_counter() - started:.1f} s")


def format_counts(manifest: dict[str, Any]) -> str:
    """Counts per split and dataset as plain text (poses = frames x visible views)."""
    lines = [f"{'split':<6} {'dataset':<16} {'clips':>6} {'frames':>8} {'poses':>8}"]
    for split in ("train", "test"):
        counts = manifest["counts"][split]
        for dataset, c in counts["per_dataset"].items():
            lines.append(f"{split:<6} {dataset:<16} {c['clips']:>6} {c['frames']:>8} {c['poses']:>8}")
        lines.append(
            f"{split:<6} {'all':<16} {counts['clips']:>6} {counts['frames']:>8} {counts['poses']:>8}  ({counts['cameras']} cameras)"
        )
    return "\n".join(lines)


@data_app.command("summary")
def summary(cache_dir: Path = typer.Argument(..., help="A cache folder from `elepose data build`.")) -> None:
    """Print counts per split and dataset, camera elevations, the 2D scale and the bone ratios."""
    import numpy as np

    from elepose.data.cache import load_manifest, load_split
    from elepose.skeleton import BONES, JOINT_NAMES

    with user_errors():
        manifest = load_manifest(cache_dir)
        typer.echo(format_counts(manifest))
        for split_name in ("train", "test"):
            split = load_split(Path(cache_dir) / f"{split_name}.npz")
            if not split.has_3d:
                typer.echo(f"{split_name}: 2D only ({len(split)} poses; no 3D, no cameras)")
                continue
            cams, poses = split.camera_elevation, split.elevation_deg
            if len(cams):
                typer.echo(
                    f"{split_name} elevation (deg): cameras {cams.mean():.1f} +- {cams.std():.1f} "
                    f"[{cams.min():.1f}, {cams.max():.1f}]"
                    + (f", poses {poses.mean():.1f} +- {poses.std():.1f}" if len(poses) else "")
                )
        typer.echo(f"2D scale (mean pelvis-head, train GT): {manifest['scale_2d']:.2f} px")
        sets = {
            k: v["values"]
            for k, v in manifest.get("bone_ratio_sets", {}).items()
            if k != "train_split" and v.get("values")
        }
        header = "".join(f" {name:>8}" for name in sets)
        typer.echo(f"bone ratios (train 3D){' and ' + ', '.join(sets) if sets else ''}:")
        if sets:
            typer.echo(f"  {'':>14}    {'':<14} {'train':>6}{header}")
        for i, ((a, b), ratio) in enumerate(zip(BONES, np.asarray(manifest["bone_ratios"]))):
            others = "".join(f" {values[i]:>8.4f}" for values in sets.values())
            typer.echo(f"  {JOINT_NAMES[a]:>14} -> {JOINT_NAMES[b]:<14} {ratio:.4f}{others}")
        for entry in manifest.get("sources", []):
            where = (
                entry.get("metadata", {}).get("root")
                or entry.get("files")
                or entry.get("data_root")
                or entry.get("source")
            )
            typer.echo(f"source {entry.get('source')} ({entry.get('label')}): {where}")
        software = manifest.get("software", {})
        seed = f"seed {manifest['seed']}, " if "seed" in manifest else ""
        typer.echo(f"{seed}elepose {software.get('elepose')}, numpy {software.get('numpy')}")


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to ``app``."""
    app.add_typer(data_app, name="data")
