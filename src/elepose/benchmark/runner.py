"""The benchmark pipeline behind ``elepose benchmark``: build, train, evaluate, time, report.

One call of :func:`run_benchmark` runs a profile's plan (:mod:`elepose.benchmark.plan`) in a work
folder, collects the results (:mod:`elepose.benchmark.collect`) and writes ``RESULTS.md`` with
``results.json`` and ``figures/`` beside it (:mod:`elepose.benchmark.report`). A run that
finished with the same settings is not trained again and one cut short continues from its last
epoch (:func:`elepose.train.runstate.run_state`), so an interrupted benchmark resumes where it
stopped. A run that fails is reported; the runs that need it are skipped.
"""

from __future__ import annotations

import json
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from elepose.benchmark import environment, rows
from elepose.benchmark.collect import collect
from elepose.benchmark.domain import check_rows, run_domain
from elepose.benchmark.own2d import run_own2d
from elepose.benchmark.plan import Run, plan_runs, select, split_rows
from elepose.benchmark.profiles import PROFILES, Profile
from elepose.benchmark.report import write_report
from elepose.benchmark.speed_run import speed_run
from elepose.data.cache import load_manifest, load_split
from elepose.data.mocap import build_cache
from elepose.train.loop import train_flow, train_lifter
from elepose.train.runlog import read_metrics
from elepose.train.runstate import run_state

__all__ = ["run_benchmark", "train_run"]


def train_run(run: Run, log: Callable[[str], None], verbose: bool) -> None:
    """Train a flow or lifter run, unless it finished with these settings; resume one cut short."""
    state = run_state(run.out, run.config)
    if state.status == "finished" and not state.changed:
        log(f"{run.name}: finished earlier, skipped")
        return
    partial = state.status == "partial" and not state.changed
    if not partial and run.out.exists():
        shutil.rmtree(run.out)  # in the benchmark's work folder: made by an earlier benchmark
    config = replace(run.config, resume=partial)
    if run.kind == "flow":
        train_flow(config, progress=verbose)
        return
    started = time.perf_counter()

    def on_epoch_end(epoch: int, lifter: torch.nn.Module) -> None:
        metrics = read_metrics(run.out / "metrics.csv")
        row = metrics[-1] if metrics else {}
        log(
            f"  {run.name} epoch {epoch}/{config.epochs}: PA-MPJPE {row.get('pa_mpjpe', float('nan')):.1f} mm, "
            f"{row.get('samples_per_s', float('nan')):.0f} samples/s ({time.perf_counter() - started:.0f} s)"
        )

    train_lifter(config, progress=verbose, on_epoch_end=on_epoch_end)


def _train_count(cache_dir: Path) -> int:
    counts = load_manifest(cache_dir).get("counts", {}).get("train", {})
    return int(counts["poses"]) if "poses" in counts else len(load_split(cache_dir / "train.npz"))


def _ensure_cache(cache_dir: Path, provided: bool, data_root: Path, profile: Profile, say: Callable) -> None:
    if (cache_dir / "manifest.json").is_file():
        say("cache: present, skipped" if not provided else f"cache: using {cache_dir}")
        return
    if provided:
        raise FileNotFoundError(f"{cache_dir}: no manifest.json (not a cache folder)")
    build_cache("bandai", cache_dir, data_root=data_root, limit_clips=profile.limit_clips, workers=2)


def _ensure_camera_cache(run: Run, data_root: Path, profile: Profile, say: Callable[[str], None]) -> None:
    """Build section 8's cache ``run.out`` with ``run.config`` (:class:`BuildOptions`), unless one with
    those options is there; one with other options (an earlier benchmark's) is built again."""
    wanted = json.loads(json.dumps(asdict(run.config)))
    if (run.out / "manifest.json").is_file():
        if load_manifest(run.out).get("options") == wanted:
            say(f"{run.name}: present, skipped")
            return
        shutil.rmtree(run.out)  # in the benchmark's work folder: made by an earlier benchmark
    build_cache("bandai", run.out, run.config, data_root=data_root, limit_clips=profile.limit_clips, workers=2)


