"""Every conformance scenario, run through the Python API (``Engine``) on a virtual clock."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from itinera import Engine, VirtualClock
from itinera.errors import DefinitionError
from tests.conformance.scenario import Outcome, Scenario, all_scenarios, check, complete_event, relative_trace, secret_env
from tests.support.httpserver import RecordingServer

SCENARIOS = all_scenarios()


def _text(definition: dict[str, Any]) -> str:
    return yaml.safe_dump(definition, sort_keys=False)


def _outcome(engine: Engine, run_id: str, start: float, server: RecordingServer | None, paths: list[str]) -> Outcome:
    view = engine.get_run(run_id)
    trace = engine.traces.get(run_id)
    return Outcome(
        status=view.status,
        output=view.output,
        error=view.error,
        trace=relative_trace(trace, start) if trace is not None else None,
        requests={p: server.recording.request_count(path=p) for p in paths} if server is not None else {},
    )


def run_scenario(scenario: Scenario, server: RecordingServer | None) -> tuple[dict[str, Any], Outcome, list[Outcome]]:
    """Run ``scenario``; return it resolved, the main run's outcome and each listener's."""
    data = scenario.resolved(server.url if server is not None else None)
    if server is not None:
        for path, rule in (data.get("server") or {}).items():
            server.set_rule(path, **rule)
    clock = VirtualClock()
    engine = Engine("sqlite://", clock=clock)
    try:
        start = clock.now()
        listeners = []
        for item in data.get("listeners") or []:
            deployed = engine.register(_text(item["definition"]))
            listeners.append(engine.start(deployed.hash, item.get("input") or {}, subject=item.get("subject")))
        run_id: str | None = None
        try:
            if data.get("trigger"):
                engine.deploy(_text(data["definition"]))
            else:
                deployed = engine.register(_text(data["definition"]))
                run_id = engine.start(deployed.hash, data.get("input") or {}, subject=data.get("subject"))
                engine.traces[run_id] = []
        except DefinitionError as err:
            return data, Outcome(status="invalid", error={"detail": str(err)}), []
        events = data.get("events") or []
        engine.run_until_idle(follow_timers=not events and not listeners)
        started: list[str] = []
        for n, event in enumerate(events):
            if event.get("advance"):
                clock.advance(float(event["advance"]))
                engine.run_until_idle()
            result = engine.send([complete_event(event, n)])
            assert not result.rejected, result.rejected
            started.extend(result.started)
            engine.run_until_idle()
        engine.run_until_idle(follow_timers=True)
        expect = data["expect"]
        if run_id is None:
            assert len(started) == expect.get("started", 1), f"runs started by the events: {started}"
            assert started, "no event started a run"
            run_id = started[0]
        paths = list((expect.get("requests") or {}).keys())
        main = _outcome(engine, run_id, start, server, paths)
        others = [_outcome(engine, r, start, None, []) for r in listeners]
        return data, main, others
    finally:
        engine.dispatcher.close()  # Engine.close() leaves the dispatcher's HTTP clients open
        engine.close()


@pytest.mark.parametrize("scenario", [s.param() for s in SCENARIOS])
def test_scenario(scenario: Scenario, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in secret_env(scenario.data.get("secrets")):
        monkeypatch.setenv(name, value)
    server: RecordingServer | None = request.getfixturevalue("http_server") if scenario.needs_server else None
    data, main, others = run_scenario(scenario, server)
    check(data["expect"], main)
    for i, (item, got) in enumerate(zip(data.get("listeners") or [], others, strict=True)):
        check(item["expect"], got, where=f"listener {i}")


def test_emitted_event_id_is_deterministic() -> None:
    """An emitted event without an id gets one derived from the run and task, not a random one.

    The same run (same id) advanced again on another engine emits the same id, so a replay after
    a crash is recognised as a duplicate (CloudEvents: ``source`` + ``id`` identify an event).
    """
    emitter = """
document: {dsl: '1.0.3', namespace: conformance, name: emit-id, version: '1.0.0'}
do:
  - announce:
      emit:
        event:
          with:
            source: https://conformance.test
            type: conformance.announced
"""
    listener = """
document: {dsl: '1.0.3', namespace: conformance, name: hear-id, version: '1.0.0'}
do:
  - hear:
      listen:
        to:
          one:
            with:
              type: conformance.announced
        read: envelope
      output:
        as: .[0].id
"""
    ids: list[Any] = []
    for _ in range(2):
        engine = Engine("sqlite://", clock=VirtualClock())
        try:
            hearer = engine.start(engine.register(listener).hash, {})
            engine.start(engine.register(emitter).hash, {}, run_id="replayed-run")
            engine.run_until_idle()
            view = engine.get_run(hearer)
            assert view.status == "completed", view
            ids.append(view.output)
        finally:
            engine.dispatcher.close()
            engine.close()
    assert isinstance(ids[0], str) and ids[0]
    assert ids[0] == ids[1]
