"""Conformance scenarios: one YAML file per behaviour of the Serverless Workflow DSL 1.0.3.

Each file under ``scenarios/<area>/NAME.yaml`` holds::

    summary: what the scenario checks, in one line (quote the spec where it decides)
    definition: {...}            # the workflow document
    input: {...}                 # the run's input (default {})
    subject: person-1            # optional: the run's subject
    secrets: {name: value}       # optional: exposed as ITINERA_SECRET_<NAME> (lower-case names)
    server:                      # optional: rules of the test HTTP server, by path
      /pets/1: {json: {id: 1}}   #   (fields of tests.support.httpserver.Rule)
    trigger: true                # optional: deploy and start no run; the events start it
    listeners:                   # optional: runs started before the main one (e.g. woken
      - definition: {...}        #   by its emit), each with its own input/subject/expect
        expect: {status: completed, output: ...}
    events:                      # optional: CloudEvents sent after the first idle, in order;
      - advance: 30              #   `advance` moves the virtual clock first (seconds);
        type: com.example.ping   #   id, source and specversion are filled in when missing
        data: {...}
    expect:
      status: completed          # completed | faulted | waiting | invalid (rejected on load)
      output: ...                # compared for equality
      error: {type: ..., status: 404, instance: /do/0/x}   # subset match
      error_detail: not supported   # a case-insensitive substring of the error's detail
      trace:                     # an ordered subsequence of the run's task trace:
        - [task.started, /do/0/a]         # [event, task reference]
        - [task.completed, /do/1/b, 60]   # ...and seconds since the run started,
        - [task.started, /do/2/c, [2, 3]] #    exactly or within [low, high]
      untraced: [/do/3/d]        # references that never start
      starts: {/do/0/t/try/0/x: 4}   # how many times a task started (retries)
      requests: {/pets: 3}       # requests the test HTTP server received, by path
      started: 1                 # with `trigger`: runs the events started (the first is checked)
    xfail: "why"                 # a known deviation: the test is expected to fail (strictly)
    cli: "why not"               # optional: leave the scenario out of the CLI run

``http://server.test`` anywhere in a scenario is replaced by the test HTTP server's base URL.

Scenarios run against a fresh engine on a throw-away in-memory store with a virtual clock: the
run is started, the engine is driven until idle (following timers only when there are no events
to send), then each event is sent and the engine driven again, and at the end timers are
followed until nothing is left to do.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parent / "scenarios"


class _Loader(yaml.SafeLoader):
    """YAML with 1.2 booleans: only true/false, so a workflow's `on:` stays the string "on"."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def parse(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 -- a SafeLoader subclass
SERVER_PLACEHOLDER = "http://server.test"
TIME_TOLERANCE = 0.002  # trace times carry milliseconds

_KEYS = {
    "summary", "definition", "input", "subject", "secrets", "server", "trigger", "listeners",
    "events", "expect", "xfail", "cli",
}
_EXPECT_KEYS = {"status", "output", "error", "error_detail", "trace", "untraced", "starts", "requests", "started"}


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One scenario file, parsed (server URL not yet filled in)."""

    id: str  # "<area>/<name>"
    path: Path
    text: str
    data: dict[str, Any]

    @property
    def needs_server(self) -> bool:
        return SERVER_PLACEHOLDER in self.text or bool(self.data.get("server"))

    @property
    def driven_by_events(self) -> bool:
        return bool(self.data.get("events") or self.data.get("trigger") or self.data.get("listeners"))

    def resolved(self, server_url: str | None) -> dict[str, Any]:
        """The scenario with the test server's URL filled in."""
        text = self.text if server_url is None else self.text.replace(SERVER_PLACEHOLDER, server_url)
        data: dict[str, Any] = parse(text)
        return data

    def param(self) -> Any:
        marks = []
        if self.data.get("xfail"):
            marks.append(pytest.mark.xfail(reason=str(self.data["xfail"]), strict=True))
        return pytest.param(self, id=self.id, marks=marks)


