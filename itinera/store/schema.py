"""Schema versions: Alembic, run from code (users never need an ``alembic.ini``).

The migration scripts live in ``migrations/`` inside the package. :func:`upgrade` brings a
database to the newest revision in one transaction; :func:`check` is the start-up check that
refuses to run against a schema this Itinera was not written for.
"""

from __future__ import annotations

from pathlib import Path

from typing import TYPE_CHECKING

import sqlalchemy as sa

from itinera.errors import ConfigurationError
from itinera.store import tables
from itinera.store.tables import VERSION_TABLE

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where it is used: a throw-away in-memory store (``itinera run``) never
# needs it, and importing it costs a fifth of a second at every start.

MIGRATIONS = Path(__file__).parent / "migrations"

# Any constant: concurrent upgraders of one PostgreSQL database queue on it.
_PG_MIGRATION_LOCK = 0x1717E8A


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for the embedded migrations (for ``itinera db`` commands)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The schema revision this version of Itinera needs."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # only if the package was built without its migrations
        raise ConfigurationError(f"no schema migrations found in {MIGRATIONS}: reinstall Itinera")
    return head


def current_revision(connection: sa.Connection) -> str | None:
    """The revision the database is at, or None when it has no Itinera schema."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the newest), in one transaction."""
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def check(engine: sa.Engine) -> None:
    """Raise :class:`ConfigurationError` unless the database schema is at the head revision."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    with engine.connect() as connection:
        current = current_revision(connection)
    if current == head:
        return
    url = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise ConfigurationError(
            f"database {url} has no Itinera schema, this Itinera needs schema {head}: "
            "run `itinera db upgrade` (or open the store with migrate=True)"
        )
    known = {rev.revision for rev in script.walk_revisions()}
    if current not in known:
        raise ConfigurationError(
            f"database {url} schema is at {current}, which this Itinera does not know (it needs {head}); "
            "a newer Itinera has migrated it: upgrade Itinera"
        )
    raise ConfigurationError(
        f"database {url} schema is at {current}, this Itinera needs {head}: run `itinera db upgrade`"
    )


def create_in_memory(engine: sa.Engine) -> None:
    """Create the tables of a throw-away in-memory database directly (nothing to migrate).

    A test checks that the migrations and ``tables.py`` describe the same schema.
    """
    tables.metadata.create_all(engine)
