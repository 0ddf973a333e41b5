"""The store contract (``itinera.store.base``), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from itinera.errors import ConfigurationError
from itinera.store import (
    ACTIVE_STATUSES,
    DefinitionRecord,
    Deployment,
    EventRecord,
    HistoryEntry,
    OutboxRow,
    RunRecord,
    Store,
    Subscription,
    create_engine,
    database_revision,
    normalize_url,
    open_store,
    schema_head,
    upgrade_database,
)
from itinera.store import tables as t

T = "acme"


def run(run_id: str, **fields: object) -> RunRecord:
    values: dict[str, object] = {
        "tenant": T,
        "definition_hash": "h1",
        "subject": "s-" + run_id,
        "status": "pending",
        "state": b"\x00state-" + run_id.encode(),
        "wake_at": None,
        "ready": True,
        "created_at": 100.0,
        "updated_at": 100.0,
    }
    values.update(fields)
    return RunRecord(id=run_id, **values)  # type: ignore[arg-type]  # test helper: fields vary


def event(event_id: str, type: str = "order.paid", *, tenant: str = T, source: str = "shop", **fields: object) -> EventRecord:
    values: dict[str, object] = {
        "subject": "c1",
        "time": "2026-01-01T00:00:00Z",
        "envelope": {"specversion": "1.0", "id": event_id, "source": source, "type": type, "data": {"n": event_id}},
        "received_at": 1.0,
    }
    values.update(fields)
    return EventRecord(tenant=tenant, id=event_id, source=source, type=type, **values)  # type: ignore[arg-type]


def outbox_row(key: str, **fields: object) -> OutboxRow:
    values: dict[str, object] = {
        "tenant": T,
        "run_id": "r1",
        "kind": "http",
        "payload": {"url": "http://127.0.0.1/x", "n": key},
        "created_at": 10.0,
        "next_attempt_at": 10.0,
    }
    values.update(fields)
    return OutboxRow(key=key, **values)  # type: ignore[arg-type]


def claim(store: Store, *, now: float = 1000.0, wall_now: float = 1000.0, limit: int = 100, worker: str = "w1") -> list[RunRecord]:
    with store.transaction() as tx:
        return tx.claim_runs(worker=worker, now=now, wall_now=wall_now, lease_until=wall_now + 30, limit=limit)


@pytest.fixture
def other_store(store_url: str) -> Iterator[Store]:
    """A second, independent store on the same database (another worker process)."""
    opened = open_store(store_url, migrate=False)
    try:
        yield opened
    finally:
        opened.close()


# --------------------------------------------------------------------------- schema


def test_migrate_from_empty_database_and_check_schema(empty_store_url: str) -> None:
    with pytest.raises(ConfigurationError, match="itinera db upgrade"):
        open_store(empty_store_url, migrate=False)
    assert database_revision(empty_store_url) is None

    open_store(empty_store_url).close()
    assert database_revision(empty_store_url) == schema_head()
    open_store(empty_store_url, migrate=False).close()  # current now: the check passes
    assert upgrade_database(empty_store_url) == schema_head()  # idempotent

    engine = create_engine(empty_store_url)
    try:
        with engine.connect() as connection:
            names = set(sa.inspect(connection).get_table_names())
            assert {table.name for table in t.ALL_TABLES} <= names
            # The migration creates exactly what tables.py declares.
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "version_table": t.VERSION_TABLE}
            )
            assert compare_metadata(context, t.metadata) == []
    finally:
        engine.dispose()


def test_schema_check_names_both_revisions(empty_store_url: str) -> None:
    open_store(empty_store_url).close()
    engine = create_engine(empty_store_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"UPDATE {t.VERSION_TABLE} SET version_num = 'ffff'"))
    finally:
        engine.dispose()
    with pytest.raises(ConfigurationError, match="schema is at ffff.*upgrade Itinera"):
        open_store(empty_store_url, migrate=False)


def test_url_forms(tmp_path: object) -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite+pysqlite:///x.db").drivername == "sqlite"
    with pytest.raises(ConfigurationError, match="unsupported database URL"):
        normalize_url("mysql://u@h/db")
    with pytest.raises(ConfigurationError, match="not a database URL"):
        normalize_url("::nonsense")


def test_in_memory_store_is_shared_between_transactions() -> None:
    store = open_store("sqlite://")
    try:
        with store.transaction() as tx:
            tx.insert_runs([run("r1")])
        with store.transaction() as tx:
            assert tx.get_run("r1") is not None
    finally:
        store.close()


def test_transaction_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.insert_runs([run("r1")])
        raise RuntimeError("boom")
    with store.transaction() as tx:
        assert tx.get_run("r1") is None


def test_active_statuses_match_the_index_predicate() -> None:
    assert t.ACTIVE_SQL == "status IN (" + ", ".join(f"'{s}'" for s in ACTIVE_STATUSES) + ")"


# --------------------------------------------------------------------------- definitions


def test_definitions_are_saved_once_and_deployed(store: Store) -> None:
    first = DefinitionRecord(
        tenant=T, hash="h1", namespace="ns", name="welcome", version="1.0.0",
        source="document: {}\n", document={"document": {"name": "welcome"}}, created_at=1.0,
    )
    with store.transaction() as tx:
        tx.save_definition(first)
        tx.save_definition(first)  # idempotent
        tx.save_definition(DefinitionRecord(**{**_fields(first), "source": "changed", "created_at": 2.0}))
        assert tx.get_definition(T, "h1") == first
        assert tx.get_definition("other", "h1") is None
        tx.deploy(Deployment(tenant=T, namespace="ns", name="welcome", hash="h1", deployed_at=1.0))
        tx.deploy(Deployment(tenant="other", namespace="ns", name="welcome", hash="h9", deployed_at=1.0))
    with store.transaction() as tx:
        tx.deploy(Deployment(tenant=T, namespace="ns", name="welcome", hash="h2", deployed_at=5.0))
        assert tx.deployments(T) == [Deployment(tenant=T, namespace="ns", name="welcome", hash="h2", deployed_at=5.0)]
        assert [d.tenant for d in tx.deployments()] == [T, "other"]


def _fields(record: DefinitionRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


# --------------------------------------------------------------------------- events


def test_insert_events_dedupes_within_and_across_calls(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.max_event_seq() == 0
        first = tx.insert_events([(event("e1"), ["c1"]), (event("e1"), ["c1"]), (event("e2"), ["c1"])])
    assert first[1] is None
    assert first[0] is not None and first[2] is not None
    assert 0 < first[0].seq < first[2].seq
    assert first[0].envelope == event("e1").envelope

    with store.transaction() as tx:
        second = tx.insert_events(
            [
                (event("e2"), ["c1"]),  # already stored
                (event("e3"), ["c2"]),
                (event("e1", source="other"), []),  # a different source: a different event
                (event("e1", tenant="t2"), []),  # a different tenant too
            ]
        )
        assert second[0] is None
        seqs = [e.seq for e in second[1:] if e is not None]
        assert len(seqs) == 3 and seqs == sorted(seqs) and seqs[0] > first[2].seq
        assert tx.max_event_seq() == seqs[-1]
        stored = tx.get_event(T, seqs[0])
        assert stored == second[1]
        assert tx.get_event("t2", seqs[0]) is None  # tenants never cross
        assert tx.insert_events([]) == []


def test_events_for_matches_key_and_since_seq(store: Store) -> None:
    with store.transaction() as tx:
        stored = tx.insert_events(
            [
                (event("e1"), ["c1"]),
                (event("e2"), ["c2"]),
                (event("e3"), ["c1", "c1", "x"]),
                (event("e4", type="order.cancelled"), ["c1"]),
                (event("e5", tenant="t2"), ["c1"]),
            ]
        )
    seq = {e.id + (e.tenant if e.tenant != T else ""): e.seq for e in stored if e is not None}
    by_key = Subscription(tenant=T, run_id="r1", sub_id="s1", event_type="order.paid", key="c1", since_seq=0)
    later = Subscription(tenant=T, run_id="r2", sub_id="s1", event_type="order.paid", key="c1", since_seq=seq["e1"])
    any_key = Subscription(tenant=T, run_id="r3", sub_id="s1", event_type="order.paid", key="*", since_seq=0)
    nothing = Subscription(tenant=T, run_id="r4", sub_id="s1", event_type="order.shipped", key="*", since_seq=0)
    with store.transaction() as tx:
        found = tx.events_for([by_key, later, any_key, nothing])
        assert [(sub.run_id, e.id) for sub, e in found] == [
            ("r1", "e1"), ("r1", "e3"), ("r2", "e3"), ("r3", "e1"), ("r3", "e2"), ("r3", "e3"),
        ]
        assert [e.id for _, e in tx.events_for([any_key], limit_per_sub=2)] == ["e1", "e2"]
        assert [e.id for _, e in tx.events_for([by_key])] == ["e1", "e3"]
        assert tx.events_for([]) == []
        other = Subscription(tenant="t2", run_id="r9", sub_id="s", event_type="order.paid", key="c1", since_seq=0)
        assert [(e.tenant, e.seq) for _, e in tx.events_for([other])] == [("t2", seq["e5t2"])]


def test_events_for_many_subscriptions(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_events([(event(f"e{i}"), [f"c{i % 300}"]) for i in range(600)])
        subs = [
            Subscription(tenant=T, run_id=f"r{i}", sub_id="s", event_type="order.paid", key=f"c{i}", since_seq=0)
            for i in range(300)
        ]
        found = tx.events_for(subs)
    assert len(found) == 600
    assert {sub.run_id for sub, _ in found} == {f"r{i}" for i in range(300)}
    assert all(e.id in (f"e{int(sub.key[1:])}", f"e{int(sub.key[1:]) + 300}") for sub, e in found)


# --------------------------------------------------------------------------- subscriptions, deliveries


def test_subscriptions_replace_and_find(store: Store) -> None:
    def sub(run_id: str, key: str, type: str = "order.paid", sub_id: str = "s1") -> Subscription:
        return Subscription(tenant=T, run_id=run_id, sub_id=sub_id, event_type=type, key=key, since_seq=7)

    with store.transaction() as tx:
        tx.replace_subscriptions(["r1", "r2"], [sub("r1", "c1"), sub("r1", "*", sub_id="s2"), sub("r2", "c2"), sub("r2", "c2")])
        assert sorted(s.run_id for s in tx.find_subscriptions(T, [("order.paid", "c1"), ("order.paid", "*")])) == ["r1", "r1"]
        assert tx.find_subscriptions("t2", [("order.paid", "c1")]) == []
        assert tx.find_subscriptions(T, []) == []
    with store.transaction() as tx:
        tx.replace_subscriptions(["r1"], [sub("r1", "c9", type="order.cancelled")])
        assert tx.find_subscriptions(T, [("order.paid", "c1"), ("order.paid", "*")]) == []
        assert tx.find_subscriptions(T, [("order.cancelled", "c9")]) == [sub("r1", "c9", type="order.cancelled")]
        assert tx.find_subscriptions(T, [("order.paid", "c2")]) == [sub("r2", "c2")]
        tx.replace_subscriptions(["r1", "r2"], [])
        assert tx.find_subscriptions(T, [("order.cancelled", "c9"), ("order.paid", "c2")]) == []


def test_deliveries_mark_runs_ready_and_are_consumed(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_runs([run("r1", status="waiting", ready=False), run("r2", status="waiting", ready=False)])
    assert claim(store) == []
    with store.transaction() as tx:
        tx.add_deliveries([("r1", "s1", 5, {"id": "e5"}), ("r1", "s2", None, None), ("r2", "s1", 6, {"id": "e6"})])
    claimed = claim(store)
    assert sorted(r.id for r in claimed) == ["r1", "r2"]
    with store.transaction() as tx:
        open_ = tx.deliveries(["r1"])
        assert [(d.sub_id, d.event_seq, d.payload) for d in open_] == [("s1", 5, {"id": "e5"}), ("s2", None, None)]
        assert open_[0].id < open_[1].id
        tx.consume_deliveries([open_[0].id])
        assert [d.sub_id for d in tx.deliveries(["r1", "r2"])] == ["s2", "s1"]
        tx.consume_deliveries([d.id for d in tx.deliveries(["r1", "r2"])])
        assert tx.deliveries(["r1", "r2"]) == []
        tx.add_deliveries([])
        tx.consume_deliveries([])


# --------------------------------------------------------------------------- runs


def test_claim_respects_ready_wake_at_status_and_leases(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_runs(
            [
                run("ready-old", created_at=1.0),
                run("ready-new", created_at=5.0),
                run("due", ready=False, status="waiting", wake_at=500.0, created_at=3.0),
                run("not-due", ready=False, status="waiting", wake_at=5000.0, created_at=2.0),
                run("idle", ready=False, status="waiting", created_at=2.5),
                run("done", ready=True, status="completed", wake_at=1.0, created_at=0.5),
                run("suspended", ready=True, status="suspended", created_at=0.6),
                run("running", ready=True, status="running", created_at=4.0),
            ]
        )
    claimed = claim(store, now=1000.0, wall_now=50.0, limit=2, worker="w1")
    assert [r.id for r in claimed] == ["ready-old", "due"]  # oldest first across both kinds of work
    assert claimed[0].state == b"\x00state-ready-old" and claimed[0].revision == 0
    rest = claim(store, now=1000.0, wall_now=60.0, limit=10, worker="w2")
    assert [r.id for r in rest] == ["running", "ready-new"]
    assert claim(store, now=1000.0, wall_now=70.0) == []  # all leased (until wall 80 / 90)
    again = claim(store, now=1000.0, wall_now=85.0, worker="w3")  # w1's lease (until 80) expired
    assert [r.id for r in again] == ["ready-old", "due"]
    assert [r.id for r in claim(store, now=10_000.0, wall_now=200.0)] == [
        "ready-old", "not-due", "due", "running", "ready-new",
    ]
    with store.transaction() as tx:
        assert tx.claim_runs(worker="w", now=0.0, wall_now=0.0, lease_until=1.0, limit=0) == []
        assert tx.next_wake_at() == 500.0


def test_concurrent_claimers_never_share_a_run(store: Store, store_url: str) -> None:
    with store.transaction() as tx:
        tx.insert_runs([run(f"r{i:03}", created_at=float(i)) for i in range(300)])
    stores = [open_store(store_url, migrate=False) for _ in range(3)]
    barrier = threading.Barrier(len(stores))
    claimed: list[list[str]] = [[] for _ in stores]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait()
            while batch := claim(stores[index], limit=7, worker=f"w{index}"):
                claimed[index].extend(r.id for r in batch)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for opened in stores:
        opened.close()
    assert errors == []
    every = [run_id for ids in claimed for run_id in ids]
    assert len(every) == len(set(every)) == 300


def test_save_runs_guards_revision(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_runs([run("r1"), run("r2", created_at=101.0), run("r3", created_at=102.0)])
    mine = claim(store, wall_now=0.0)  # leased until 30
    theirs = claim(store, wall_now=40.0, worker="w2")  # the lease expired: another worker takes over
    assert [r.id for r in theirs] == ["r1", "r2", "r3"]
    theirs[1].status, theirs[1].ready = "waiting", False
    with store.transaction() as tx:
        assert tx.save_runs([theirs[1]], worker="w2") == []
    assert theirs[1].revision == 1  # the record follows the stored revision

    for r in mine:
        r.status, r.state, r.ready, r.wake_at, r.updated_at = "completed", b"mine", False, 9.0, 200.0
    with store.transaction() as tx:
        # r2 was advanced by w2 (stored revision 1 = ours + 1): stale, the others are written.
        assert tx.save_runs(mine, worker="w1") == ["r2"]
        assert tx.save_runs([], worker="w1") == []
    with store.transaction() as tx:
        r1, r2 = tx.get_run("r1"), tx.get_run("r2")
    assert r1 is not None and r2 is not None
    assert (r1.status, r1.state, r1.ready, r1.wake_at, r1.updated_at, r1.revision) == ("completed", b"mine", False, 9.0, 200.0, 1)
    assert (r2.status, r2.state, r2.revision) == ("waiting", theirs[1].state, 1)
    assert [r.revision for r in mine] == [1, 0, 1]
    with store.transaction() as tx:
        assert tx.save_runs([theirs[0]], worker="w2") == ["r1"]  # w1 saved r1 first
        mine[0].status = "cancelled"
        assert tx.save_runs([mine[0]], worker=None) == []  # a record saved twice keeps up
        assert tx.get_run("r1") == mine[0]
    # Saving releases the lease: a run saved as ready can be claimed again at once.
    with store.transaction() as tx:
        tx.save_runs([RunRecord(**{**_run_fields(mine[2]), "status": "waiting", "ready": True})], worker="w1")
    assert [r.id for r in claim(store, wall_now=41.0)] == ["r3"]


def _run_fields(record: RunRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def test_list_and_count_runs(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_runs(
            [run(f"r{i}", created_at=float(i), status=("completed" if i % 3 == 0 else "waiting")) for i in range(10)]
            + [run("x1", tenant="t2", status="faulted")]
        )
        assert [r.id for r in tx.list_runs(tenant=T, limit=3)] == ["r0", "r1", "r2"]
        assert [r.id for r in tx.list_runs(tenant=T, limit=3, offset=8)] == ["r8", "r9"]
        assert [r.id for r in tx.list_runs(tenant=T, status="completed")] == ["r0", "r3", "r6", "r9"]
        assert [r.id for r in tx.list_runs(status="faulted")] == ["x1"]
        assert tx.count_runs(tenant=T) == {"completed": 4, "waiting": 6}
        assert tx.count_runs() == {"completed": 4, "waiting": 6, "faulted": 1}
        assert tx.count_runs(tenant="nobody") == {}
        assert tx.get_run("nope") is None
        assert tx.next_wake_at() is None


# --------------------------------------------------------------------------- history


def test_history_append_and_read(store: Store) -> None:
    with store.transaction() as tx:
        tx.append_history([HistoryEntry(run_id="r1", at=1.0, kind="started", data={"input": {"a": 1}})])
        tx.append_history(
            [
                HistoryEntry(run_id="r2", at=1.5, kind="started", data={}),
                HistoryEntry(run_id="r1", at=2.0, kind="task", data={"name": "greet", "ok": True, "n": None}),
            ]
        )
        tx.append_history([])
    with store.transaction() as tx:
        assert [(h.kind, h.data) for h in tx.history("r1")] == [
            ("started", {"input": {"a": 1}}),
            ("task", {"name": "greet", "ok": True, "n": None}),
        ]
        assert tx.history("nobody") == []


# --------------------------------------------------------------------------- outbox


def test_outbox_is_idempotent_claimed_and_retried(store: Store) -> None:
    with store.transaction() as tx:
        tx.add_outbox([outbox_row("k1"), outbox_row("k2", next_attempt_at=20.0), outbox_row("k1", payload={"dup": True})])
        tx.add_outbox([outbox_row("k1", payload={"again": True}), outbox_row("k3", run_id="r2", next_attempt_at=500.0)])
        rows = tx.outbox()
        assert [(r.key, r.status, r.attempts, r.result) for r in rows] == [
            ("k1", "pending", 0, None), ("k2", "pending", 0, None), ("k3", "pending", 0, None),
        ]
        assert rows[0].payload == {"url": "http://127.0.0.1/x", "n": "k1"}
        assert [r.key for r in tx.outbox(run_id="r2")] == ["k3"]

    with store.transaction() as tx:
        assert [r.key for r in tx.claim_outbox(now=100.0, wall_now=0.0, lease_until=30.0, limit=10)] == ["k1", "k2"]
        assert tx.claim_outbox(now=100.0, wall_now=10.0, lease_until=40.0, limit=10) == []  # leased
    with store.transaction() as tx:
        tx.finish_outbox("k1", status="delivered", attempts=1, result={"status": 200}, next_attempt_at=100.0)
        tx.finish_outbox("k2", status="pending", attempts=1, result={"error": "503"}, next_attempt_at=160.0)
        # k2 retries later: not due yet, although its lease is gone.
        assert tx.claim_outbox(now=150.0, wall_now=10.0, lease_until=40.0, limit=10) == []
        retried = tx.claim_outbox(now=160.0, wall_now=10.0, lease_until=40.0, limit=10)
        assert [(r.key, r.attempts, r.result) for r in retried] == [("k2", 1, {"error": "503"})]
        tx.finish_outbox("k2", status="dead", attempts=5, result=None, next_attempt_at=160.0)
        assert [r.key for r in tx.claim_outbox(now=1000.0, wall_now=100.0, lease_until=130.0, limit=10)] == ["k3"]
        assert [r.key for r in tx.outbox(status="delivered")] == ["k1"]
        dead = tx.outbox(status="dead")
        assert [(r.key, r.attempts, r.result) for r in dead] == [("k2", 5, None)]


def test_concurrent_outbox_claimers_never_share_a_row(store: Store, other_store: Store) -> None:
    with store.transaction() as tx:
        tx.add_outbox([outbox_row(f"k{i:03}", next_attempt_at=float(i)) for i in range(100)])
    barrier = threading.Barrier(2)
    claimed: list[list[str]] = [[], []]

    def dispatcher(index: int, target: Store) -> None:
        barrier.wait()
        while True:
            with target.transaction() as tx:
                batch = tx.claim_outbox(now=1000.0, wall_now=0.0, lease_until=60.0, limit=3)
            if not batch:
                return
            claimed[index].extend(r.key for r in batch)

    threads = [threading.Thread(target=dispatcher, args=(i, s)) for i, s in enumerate((store, other_store))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = claimed[0] + claimed[1]
    assert len(every) == len(set(every)) == 100


# --------------------------------------------------------------------------- lock_keys


def test_lock_keys_is_callable_everywhere(store: Store) -> None:
    with store.transaction() as tx:
        tx.lock_keys([])
        tx.lock_keys([(T, "order.paid", "c1"), (T, "order.paid", "c1"), (T, "order.paid", "*")])


def _on_postgres(store_url: str) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite's single writer serializes transactions; lock_keys does nothing there")


def _wait_for(condition: Callable[[], bool]) -> None:
    """Poll until ``condition`` holds (a safety net against hanging, not a timing assertion)."""
    stop = threading.Event()
    for _ in range(2000):
        if condition():
            return
        stop.wait(0.01)
    raise AssertionError("condition never became true")


def _waiting_advisory_locks(store: Store) -> int:
    with store.transaction() as tx:
        connection: sa.Connection = tx.connection  # type: ignore[attr-defined]  # SqlTransaction internals
        return int(
            connection.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).scalar_one()
        )


def test_lock_keys_serializes_transactions_on_the_same_key(store: Store, other_store: Store, store_url: str) -> None:
    _on_postgres(store_url)
    observer = open_store(store_url, migrate=False)
    order: list[str] = []
    a_locked, b_done = threading.Event(), threading.Event()

    def holder() -> None:
        with store.transaction() as tx:
            tx.lock_keys([(T, "order.paid", "c1"), (T, "order.paid", "c2")])
            a_locked.set()
            _wait_for(lambda: _waiting_advisory_locks(observer) == 1)  # b is queued behind us
            order.append("a releases")

    def waiter() -> None:
        a_locked.wait()
        with other_store.transaction() as tx:
            tx.lock_keys([(T, "order.paid", "c2")])
            order.append("b acquired")
        b_done.set()

    threads = [threading.Thread(target=holder), threading.Thread(target=waiter)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        observer.close()
    assert order == ["a releases", "b acquired"]


def test_lock_keys_on_other_keys_do_not_wait(store: Store, other_store: Store, store_url: str) -> None:
    _on_postgres(store_url)
    order: list[str] = []
    a_locked, b_done = threading.Event(), threading.Event()

    def holder() -> None:
        with store.transaction() as tx:
            tx.lock_keys([(T, "order.paid", "c1")])
            a_locked.set()
            assert b_done.wait(20), "a transaction on another key waited for ours"
            order.append("a releases")

    def other() -> None:
        a_locked.wait()
        with other_store.transaction() as tx:
            tx.lock_keys([(T, "order.paid", "c2"), ("t2", "order.paid", "c1")])
            order.append("b acquired")
        b_done.set()

    threads = [threading.Thread(target=holder), threading.Thread(target=other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert order == ["b acquired", "a releases"]