class _Pipeline:
    """One invocation: the plan, the status of each run so far, and the log with elapsed seconds."""

    def __init__(self, profile: Profile, work: Path, cache: Path, provided: bool, data_root: Path, device: str,
                 log: Callable[[str], None], verbose: bool) -> None:  # fmt: skip
        self.profile, self.work, self.cache, self.provided = profile, work, cache, provided
        self.data_root, self.device, self.log, self.verbose = data_root, device, log, verbose
        self.started = time.perf_counter()
        self.status: dict[str, dict[str, Any]] = {}
        self.rows: dict[str, list[str]] = {}  # per section, the only rows to run (``--only domain/ROW``)
        self.n_train = _train_count(cache) if (cache / "manifest.json").is_file() else None
        self.runs = plan_runs(profile, work, cache, device, self.n_train)

    def say(self, message: str) -> None:
        self.log(f"[{time.perf_counter() - self.started:7.1f} s] {message}")

    def execute(self, run: Run) -> None:
        """Run one step (the plan's current version of it: the cache's size sets the lr decay)."""
        if run.kind == "cache" and run.name != rows.CACHE:
            _ensure_camera_cache(run, self.data_root, self.profile, self.say)
        elif run.kind == "cache":
            _ensure_cache(self.cache, self.provided, self.data_root, self.profile, self.say)
            if self.n_train is None:  # the lr decay per short epoch depends on the training set's size
                self.n_train = _train_count(self.cache)
                self.runs = plan_runs(self.profile, self.work, self.cache, self.device, self.n_train)
        elif run.kind in ("flow", "lifter"):
            train_run({r.name: r for r in self.runs}[run.name], self.say, self.verbose)
        elif run.kind == "own2d":
            self._own2d({r.name: r for r in self.runs}[run.name])
        elif run.kind == "domain":
            self._domain({r.name: r for r in self.runs}[run.name])
        else:
            speed_run(self.profile, self.work, self.cache, self.device, self.say)

    def _own2d(self, run: Run) -> None:
        """Section 7 (:mod:`elepose.benchmark.own2d`), its runs trained like the others."""
        flow_base, lifter_base = run.config
        assert self.profile.own2d is not None
        widths = (self.profile.lifter.hidden, self.profile.flow.hidden)
        run_own2d(run.out, self.cache, flow_base, lifter_base, self.profile.own2d, self.profile.evaluation,
                  self.device, self._train, Path(self.data_root).parent, self.say, widths)  # fmt: skip

    def _train(self, kind: str, config: Any) -> None:
        """Train a section's own flow or lifter run (named by its folder) like the others."""
        name = Path(config.out).name
        train_run(Run(name, kind, name, Path(config.out), config), self.say, self.verbose)

    def _domain(self, run: Run) -> None:
        """The cross-domain section (:mod:`elepose.benchmark.domain`), from the MAIN lifter."""
        flow_base, lifter_base = run.config
        assert self.profile.domain is not None
        widths = (self.profile.lifter.hidden, self.profile.flow.hidden)
        run_domain(run.out, self.work / rows.MAIN, self.cache, Path(self.data_root), flow_base, lifter_base,
                   self.profile.domain, self.profile.evaluation, self.device, self._train, self.say, widths,
                   self.rows.get(rows.DOMAIN))  # fmt: skip

    def run_all(self, selected: list[Run]) -> None:
        """Every selected run in order; a failure is recorded and skips the runs that need it."""
        for index, run in enumerate(selected, 1):
            missing = [n for n in run.needs if self.status.get(n, {}).get("status") == "failed"]
            if missing:
                self.status[run.name] = {"status": "failed", "error": f"not run: {', '.join(missing)} failed"}
                self.status[run.name]["seconds"] = 0.0
                self.say(f"({index}/{len(selected)}) {run.name}: skipped, {', '.join(missing)} failed")
                continue
            self.say(f"({index}/{len(selected)}) {run.name}: {run.label}")
            t0 = time.perf_counter()
            try:
                self.execute(run)
                self.status[run.name] = {"status": "ok", "seconds": time.perf_counter() - t0}
            except Exception as err:  # keep going; the report lists the failure
                self.status[run.name] = {
                    "status": "failed",
                    "error": f"{type(err).__name__}: {err}",
                    "traceback": traceback.format_exc(limit=6),
                    "seconds": time.perf_counter() - t0,
                }
                self.say(f"{run.name} FAILED: {type(err).__name__}: {err}")


def run_benchmark(
    profile: Profile | str,
    work: str | Path,
    results: str | Path,
    data_root: str | Path = "../shared/data",
    device: str = "auto",
    only: list[str] | None = None,
    cache: str | Path | None = None,
    command: str = "",
    log: Callable[[str], None] = print,
    verbose: bool = False,
) -> dict[str, Any]:
    """Run (or resume) the benchmark and write ``results`` (Markdown), ``results.json`` and figures.

    ``cache``: use this ready cache folder instead of building the Bandai one under ``work``.
    ``only``: run just these runs (and what they need); the report covers every finished run. A
    name ``domain/ROW`` runs only that row of the domain section (:func:`~elepose.benchmark.plan.split_rows`).
    Returns the results dictionary; ``results["failed"]`` lists runs that failed.
    """
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise ValueError(f"--profile {profile!r}: expected one of {', '.join(PROFILES)}")
        profile = PROFILES[profile]
    work, results = Path(work), Path(results)
    cache_dir = Path(cache) if cache is not None else work / rows.CACHE
    load_start = environment.load_average()
    pipeline = _Pipeline(profile, work, cache_dir, cache is not None, Path(data_root), device, log, verbose)
    only, pipeline.rows = split_rows(only)
    selected = select(pipeline.runs, only)
    if rows.DOMAIN in pipeline.rows and profile.domain is not None:  # before anything is trained
        check_rows(profile.domain, pipeline.rows[rows.DOMAIN])
    work.mkdir(parents=True, exist_ok=True)
    pipeline.say(f"benchmark profile {profile.name}: {len(selected)} runs in {work}")
    pipeline.run_all(selected)
    pipeline.say("evaluating and writing the report")
    report = collect(profile, pipeline.runs, work, cache_dir, device, pipeline.status, pipeline.say)
    machine = environment.machine(device)
    machine.update({"load_average_start": load_start, "load_average_end": environment.load_average()})
    report.update(
        {
            "command": command,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine,
            "software": environment.software(),
            "git_commit": environment.git_commit(),
            "profile": json.loads(json.dumps(asdict(profile))),
            "work": str(work),
            "wall_seconds": time.perf_counter() - pipeline.started,
            "runs": pipeline.status,
            "failed": [name for name, s in pipeline.status.items() if s["status"] == "failed"],
        }
    )
    write_report(report, results)
    failed = f"; FAILED: {', '.join(report['failed'])}" if report["failed"] else ""
    pipeline.say(f"wrote {results} and {results.parent / 'results.json'}{failed}")
    return report
