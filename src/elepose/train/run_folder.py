"""A training loop's run folder: claiming it, its settings, the resume state (written each epoch,
restored exactly), random states across ranks, the time limit and cleaning up a run that saved no
epoch. Used by :mod:`elepose.train.loop`; run-state questions go to :mod:`elepose.train.runstate`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from elepose import __version__
from elepose.errors import InputError
from elepose.models import io as run_files
from elepose.outputs import claim_folder, clear_run_files, folder_kind
from elepose.runtime import Distributed
from elepose.train.config import TrainConfig
from elepose.train.runlog import RunLog
from elepose.train.runstate import changed_settings

__all__ = [
    "Deadline",
    "claim_run_folder",
    "cleanup_if_no_epoch",
    "gather_rng",
    "restore",
    "restore_rng",
    "resume_state",
    "rng_state",
    "save_resume",
    "start_folder",
    "stop_all",
]


class Deadline:
    def __init__(self, max_minutes: float | None) -> None:
        self.end = None if max_minutes is None else time.monotonic() + 60.0 * max_minutes

    def passed(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end


def start_folder(out: Path, config: Any) -> None:
    """Create the run folder and write its settings (``run.json``)."""
    out.mkdir(parents=True, exist_ok=True)
    run_files.save_config(out / "run.json", {"kind": "run-settings", "elepose": __version__, **asdict(config)})


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    return {"sampling": generator.get_state(), "torch": torch.get_rng_state()}


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    generator.set_state(state["sampling"])
    torch.set_rng_state(state["torch"])


def claim_run_folder(out: Path, config: Any, kind: str) -> bool:
    """Check ``out`` may become a new run of ``kind`` (clearing an old run's files with ``overwrite``).

    Returns whether the folder was new or empty (a failed first epoch then removes what it wrote).
    """
    inputs = [Path(config.data)] + ([Path(config.flow)] if isinstance(config, TrainConfig) else [])
    inputs += [Path(config.init)] if config.init is not None else []
    found = claim_folder(out, kind, config.overwrite, inputs, same_kind_ok=False)
    if found not in (None, "empty"):
        clear_run_files(out)
    return found in (None, "empty")


def resume_state(out: Path, config: Any, kind: str) -> dict[str, Any]:
    """The resume state of the run in ``out``, after checking it is a ``kind`` run with ``config``'s settings."""
    found = folder_kind(out) if out.is_dir() else None
    if found != kind:
        what = "nothing" if found in (None, "empty") else f"an {found} folder"
        raise InputError(f"--out {out}: holds {what}; expected a {kind} run to resume")
    settings = run_files.load_config(out / "run.json")
    for name, (before, value) in changed_settings(settings, config).items():
        if name not in settings:
            continue
        flag = "--" + name.replace("_", "-")
        raise InputError(
            f"{out / 'run.json'}: field {name!r}: the run has {before!r}, this command {value!r}; "
            f"expected the run's own settings on --resume (drop {flag}, or start a new run)"
        )
    return run_files.load_resume_state(out / "resume.pt")


@contextlib.contextmanager
def cleanup_if_no_epoch(out: Path, fresh: bool, log: RunLog) -> Iterator[None]:
    """If training stops by an error before its first epoch was saved in a folder it created, remove what it wrote."""
    try:
        yield
    except BaseException:
        if fresh and not (out / "resume.pt").exists():
            log.close()
            clear_run_files(out)
            with contextlib.suppress(OSError):
                out.rmdir()
        raise


def save_resume(
    out: Path,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    rng: Any,
    global_step: int,
    train_seconds: float,
    metrics: dict[str, float],
) -> None:
    """``resume.pt``: everything ``--resume`` needs in one atomically written file, weights included.

    Written first at the end of an epoch, so a kill at any later point leaves a state to resume
    from; ``config.json``, written last, records the SHA-256 of the weights it belongs to.
    """
    run_files.save_resume_state(
        out / "resume.pt",
        {
            "epoch": epoch,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng,
            "global_step": global_step,
            "train_seconds": train_seconds,
            "metrics": metrics,
        },
    )


def restore(
    state: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator,
    run: Any = None,
) -> int:
    """Load a resume state into the optimizer, schedule and generators -> the epoch to start at."""
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    if run is not None:
        rng = rng[run.dist.rank] if isinstance(rng, list) else rng
        run.global_step = int(state["global_step"])
        run.train_seconds = float(state.get("train_seconds", 0.0))
    restore_rng(rng, generator)
    return int(state["epoch"]) + 1


def gather_rng(generator: torch.Generator, dist_info: Distributed) -> Any:
    """Each rank's sampling state (a list over ranks under DDP), collected on every rank."""
    state = rng_state(generator)
    if not dist_info.enabled:
        return state
    states: list[Any] = [None] * dist_info.world_size
    dist.all_gather_object(states, state)
    return states


def stop_all(deadline: Deadline, dist_info: Distributed) -> bool:
    """Whether the time limit passed, agreed across ranks so all stop together."""
    flag = torch.tensor([1.0 if deadline.passed() else 0.0])
    if dist_info.enabled:
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item() > 0)
