"""PostgreSQL: the production store, shared by many worker processes (psycopg 3).

Claims lock their candidate rows with ``FOR UPDATE SKIP LOCKED`` so concurrent workers take
disjoint batches without waiting on each other; ``lock_keys`` takes transaction-scoped advisory
locks. Batch writes send one array per column (``unnest``) in binary: one statement and one
round trip per batch, where ``executemany`` costs a pipelined statement per row (measured: 1,000
history rows in 6.5 ms against 14 ms). ``save_runs`` is one ``UPDATE ... FROM unnest(...)``
whose ``RETURNING`` says exactly which rows passed the revision guard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Unpack

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine

from itinera.store.base import EventRecord, HistoryEntry, OutboxRow, RunRecord, Subscription
from itinera.store.sql import SqlStore, SqlTransaction, dumps, loads, unique

_JSONB = "text[]::jsonb"  # JSON goes as text (orjson) and is parsed by the server

# Arrays in binary format (``%(name)b``): the states go over the wire as raw bytes.
# The CTE takes the row locks in id order, so two writers of overlapping batches (a stale lease
# holder and its successor) queue instead of deadlocking.
_SAVE_RUNS = """
WITH v AS MATERIALIZED (
    SELECT * FROM unnest(
        %(ids)b::text[], %(revisions)b::int4[], %(states)b::bytea[], %(statuses)b::text[],
        %(wake_ats)b::float8[], %(readies)b::bool[], %(updated_ats)b::float8[]
    ) AS v(id, revision, state, status, wake_at, ready, updated_at)
), locked AS MATERIALIZED (
    SELECT id FROM runs WHERE id = ANY(%(ids)b::text[]) ORDER BY id FOR UPDATE
)
UPDATE runs SET state = v.state, status = v.status, wake_at = v.wake_at, ready = v.ready,
    updated_at = v.updated_at, revision = runs.revision + 1, lease_owner = NULL, lease_until = NULL
