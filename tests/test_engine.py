"""The engine through its public API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import itinera
from itinera import Engine, MisuseError, Settings, VirtualClock
from itinera.errors import DefinitionError, NotFoundError

HEAD = "document: {dsl: '1.0.3', namespace: test, name: %s, version: '%s'}\n"


def journey(name: str, body: str, version: str = "1.0.0") -> str:
    return HEAD % (name, version) + body


LISTEN = journey(
    "greeter",
    """
do:
  - hello:
      set: {greeting: '${ "hello " + .name }'}
  - activation:
      listen:
        to:
          one: {with: {type: com.example.activated}}
  - done:
      set: {activated: '${ .[0].plan }'}
""",
)


def event(i: int | str, type_: str = "com.example.activated", subject: str | None = "c1", **extra: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"specversion": "1.0", "id": str(i), "source": "test://events", "type": type_, "data": {"plan": "gold"}}
    if subject is not None:
        e["subject"] = subject
    e.update(extra)
    return e


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    e = Engine(store_url, clock=VirtualClock(), settings=Settings(max_event_bytes=4096))
    yield e
    e.close()


def test_public_surface_is_pinned() -> None:
    assert itinera.__all__ == [
        "Definition",
        "DefinitionError",
        "Deployed",
        "Engine",
        "EventError",
        "ExpressionError",
        "ItineraError",
        "MisuseError",
        "Problem",
        "RunFailure",
        "RunView",
        "SendResult",
        "Settings",
        "SystemClock",
        "VirtualClock",
        "Worker",
        "__version__",
        "load_definition",
        "load_file",
    ]


def test_run_waits_for_its_subjects_event_then_completes(engine: Engine) -> None:
    d = engine.deploy(LISTEN)
    run_id = engine.start("test/greeter", {"name": "Ada"}, subject="c1")
    engine.run_until_idle()
    view = engine.get_run(run_id)
    assert view.status == "waiting"
    (wait,) = view.waits
    assert wait["kind"] == "event" and wait["types"] == ["com.example.activated"] and wait["since"]
    assert wait["filters"] == [{"type": "com.example.activated", "key": "s:c1", "with": {"type": "com.example.activated"}}]
    # another subject's event does not wake it; its own does
    engine.send([event(1, subject="c2")])
    engine.run_until_idle()
    assert engine.get_run(run_id).status == "waiting"
    result = engine.send([event(2)])
    assert result.accepted == 1 and result.woken == 1
    engine.run_until_idle()
    view = engine.get_run(run_id)
    assert view.status == "completed"
    assert view.output == {"activated": "gold"}
    assert view.definition_hash == d.hash
    kinds = [h.kind for h in engine.history(run_id)]
    assert kinds[0] == "run.started" and "run.waiting" in kinds and kinds[-1] == "run.completed"


def test_event_that_arrived_before_the_listen_is_not_lost(engine: Engine) -> None:
    engine.deploy(LISTEN)
    run_id = engine.start("greeter", {"name": "Ada"}, subject="c1")
    engine.send([event("early")])  # stored before the run even reached its listen
    engine.run_until_idle()
    assert engine.get_run(run_id).status == "completed"


def test_duplicate_events_are_stored_once_and_wake_once(engine: Engine) -> None:
    engine.deploy(LISTEN)
    engine.start("greeter", {"name": "Ada"}, subject="c1")
    engine.run_until_idle()
    first = engine.send([event(7), event(7)])
    assert (first.accepted, first.duplicates) == (1, 1)
    again = engine.send([event(7)])
    assert (again.accepted, again.duplicates, again.woken) == (0, 1, 0)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not an object", "must be a JSON object"),
        ({"specversion": "1.0", "source": "s", "type": "t"}, "'id'"),
        ({"specversion": "0.3", "id": "1", "source": "s", "type": "t"}, "specversion"),
        ({"specversion": "1.0", "id": "1", "source": "", "type": "t"}, "'source'"),
        ({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "time": "yesterday"}, "RFC 3339"),
        ({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": 1, "data_base64": "AA=="}, "not both"),
        ({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "Bad-Name": "x"}, "extension attribute name"),
        ({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": "x" * 5000}, "over the 4096-byte limit"),
    ],
)
def test_malformed_events_are_rejected_and_change_nothing(engine: Engine, bad: Any, message: str) -> None:
    engine.deploy(LISTEN)
    run_id = engine.start("greeter", {"name": "Ada"}, subject="c1")
    engine.run_until_idle()
    result = engine.send([bad, event(1)])
    assert len(result.rejected) == 1
    assert message in str(result.rejected[0]) and "event #0" in str(result.rejected[0])
    assert result.accepted == 1  # the good event in the same call is still taken
    engine.run_until_idle()
    assert engine.get_run(run_id).status == "completed"
    with engine.store.transaction() as tx:
        assert tx.max_event_seq() == 1


def test_schedule_on_starts_one_run_per_matching_event(engine: Engine) -> None:
    engine.deploy(
        journey(
            "onsignup",
            """
schedule:
  on:
    one: {with: {type: com.example.signup}}
do:
  - who:
      set: {customer: '${ $workflow.input[0].subject }', plan: '${ $workflow.input[0].data.plan }'}
