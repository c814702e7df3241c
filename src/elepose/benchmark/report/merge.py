"""A section re-run folded into an earlier report (``elepose benchmark --render-only BASE --merge NEW``).

A section such as 7 ("Train on your own 2D") can be re-run alone with ``--only own2d`` on a work
folder that still holds the cache and the main lifter; the report that invocation writes covers
only the runs that folder holds. :func:`merge_sections` takes the sections that invocation ran
from its ``results.json`` into the full report's, keeps every other section as it was, and
records where each merged section came from (command, date, commit, wall time, load), which the
report's head prints.
"""

from __future__ import annotations

import copy
from typing import Any

from elepose.benchmark import rows
from elepose.benchmark.targets import evaluate_targets

__all__ = ["MERGEABLE", "merge_sections"]

# results.json key -> the run that writes it. Speed is not here: its numbers feed the summary's
# bf16 figures and belong with the lifter runs they were measured beside.
MERGEABLE = {"own2d": rows.OWN2D, "domain": rows.DOMAIN}


def merge_sections(base: dict[str, Any], update: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``base`` with each section ``update``'s invocation ran and finished taken from ``update``.

    Both are ``results.json`` dictionaries of one profile. Returns the merged dictionary (``base``
    is not changed) and the section keys taken. The targets are evaluated again on the merged
    numbers; ``merged["merged"]`` lists the provenance of every merged section, the latest merge
    of a section replacing an earlier one. Raises ValueError for another profile or when
    ``update`` finished none of :data:`MERGEABLE`.
    """
    names = [r.get("profile", {}).get("name") for r in (base, update)]
    if names[0] != names[1]:
        raise ValueError(f"profile: expected {names[0]!r} as in the base report, got {names[1]!r}")
    runs = update.get("runs", {})
    taken = [key for key, run in MERGEABLE.items() if key in update and runs.get(run, {}).get("status") == "ok"]
    if not taken:
        raise ValueError(f"runs: expected a finished {' or '.join(MERGEABLE.values())} run to merge, found none")
    merged = copy.deepcopy(base)
    for key in taken:
        merged[key] = copy.deepcopy(update[key])
        if key in update.get("profile", {}):
            merged["profile"][key] = copy.deepcopy(update["profile"][key])
    merged.setdefault("summary", {})["targets"] = evaluate_targets(merged)
    machine = update.get("machine", {})
    provenance = {
        "sections": taken,
        "command": update.get("command", ""),
        "date": update.get("date"),
        "git_commit": update.get("git_commit"),
        "wall_seconds": update.get("wall_seconds"),
        "load_average_start": machine.get("load_average_start"),
        "load_average_end": machine.get("load_average_end"),
    }
    earlier = [m for m in merged.get("merged", []) if not set(m["sections"]) <= set(taken)]
    merged["merged"] = [*earlier, provenance]
    return merged, taken
