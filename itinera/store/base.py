"""The store: the one interface the runtime persists through, with one module per backend.

The engine owns the meaning of every blob (a run's ``state`` is opaque here); the store owns
transactions, uniqueness, indexes and leases. Every method of :class:`Transaction` runs inside
the one database transaction opened by :meth:`Store.transaction`, so a batch of run states, their
history, their subscriptions and their outbox rows commit together or not at all.

Times: ``now`` arguments are the engine's clock (possibly virtual) in epoch seconds; lease
deadlines are wall-clock epoch seconds, because leases are about process liveness.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, NewType, Protocol

TenantId = NewType("TenantId", str)
RunId = NewType("RunId", str)
SubjectId = NewType("SubjectId", str)

RunStatus = Literal["pending", "running", "waiting", "suspended", "completed", "faulted", "cancelled"]
ACTIVE_STATUSES: tuple[RunStatus, ...] = ("pending", "running", "waiting")
OutboxStatus = Literal["pending", "delivered", "dead"]


@dataclass(frozen=True, kw_only=True, slots=True)
class DefinitionRecord:
    """One version of a journey definition, stored once by the hash of its canonical JSON."""

    tenant: str
    hash: str
    namespace: str
    name: str
    version: str
    source: str  # the text as the author wrote it (YAML or JSON)
    document: dict[str, Any]  # the parsed definition
    created_at: float


@dataclass(frozen=True, kw_only=True, slots=True)
class Deployment:
    """Which definition version is active for (tenant, namespace, name)."""

    tenant: str
    namespace: str
    name: str
    hash: str
    deployed_at: float


@dataclass(kw_only=True, slots=True)
class RunRecord:
    """One run. ``state`` is the engine's serialized state (orjson bytes), opaque to the store."""

    id: str
    tenant: str
    definition_hash: str
    subject: str | None
    status: RunStatus
    state: bytes
    wake_at: float | None  # the earliest timer of the run (engine clock); indexed
    ready: bool  # true when the run has work to do now (new run, deliveries waiting)
    created_at: float
    updated_at: float
    revision: int = 0  # incremented by every save; guards against a stale lease holder


@dataclass(frozen=True, kw_only=True, slots=True)
class EventRecord:
    """A stored CloudEvent. ``seq`` is assigned by the store on insert, strictly increasing."""

    tenant: str
    id: str
    source: str
    type: str
    subject: str | None
    time: str | None
    envelope: dict[str, Any]  # the whole structured-mode CloudEvent
    received_at: float
    seq: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class Subscription:
    """A run listening for events of ``event_type`` whose correlation ``key`` matches.

    ``key`` is computed by the engine ("*" matches any event of the type). Only events with
    ``seq > since_seq`` are delivered to it.
    """

    tenant: str
    run_id: str
    sub_id: str
    event_type: str
    key: str
    since_seq: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Delivery:
    """Something for a run to consume: a matched event or the result of an outbox row."""

    id: int
    run_id: str
    sub_id: str
    event_seq: int | None
    payload: dict[str, Any] | None  # the event envelope, or the outbox result


@dataclass(frozen=True, kw_only=True, slots=True)
class HistoryEntry:
    """An append-only lifecycle record of a run (``kind`` names its shape)."""

    run_id: str
    at: float
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class OutboxRow:
    """A side effect recorded before it is attempted. ``key`` is the idempotency key (unique)."""

    key: str
    tenant: str
    run_id: str
    kind: str  # "http", "emit", later connector names
    payload: dict[str, Any]
    created_at: float
    next_attempt_at: float
    status: OutboxStatus = "pending"
    attempts: int = 0
    result: dict[str, Any] | None = None
    id: int = 0


