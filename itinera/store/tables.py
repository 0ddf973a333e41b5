"""The schema, as SQLAlchemy Core tables shared by every backend.

Migrations under ``migrations/versions`` create exactly these tables; a test compares the two.
Predicates that partial indexes are defined with are kept here as SQL text, and the claim queries
use the very same text: SQLite only uses a partial index when the query's WHERE clause repeats
the index's terms literally (bound parameters would not do), and PostgreSQL's generic plans
have the same need.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: The table Alembic records the schema revision in (not ``alembic_version``, so an
#: application that shares the database with its own Alembic history does not collide).
VERSION_TABLE = "itinera_schema_version"

#: A run is active (it may have work to do) in these statuses; keep in sync with
#: ``base.ACTIVE_STATUSES`` (a test checks).
ACTIVE_SQL = "status IN ('pending', 'running', 'waiting')"
#: The predicate of the ready-run index.
READY_SQL = f"ready AND {ACTIVE_SQL}"
#: The predicate of the timer index.
WAKE_SQL = f"wake_at IS NOT NULL AND {ACTIVE_SQL}"
#: The predicate of the open-delivery index.
OPEN_DELIVERY_SQL = "NOT consumed"


def _json() -> sa.types.TypeEngine[Any]:
    """JSON (TEXT) on SQLite, JSONB on PostgreSQL; Python None is stored as SQL NULL."""
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _bigint_pk() -> sa.types.TypeEngine[int]:
    """A 64-bit key, but plain INTEGER on SQLite so that it aliases the rowid."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _partial(predicate: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(predicate), "postgresql_where": sa.text(predicate)}


definitions = sa.Table(
    "definitions",
    metadata,
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("hash", sa.String(128), primary_key=True),
    sa.Column("namespace", sa.String(200), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("version", sa.String(100), nullable=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("document", _json(), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("namespace", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("hash", sa.String(128), nullable=False),
    sa.Column("deployed_at", sa.Double(), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("definition_hash", sa.String(128), nullable=False),
    sa.Column("subject", sa.String(200), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("state", sa.LargeBinary(), nullable=False),
    sa.Column("wake_at", sa.Double(), nullable=True),
    sa.Column("ready", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
    sa.Column("revision", sa.Integer(), nullable=False),
    sa.Column("lease_owner", sa.String(200), nullable=True),
    sa.Column("lease_until", sa.Double(), nullable=True),
    # Claiming walks these two small partial indexes in order and stops after ``limit`` rows.
    sa.Index("ix_runs_ready", "created_at", **_partial(READY_SQL)),
    sa.Index("ix_runs_wake", "wake_at", **_partial(WAKE_SQL)),
    sa.Index(None, "tenant", "status"),
    sa.Index(None, "tenant", "subject"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", _bigint_pk(), primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("id", sa.String(400), nullable=False),
    sa.Column("source", sa.String(1000), nullable=False),
    sa.Column("type", sa.String(400), nullable=False),
    sa.Column("subject", sa.String(400), nullable=True),
    sa.Column("time", sa.String(64), nullable=True),
    sa.Column("envelope", _json(), nullable=False),
    sa.Column("received_at", sa.Double(), nullable=False),
    sa.UniqueConstraint("tenant", "source", "id"),
    # AUTOINCREMENT: a seq is never reused, even after the newest events are deleted.
    sqlite_autoincrement=True,
)

event_keys = sa.Table(
    "event_keys",
    metadata,
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("type", sa.String(400), primary_key=True),
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("seq", sa.BigInteger(), primary_key=True),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("run_id", sa.String(100), primary_key=True),
    sa.Column("sub_id", sa.String(200), primary_key=True),
    sa.Column("event_type", sa.String(400), primary_key=True),
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("since_seq", sa.BigInteger(), nullable=False),
    sa.Index(None, "tenant", "event_type", "key"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", _bigint_pk(), primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(100), nullable=False),
    sa.Column("sub_id", sa.String(200), nullable=False),
    sa.Column("event_seq", sa.BigInteger(), nullable=True),
    sa.Column("payload", _json(), nullable=True),
    sa.Column("consumed", sa.Boolean(), nullable=False),
    sa.Index("ix_deliveries_open", "run_id", **_partial(OPEN_DELIVERY_SQL)),
)

history = sa.Table(
    "history",
    metadata,
    sa.Column("id", _bigint_pk(), primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(100), nullable=False),
    sa.Column("at", sa.Double(), nullable=False),
    sa.Column("kind", sa.String(100), nullable=False),
    sa.Column("data", _json(), nullable=False),
    sa.Index(None, "run_id"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", _bigint_pk(), primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(500), nullable=False),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(100), nullable=False),
    sa.Column("payload", _json(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.Double(), nullable=False),
    sa.Column("result", _json(), nullable=True),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("lease_until", sa.Double(), nullable=True),
    sa.UniqueConstraint("key"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "run_id"),
)

#: Every table, parents first (there are no foreign keys; this is creation order).
ALL_TABLES = (definitions, deployments, runs, events, event_keys, subscriptions, deliveries, history, outbox)
