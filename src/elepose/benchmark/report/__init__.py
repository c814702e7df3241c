"""The benchmark report: ``RESULTS.md`` rendered from ``results.json`` alone, each section by its own module."""

from __future__ import annotations

from elepose.benchmark.report.render import FIGURES, render_markdown, render_only, write_report

__all__ = ["render_markdown", "write_report", "render_only", "FIGURES"]