class Transaction(Protocol):
    """The operations available inside one database transaction."""

    # definitions
    def save_definition(self, record: DefinitionRecord) -> None:
        """Insert the definition unless (tenant, hash) is already stored."""

    def get_definition(self, tenant: str, hash: str) -> DefinitionRecord | None: ...

    def deploy(self, deployment: Deployment) -> None:
        """Make ``deployment.hash`` the active version of (tenant, namespace, name)."""

    def deployments(self, tenant: str | None = None) -> list[Deployment]: ...

    # events
    def insert_events(self, events: Sequence[tuple[EventRecord, Sequence[str]]]) -> list[EventRecord | None]:
        """Store new events, each with its correlation keys (computed by the engine).

        Each event is indexed under (tenant, type, key) for every key given plus "*". A duplicate
        (tenant, source, id) -- already stored, or earlier in the same call -- yields None and
        changes nothing. The returned records carry their assigned ``seq``.
        """

    def events_for(self, subs: Sequence[Subscription], limit_per_sub: int = 100) -> list[tuple[Subscription, EventRecord]]:
        """Stored events matching each subscription's (tenant, type, key) with seq > since_seq.

        Used when a run starts listening, so an event that arrived before the subscription was
        committed still wakes it. Events are matched by the key index, never scanned.
        """

    def max_event_seq(self) -> int: ...

    def get_event(self, tenant: str, seq: int) -> EventRecord | None: ...

    def lock_keys(self, keys: Sequence[tuple[str, str, str]]) -> None:
        """Serialize with other transactions touching the same (tenant, type, key).

        PostgreSQL takes transaction-scoped advisory locks (sorted, so no deadlock); SQLite's
        single writer already serializes, so it does nothing.
        """

    # subscriptions and deliveries
    def find_subscriptions(self, tenant: str, pairs: Sequence[tuple[str, str]]) -> list[Subscription]:
        """Subscriptions whose (event_type, key) is one of ``pairs``."""

    def replace_subscriptions(self, run_ids: Sequence[str], subs: Sequence[Subscription]) -> None:
        """Drop every subscription of ``run_ids`` and insert ``subs``."""

    def add_deliveries(self, items: Sequence[tuple[str, str, int | None, dict[str, Any] | None]]) -> None:
        """Queue (run_id, sub_id, event_seq, payload) deliveries and mark those runs ready."""

    def refresh_ready(self, run_ids: Sequence[str]) -> None:
        """Mark ready those of ``run_ids`` that still have unconsumed deliveries.

        A worker calls this after saving runs it advanced, so a delivery added by another
        transaction between its claim and its commit is not slept on.
        """

    def deliveries(self, run_ids: Sequence[str]) -> list[Delivery]:
        """Unconsumed deliveries of ``run_ids``, oldest first."""

    def consume_deliveries(self, ids: Sequence[int]) -> None: ...

    # runs
    def insert_runs(self, runs: Sequence[RunRecord]) -> None: ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def list_runs(
        self, *, tenant: str | None = None, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[RunRecord]: ...

    def count_runs(self, *, tenant: str | None = None) -> dict[str, int]:
        """Number of runs per status."""

    def claim_runs(self, *, worker: str, now: float, wall_now: float, lease_until: float, limit: int) -> list[RunRecord]:
        """Lease up to ``limit`` runs that have work now.

        A run has work when its status is pending, running or waiting, and it is ``ready`` or
        its ``wake_at <= now``, and no live lease holds it (``lease_until`` absent or
        ``< wall_now``). PostgreSQL uses ``FOR UPDATE SKIP LOCKED``. Oldest first.
        """

    def save_runs(self, runs: Sequence[RunRecord], *, worker: str | None) -> list[str]:
        """Write back runs (state, status, wake_at, ready, updated_at), release their lease and
        bump ``revision``; one ``executemany``. Rows whose stored revision differs from
        ``run.revision`` (someone else advanced them: our lease expired) are not written; their
        ids are returned so the caller can drop their effects.
        """

    def next_wake_at(self) -> float | None:
        """The earliest ``wake_at`` among active runs, for a clock to jump to."""

    # history
    def append_history(self, entries: Sequence[HistoryEntry]) -> None: ...

    def history(self, run_id: str) -> list[HistoryEntry]: ...

    # outbox
    def add_outbox(self, rows: Sequence[OutboxRow]) -> None:
        """Insert rows; a row whose key is already stored is ignored (idempotent)."""

    def claim_outbox(self, *, now: float, wall_now: float, lease_until: float, limit: int) -> list[OutboxRow]:
        """Lease due pending rows (``next_attempt_at <= now``), oldest first (SKIP LOCKED on PG)."""

    def finish_outbox(self, key: str, *, status: OutboxStatus, attempts: int, result: dict[str, Any] | None, next_attempt_at: float) -> None:
        """Record an attempt's outcome; ``pending`` with a later ``next_attempt_at`` retries."""

    def next_outbox_attempt(self) -> float | None:
        """The earliest ``next_attempt_at`` among pending outbox rows (a retry is a timer)."""

    def outbox(self, *, run_id: str | None = None, status: OutboxStatus | None = None) -> list[OutboxRow]: ...


class Store(Protocol):
    """A database the runtime persists to."""

    url: str

    def transaction(self) -> AbstractContextManager[Transaction]:
        """Open one transaction (SQLite: ``BEGIN IMMEDIATE``); commit on exit, roll back on error."""

    def read(self) -> AbstractContextManager[Transaction]:
        """Open a transaction for reading only (SQLite: it does not queue behind the writer)."""

    def close(self) -> None: ...


def iter_chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Yield ``items`` in slices of at most ``size`` (for bounded IN lists)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
