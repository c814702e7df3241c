"""The ``elepose`` command. Each command group lives in its own module of this package."""

from __future__ import annotations

import importlib
import sys

import typer

from elepose.cli.errors import report_crash

app = typer.Typer(
    help="Unsupervised 3D human pose lifting (ElePose, CVPR 2022).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules that register their commands on `app` when imported (see each module's `register`).
_COMMAND_MODULES = ("data", "train", "fit", "evaluate", "lift", "benchmark")


@app.callback()
def _root() -> None:
    """Unsupervised 3D human pose lifting (ElePose, CVPR 2022)."""


@app.command()
def version() -> None:
    """Print the elepose version."""
    from elepose import __version__

    typer.echo(__version__)


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"elepose.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"elepose.cli.{name}":
                continue
            raise
        module.register(app)


def main() -> None:
    """Entry point of the ``elepose`` console script: no traceback reaches the user."""
    _register_all()
    try:
        app()  # exits by itself (SystemExit) on success, bad usage and reported errors
    except Exception as err:
        log = report_crash(err)
        where = f"; the full traceback is in {log}" if log else ""
        typer.echo(f"error: unexpected {type(err).__name__}: {err}{where}", err=True)
        sys.exit(1)
