"""A section re-run folded into an earlier report (``elepose benchmark --render-only BASE --merge NEW``).

A section such as 7 ("Train on your own 2D") can be re-run alone with ``--only own2d`` on a work
folder that still holds the cache and the main lifter; the report that invocation writes covers
only the runs that folder holds. :func:`merge_sections` takes the sections that invocation ran
from its ``results.json`` into the full report's, keeps every other section as it was, and
records where each merged section came from (command, date, commit, wall time, load), which the
report's head prints. A domain section re-run for some of its rows (``--only domain/ROW``, its
``rows_only``) replaces just those rows, and only when its references (the transferred lifter)
score as in the base: the same source lifter.
"""

from __future__ import annotations

import copy
from typing import Any

from elepose.benchmark import rows
from elepose.benchmark.targets import evaluate_targets
from elepose.errors import InputError

__all__ = ["MERGEABLE", "merge_sections"]

# results.json key -> the run that writes it. Speed is not here: its numbers feed the summary's
# bf16 figures and belong with the lifter runs they were measured beside.
MERGEABLE = {"own2d": rows.OWN2D, "domain": rows.DOMAIN}


def merge_sections(base: dict[str, Any], update: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``base`` with each section ``update``'s invocation ran and finished taken from ``update``.

    Both are ``results.json`` dictionaries of one profile. Returns the merged dictionary (``base``
    is not changed) and the section keys taken. The targets are evaluated again on the merged
    numbers; ``merged["merged"]`` lists the provenance of every merged section, the latest merge
    of a section replacing an earlier one. Raises InputError (``field: expected ...``, about
    ``update``) for another profile, when ``update`` finished none of :data:`MERGEABLE`, or for
    rows re-run on another source lifter.
    """
    names = [r.get("profile", {}).get("name") for r in (base, update)]
    if names[0] != names[1]:
        raise InputError(f"profile: expected {names[0]!r} as in the base report, got {names[1]!r}")
    runs = update.get("runs", {})
    taken = [key for key, run in MERGEABLE.items() if key in update and runs.get(run, {}).get("status") == "ok"]
    if not taken:
        raise InputError(f"runs: expected a finished {' or '.join(MERGEABLE.values())} run to merge, found none")
    merged = copy.deepcopy(base)
    rows_taken: list[str] = []
    for key in taken:
        if update[key].get("rows_only"):
            rows_taken += _merge_rows(merged, update, key)
            continue
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
        **({"rows": rows_taken} if rows_taken else {}),
        "load_average_start": machine.get("load_average_start"),
        "load_average_end": machine.get("load_average_end"),
    }
    earlier = [m for m in merged.get("merged", []) if not _superseded(m, taken, rows_taken)]
    merged["merged"] = [*earlier, provenance]
    return merged, taken


# The rows a row re-run must reproduce to the digit (PA-MPJPE mm, detected and GT 2D).
_REFERENCES = ("transfer", "transfer_on_coco")


def _merge_rows(merged: dict[str, Any], update: dict[str, Any], key: str) -> list[str]:
    """Put the rows ``update[key]`` re-ran into ``merged[key]`` (changed in place); their names."""
    if key not in merged:
        raise InputError(f"{key}: expected the section in the base report to merge rows into, found none")
    section, later = merged[key], update[key]
    for name in _REFERENCES:
        for split in ("detected", "gt"):
            ours, theirs = (round(s["lifters"][name][split]["pa_mpjpe"], 1) for s in (section, later))
            if ours != theirs:
                raise InputError(
                    f"{key}: {name}: expected {split} PA-MPJPE {ours} mm as in the base report, got {theirs} "
                    "(another source lifter: re-run the whole section)"
                )
    for name in later["rows_only"]:
        section["lifters"][name] = copy.deepcopy(later["lifters"][name])
    section.setdefault("variants", {}).update(later.get("variants", {}))
    section.update({k: copy.deepcopy(v) for k, v in later.items() if k not in section and k != "rows_only"})
    return list(later["rows_only"])


def _superseded(earlier: dict[str, Any], sections: list[str], rows_taken: list[str]) -> bool:
    """Whether a merge's provenance ``earlier`` is replaced by this merge of ``sections`` (rows ``rows_taken``)."""
    if not set(earlier["sections"]) <= set(sections):
        return False
    if not rows_taken:
        return True
    return bool(earlier.get("rows")) and set(earlier["rows"]) <= set(rows_taken)
