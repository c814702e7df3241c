"""``elepose benchmark``: the whole pipeline on the Bandai benchmark, one report."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from elepose.cli.errors import user_errors
from elepose.errors import InputError


def benchmark(
    profile: str = typer.Option(
        "quick",
        "--profile",
        help="quick (40-55 min on 2 CPU cores, see the README), long (the elevation branch's learning curves at "
        "the paper's width, other camera distributions and the options, 90 min measured), domain (fit on CMU from the "
        "quick profile's lifter: section 10) or full (the paper's schedules; for a GPU).",
    ),
    data_root: Path = typer.Option(
        Path("../shared/data"), "--data-root", help="Folder holding bandai/ (and cmu/ for --profile domain)."
    ),
    work: Optional[Path] = typer.Option(
        None, "--work", help="Run folder (default runs/benchmark-PROFILE); finished runs there are reused."
    ),
    results: Optional[Path] = typer.Option(
        None,
        "--results",
        help="Report to write (default benchmarks/RESULTS.md for quick, benchmarks/PROFILE/RESULTS.md for the "
        "others); results.json and figures/ go beside it.",
    ),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda"),
    only: Optional[str] = typer.Option(
        None, "--only", help="Comma-separated run names (plus what they need), e.g. elepose,supervised."
    ),
    verbose: bool = typer.Option(False, "--verbose", help="Show the training loops' progress bars."),
    render_only: Optional[Path] = typer.Option(
        None,
        "--render-only",
        metavar="RESULTS_JSON",
        help="Train nothing: rewrite RESULTS.md beside RESULTS_JSON (or --results) from it alone.",
    ),
    merge: Optional[Path] = typer.Option(
        None,
        "--merge",
        metavar="LATER_RESULTS_JSON",
        help="With --render-only: take the sections (own2d, domain) that a later --only invocation re-ran from its "
        "results.json into RESULTS_JSON, which is rewritten with them and says where they came from.",
    ),
) -> None:
    """Build the cache, train every row of the paper's tables, evaluate, time, and write RESULTS.md."""
    from elepose.benchmark.profiles import PROFILES
    from elepose.benchmark.runner import run_benchmark
    from elepose.runtime import pick_device

    if render_only is not None:
        _render_only(render_only, results, merge)
        return
    if merge is not None:
        with user_errors():
            raise InputError("--merge: expected --render-only RESULTS_JSON (the report to merge into)")
    with user_errors():
        if profile not in PROFILES:
            raise ValueError(f"--profile {profile!r}: expected one of {', '.join(PROFILES)}")
        if results is None:
            results = Path("benchmarks") / ("RESULTS.md" if profile == "quick" else f"{profile}/RESULTS.md")
        pick_device(device)
        names = [n.strip() for n in only.split(",") if n.strip()] if only else None
        report = run_benchmark(
            profile,
            work if work is not None else Path("runs") / f"benchmark-{profile}",
            results,
            data_root=data_root,
            device=device,
            only=names,
            command=shlex.join(["elepose", *sys.argv[1:]]),
            log=lambda message: typer.echo(message, err=True),
            verbose=verbose,
        )
    if report["failed"]:
        typer.echo(
            f"error: {len(report['failed'])} run(s) failed: {', '.join(report['failed'])} (see {results})", err=True
        )
        raise typer.Exit(code=1)


def _render_only(results_json: Path, results: Optional[Path], merge: Optional[Path]) -> None:
    """``--render-only``: RESULTS.md from a results.json (and a later one's re-run sections), nothing trained."""
    from elepose.benchmark.report import render_only

    with user_errors():
        for path in (results_json, merge):
            if path is not None and not path.is_file():
                raise InputError(f"{path}: no such file; expected a results.json written by elepose benchmark")
        try:
            written = render_only(results_json, results, merge)
        except InputError:
            raise  # already one line about the file it names
        except (ValueError, KeyError, TypeError) as err:
            named = results_json if merge is None else f"{results_json}, {merge}"
            raise InputError(f"{named}: expected results.json files written by elepose benchmark ({err})") from None
    typer.echo(f"wrote {written}")


def register(app: typer.Typer) -> None:
    """Add ``elepose benchmark`` to ``app``."""
    app.command("benchmark")(benchmark)