def load(path: Path) -> Scenario:
    text = path.read_text()
    data = parse(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a scenario is a mapping")
    unknown = set(data) - _KEYS
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
    for key in ("definition", "expect"):
        if key not in data:
            raise ValueError(f"{path}: '{key}' is required")
    unknown = set(data["expect"]) - _EXPECT_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown expect keys {sorted(unknown)}")
    return Scenario(id=f"{path.parent.name}/{path.stem}", path=path, text=text, data=data)


def all_scenarios() -> list[Scenario]:
    return [load(p) for p in sorted(ROOT.glob("*/*.yaml"))]


# -------------------------------------------------------------------------- checking


@dataclass(kw_only=True)
class Outcome:
    """What a run ended as, however it was run."""

    status: str
    output: Any = None
    error: dict[str, Any] | None = None
    trace: list[dict[str, Any]] | None = None  # entries: event, ref, at (seconds since start)
    requests: dict[str, int] = field(default_factory=dict)


def check(expect: dict[str, Any], got: Outcome, *, where: str = "run") -> None:
    """Assert that ``got`` is what ``expect`` describes."""
    detail = f"{where}: status={got.status} output={got.output!r} error={got.error!r}"
    assert got.status == expect["status"], detail
    if "output" in expect:
        assert got.output == expect["output"], detail
    if "error" in expect:
        assert got.error is not None, detail
        subset = {k: got.error.get(k) for k in expect["error"]}
        assert subset == expect["error"], detail
    if "error_detail" in expect:
        assert got.error is not None, detail
        text = f"{got.error.get('title', '')} {got.error.get('detail', '')}".lower()
        assert str(expect["error_detail"]).lower() in text, detail
    if "trace" in expect or "untraced" in expect or "starts" in expect:
        assert got.trace is not None, f"{where}: no trace was recorded"
        check_trace(expect.get("trace") or [], expect.get("untraced") or [], got.trace)
        for ref, count in (expect.get("starts") or {}).items():
            started = sum(1 for e in got.trace if e["event"] == "task.started" and e["ref"] == ref)
            assert started == count, f"{where}: {ref} started {started} times, not {count}"
    for path, count in (expect.get("requests") or {}).items():
        assert got.requests.get(path, 0) == count, f"{where}: requests to {path}: {got.requests}"


def check_trace(expected: list[list[Any]], untraced: list[str], trace: list[dict[str, Any]]) -> None:
    """``expected`` must be an ordered subsequence of ``trace``; ``untraced`` refs never start."""
    shown = "\n".join(f"  {e['event']} {e['ref']} @{e['at']:g}" for e in trace)
    position = 0
    for item in expected:
        event, ref = item[0], item[1]
        when = item[2] if len(item) > 2 else None
        while position < len(trace):
            entry = trace[position]
            position += 1
            if entry["event"] == event and entry["ref"] == ref and _at(entry["at"], when):
                break
        else:
            raise AssertionError(f"trace lacks {item} in order; the trace was:\n{shown}")
    started = {e["ref"] for e in trace if e["event"] == "task.started"}
    for ref in untraced:
        assert ref not in started, f"{ref} should not have run; the trace was:\n{shown}"


def _at(at: float, when: Any) -> bool:
    if when is None:
        return True
    if isinstance(when, list):
        low, high = (float(w) for w in when)
        return low - TIME_TOLERANCE <= at <= high + TIME_TOLERANCE
    return math.isclose(at, float(when), abs_tol=TIME_TOLERANCE)


def relative_trace(entries: list[dict[str, Any]], start: float) -> list[dict[str, Any]]:
    """Trace entries with ``at`` as seconds since ``start`` (the engine records ISO 8601)."""
    out = []
    for e in entries:
        at = e["at"]
        seconds = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() if isinstance(at, str) else float(at)
        out.append({**e, "at": round(seconds - start, 3)})
    return out


def complete_event(event: dict[str, Any], n: int) -> dict[str, Any]:
    """A scenario's event as a full CloudEvent (without the scenario-only ``advance``)."""
    out = {k: v for k, v in event.items() if k != "advance"}
    out.setdefault("specversion", "1.0")
    out.setdefault("id", f"conformance-{n}")
    out.setdefault("source", "/conformance")
    return out


def secret_env(secrets: dict[str, Any] | None) -> Iterator[tuple[str, str]]:
    """``ITINERA_SECRET_<NAME>`` variables for a scenario's secrets (values JSON-encoded)."""
    for name, value in (secrets or {}).items():
        yield f"ITINERA_SECRET_{name.upper()}", value if isinstance(value, str) else json.dumps(value)
