"""The report's head: command, date, machine and load, software, the profile's settings,
failures and the target table."""

from __future__ import annotations

from typing import Any

from elepose.benchmark.report.tables import table
from elepose.benchmark.targets import target

__all__ = ["render_header", "render_targets", "busy"]


def busy(machine: dict[str, Any]) -> bool:
    """Whether other work shared the CPU: a 1- or 5-minute load above the cores (plus a half)."""
    loads = [v for key in ("load_average_start", "load_average_end") for v in (machine.get(key) or [])[:2]]
    return bool(loads) and max(loads) > (machine.get("cores") or 1) + 0.5


def _settings(profile: dict[str, Any], prefix: str = "") -> list[list[str]]:
    """One row per setting of the profile, a section's budget as ``section.setting``."""
    cells = []
    for key, value in profile.items():
        if isinstance(value, dict):
            cells += _settings(value, f"{prefix}{key}.")
        else:
            cells.append([prefix + key, f"`{value}`"])
    return cells


def _merged_line(m: dict[str, Any]) -> str:
    """Where a section merged from a later invocation came from (:mod:`elepose.benchmark.report.merge`)."""
    wall = "?" if m.get("wall_seconds") is None else f"{m['wall_seconds'] / 60:.1f}"
    what = ", ".join(f"`{s}`" for s in m["sections"])
    if m.get("rows"):
        what += f" (rows {', '.join(f'`{r}`' for r in m['rows'])})"
    return (
        f"- Section(s) {what} re-run and merged into this report: "
        f"`{m['command']}` on {m['date']}, git commit {m['git_commit'] or 'unknown'}, wall time {wall} min, "
        f"load average at start {m.get('load_average_start')}, at end {m.get('load_average_end')}"
    )


def render_header(r: dict[str, Any]) -> list[str]:
    """Title, the run's facts, the profile settings and any failures."""
    machine, software, profile = r["machine"], r["software"], r["profile"]
    note = ": other processes shared the CPU, so every timing here is slower than on an idle machine"
    lines = [
        f"# ElePose benchmark: profile `{profile['name']}`",
        "",
        f"- Command: `{r['command']}`",
        f"- Date: {r['date']}; wall time {r['wall_seconds'] / 60:.1f} min (this invocation; finished runs are reused)",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores (torch threads {machine['torch_threads']}), "
        f"GPU: {machine['gpu'] or 'none'}; device `{machine['device']}`",
        f"- Load average (1/5/15 min) at start {machine.get('load_average_start')}, at end "
        f"{machine.get('load_average_end')} on {machine['cores']} cores" + (note if busy(machine) else ""),
        f"- Lifter training time, all runs: {r.get('lifter_training_minutes', 0.0):.1f} min (training steps only)",
        f"- Software: Python {software['python']}, torch {software['torch']}, numpy {software['numpy']}, "
        f"elepose {software['elepose']}",
        f"- Git commit: {r['git_commit'] or 'unknown'}",
        f"- Work folder: `{r['work']}`",
        *[_merged_line(m) for m in r.get("merged", [])],
        "",
        "### Profile settings",
        "",
    ]
    lines += table(["setting", "value"], _settings(profile))
    if r["failed"]:
        lines += ["## Failures", ""]
        lines += [f"- `{name}`: {r['runs'][name].get('error', '')}" for name in r["failed"]]
        lines.append("")
    return lines


def render_targets(r: dict[str, Any]) -> list[str]:
    """The target table: each target's text, the measured value, whether it is met, where it comes from."""
    targets = r.get("summary", {}).get("targets", [])
    cells = [[t["target"], t["measured"], "yes" if t["met"] else "**no**", target(t["key"]).source] for t in targets]
    return ["## Targets", ""] + table(
        ["target", "measured", "met", "from"], cells, empty="(no targets could be evaluated)"
    )