""",
        )
    )
    result = engine.send([event(1, "com.example.signup", "a"), event(2, "com.example.signup", "b"), event(3, "other")])
    assert len(result.started) == 2
    engine.run_until_idle()
    outputs = sorted((v.subject, v.output["customer"]) for v in engine.runs(status="completed"))
    assert outputs == [("a", "a"), ("b", "b")]


def test_schedule_every_ticks_on_the_virtual_clock(engine: Engine) -> None:
    engine.deploy(journey("hourly", "schedule: {every: {hours: 1}}\ndo:\n  - s: {set: {ok: true}}\n"))
    start = engine.clock.now()
    engine.run_until_idle(follow_timers=True, until=start + 3 * 3600 + 1)
    assert len(engine.runs(status="completed")) == 3
    (ticker,) = engine.runs(status="waiting")
    assert ticker.waits[0]["kind"] == "schedule"


def test_schedule_cron(engine: Engine) -> None:
    engine.deploy(journey("daily", "schedule: {cron: '0 9 * * *'}\ndo:\n  - s: {set: {ok: true}}\n"))
    start = engine.clock.now()  # 2026-01-01T00:00Z
    engine.run_until_idle(follow_timers=True, until=start + 2 * 86400)
    runs = engine.runs(status="completed")
    assert sorted(r.created_at for r in runs) == ["2026-01-01T09:00:00.000Z", "2026-01-02T09:00:00.000Z"]


def test_a_run_keeps_its_version_after_redeploy(engine: Engine) -> None:
    v1 = engine.deploy(LISTEN)
    old = engine.start("greeter", {"name": "Ada"}, subject="c1")
    engine.run_until_idle()
    v2 = engine.deploy(LISTEN.replace("'1.0.0'", "'1.1.0'").replace('"hello "', '"hi "'))
    assert v1.hash != v2.hash
    new = engine.start("greeter", {"name": "Bo"}, subject="c2")
    engine.send([event(1), event(2, subject="c2")])
    engine.run_until_idle()
    assert engine.get_run(old).definition_hash == v1.hash and engine.get_run(old).version == "1.0.0"
    assert engine.get_run(new).definition_hash == v2.hash and engine.get_run(new).version == "1.1.0"


def test_cancel_suspend_resume(engine: Engine) -> None:
    engine.deploy(LISTEN)
    a = engine.start("greeter", {"name": "A"}, subject="c1")
    b = engine.start("greeter", {"name": "B"}, subject="c2")
    engine.run_until_idle()
    assert engine.cancel(a).status == "cancelled"
    assert engine.suspend(b).status == "suspended"
    engine.send([event(1), event(2, subject="c2")])
    engine.run_until_idle()
    assert engine.get_run(a).status == "cancelled"
    assert engine.get_run(b).status == "suspended"
    assert engine.resume(b).status == "waiting"
    engine.run_until_idle()
    assert engine.get_run(b).status == "completed"  # the event that came while suspended is kept
    with pytest.raises(MisuseError, match="only a run that is"):
        engine.cancel(a)
    with pytest.raises(NotFoundError):
        engine.get_run("no-such-run")


def test_timers_are_durable_and_fire_in_order(engine: Engine) -> None:
    engine.deploy(journey("waiter", "do:\n  - w: {wait: P3D}\n  - s: {set: {ok: true}}\n"))
    run_id = engine.start("waiter", {})
    engine.run_until_idle()
    view = engine.get_run(run_id)
    assert view.status == "waiting" and view.wake_at == "2026-01-04T00:00:00.000Z"
    engine.clock.advance(3 * 86400 - 1)
    engine.run_until_idle()
    assert engine.get_run(run_id).status == "waiting"
    engine.clock.advance(1)
    engine.run_until_idle()
    assert engine.get_run(run_id).output == {"ok": True}


def test_invalid_definition_is_never_stored(engine: Engine) -> None:
    with pytest.raises(DefinitionError) as info:
        engine.deploy(journey("broken", "do:\n  - a: {set: {x: 1}, then: nowhere}\n"))
    problem = info.value.problems[0]
    assert problem.location.line == 3 and problem.location.pointer.startswith("/do/0/a/then")
    assert engine.deployments() == {}


def test_oversized_run_input_is_refused(engine: Engine) -> None:
    engine.settings.max_input_bytes = 100
    engine.deploy(LISTEN)
    with pytest.raises(MisuseError, match="over the 100-byte limit"):
        engine.start("greeter", {"name": "x" * 200})
    assert engine.runs() == []


def test_hostile_expression_faults_its_run_not_the_worker(engine: Engine) -> None:
    engine.deploy(journey("hostile", "do:\n  - spin: {set: {x: '${ def f: f; f }'}}\n"))
    engine.deploy(journey("fine", "do:\n  - ok: {set: {x: 1}}\n"))
    bad = engine.start("hostile", {})
    good = engine.start("fine", {})
    engine.run_until_idle()
    view = engine.get_run(bad)
    assert view.status == "faulted"
    assert view.error is not None and view.error["type"].endswith("/errors/expression") and view.error["instance"] == "/do/0/spin"
    assert engine.get_run(good).status == "completed"


def test_schedule_after_restarts_a_completed_run_later(engine: Engine) -> None:
    engine.deploy(journey("again", "schedule: {after: {hours: 2}}\ndo:\n  - s: {set: {n: '${ .n }'}}\n"))
    engine.start("again", {"n": 1})
    start = engine.clock.now()
    engine.run_until_idle()
    assert sorted(r.status for r in engine.runs()) == ["completed", "pending"]
    engine.run_until_idle(follow_timers=True, until=start + 2 * 3600 + 60)
    assert sorted(r.status for r in engine.runs()) == ["completed", "completed", "pending"]
    outputs = [r.output for r in engine.runs(status="completed")]
    assert outputs == [{"n": 1}, {"n": 1}]  # the restart ran with the same input
