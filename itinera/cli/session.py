"""The global options (``--db``, ``--tenant``) and the engine a command opens with them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from itinera.cli.console import EXIT_USAGE, fail

if TYPE_CHECKING:
    from itinera.engine import Engine
    from itinera.settings import Settings

DEFAULT_DB = "sqlite:///itinera.db"


@dataclass(frozen=True, kw_only=True)
class Session:
    """What the global options chose for this invocation."""

    db: str
    tenant: str | None

    @contextmanager
    def engine(self, *, migrate: bool | None = None, **settings: Any) -> Iterator[Engine]:
        """Open the engine on the chosen database; closed when the block ends.

        By default a SQLite database is created and migrated on first use, while a PostgreSQL
        database must have been migrated with ``itinera db upgrade`` (a shared production
        schema changes only when someone says so). ``settings`` override the environment.
        """
        from itinera.engine import Engine

        if migrate is None:
            migrate = self.db.startswith("sqlite")
        engine = Engine(self.db, settings=load_settings(**settings), tenant=self.tenant, migrate=migrate)
        try:
            yield engine
        finally:
            engine.close()


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (and ``overrides``); a bad value is a usage error."""
    from pydantic import ValidationError

    from itinera.settings import Settings

    try:
        return Settings(**overrides)
    except ValidationError as e:
        first = e.errors()[0]
        name = str(first["loc"][0]) if first.get("loc") else "?"
        fail(f"invalid setting ITINERA_{name.upper()}: {first['msg']}", code=EXIT_USAGE)


def session(ctx: typer.Context) -> Session:
    """The session the top-level callback stored on the context."""
    root = ctx.find_root()
    obj = root.obj
    if not isinstance(obj, Session):  # a sub-command invoked on its own (tests, embedding)
        obj = Session(db=DEFAULT_DB, tenant=None)
        root.obj = obj
    return obj
