"""``itinera runs``: list, inspect and control runs."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Column, Table

from itinera.cli.console import emit_json, out, parse_json_option
from itinera.cli.session import session

if TYPE_CHECKING:
    from itinera.engine import RunView

app = typer.Typer(help="Start, list, inspect, cancel, suspend and resume runs.", no_args_is_help=True)


class Status(str, Enum):
    pending = "pending"
    running = "running"
    waiting = "waiting"
    suspended = "suspended"
    completed = "completed"
    faulted = "faulted"
    cancelled = "cancelled"


_STYLE = {"completed": "green", "faulted": "red", "cancelled": "dim", "waiting": "yellow", "suspended": "magenta"}

RunId = Annotated[str, typer.Argument(help="The run's id (from `itinera runs list`).")]


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[Status | None, typer.Option("--status", "-s", help="Only runs with this status.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="At most this many runs.")] = 20,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many runs first.")] = 0,
) -> None:
    """Runs of this tenant, oldest first, as a table."""
    with session(ctx).engine() as engine:
        runs = engine.runs(status=status.value if status else None, limit=limit, offset=offset)
    if not runs:
        out.print("no runs" + (f" with status {status.value}" if status else ""))
        return
    table = Table("journey", "version", "subject", "status", "updated", "waiting for")
    table.columns.insert(0, Column("run", no_wrap=True, min_width=len(runs[0].id)))
    for run in runs:
        style = _STYLE.get(run.status, "")
        table.add_row(
            run.id,
            escape(run.journey),
            escape(run.version),
            escape(run.subject or "-"),
            f"[{style}]{run.status}[/]" if style else run.status,
            run.updated_at,
            escape(_waiting_for(run)),
        )
    out.print(table)


def _waiting_for(run: RunView) -> str:
    parts = []
    for wait in run.waits:
        if wait.get("kind") == "event":
            parts.append(" | ".join(wait.get("types") or ["an event"]))
        elif "until" in wait:
            parts.append(f"{wait.get('kind', 'timer')} until {wait['until']}")
        else:
            parts.append(str(wait.get("kind", "?")))
    if run.wake_at and not any("until" in w for w in run.waits):
        parts.append(f"timer {run.wake_at}")
    return ", ".join(parts)


@app.command()
def start(
    ctx: typer.Context,
    journey: Annotated[str, typer.Argument(help="A deployed journey: namespace/name, name, or a definition hash.")],
    input: Annotated[str | None, typer.Option("--input", "-i", help="The run's input: JSON text, or @FILE to read it from a file.")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="The person the run is for (its listens hear this subject's events).")] = None,
) -> None:
    """Start a run of a deployed journey; a worker advances it. Prints the run id."""
    data = parse_json_option(input, "--input")
    with session(ctx).engine() as engine:
        run_id = engine.start(journey, data, subject=subject)
    print(run_id)


@app.command()
def show(ctx: typer.Context, run_id: RunId) -> None:
    """A run as JSON: status, input, output or error, waits, and its history."""
    from itinera.clock import iso

    with session(ctx).engine() as engine:
        view = engine.get_run(run_id)
        history = engine.history(run_id)
    data: dict[str, Any] = view.to_dict()
    data["history"] = [{"at": iso(h.at), "kind": h.kind, **({"data": h.data} if h.data else {})} for h in history]
    emit_json(data)


def _control(ctx: typer.Context, run_id: str, action: str) -> None:
    with session(ctx).engine() as engine:
        view: RunView = getattr(engine, action)(run_id)
    out.print(f"run {escape(view.id)} is now [bold]{view.status}[/]")


@app.command()
def cancel(ctx: typer.Context, run_id: RunId) -> None:
    """Cancel a run that has not finished; it never advances again."""
    _control(ctx, run_id, "cancel")


@app.command()
def suspend(ctx: typer.Context, run_id: RunId) -> None:
    """Pause a run: it keeps its waits but does not advance until resumed."""
    _control(ctx, run_id, "suspend")


@app.command()
def resume(ctx: typer.Context, run_id: RunId) -> None:
    """Resume a suspended run; timers that passed meanwhile fire at once."""
    _control(ctx, run_id, "resume")
