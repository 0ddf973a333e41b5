"""The outbox dispatcher: performs recorded side effects through connectors, at least once.

The engine never performs a side effect inside a run's step. It writes an
:class:`~itinera.store.base.OutboxRow` in the same transaction as the run state; the row's
``key`` is the idempotency key (run id + task path + iteration). The :class:`Dispatcher` then
works in three phases, each row of a batch going through all three:

1. **claim** -- one transaction leases up to ``batch`` due rows (``next_attempt_at <= now``)
   for ``lease_seconds`` of wall-clock time and commits, so other dispatchers skip them;
2. **send** -- the rows' connectors are called concurrently, outside any transaction;
3. **record** -- one transaction writes every outcome (``finish_outbox``) and, for rows whose
   payload says ``notify``, queues the result for the run (``add_deliveries`` with
   ``sub_id = "outbox:" + key``), which marks the run ready.

**The exactly-once-effect contract.** A process can die between phases 2 and 3: the effect may
have happened, but nothing says so. The lease then runs out, another dispatcher claims the row
and sends it again *with the same key*, and a receiver that honours ``Idempotency-Key``
performs the effect once and replays its first answer. Delivery is at least once; the effect is
exactly once where the receiver deduplicates. For the same reason a lease that expires while a
send is slow can lead to two sends and two recorded outcomes; keep the connectors' timeouts
below ``lease_seconds`` (the HTTP connector caps them at 25 s). A run must therefore accept
(ignore) a second delivery for an outbox subscription it has already consumed.

**Retries.** Each connector declares a :class:`~itinera.connectors.base.RetryPolicy`. A
transient outcome is recorded as ``pending`` with ``next_attempt_at = now + backoff`` (computed,
never slept on: the dispatcher keeps working on other rows), with the last error kept in the
row's ``result``. When the attempts run out, or on a permanent failure, the row is ``dead``
(the dead-letter queue, for an operator to inspect and replay) and the run receives
``{"ok": false, "error": problem}``. Times for ``next_attempt_at`` come from ``clock`` (the
engine's, possibly virtual); leases use wall-clock time because they are about process
liveness.

**Concurrency.** Connectors are synchronous and the store is synchronous, so sends run on a
thread pool of ``concurrency`` threads (created on first use, shared across batches) and each
connector keeps one pooled, thread-safe client. Sending is network-bound, so threads overlap
the waits well; an asyncio loop would buy little here and would have to hop back to threads
for every store call and for blocking connectors (SMTP, SQL).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from itinera.clock import Clock
from itinera.connectors.base import DEFAULT_RETRY, Connector, Outcome, RetryPolicy
from itinera.connectors.emit import EmitConnector
from itinera.connectors.http import HttpConnector
from itinera.errors import ErrorType, Problem
from itinera.store.base import OutboxRow, OutboxStatus, Store

logger = logging.getLogger(__name__)

SUB_PREFIX = "outbox:"
"""Deliveries of outbox results use ``sub_id = SUB_PREFIX + row.key``."""


class SupportsClose(Protocol):
    def close(self) -> None: ...


def default_dispatcher(store: Store, *, clock: Clock, worker: str, **options: Any) -> Dispatcher:
    """A dispatcher with the built-in connectors (``http``, ``emit``), which it closes itself.

    ``options`` are the remaining :class:`Dispatcher` arguments (``lease_seconds``, ``batch``...).
    """
    http = HttpConnector()
    emit = EmitConnector()
    return Dispatcher(store, clock=clock, connectors={"http": http, "emit": emit}, worker=worker, closes=(http, emit), **options)


def outbox_sub_id(key: str) -> str:
    """The subscription id under which a run receives the result of outbox row ``key``."""
    return SUB_PREFIX + key


class Dispatcher:
    """Claims due outbox rows, sends them through connectors and records the outcomes.

    Args:
        store: where the outbox lives.
        clock: the engine's clock; ``next_attempt_at`` and due-ness are measured on it.
        connectors: the connector for each row ``kind``; a row of another kind is dead-lettered.
        worker: a name for this dispatcher, used in logs and thread names.
        lease_seconds: how long a claimed batch is reserved; must exceed the slowest send.
        batch: the most rows claimed (and recorded) per transaction.
        concurrency: the most rows sent at once.
        rng: the source of retry jitter (a seeded one makes backoff reproducible).
        wall_clock: wall-clock time for leases (``time.time`` unless a test needs otherwise).
        closes: resources the dispatcher owns and closes in :meth:`close` (e.g. connectors it
            was built with by :func:`default_dispatcher`); by default it closes none.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        connectors: Mapping[str, Connector],
        worker: str,
        lease_seconds: float = 30.0,
        batch: int = 100,
        concurrency: int = 16,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
        closes: Sequence[SupportsClose] = (),
    ) -> None:
        if lease_seconds <= 0 or batch < 1 or concurrency < 1:
            raise ValueError("lease_seconds must be positive, batch and concurrency at least 1")
        self._store = store
        self._clock = clock
        self._connectors = dict(connectors)
        self.worker = worker
        self._lease = lease_seconds
        self._batch = batch
        self._concurrency = concurrency
        self._rng = rng or random.Random()
        self._wall = wall_clock
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._closes = list(closes)

    # ------------------------------------------------------------------ the loop

    def dispatch_once(self) -> int:
        """Claim one batch of due rows, send them and record the outcomes.

        Returns:
            the number of rows claimed (0 when nothing was due).
        """
        rows = self.claim()
        if not rows:
            return 0
        started = time.monotonic()
        outcomes = self.send(rows)
        elapsed = time.monotonic() - started
        if elapsed > self._lease:
            logger.warning(
                "outbox %s: sending %d rows took %.1fs, longer than the %.1fs lease; "
                "another dispatcher may have sent them too (same idempotency keys)",
                self.worker,
                len(rows),
                elapsed,
                self._lease,
            )
        self.record(rows, outcomes)
        return len(rows)

    def run(self, stop_event: threading.Event, *, idle_seconds: float = 0.2) -> None:
        """Dispatch until ``stop_event`` is set, pausing ``idle_seconds`` when nothing is due.

        A failing batch (the database unreachable, say) is logged and tried again after a pause;
        its rows' leases run out and they are claimed again, so nothing is lost.
        """
        try:
            while not stop_event.is_set():
                try:
                    claimed = self.dispatch_once()
                except Exception:
                    logger.exception("outbox %s: a batch failed; its rows will be retried", self.worker)
                    stop_event.wait(max(idle_seconds, 1.0))
                    continue
                if claimed < self._batch:
                    stop_event.wait(idle_seconds)
        finally:
            self.close()

    # ------------------------------------------------------------------ the three phases

    def claim(self) -> list[OutboxRow]:
        """Lease up to ``batch`` due rows in one committed transaction."""
        wall = self._wall()
        with self._store.transaction() as tx:
            return tx.claim_outbox(now=self._clock.now(), wall_now=wall, lease_until=wall + self._lease, limit=self._batch)

    def send(self, rows: Sequence[OutboxRow]) -> list[Outcome]:
        """Attempt each row once through its connector, up to ``concurrency`` at a time.

        Never raises for a row: an unknown kind or a connector that raises becomes a failed
        outcome. The outcomes are in the order of ``rows``.
        """
        if len(rows) <= 1 or self._concurrency == 1:
            return [self._attempt(row) for row in rows]
        return list(self._executor().map(self._attempt, rows))

    def record(self, rows: Sequence[OutboxRow], outcomes: Sequence[Outcome]) -> None:
        """Write the outcomes of one attempt of ``rows`` and notify runs, in one transaction."""
        if len(rows) != len(outcomes):
            raise ValueError("one outcome per row is needed")
        now = self._clock.now()
        deliveries: list[tuple[str, str, int | None, dict[str, Any] | None]] = []
        with self._store.transaction() as tx:
            for row, outcome in zip(rows, outcomes, strict=True):
                attempts = row.attempts + 1
                status, result, next_attempt_at = self._settle(row, outcome, attempts, now)
                tx.finish_outbox(row.key, status=status, attempts=attempts, result=result, next_attempt_at=next_attempt_at)
                if status != "pending" and row.payload.get("notify"):
                    deliveries.append((row.run_id, outbox_sub_id(row.key), None, result))
            if deliveries:
                tx.add_deliveries(deliveries)

    # ------------------------------------------------------------------ helpers

    def _settle(self, row: OutboxRow, outcome: Outcome, attempts: int, now: float) -> tuple[OutboxStatus, dict[str, Any], float]:
        """The row's new status, stored result and next attempt time for this outcome."""
        if outcome.kind == "delivered":
            return "delivered", outcome.run_result(), now
        problem = dict(outcome.problem or {})
        if outcome.kind == "transient":
            policy = self._retry_policy(row.kind)
            if policy.should_retry(attempts):
                delay = policy.delay(attempts, self._rng)
                return "pending", {"ok": False, "error": problem}, now + delay
            problem["attempts"] = attempts
            detail = problem.get("detail")
            problem["detail"] = f"{detail} (gave up after {attempts} attempts)" if detail else f"gave up after {attempts} attempts"
        logger.warning("outbox %s: row %s (%s) dead-lettered: %s", self.worker, row.key, row.kind, problem.get("detail"))
        return "dead", {"ok": False, "error": problem}, now

    def _retry_policy(self, kind: str) -> RetryPolicy:
        connector = self._connectors.get(kind)
        return connector.retry if connector is not None else DEFAULT_RETRY

    def _attempt(self, row: OutboxRow) -> Outcome:
        connector = self._connectors.get(row.kind)
        if connector is None:
            known = ", ".join(sorted(self._connectors)) or "none"
            return Outcome.failed(
                Problem(
                    type=ErrorType.CONFIGURATION,
                    status=400,
                    title="Unknown connector",
                    detail=f"no connector handles outbox rows of kind {row.kind!r} (this dispatcher has: {known})",
                )
            )
        try:
            return connector.send(row)
        except Exception as exc:
            # A connector classifies the failures it knows; anything else is a bug in it, and
            # retrying a bug blindly could repeat an effect, so the row goes to the dead letters.
            logger.exception("outbox %s: connector %r raised on row %s", self.worker, row.kind, row.key)
            return Outcome.failed(
                Problem(
                    type=ErrorType.RUNTIME,
                    status=500,
                    title="Connector error",
                    detail=f"the {row.kind!r} connector raised {type(exc).__name__}: {exc}",
                )
            )

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix=f"outbox-{self.worker}")
            return self._pool

    def close(self) -> None:
        """Stop the send threads and close what the dispatcher owns (see ``closes``)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
            owned, self._closes = self._closes, []
        if pool is not None:
            pool.shutdown(wait=True)
        for resource in owned:
            resource.close()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
