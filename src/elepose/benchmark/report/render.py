"""The benchmark report: ``RESULTS.md`` rendered from the collected results (what ``results.json``
holds) alone, in a stable order, each section by its own module over one table helper.

:func:`write_report` writes ``results.json``, the figures and ``RESULTS.md``;
:func:`render_only` rewrites ``RESULTS.md`` from a ``results.json``, byte for byte what
:func:`write_report` wrote from the same results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from elepose.atomic import atomic_write, json_text
from elepose.benchmark.report.accuracy import render_accuracy
from elepose.benchmark.report.cameras import render_cameras, render_options
from elepose.benchmark.report.domain import render_domain
from elepose.benchmark.report.elevation import render_elevation
from elepose.benchmark.report.figures import draw_figures
from elepose.benchmark.report.header import render_header, render_targets
from elepose.benchmark.report.merge import merge_sections
from elepose.benchmark.report.own2d import render_own2d
from elepose.benchmark.report.pca_reliability import render_pca, render_reliability
from elepose.benchmark.report.seeds_timing import render_seeds, render_time_to_accuracy
from elepose.benchmark.report.speed import render_speed
from elepose.errors import InputError

__all__ = ["render_markdown", "write_report", "render_only", "FIGURES"]

FIGURES = "figures"
"""The figures' folder, beside ``RESULTS.md``."""


def render_markdown(r: dict[str, Any]) -> str:
    """RESULTS.md from the results dictionary (every number printed here is in results.json)."""
    lines = render_header(r) + render_targets(r) + render_accuracy(r)
    lines += render_pca(r, FIGURES) + render_reliability(r, FIGURES) + render_elevation(r, FIGURES)
    lines += render_speed(r) + render_seeds(r) + render_own2d(r.get("own2d"))
    lines += render_cameras(r) + render_options(r) + render_domain(r.get("domain"))
    lines += render_time_to_accuracy(r, FIGURES)
    return "\n".join(lines).rstrip("\n") + "\n"


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_report(report: dict[str, Any], results: Path) -> None:
    """Write ``results`` (Markdown), ``results.json`` and ``figures/`` beside it, each atomically.

    The Markdown is rendered from the JSON text itself, so :func:`render_only` gives the same bytes."""
    results.parent.mkdir(parents=True, exist_ok=True)
    try:
        draw_figures(report, results.parent / FIGURES)
    except Exception as err:  # a figure must not cost the tables
        report.setdefault("figure_errors", []).append(f"{type(err).__name__}: {err}")
    text = json_text(report, sort_keys=False)
    _write_text(results.parent / "results.json", text)
    _write_text(results, render_markdown(json.loads(text)))


def render_only(results_json: Path, results: Path | None = None, merge: Path | None = None) -> Path:
    """Rewrite ``RESULTS.md`` beside ``results_json`` (or ``results``) from it; returns the path written.

    ``merge``: a later invocation's ``results.json`` whose re-run sections replace those of
    ``results_json`` (:func:`elepose.benchmark.report.merge.merge_sections`); the merged
    ``results.json`` is written beside the report, replacing ``results_json`` when it is there.
    """
    report = json.loads(Path(results_json).read_text(encoding="utf-8"))
    out = results if results is not None else Path(results_json).parent / "RESULTS.md"
    if merge is not None:
        merged_json = out.parent / "results.json"
        if merged_json.exists() and merged_json.resolve() != Path(results_json).resolve():
            raise InputError(f"{merged_json}: exists and is not the base report; expected --results beside it")
        try:
            report, _ = merge_sections(report, json.loads(Path(merge).read_text(encoding="utf-8")))
        except InputError as err:
            raise InputError(f"{merge}: {err}") from None
        text = render_markdown(report)
        _write_text(merged_json, json_text(report, sort_keys=False))
        _write_text(out, text)
        return out
    _write_text(out, render_markdown(report))
    return out
