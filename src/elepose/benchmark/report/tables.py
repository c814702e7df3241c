"""The one table helper of the report, number formatting, and the metric columns."""

from __future__ import annotations

import math
from typing import Any

from elepose.metrics import METRIC_COLUMNS

__all__ = ["fmt", "table", "section", "METRIC_COLUMNS", "metric_cells", "distill_default_note"]


def fmt(value: Any, digits: int = 1) -> str:
    """``value`` with ``digits`` decimals; ``-`` for None and non-finite numbers."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def table(header: list[str], rows: list[list[str]], empty: str | None = None) -> list[str]:
    """A Markdown table, one line per row, and a blank line after it; ``empty`` instead when there are no rows."""
    if not rows and empty is not None:
        return [empty, ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]


def section(title: str, *paragraphs: str) -> list[str]:
    """A section heading and its paragraphs, each followed by a blank line."""
    lines = [title, ""]
    for paragraph in paragraphs:
        lines += [paragraph, ""]
    return lines


def metric_cells(values: dict[str, float]) -> list[str]:
    """The cells of :data:`METRIC_COLUMNS` for one protocol's scores."""
    return [fmt(values[key]) for key, _ in METRIC_COLUMNS]


def distill_default_note(auto_below: int, cache: str, row: str) -> list[str]:
    """The paragraph saying that under ``auto_below`` training poses the plain ``--init`` rows ran with
    ``--distill off`` (``fit --init`` distils by default there: ``cache`` names the start's training
    cache) and that the ``row`` row is what ``fit --init`` gives."""
    return [
        f"Under {auto_below:,} training poses `fit --init` distils by default (`--distill auto`: the start's "
        f"lifts of its own training cache{cache} are kept), so there a plain `--init` row ran with "
        f"`--distill off` and the {row} row is what `fit --init` gives.",
        "",
    ]
