"""The store: where runs, events, subscriptions, history and the outbox persist.

Open one with :func:`open_store`::

    store = open_store("sqlite:///itinera.db")          # embedded default (WAL)
    store = open_store("sqlite://")                     # in memory, for throw-away runs
    store = open_store("postgresql://user@host/db")     # production (psycopg 3)

    with store.transaction() as tx:
        tx.insert_runs([...])
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from itinera.errors import ConfigurationError
from itinera.store import schema
from itinera.store.base import (
    ACTIVE_STATUSES,
    DefinitionRecord,
    Delivery,
    Deployment,
    EventRecord,
    HistoryEntry,
    OutboxRow,
    OutboxStatus,
    RunId,
    RunRecord,
    RunStatus,
    Store,
    SubjectId,
    Subscription,
    TenantId,
    Transaction,
)
from itinera.store.sql import SqlStore

__all__ = [
    "ACTIVE_STATUSES",
    "DefinitionRecord",
    "Delivery",
    "Deployment",
    "EventRecord",
    "HistoryEntry",
    "OutboxRow",
    "OutboxStatus",
    "RunId",
    "RunRecord",
    "RunStatus",
    "SqlStore",
    "Store",
    "SubjectId",
    "Subscription",
    "TenantId",
    "Transaction",
    "create_engine",
    "database_revision",
    "normalize_url",
    "open_store",
    "schema_head",
    "upgrade_database",
]

_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}
_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg"}


def normalize_url(url: str) -> sa.URL:
    """Parse a store URL, rewriting plain ``postgresql://`` (and ``postgres://``) to psycopg 3.

    Raises:
        ConfigurationError: the URL is malformed or names a database Itinera does not support.
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as error:
        raise ConfigurationError(f"not a database URL: {url!r} ({error})") from None
    if parsed.drivername in _SQLITE_DRIVERS:
        return parsed.set(drivername="sqlite")
    if parsed.drivername in _POSTGRES_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    raise ConfigurationError(
        f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: use "
        "sqlite:///path/to/file.db, sqlite:// (in memory) or postgresql://user@host/dbname"
    )


def create_engine(url: str) -> sa.Engine:
    """The engine a store would use for ``url`` (pragmas, transaction handling, JSON codec)."""
    parsed = normalize_url(url)
    if parsed.drivername == "sqlite":
        from itinera.store import sqlite

        return sqlite.create_engine(parsed)
    from itinera.store import postgres

    return postgres.create_engine(parsed)


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the store at ``url``.

    Args:
        url: ``sqlite:///path/file.db``, ``sqlite://`` (in memory), ``postgresql+psycopg://user@host/db``
            (``postgresql://`` is accepted and means psycopg 3).
        migrate: upgrade the schema to the newest revision first. With False the schema is
            only checked, and a database that is not current is refused.

    Raises:
        ConfigurationError: the URL is not supported, or (``migrate=False``) the schema is not
            the one this Itinera needs; the message says what to run.
    """
    parsed = normalize_url(url)
    if parsed.drivername == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().resolve().parent
        if not folder.is_dir():
            raise ConfigurationError(f"cannot create the SQLite database {parsed.database}: {folder} is not a directory")
    engine = create_engine(url)
    text = parsed.render_as_string(hide_password=False)
    store: SqlStore
    if parsed.drivername == "sqlite":
        from itinera.store.sqlite import SqliteStore

        store = SqliteStore(text, engine)
    else:
        from itinera.store.postgres import PostgresStore

        store = PostgresStore(text, engine)
    try:
        if parsed.drivername == "sqlite" and parsed.database in (None, "", ":memory:"):
            schema.create_in_memory(engine)  # born empty, dies with the process
        elif migrate:
            schema.upgrade(engine)
        else:
            schema.check(engine)
    except BaseException:
        store.close()
        raise
    return store


def upgrade_database(url: str) -> str:
    """Migrate the database at ``url`` to the schema this Itinera needs; return that revision.

    This is what ``itinera db upgrade`` runs.
    """
    engine = create_engine(url)
    try:
        schema.upgrade(engine)
    finally:
        engine.dispose()
    return schema.head_revision()


def database_revision(url: str) -> str | None:
    """The schema revision of the database at ``url`` (None: no Itinera schema yet)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return schema.current_revision(connection)
    finally:
        engine.dispose()


def schema_head() -> str:
    """The schema revision this version of Itinera needs."""
    return schema.head_revision()
