"""The ``itinera`` command.

Every command catches the errors a user can fix (:class:`~itinera.errors.ItineraError`) and
prints one clear message instead of a traceback; anything else is an internal error (exit 70),
shown with its traceback only when ``ITINERA_DEBUG=1``.

Exit codes: 0 success, 1 failure (a faulted run, a rejected event, an unknown run...), 2 a
usage error (bad option, invalid definition, input that is not JSON), 3 a run left waiting
(``itinera run``), 70 an internal error, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from itinera import __version__
from itinera.cli import blocks as _blocks
from itinera.cli import db as _db
from itinera.cli import demo as _demo
from itinera.cli import events as _events
from itinera.cli import journeys as _journeys
from itinera.cli import run as _run
from itinera.cli import runs as _runs
from itinera.cli import worker as _worker
from itinera.cli.console import EXIT_FAILED, EXIT_INTERNAL, EXIT_USAGE, CommandError, error
from itinera.cli.session import DEFAULT_DB, Session

app = typer.Typer(
    name="itinera",
    help="Run personalized customer and employee journeys (Serverless Workflow DSL 1.0) as durable runs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"itinera {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    db: Annotated[str, typer.Option("--db", envvar="ITINERA_DATABASE_URL", help="Database URL: sqlite:///file.db, sqlite:// (in memory) or postgresql://user@host/db.")] = DEFAULT_DB,
    tenant: Annotated[str | None, typer.Option("--tenant", envvar="ITINERA_TENANT", help="The tenant to act for (default: 'default').")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    ctx.obj = Session(db=db, tenant=tenant)


app.command()(_run.run)
app.command()(_run.validate)
app.command()(_worker.worker)
app.command()(_blocks.blocks)
app.command()(_demo.demo)
app.add_typer(_journeys.app, name="journeys")
app.add_typer(_events.app, name="events")
app.add_typer(_runs.app, name="runs")
app.add_typer(_db.app, name="db")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``itinera`` command; exits the process."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="itinera", standalone_mode=True)
    except CommandError as e:
        error(str(e))
        sys.exit(e.code)
    except Exception as e:
        sys.exit(_report(e))


def _report(e: Exception) -> int:
    """Print ``e`` as a one-line message; the exit code for it."""
    from sqlalchemy.exc import OperationalError

    from itinera.errors import DefinitionError, ItineraError

    if isinstance(e, DefinitionError):
        error("invalid definition:\n" + str(e))
        return EXIT_USAGE
    if isinstance(e, ItineraError):
        error(str(e))
        return EXIT_FAILED
    if os.environ.get("ITINERA_DEBUG") == "1":
        raise e
    if isinstance(e, OperationalError):
        error(f"the database is not usable: {str(e.orig).strip().splitlines()[0] if e.orig else e}")
        return EXIT_FAILED
    error(f"internal error: {type(e).__name__}: {e} (set ITINERA_DEBUG=1 to see the traceback)")
    return EXIT_INTERNAL


__all__ = ["app", "main"]
