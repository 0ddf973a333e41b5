"""``itinera events send``: ingest CloudEvents from a JSON-lines file."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from itinera.cli.console import EXIT_FAILED, EXIT_USAGE, err, exit_with, fail, out
from itinera.cli.session import session

if TYPE_CHECKING:
    from itinera.engine import Engine
    from itinera.errors import EventError

app = typer.Typer(help="Send CloudEvents to the runs and triggers in the database.", no_args_is_help=True)

BATCH = 500
PROGRESS_FROM_BYTES = 1 << 20  # a progress bar only for files big enough to take a while


@dataclass(kw_only=True)
class Tally:
    """What sending a file did."""

    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    started: list[str] = field(default_factory=list)
    woken: int = 0


@app.command()
def send(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CloudEvents in JSON structured mode, one per line ('-' reads stdin).", allow_dash=True)],
) -> None:
    """Send one CloudEvent per line; report malformed lines by number and skip them.

    Each event is stored once (a repeated tenant + source + id is a duplicate), wakes the runs
    listening for it and starts runs of journeys whose `schedule.on` it matches. Runs then
    advance when a worker runs (`itinera worker`). Exit 1 if any line was rejected.
    """
    name = "<stdin>" if str(file) == "-" else str(file)
    tally = Tally()
    with _open(file) as stream, session(ctx).engine() as engine:
        total = _size(stream)
        show = err.is_terminal and total is not None and total >= PROGRESS_FROM_BYTES
        columns = (TextColumn("sending events"), BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[lines]:,} lines"), TimeRemainingColumn())
        with Progress(*columns, console=err, disable=not show) as progress:
            bar = progress.add_task("send", total=total, lines=0)
            for batch, read in _batches(stream, name, tally):
                _send(engine, batch, name, tally)
                progress.update(bar, completed=read, lines=tally.lines)
    _summary(tally)
    if tally.rejected:
        exit_with(EXIT_FAILED)


def _open(file: Path) -> IO[bytes]:
    if str(file) == "-":
        return sys.stdin.buffer
    try:
        return file.open("rb")
    except OSError as e:
        fail(f"cannot read {file}: {e.strerror or e}", code=EXIT_USAGE)


def _size(stream: IO[bytes]) -> int | None:
    try:
        return Path(stream.name).stat().st_size if isinstance(stream.name, str) else None
    except OSError:
        return None


def _batches(stream: IO[bytes], name: str, tally: Tally) -> Iterator[tuple[list[tuple[int, Any]], int]]:
    """``(line number, decoded JSON)`` pairs in batches, with the bytes read so far."""
    batch: list[tuple[int, Any]] = []
    read = 0
    for number, raw in enumerate(stream, start=1):
        read += len(raw)
        text = raw.strip()
        if not text:
            continue
        tally.lines += 1
        try:
            batch.append((number, json.loads(text)))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            tally.rejected += 1
            reason = f"not JSON: {e.msg} at column {e.colno}" if isinstance(e, json.JSONDecodeError) else "not UTF-8 text"
            _reject(name, number, reason)
            continue
        if len(batch) >= BATCH:
            yield batch, read
            batch = []
    if batch:
        yield batch, read


def _send(engine: Engine, batch: list[tuple[int, Any]], name: str, tally: Tally) -> None:
    result = engine.send([event for _, event in batch])
    tally.accepted += result.accepted
    tally.duplicates += result.duplicates
    tally.started.extend(result.started)
    tally.woken += result.woken
    for rejection in result.rejected:
        tally.rejected += 1
        number = batch[rejection.index][0] if rejection.index is not None else 0
        _reject(name, number, _reason(rejection))


def _reason(error: EventError) -> str:
    text = str(error)
    prefix = f"event #{error.index}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _reject(name: str, number: int, reason: str) -> None:
    err.print(f"[bold]{escape(name)}:{number}[/]: [red]rejected[/]: {escape(reason)}")


def _summary(tally: Tally) -> None:
    table = Table("lines", "accepted", "duplicates", "rejected", "runs started", "runs woken")
    table.add_row(
        str(tally.lines),
        f"[green]{tally.accepted}[/]",
        str(tally.duplicates),
        f"[red]{tally.rejected}[/]" if tally.rejected else "0",
        str(len(tally.started)),
        str(tally.woken),
    )
    out.print(table)
