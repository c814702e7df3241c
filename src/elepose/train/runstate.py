"""One home for a run folder's state: is it fresh, partial or finished, and which of its settings
differ from the ones asked for now.

``train --resume``, ``fit`` and the benchmark all ask :func:`run_state`; the settings a rerun may
change without changing what the run trains are :data:`RERUN_MAY_CHANGE`, and the ones that only
say how this invocation writes (never taken from the run) are :data:`INVOCATION_ONLY`. A run's
settings are its ``run.json``; its progress is its ``config.json``, read as a typed record
(:func:`elepose.models.io.load_record`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from elepose.models.io import CheckpointError, load_config, load_record

__all__ = [
    "INVOCATION_ONLY",
    "RERUN_MAY_CHANGE",
    "RunState",
    "recorded_settings",
    "changed_settings",
    "run_state",
    "resumed_config",
]

INVOCATION_ONLY = ("out", "resume", "overwrite")
"""Settings of how one invocation writes, never taken from the run on ``--resume``."""

RERUN_MAY_CHANGE = (*INVOCATION_ONLY, "epochs", "max_minutes", "device", "keep")
"""Settings a rerun or resume may change: a longer or time-limited schedule, another device,
which epoch ``fit`` points lift at. Any other difference is another run."""


@dataclass(frozen=True)
class RunState:
    """``status``: ``fresh`` (nothing to keep), ``partial`` (epochs done, resumable) or ``finished``;
    ``epoch``: epochs the folder holds; ``changed``: setting -> (the run's, the asked) for every
    setting outside :data:`RERUN_MAY_CHANGE` that differs."""

    status: str
    epoch: int = 0
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def _json_values(config: Any) -> dict[str, Any]:
    """A settings dataclass as the JSON values ``run.json`` holds (tuples as lists)."""
    return json.loads(json.dumps(asdict(config)))


def recorded_settings(folder: str | Path) -> dict[str, Any] | None:
    """The settings in ``folder/run.json``, or None when there is none that this elepose reads."""
    try:
        return load_config(Path(folder) / "run.json")
    except (CheckpointError, OSError):
        return None


def changed_settings(
    recorded: dict[str, Any], config: Any, may_change: Iterable[str] = RERUN_MAY_CHANGE
) -> dict[str, tuple[Any, Any]]:
    """Settings of ``config`` (a settings dataclass) that differ from ``recorded`` -> (recorded, asked).

    A setting added to elepose after the run was made is absent from its ``run.json``: the run
    had that setting's default, or, where the default has changed since, what the config class's
    ``ABSENT_MEANS`` (a dict, if it has one) says it meant."""
    allowed = set(may_change)
    defaults = {f.name: f.default for f in fields(config) if f.default is not MISSING}
    defaults.update(getattr(type(config), "ABSENT_MEANS", {}))
    defaults = json.loads(json.dumps(defaults))
    changed = {}
    for name, value in _json_values(config).items():
        if name in allowed:
            continue
        before = recorded.get(name, defaults.get(name))
        if before != value:
            changed[name] = (before, value)
    return changed


def run_state(folder: str | Path, config: Any, may_change: Iterable[str] = RERUN_MAY_CHANGE) -> RunState:
    """The state of the run in ``folder`` against ``config`` (a settings dataclass with ``epochs``).

    ``finished``: its config reached ``config.epochs``; ``partial``: fewer epochs and a resume
    state; ``fresh``: no readable run, no epoch kept, or more epochs than asked. ``changed`` is
    filled whenever the folder holds a run's settings."""
    folder = Path(folder)
    recorded = recorded_settings(folder)
    if recorded is None:
        return RunState("fresh")
    changed = changed_settings(recorded, config, may_change)
    try:
        epoch = load_record(folder).epoch
    except (CheckpointError, OSError):
        return RunState("fresh", 0, changed)
    if epoch == config.epochs:
        return RunState("finished", epoch, changed)
    if 0 < epoch < config.epochs and (folder / "resume.pt").is_file():
        return RunState("partial", epoch, changed)
    return RunState("fresh", epoch, changed)


def resumed_config(config: Any, given: Iterable[str]) -> Any:
    """On ``config.resume``, ``config`` with the run's own settings (its ``run.json``) for every
    field not in ``given`` (the options the user typed), apart from :data:`INVOCATION_ONLY`."""
    if not config.resume:
        return config
    settings = load_config(Path(config.out) / "run.json")
    typed = set(given) | set(INVOCATION_ONLY)
    kept = {}
    for name in (f.name for f in fields(config)):
        if name not in typed and name in settings:
            value = settings[name]
            kept[name] = tuple(value) if isinstance(value, list) else value
    return replace(config, **kept)
