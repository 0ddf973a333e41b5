"""``itinera db``: the database schema."""

from __future__ import annotations

import typer
from rich.markup import escape

from itinera.cli.console import EXIT_FAILED, exit_with, out
from itinera.cli.session import session

app = typer.Typer(help="Create or upgrade the database schema.", no_args_is_help=True)


@app.command()
def upgrade(ctx: typer.Context) -> None:
    """Create the schema, or migrate it to the one this version of Itinera needs."""
    from itinera.store import upgrade_database

    revision = upgrade_database(session(ctx).db)
    out.print(f"database schema is at revision [bold]{escape(revision)}[/]")


@app.command()
def status(ctx: typer.Context) -> None:
    """Whether the schema is current (exit 1 if it needs `itinera db upgrade`)."""
    from itinera.store import database_revision, schema_head

    current, head = database_revision(session(ctx).db), schema_head()
    if current == head:
        out.print(f"database schema is current (revision {escape(head)})")
        return
    shown = "no Itinera schema" if current is None else f"revision {current}"
    out.print(f"database has {escape(shown)}; this Itinera needs {escape(head)}: run [bold]itinera db upgrade[/]")
    exit_with(EXIT_FAILED)
