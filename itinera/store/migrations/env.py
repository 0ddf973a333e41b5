"""Alembic environment of the Itinera store.

Itinera runs it programmatically (``itinera.store.schema``): the caller's connection, already
inside a transaction, arrives in ``config.attributes["connection"]``, so the whole upgrade commits
or rolls back as one. Developers can also point the ``alembic`` command at this folder (with
``sqlalchemy.url`` set) to write new revisions with ``--autogenerate``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from itinera.store.tables import VERSION_TABLE, metadata


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things in place: later migrations copy-and-move tables.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade --sql``)."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url (or pass a connection) to run Itinera migrations")
    from itinera.store import create_engine  # the same pragmas and BEGIN handling as at run time

    engine = create_engine(url)
    try:
        with engine.begin() as own:
            _configure(own)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
