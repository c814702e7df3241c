"""``elepose data build`` and ``elepose data summary``: the benchmark cache (SPEC section 8)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer

from elepose.cli.errors import InputError, user_errors

data_app = typer.Typer(help="Build and inspect the benchmark cache.", no_args_is_help=True, add_completion=False)


def _mapping_argument(mapping: Optional[str]) -> Any:
    """``--mapping``: a built-in skeleton name or a JSON mapping file."""
    if mapping is None:
        return None
    if Path(mapping).is_file():
        return Path(mapping)
    from elepose.data.mocap_mapping import BUILTIN_MAPPINGS

    if mapping in BUILTIN_MAPPINGS:
        return mapping
    raise InputError(f"--mapping {mapping}: expected a JSON mapping file or one of {', '.join(sorted(BUILTIN_MAPPINGS))}")


@data_app.command("build")
def build(
    source: str = typer.Option(..., "--source", help="bandai, cmu, or a folder of .bvh files."),
    mapping: Optional[str] = typer.Option(None, "--mapping", help="Joint mapping: a built-in name or a JSON file (default: detect)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the cameras and detection noise."),
    elevation_mean: float = typer.Option(12.0, "--elevation-mean", help="Mean camera elevation, degrees (looking down positive)."),
    elevation_std: float = typer.Option(6.0, "--elevation-std", help="Standard deviation of the camera elevation, degrees."),
    distance: float = typer.Option(5.0, "--distance", help="Camera distance in metres (plus each window's pelvis excursion)."),
    focal: float = typer.Option(1150.0, "--focal", help="Focal length, pixels (1000x1000 images)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Cache folder to write (default: cache/SOURCE); replaced only on success."),
    data_root: Path = typer.Option(Path("../shared/data"), "--data-root", help="Folder holding bandai/ and cmu/."),
    limit_clips: Optional[int] = typer.Option(None, "--limit-clips", help="Use only this many clips (a fixed subset)."),
    workers: int = typer.Option(2, "--workers", help="Processes loading clips (1: none)."),
) -> None:
    """Motion capture -> 17 joints -> virtual cameras -> 2D; writes train.npz, test.npz, manifest.json."""
    from tqdm import tqdm

    from elepose.data.benchmark import BuildOptions, build_cache
    from elepose.data.cameras import CameraOptions

    with user_errors():
        if elevation_std < 0 or distance <= 0 or focal <= 0:
            raise InputError("--elevation-std must be >= 0, --distance and --focal > 0")
        options = BuildOptions(
            seed=seed,
            cameras=CameraOptions(elevation_mean_deg=elevation_mean, elevation_std_deg=elevation_std, distance=distance, focal=focal),
        )
        target = out if out is not None else Path("cache") / Path(source).name
        started = time.perf_counter()
        bars: list[tqdm] = []

        def progress(items: Any, total: int) -> Any:
            bars.append(tqdm(items, total=total, desc="clips", unit="clip"))
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
        lines.append(f"{split:<6} {'all':<16} {counts['clips']:>6} {counts['frames']:>8} {counts['poses']:>8}  ({counts['cameras']} cameras)")
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
            cams, poses = split.camera_elevation, split.elevation_deg
            if len(cams):
                typer.echo(
                    f"{split_name} elevation (deg): cameras {cams.mean():.1f} +- {cams.std():.1f} "
                    f"[{cams.min():.1f}, {cams.max():.1f}]"
                    + (f", poses {poses.mean():.1f} +- {poses.std():.1f}" if len(poses) else "")
                )
        typer.echo(f"2D scale (mean pelvis-head, train GT): {manifest['scale_2d']:.2f} px")
        typer.echo("bone ratios (train 3D):")
        for (a, b), ratio in zip(BONES, np.asarray(manifest["bone_ratios"])):
            typer.echo(f"  {JOINT_NAMES[a]:>14} -> {JOINT_NAMES[b]:<14} {ratio:.4f}")
        software = manifest.get("software", {})
        typer.echo(f"seed {manifest.get('seed')}, elepose {software.get('elepose')}, numpy {software.get('numpy')}")


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to ``app``."""
    app.add_typer(data_app, name="data")
