"""The outbox dispatcher against the real store (SQLite and PostgreSQL) and a real HTTP server."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from itinera.clock import VirtualClock
from itinera.connectors import (
    Dispatcher,
    EmitConnector,
    HttpConnector,
    Outcome,
    RetryPolicy,
    default_dispatcher,
    outbox_sub_id,
)
from itinera.errors import ErrorType
from itinera.store import Store
from itinera.store.base import Delivery, OutboxRow, RunRecord
from tests.support.httpserver import RecordingServer, free_port

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
RETRY = RetryPolicy(max_attempts=3, initial_delay=1.0, multiplier=2.0, max_delay=60.0, jitter=0.0)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        yield running


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def wall() -> VirtualClock:
    """Wall-clock time for leases, moved by hand so a test can outlive a lease without sleeping."""
    return VirtualClock(time.time())


@pytest.fixture
def connectors() -> Iterator[dict[str, Any]]:
    with HttpConnector(retry=RETRY) as http, EmitConnector(retry=RETRY) as emit:
        yield {"http": http, "emit": emit}


@pytest.fixture
def dispatcher(store: Store, clock: VirtualClock, wall: VirtualClock, connectors: dict[str, Any]) -> Iterator[Dispatcher]:
    with Dispatcher(store, clock=clock, connectors=connectors, worker="d1", wall_clock=wall.now) as running:
        yield running


def make_row(key: str, kind: str, payload: dict[str, Any], *, run_id: str = "run-1") -> OutboxRow:
    return OutboxRow(key=key, tenant="acme", run_id=run_id, kind=kind, payload=payload, created_at=START, next_attempt_at=START)


def http_row(key: str, url: str, *, run_id: str = "run-1", notify: bool = True, **fields: Any) -> OutboxRow:
    payload: dict[str, Any] = {"method": "get", "url": url, "headers": {}, "query": {}, "body": None, "output": "content"}
    payload |= {"redirect": False, "timeout": None, "notify": notify} | fields
    return make_row(key, "http", payload, run_id=run_id)


def add(store: Store, *rows: OutboxRow, runs: tuple[str, ...] = ("run-1",)) -> None:
    with store.transaction() as tx:
        tx.insert_runs(
            [
                RunRecord(
                    id=run_id,
                    tenant="acme",
                    definition_hash="h",
                    subject=None,
                    status="waiting",
                    state=b"{}",
                    wake_at=None,
                    ready=False,
                    created_at=START,
                    updated_at=START,
                )
                for run_id in runs
            ]
        )
        tx.add_outbox(list(rows))


def outbox(store: Store) -> dict[str, OutboxRow]:
    with store.transaction() as tx:
        return {row.key: row for row in tx.outbox()}


def deliveries(store: Store, run_id: str = "run-1") -> list[Delivery]:
    with store.transaction() as tx:
        return tx.deliveries([run_id])


def is_ready(store: Store, run_id: str = "run-1") -> bool:
    with store.transaction() as tx:
        run = tx.get_run(run_id)
    assert run is not None
    return run.ready


# --------------------------------------------------------------------------- delivery


def test_a_delivered_row_hands_its_result_to_the_waiting_run(
    store: Store, server: RecordingServer, dispatcher: Dispatcher
) -> None:
    server.set_rule("/pets/1", json={"name": "milou"})
    add(store, http_row("run-1/do/0/getPet", server.url + "/pets/1"))

    assert dispatcher.dispatch_once() == 1

    row = outbox(store)["run-1/do/0/getPet"]
    assert row.status == "delivered" and row.attempts == 1
    [delivery] = deliveries(store)
    assert delivery.sub_id == outbox_sub_id(row.key) == "outbox:run-1/do/0/getPet"
    assert delivery.payload is not None and delivery.payload == row.result
    assert delivery.payload["ok"] is True and delivery.payload["content"] == {"name": "milou"}
    assert is_ready(store)
    assert dispatcher.dispatch_once() == 0


def test_no_delivery_when_the_run_does_not_wait(store: Store, server: RecordingServer, dispatcher: Dispatcher) -> None:
    add(store, http_row("k1", server.url + "/fire-and-forget", notify=False))
    assert dispatcher.dispatch_once() == 1
    assert outbox(store)["k1"].status == "delivered"
    assert deliveries(store) == [] and not is_ready(store)


def test_an_http_error_answer_is_delivered_and_not_retried(
    store: Store, server: RecordingServer, dispatcher: Dispatcher, clock: VirtualClock
) -> None:
    server.set_rule("/refuse", status=422, json={"field": "email"})
    add(store, http_row("k1", server.url + "/refuse"))

    dispatcher.dispatch_once()
    clock.advance(3600)
    assert dispatcher.dispatch_once() == 0

    row = outbox(store)["k1"]
    assert row.status == "delivered" and row.attempts == 1
    [delivery] = deliveries(store)
    assert delivery.payload is not None
    error = delivery.payload["error"]
    assert delivery.payload["ok"] is False and error["type"] == ErrorType.COMMUNICATION and error["status"] == 422
    assert error["response"]["content"] == {"field": "email"}
    assert server.recording.request_count(path="/refuse") == 1


# --------------------------------------------------------------------------- retries


def test_connection_refused_backs_off_then_dead_letters(store: Store, dispatcher: Dispatcher, clock: VirtualClock) -> None:
    add(store, http_row("k1", f"http://127.0.0.1:{free_port()}/down"))

    assert dispatcher.dispatch_once() == 1
    row = outbox(store)["k1"]
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, START + 1.0)
    assert row.result is not None and row.result["error"]["status"] == 503  # the last error, for operators
    assert deliveries(store) == []

    assert dispatcher.dispatch_once() == 0  # not due yet: the backoff is a time, not a sleep
    clock.advance(1.0)
    assert dispatcher.dispatch_once() == 1
    row = outbox(store)["k1"]
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 2, START + 1.0 + 2.0)

    clock.advance(2.0)
    assert dispatcher.dispatch_once() == 1
    row = outbox(store)["k1"]
    assert (row.status, row.attempts) == ("dead", 3)

    [delivery] = deliveries(store)
    assert delivery.payload is not None and delivery.payload["ok"] is False
    error = delivery.payload["error"]
    assert error["type"] == ErrorType.COMMUNICATION and error["status"] == 503 and error["attempts"] == 3
    assert "gave up after 3 attempts" in error["detail"]


def test_the_idempotency_key_is_the_same_on_every_retry(
    store: Store, server: RecordingServer, dispatcher: Dispatcher, clock: VirtualClock
) -> None:
    server.set_rule("/charge", fail_first=2, fail_status=0, json={"charged": True})
    add(store, http_row("run-1/do/2/charge#0", server.url + "/charge", method="post", body={"cents": 500}))

    for _ in range(3):
        assert dispatcher.dispatch_once() == 1
        clock.advance(60)

    requests = server.recording.requests(path="/charge")
    assert len(requests) == 3
    assert {r.headers["idempotency-key"] for r in requests} == {"run-1/do/2/charge#0"}
    assert server.recording.effects("run-1/do/2/charge#0") == 1
    row = outbox(store)["run-1/do/2/charge#0"]
    assert (row.status, row.attempts) == ("delivered", 3)
    [delivery] = deliveries(store)
    assert delivery.payload is not None and delivery.payload["content"] == {"charged": True}


def test_retry_delays_grow_are_capped_and_jittered() -> None:
    policy = RetryPolicy(max_attempts=10, initial_delay=1.0, multiplier=3.0, max_delay=20.0, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 3.0, 9.0, 20.0, 20.0]
    assert policy.should_retry(9) and not policy.should_retry(10)

    jittered = RetryPolicy(initial_delay=10.0, multiplier=1.0, jitter=0.5)
    rng = random.Random(7)
    draws = [jittered.delay(1, rng) for _ in range(200)]
    assert all(5.0 <= d <= 10.0 for d in draws) and len(set(draws)) > 100
    assert [jittered.delay(1, random.Random(7)) for _ in range(2)] == [draws[0]] * 2

    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)


# --------------------------------------------------------------------------- misconfiguration


def test_an_unknown_kind_is_dead_with_a_clear_problem(store: Store, dispatcher: Dispatcher) -> None:
    add(store, make_row("k1", "pigeon", {"notify": True}))

    assert dispatcher.dispatch_once() == 1

    assert outbox(store)["k1"].status == "dead"
    [delivery] = deliveries(store)
    assert delivery.payload is not None
    error = delivery.payload["error"]
    assert error["type"] == ErrorType.CONFIGURATION
    assert "'pigeon'" in error["detail"] and "emit, http" in error["detail"]


class Exploding:
    kind = "boom"
    retry = RETRY

    def send(self, row: OutboxRow) -> Outcome:
        raise RuntimeError("connector bug")


def test_a_connector_that_raises_dead_letters_the_row(
    store: Store, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    add(store, make_row("k1", "boom", {"notify": True}))
    with Dispatcher(store, clock=clock, connectors={"boom": Exploding()}, worker="d1") as dispatcher:
        dispatcher.dispatch_once()

    assert outbox(store)["k1"].status == "dead"
    [delivery] = deliveries(store)
    assert delivery.payload is not None
    error = delivery.payload["error"]
    assert error["type"] == ErrorType.RUNTIME and "RuntimeError: connector bug" in error["detail"]
    assert "connector 'boom' raised" in caplog.text


# --------------------------------------------------------------------------- emit


def test_emit_rows_are_published_or_passed_through(
    store: Store, server: RecordingServer, dispatcher: Dispatcher, clock: VirtualClock
) -> None:
    event = {"specversion": "1.0", "id": "e-1", "source": "/j", "type": "com.acme.done"}
    server.set_rule("/sink", fail_first=1, fail_status=503)

    add(
        store,
        make_row("internal", "emit", {"event": event, "sink": None, "notify": False}),
        make_row("external", "emit", {"event": event, "sink": server.url + "/sink", "notify": False}),
    )

    assert dispatcher.dispatch_once() == 2
    rows = outbox(store)
    assert rows["internal"].status == "delivered"
    assert rows["external"].status == "pending"  # the sink answered 503: retried later
    clock.advance(1.0)
    assert dispatcher.dispatch_once() == 1
    assert outbox(store)["external"].status == "delivered"
    assert server.recording.effects("external") == 1 and server.recording.request_count(key="internal") == 0
    assert deliveries(store) == []


# --------------------------------------------------------------------------- batches and concurrency


class Gate:
    """A connector whose sends all block until ``parties`` of them are in flight at once."""

    kind = "gate"
    retry = RETRY

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=10)

    def send(self, row: OutboxRow) -> Outcome:
        self.barrier.wait()  # raises BrokenBarrierError (a dead row) unless sends overlap
        return Outcome.delivered({"ok": True})


def test_a_batch_is_sent_concurrently(store: Store, clock: VirtualClock) -> None:
    add(store, *[make_row(f"k{i}", "gate", {}) for i in range(8)])
    with Dispatcher(store, clock=clock, connectors={"gate": Gate(8)}, worker="d1", concurrency=8) as dispatcher:
        assert dispatcher.dispatch_once() == 8
    assert {row.status for row in outbox(store).values()} == {"delivered"}


def test_batch_size_bounds_a_claim(
    store: Store, server: RecordingServer, clock: VirtualClock, connectors: dict[str, Any]
) -> None:
    add(store, *[http_row(f"k{i}", server.url + "/n") for i in range(5)])
    with Dispatcher(store, clock=clock, connectors=connectors, worker="d1", batch=2) as dispatcher:
        assert [dispatcher.dispatch_once() for _ in range(4)] == [2, 2, 1, 0]
    assert len(deliveries(store)) == 5 and server.recording.effect_count(path="/n") == 5


def test_the_run_loop_dispatches_until_stopped(store: Store, server: RecordingServer, dispatcher: Dispatcher) -> None:
    add(store, *[http_row(f"k{i}", server.url + "/loop") for i in range(3)])
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,), kwargs={"idle_seconds": 0.01})
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while len(deliveries(store)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
    assert {row.status for row in outbox(store).values()} == {"delivered"}


# --------------------------------------------------------------------------- crashes


def test_a_crash_after_sending_resends_with_the_same_keys_and_one_effect_each(
    store: Store, server: RecordingServer, clock: VirtualClock, wall: VirtualClock, connectors: dict[str, Any]
) -> None:
    server.set_rule("/book", json={"booked": True})
    keys = [f"run-{i}/do/0/book#0" for i in range(6)]
    rows = [http_row(key, server.url + "/book", run_id=f"run-{i}", method="post") for i, key in enumerate(keys)]
    add(store, *rows, runs=tuple(f"run-{i}" for i in range(6)))

    # The first dispatcher claims and sends, then "dies" before recording anything.
    crashed = Dispatcher(store, clock=clock, connectors=connectors, worker="crashed", lease_seconds=30, wall_clock=wall.now)
    with crashed:
        claimed = crashed.claim()
        assert [o.kind for o in crashed.send(claimed)] == ["delivered"] * 6
    assert server.recording.effects_per_key() == {key: 1 for key in keys}

    survivor = Dispatcher(store, clock=clock, connectors=connectors, worker="survivor", lease_seconds=30, wall_clock=wall.now)
    with survivor:
        assert survivor.dispatch_once() == 0  # the dead dispatcher's lease still holds the rows
        wall.advance(31)
        assert survivor.dispatch_once() == 6

    assert server.recording.requests_per_key() == {key: 2 for key in keys}
    assert server.recording.effects_per_key() == {key: 1 for key in keys}
    assert all(r.replayed for r in server.recording.requests(path="/book")[6:])
    stored = outbox(store)
    assert {(stored[key].status, stored[key].attempts) for key in keys} == {("delivered", 1)}
    for i, key in enumerate(keys):
        [delivery] = deliveries(store, f"run-{i}")
        assert delivery.sub_id == "outbox:" + key and delivery.payload is not None
        assert delivery.payload["content"] == {"booked": True}


def test_the_default_dispatcher_has_the_built_in_connectors(store: Store, server: RecordingServer, clock: VirtualClock) -> None:
    event = {"specversion": "1.0", "id": "e-1", "source": "/j", "type": "com.acme.done"}
    add(
        store,
        http_row("call", server.url + "/hello"),
        make_row("emit", "emit", {"event": event, "sink": server.url + "/events", "notify": False}),
    )
    with default_dispatcher(store, clock=clock, worker="engine-1", batch=10) as dispatcher:
        assert dispatcher.dispatch_once() == 2
    assert {row.status for row in outbox(store).values()} == {"delivered"}
    assert server.recording.effects_per_key() == {"call": 1, "emit": 1}
