"""``itinera run`` and ``itinera validate``: work on definition files, without a database."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from itinera.cli.console import EXIT_FAILED, EXIT_USAGE, emit_json, err, exit_with, fail, out, parse_json_option
from itinera.cli.session import load_settings, session

if TYPE_CHECKING:
    from itinera.engine import Engine
    from itinera.errors import DefinitionError

EXIT_WAITING = 3

DefinitionFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A journey definition (YAML or JSON).")]


def _scratch_engine(tenant: str | None = None) -> Engine:
    """An engine on a throw-away in-memory store whose clock only moves when timers are due."""
    from itinera.clock import VirtualClock
    from itinera.engine import Engine

    return Engine("sqlite://", clock=VirtualClock(time.time()), settings=load_settings(), tenant=tenant)


def print_problems(error: DefinitionError, console: Console = err) -> None:
    """Each problem on its own line: ``file:line:col: /pointer: message``."""
    for problem in error.problems:
        location, pointer = str(problem.location), problem.location.pointer or "/"
        console.print(f"[bold]{escape(location)}[/]: [cyan]{escape(pointer)}[/]: {escape(problem.message)}")


def run(
    ctx: typer.Context,
    file: DefinitionFile,
    input: Annotated[str | None, typer.Option("--input", "-i", help="The run's input: JSON text, or @FILE to read it from a file.")] = None,
    trace: Annotated[Path | None, typer.Option("--trace", help="Write the task lifecycle records to FILE, one JSON object a line.", dir_okay=False)] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="The person the run is for (its listens hear this subject's events).")] = None,
) -> None:
    """Run a definition once, in memory, until it completes, faults or waits for an event.

    Timers are followed on a virtual clock, so `wait` tasks and timeouts do not really sleep;
    HTTP calls are really made. Prints the output (exit 0), the RFC 7807 error (exit 1), or
    {"status": "waiting", "waits": [...]} when the run is left waiting for an event (exit 3).
    An invalid definition is reported on stderr with its file:line:col (exit 2).
    """
    from itinera.errors import DefinitionError

    data = parse_json_option(input, "--input")
    engine = _scratch_engine(session(ctx).tenant)
    try:
        try:
            deployed = engine.register(file)
        except DefinitionError as e:
            print_problems(e)
            exit_with(EXIT_USAGE)
        run_id = engine.start(deployed.hash, data, subject=subject)
        records: list[dict[str, Any]] = []
        engine.traces[run_id] = records
        engine.run_until_idle(follow_timers=True)
        view = engine.get_run(run_id)
    finally:
        engine.close()
    if trace is not None:
        _write_trace(trace, records)
    if view.status == "completed":
        emit_json(view.output)
        return
    if view.status == "faulted":
        emit_json(view.error)
        exit_with(EXIT_FAILED)
    emit_json({"status": view.status, "waits": view.waits})
    exit_with(EXIT_WAITING)


def _write_trace(path: Path, records: list[dict[str, Any]]) -> None:
    try:
        with path.open("w", encoding="utf-8") as stream:
            for record in records:
                stream.write(json.dumps(record, ensure_ascii=False) + "\n")
    except OSError as e:
        fail(f"--trace: cannot write {path}: {e.strerror or e}", code=EXIT_USAGE)


def validate(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True, help="Journey definitions to check.")],
) -> None:
    """Check definitions: schema, references, expressions and blocks. Exit 1 if any is invalid."""
    from itinera.errors import DefinitionError

    engine = _scratch_engine(session(ctx).tenant)
    invalid = 0
    try:
        for path in files:
            try:
                deployed = engine.register(path)
            except DefinitionError as e:
                invalid += 1
                print_problems(e, out)
                n = len(e.problems)
                out.print(f"[red]✗[/] {escape(str(path))}: {n} problem{'s' if n != 1 else ''}")
                continue
            out.print(f"[green]✓[/] {escape(str(path))}: {escape(deployed.namespace)}/{escape(deployed.name)} {escape(deployed.version)} ok")
    finally:
        engine.close()
    if invalid:
        exit_with(EXIT_FAILED)
