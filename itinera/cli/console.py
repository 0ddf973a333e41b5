"""What the command prints: results on stdout, messages on stderr, and how it exits.

Results a script may read (run outputs, RFC 7807 errors, ``runs show``) are plain JSON on
stdout, coloured only when stdout is a terminal. Everything addressed to a person (progress,
tables, errors) goes through Rich.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

# Piped into a file or another program, a table is not squeezed into 80 columns (run ids
# must survive intact); COLUMNS still wins when it is set.
_PIPE_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
out = Console(highlight=False, soft_wrap=True, width=_PIPE_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True)

# Exit codes every command shares; `itinera run` adds 1 (faulted) and 3 (waiting).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70


class CommandError(Exception):
    """A failure the command reports as one message and an exit code (no traceback)."""

    def __init__(self, message: str, *, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, *, code: int = EXIT_FAILED) -> NoReturn:
    raise CommandError(message, code=code)


def error(message: str) -> None:
    """Print ``message`` on stderr as an error (no Rich markup is read from it)."""
    err.print(f"[bold red]error:[/] {escape(message)}")


def note(message: str) -> None:
    """A line for the person at the terminal, on stderr so stdout stays machine-readable."""
    err.print(message)


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout (syntax-coloured on a terminal)."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if out.is_terminal:
        out.print_json(text)
    else:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def parse_json_option(value: str | None, option: str) -> Any:
    """Decode a JSON option value; ``@path`` reads the JSON from a file.

    Raises:
        CommandError: the text (or file) is not JSON; exit code 2.
    """
    if value is None:
        return None
    where = option
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            value = path.read_text(encoding="utf-8")
        except OSError as e:
            fail(f"{option}: cannot read {path}: {e.strerror or e}", code=EXIT_USAGE)
        where = f"{option} (from {path})"
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        fail(f"{where} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}", code=EXIT_USAGE)


def safe_url(url: str) -> str:
    """A database URL fit to print: the password masked."""
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def exit_with(code: int) -> NoReturn:
    raise typer.Exit(code)
