"""The initial schema: definitions, deployments, runs, events, subscriptions, deliveries,
history and the outbox.

Revision ID: 0001
Revises:
Created: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the predicates in ``itinera.store.tables`` as of this revision.
ACTIVE = "status IN ('pending', 'running', 'waiting')"


def _json() -> Any:
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _bigint_pk() -> Any:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _where(predicate: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(predicate), "postgresql_where": sa.text(predicate)}


def upgrade() -> None:
    op.create_table(
        "definitions",
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("namespace", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("document", _json(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "hash", name="pk_definitions"),
    )
    op.create_table(
        "deployments",
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("namespace", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("deployed_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "namespace", "name", name="pk_deployments"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(100), nullable=False),
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
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_ready", "runs", ["created_at"], **_where(f"ready AND {ACTIVE}"))
    op.create_index("ix_runs_wake", "runs", ["wake_at"], **_where(f"wake_at IS NOT NULL AND {ACTIVE}"))
    op.create_index("ix_runs_tenant_status", "runs", ["tenant", "status"])
    op.create_index("ix_runs_tenant_subject", "runs", ["tenant", "subject"])

    op.create_table(
        "events",
        sa.Column("seq", _bigint_pk(), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("id", sa.String(400), nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("type", sa.String(400), nullable=False),
        sa.Column("subject", sa.String(400), nullable=True),
        sa.Column("time", sa.String(64), nullable=True),
        sa.Column("envelope", _json(), nullable=False),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_events"),
        sa.UniqueConstraint("tenant", "source", "id", name="uq_events_tenant_source_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "event_keys",
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("type", sa.String(400), nullable=False),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "type", "key", "seq", name="pk_event_keys"),
    )
    op.create_table(
        "subscriptions",
        sa.Column("run_id", sa.String(100), nullable=False),
        sa.Column("sub_id", sa.String(200), nullable=False),
        sa.Column("event_type", sa.String(400), nullable=False),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("since_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "sub_id", "event_type", "key", name="pk_subscriptions"),
    )
    op.create_index("ix_subscriptions_tenant_event_type_key", "subscriptions", ["tenant", "event_type", "key"])

    op.create_table(
        "deliveries",
        sa.Column("id", _bigint_pk(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(100), nullable=False),
        sa.Column("sub_id", sa.String(200), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=True),
        sa.Column("payload", _json(), nullable=True),
        sa.Column("consumed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
    )
    op.create_index("ix_deliveries_open", "deliveries", ["run_id"], **_where("NOT consumed"))

    op.create_table(
        "history",
        sa.Column("id", _bigint_pk(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(100), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("data", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_history"),
    )
    op.create_index("ix_history_run_id", "history", ["run_id"])

    op.create_table(
        "outbox",
        sa.Column("id", _bigint_pk(), autoincrement=True, nullable=False),
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
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("key", name="uq_outbox_key"),
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_run_id", "outbox", ["run_id"])


def downgrade() -> None:
    for table in ("outbox", "history", "deliveries", "subscriptions", "event_keys", "events", "runs", "deployments", "definitions"):
        op.drop_table(table)
