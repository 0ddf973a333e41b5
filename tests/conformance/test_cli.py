"""The conformance scenarios that need no events, run through ``itinera run`` in a subprocess.

``itinera run FILE --input JSON --trace FILE`` prints the output JSON and exits 0 when the run
completes, prints the RFC 7807 error JSON and exits 1 when it faults, exits 2 when the definition
is invalid, and exits 3 when it ends waiting for an event.

Every scenario without events runs through the real command (each costs most of a second of
interpreter start-up and imports, so they run a few at a time). ``ITINERA_CONFORMANCE_CLI=sample``
runs only, for each area, the first scenario of each expected status (completed, faulted,
invalid, waiting), which still covers every area and every exit code, for a quick local loop.
The commands are started together on a small thread pool when the
module's first test asks for a result; each test then checks its own command's result. Each
command gets its own test HTTP server when it needs one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conformance.scenario import Outcome, Scenario, all_scenarios, check, relative_trace, secret_env
from tests.support.httpserver import RecordingServer

if importlib.util.find_spec("itinera.cli") is None:
    pytest.skip("itinera.cli does not exist yet: the `itinera run` command is not written", allow_module_level=True)

EXIT_STATUS = {0: "completed", 1: "faulted", 2: "invalid", 3: "waiting"}
TIMEOUT = 60


def _selected() -> list[Scenario]:
    # `itinera run` starts one run and sends no events.
    scenarios = [s for s in all_scenarios() if not s.driven_by_events]
    if os.environ.get("ITINERA_CONFORMANCE_CLI", "all") != "sample":
        return scenarios
    seen: set[tuple[str, str]] = set()
    sample = []
    for s in scenarios:
        key = (s.id.split("/")[0], s.data["expect"]["status"])
        if key not in seen and not s.data.get("cli"):
            seen.add(key)
            sample.append(s)
    return sample


def _params() -> list[Any]:
    params = []
    for s in _selected():
        if s.data.get("cli"):
            params.append(pytest.param(s, id=s.id, marks=pytest.mark.skip(reason=str(s.data["cli"]))))
        else:
            params.append(s.param())
    return params


@dataclass(frozen=True, kw_only=True)
class Result:
    """One command's result, with the scenario as it was run (server URL filled in)."""

    data: dict[str, Any]
    outcome: Outcome
    shown: str  # exit code and output, for failure messages


def _json(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _trace(path: Path) -> list[dict[str, Any]] | None:
    if not path.exists():
        return None
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not entries:
        return []
    start = datetime.fromisoformat(entries[0]["at"].replace("Z", "+00:00")).timestamp()
    return relative_trace(entries, start)


def run_command(scenario: Scenario, workdir: Path) -> Result:
    """Run ``scenario`` through ``itinera run`` (with a test HTTP server when it needs one)."""
    server = RecordingServer().start() if scenario.needs_server else None
    try:
        data = scenario.resolved(server.url if server is not None else None)
        if server is not None:
            for path, rule in (data.get("server") or {}).items():
                server.set_rule(path, **rule)
        definition = workdir / "definition.yaml"
        definition.write_text(yaml.safe_dump(data["definition"], sort_keys=False))
        trace_file = workdir / "trace.jsonl"
        env = {**os.environ, "ITINERA_DATABASE_URL": f"sqlite:///{workdir / 'unused.db'}"}
        env.update(secret_env(data.get("secrets")))
        command = [sys.executable, "-m", "itinera", "run", str(definition), "--input", json.dumps(data.get("input") or {}), "--trace", str(trace_file)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=workdir, check=False)
        shown = f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
        status = EXIT_STATUS.get(done.returncode, f"exit {done.returncode}")
        printed = _json(done.stdout)
        expect = data["expect"]
        outcome = Outcome(
            status=status,
            output=printed if status == "completed" else None,
            error=printed if status == "faulted" else {"detail": done.stdout + done.stderr} if status == "invalid" else None,
            trace=_trace(trace_file),
            requests={p: server.recording.request_count(path=p) for p in expect.get("requests") or {}} if server is not None else {},
        )
        if status == "waiting":
            assert isinstance(printed, dict) and printed.get("status") == "waiting", f"a waiting run prints its status\n{shown}"
        return Result(data=data, outcome=outcome, shown=shown)
    finally:
        if server is not None:
            server.stop()


@pytest.fixture(scope="module")
def commands(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[Result]]]:
    """The command of every scenario collected here, started on a thread pool (by scenario id)."""
    here = Path(__file__)
    wanted = {
        item.callspec.params["scenario"].id
        for item in request.session.items
        if item.path == here and hasattr(item, "callspec") and "scenario" in item.callspec.params
    }
    with tempfile.TemporaryDirectory(prefix="itinera-cli-") as tmp, ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures: dict[str, Future[Result]] = {}
        for i, s in enumerate(_selected()):
            if s.data.get("cli") or s.id not in wanted:
                continue
            workdir = Path(tmp) / f"{i:03d}"
            workdir.mkdir()
            futures[s.id] = pool.submit(run_command, s, workdir)
        try:
            yield futures
        finally:
            for future in futures.values():
                future.cancel()


@pytest.mark.parametrize("scenario", _params())
def test_scenario(scenario: Scenario, commands: dict[str, Future[Result]]) -> None:
    result = commands[scenario.id].result(timeout=TIMEOUT * 2)
    check(result.data["expect"], result.outcome, where=result.shown)