FROM v
WHERE runs.id = v.id AND runs.revision = v.revision AND runs.id IN (SELECT id FROM locked)
RETURNING runs.id
"""

# unnest() yields the (sorted) keys in array order and each row's lock is taken as it is
# produced, so every transaction acquires its locks in the same global order.
_LOCK_KEYS = "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%(keys)b::int8[]) AS u(k)"


_RUN_COLUMNS = (
    ("id", "text"),
    ("tenant", "text"),
    ("definition_hash", "text"),
    ("subject", "text"),
    ("status", "text"),
    ("state", "bytea"),
    ("wake_at", "float8"),
    ("ready", "bool"),
    ("created_at", "float8"),
    ("updated_at", "float8"),
    ("revision", "int4"),
)
_OUTBOX_COLUMNS = (
    ("key", "text"),
    ("tenant", "text"),
    ("run_id", "text"),
    ("kind", "text"),
    ("payload", _JSONB),
    ("status", "text"),
    ("attempts", "int4"),
    ("next_attempt_at", "float8"),
    ("result", _JSONB),
    ("created_at", "float8"),
)
_EVENT_COLUMNS = (
    ("tenant", "text"),
    ("id", "text"),
    ("source", "text"),
    ("type", "text"),
    ("subject", "text"),
    ("time", "text"),
    ("envelope", _JSONB),
    ("received_at", "float8"),
)


def key_lock_id(tenant: str, type: str, key: str) -> int:
    """The signed 64-bit advisory lock id of a correlation key (stable across processes)."""
    digest = hashlib.blake2b(f"{tenant}\x1f{type}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def create_engine(url: sa.URL) -> Engine:
    """A pooled psycopg 3 engine with orjson for JSONB."""
    return sa.create_engine(url, json_serializer=dumps, json_deserializer=loads, pool_pre_ping=True)


class PostgresTransaction(SqlTransaction):
    """PostgreSQL flavour: SKIP LOCKED claims, advisory key locks, array-based batch saves."""

    materialize_claims = True

    def _insert_ignore(self, table: sa.Table, conflict: Sequence[str]) -> sa.Insert:
        return pg_insert(table).on_conflict_do_nothing(index_elements=list(conflict))

    def _upsert(self, table: sa.Table, conflict: Sequence[str], update: Sequence[str]) -> sa.Insert:
        statement = pg_insert(table)
        return statement.on_conflict_do_update(
            index_elements=list(conflict), set_={name: statement.excluded[name] for name in update}
        )

    def _lock_candidates(self, select: sa.Select[Any]) -> sa.Select[Any]:
        return select.with_for_update(skip_locked=True)

    def lock_keys(self, keys: Sequence[tuple[str, str, str]]) -> None:
        """Take a transaction-scoped advisory lock per key, in sorted order (no deadlocks)."""
        if keys:
            ids = sorted({key_lock_id(*key) for key in keys})
            self.connection.exec_driver_sql(_LOCK_KEYS, {"keys": ids})

    def _unnest(
        self, insert: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]], suffix: str = ""
    ) -> sa.CursorResult[Unpack[tuple[Any, ...]]]:
        """``INSERT INTO table (columns) SELECT * FROM unnest(one binary array per column)``.

        ``columns`` pairs each name with its array element type (the cast target).
        """
        names = ", ".join(name for name, _ in columns)
        arrays = ", ".join(f"%(c{i})b::{pg_type}[]" for i, (_, pg_type) in enumerate(columns))
        params = {f"c{i}": [row[i] for row in rows] for i in range(len(columns))}
        return self.connection.exec_driver_sql(
            f"INSERT INTO {insert} ({names}) SELECT * FROM unnest({arrays}) {suffix}", params
        )

    def insert_runs(self, runs: Sequence[RunRecord]) -> None:
        if runs:
            self._unnest(
                "runs",
                _RUN_COLUMNS,
                [
                    (r.id, r.tenant, r.definition_hash, r.subject, r.status, r.state, r.wake_at, r.ready,
                     r.created_at, r.updated_at, r.revision)
                    for r in runs
                ],
            )

    def append_history(self, entries: Sequence[HistoryEntry]) -> None:
        if entries:
            self._unnest(
                "history",
                (("run_id", "text"), ("at", "float8"), ("kind", "text"), ("data", _JSONB)),
                [(e.run_id, e.at, e.kind, dumps(e.data)) for e in entries],
            )

    def _insert_deliveries(self, items: Sequence[tuple[str, str, int | None, dict[str, Any] | None]]) -> None:
        self._unnest(
            "deliveries",
            (("run_id", "text"), ("sub_id", "text"), ("event_seq", "int8"), ("payload", _JSONB), ("consumed", "bool")),
            [(run_id, sub_id, seq, None if p is None else dumps(p), False) for run_id, sub_id, seq, p in items],
        )

    def _mark_ready(self, run_ids: Sequence[str]) -> None:
        self.connection.exec_driver_sql(
            "UPDATE runs SET ready = true WHERE id = ANY(%(ids)b::text[]) AND NOT ready", {"ids": list(run_ids)}
        )

    def consume_deliveries(self, ids: Sequence[int]) -> None:
        if ids:
            self.connection.exec_driver_sql(
                "UPDATE deliveries SET consumed = true WHERE id = ANY(%(ids)b::int8[])", {"ids": list(ids)}
            )

    def replace_subscriptions(self, run_ids: Sequence[str], subs: Sequence[Subscription]) -> None:
        if run_ids:
            self.connection.exec_driver_sql(
                "DELETE FROM subscriptions WHERE run_id = ANY(%(ids)b::text[])", {"ids": unique(run_ids)}
            )
        super().replace_subscriptions([], subs)

    def _insert_subscriptions(self, rows: list[tuple[str, str, str, str, str, int]]) -> None:
        self._unnest(
            "subscriptions",
            (("run_id", "text"), ("sub_id", "text"), ("event_type", "text"), ("key", "text"), ("tenant", "text"),
             ("since_seq", "int8")),
            rows,
        )

    def add_outbox(self, rows: Sequence[OutboxRow]) -> None:
        if rows:
            self._unnest(
                "outbox",
                _OUTBOX_COLUMNS,
                [
                    (row.key, row.tenant, row.run_id, row.kind, dumps(row.payload), row.status, row.attempts,
                     row.next_attempt_at, None if row.result is None else dumps(row.result), row.created_at)
                    for row in rows
                ],
                "ON CONFLICT (key) DO NOTHING",
            )

    def _insert_event_rows(self, events: Sequence[EventRecord]) -> dict[tuple[str, str, str], int]:
        # INSERT ... SELECT FROM unnest draws seqs in array order.
        result = self._unnest(
            "events",
            _EVENT_COLUMNS,
            [
                (ev.tenant, ev.id, ev.source, ev.type, ev.subject, ev.time, dumps(ev.envelope), ev.received_at)
                for ev in events
            ],
            "ON CONFLICT (tenant, source, id) DO NOTHING RETURNING seq, tenant, source, id",
        )
        return {(row[1], row[2], row[3]): row[0] for row in result}

    def _insert_event_keys(self, rows: list[tuple[str, str, str, int]]) -> None:
        self._unnest("event_keys", (("tenant", "text"), ("type", "text"), ("key", "text"), ("seq", "int8")), rows)

    def save_runs(self, runs: Sequence[RunRecord], *, worker: str | None) -> list[str]:
        """See :meth:`Transaction.save_runs`; also bumps ``revision`` on the written records.

        One statement: ``RETURNING`` lists the rows that passed the revision guard, so no row
        count is needed.
        """
        if not runs:
            return []
        params = {
            "ids": [r.id for r in runs],
            "revisions": [r.revision for r in runs],
            "states": [r.state for r in runs],
            "statuses": [r.status for r in runs],
            "wake_ats": [r.wake_at for r in runs],
            "readies": [r.ready for r in runs],
            "updated_ats": [r.updated_at for r in runs],
        }
        written = {row[0] for row in self.connection.exec_driver_sql(_SAVE_RUNS, params)}
        stale: list[str] = []
        for run in runs:
            if run.id in written:
                run.revision += 1
            else:
                stale.append(run.id)
        return stale


class PostgresStore(SqlStore):
    """A PostgreSQL database reached through psycopg 3."""

    transaction_class = PostgresTransaction
