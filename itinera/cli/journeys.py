"""``itinera journeys``: deploy definitions to the database and list what is deployed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from itinera.cli.console import EXIT_USAGE, exit_with, out
from itinera.cli.run import DefinitionFile, print_problems
from itinera.cli.session import session

app = typer.Typer(help="Deploy journeys and list the deployed ones.", no_args_is_help=True)


@app.command()
def deploy(ctx: typer.Context, file: DefinitionFile) -> None:
    """Store a definition and make it the active version of its journey.

    Runs already started keep the version they started on. A journey with `schedule.on`
    starts a run for each matching event sent from now on.
    """
    from itinera.errors import DefinitionError

    with session(ctx).engine() as engine:
        try:
            deployed = engine.deploy(Path(file))
        except DefinitionError as e:
            print_problems(e)
            exit_with(EXIT_USAGE)
    out.print(f"[green]deployed[/] {escape(deployed.namespace)}/{escape(deployed.name)} {escape(deployed.version)} [dim]({deployed.hash[:12]})[/]")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """The active version of every deployed journey."""
    from itinera.clock import iso

    with session(ctx).engine() as engine:
        deployments = sorted(engine.deployments().items())
        table = Table("journey", "version", "definition", "deployed at", "starts on")
        for key, d in deployments:
            plan = engine.plan(d.tenant, d.hash)
            starts = "event" if plan.trigger is not None else "schedule" if plan.every is not None or plan.cron is not None else "request"
            table.add_row(escape(key), escape(plan.version), d.hash[:12], iso(d.deployed_at), starts)
    if not deployments:
        out.print("no journeys deployed; deploy one with [bold]itinera journeys deploy FILE[/]")
        return
    out.print(table)
