"""The ``itinera`` command, run as a real subprocess: output, exit codes, and no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TIMEOUT = 120


def itinera(*args: str, cwd: Path, db: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m itinera.cli ARGS`` in ``cwd``; never inherits a developer's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITINERA_")}
    env["ITINERA_DATABASE_URL"] = db or f"sqlite:///{cwd / 'itinera.db'}"
    env["COLUMNS"] = "250"  # tables keep run ids whole
    done = subprocess.run(
        [sys.executable, "-m", "itinera.cli", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def shown(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


WAITER = """\
document: {dsl: '1.0.3', namespace: tests, name: waiter, version: '1.0.0'}
do:
  - greet:
      set: {hello: '${ .name }'}
  - hear:
      listen:
        to:
          one:
            with: {type: com.example.ping}
"""

BROKEN = """\
document: {dsl: '1.0.3', namespace: tests, name: broken, version: '1.0.0'}
do:
  - first:
      set: {x: 1}
      then: nowhere
"""


# ------------------------------------------------------------------------------ itinera run


def test_run_prints_the_output_and_exits_0(tmp_path: Path) -> None:
    done = itinera("run", str(EXAMPLES / "hello.yaml"), "--input", '{"name": "Ada", "plan": "team"}', cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    assert json.loads(done.stdout) == {"greeting": "Hello Ada, welcome to the team plan!", "followedUp": True}


def test_run_fault_prints_the_rfc7807_error_and_exits_1(tmp_path: Path) -> None:
    done = itinera("run", str(EXAMPLES / "ticket-routing.yaml"), "--input", '{"id": "T-2", "category": "outage"}', cwd=tmp_path)
    assert done.returncode == 1, shown(done)
    error = json.loads(done.stdout)
    assert error["type"] == "https://itinera.dev/errors/unroutable-ticket"
    assert error["status"] == 422
    assert error["instance"] == "/do/5/rejectTicket"
    assert error["detail"] == "ticket T-2 names no customer"


def test_run_invalid_definition_is_located_on_stderr_and_exits_2(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.yaml", BROKEN)
    done = itinera("run", "broken.yaml", cwd=tmp_path)
    assert done.returncode == 2, shown(done)
    assert done.stdout == ""
    assert "broken.yaml:5:7: /do/0/first/then:" in done.stderr
    assert "nowhere" in done.stderr
    assert broken.exists()


def test_run_left_waiting_for_an_event_exits_3(tmp_path: Path) -> None:
    write(tmp_path / "waiter.yaml", WAITER)
    done = itinera("run", "waiter.yaml", "--input", '{"name": "Ada"}', "--subject", "person-1", cwd=tmp_path)
    assert done.returncode == 3, shown(done)
    printed = json.loads(done.stdout)
    assert printed["status"] == "waiting"
    [wait] = printed["waits"]
    assert wait["kind"] == "event"
    assert wait["types"] == ["com.example.ping"]
    assert wait["task"] == "/do/1/hear"


def test_run_follows_timers_on_a_virtual_clock(tmp_path: Path) -> None:
    """The laptop request's two-day timeout fires at once; the run then waits for the head."""
    done = itinera("run", str(EXAMPLES / "laptop-request.yaml"), "--input", '{"employee": "e-17", "item": "laptop"}', "--subject", "e-17", cwd=tmp_path)
    assert done.returncode == 3, shown(done)
    [wait] = json.loads(done.stdout)["waits"]
    assert wait["task"] == "/do/1/awaitManager/catch/do/1/headDecides"


def test_run_trace_writes_task_lifecycle_json_lines(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    done = itinera("run", str(EXAMPLES / "hello.yaml"), "--input", '{"name": "Ada"}', "--trace", str(trace), cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [(r["event"], r["ref"]) for r in records] == [
        ("task.started", "/do/0/greet"),
        ("task.completed", "/do/0/greet"),
        ("task.started", "/do/1/sleepOnIt"),
        ("task.completed", "/do/1/sleepOnIt"),
        ("task.started", "/do/2/followUp"),
        ("task.completed", "/do/2/followUp"),
    ]
    assert {r["task"] for r in records} == {"greet", "sleepOnIt", "followUp"}
    started, slept = records[2]["at"], records[3]["at"]
    assert isinstance(started, str) and started.endswith("Z")
    from datetime import datetime

    seconds = (datetime.fromisoformat(slept.replace("Z", "+00:00")) - datetime.fromisoformat(started.replace("Z", "+00:00"))).total_seconds()
    assert seconds == 86_400  # a day passed on the virtual clock


def test_run_trace_records_a_fault(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    done = itinera("run", str(EXAMPLES / "ticket-routing.yaml"), "--input", '{"id": "T-3"}', "--trace", str(trace), cwd=tmp_path)
    assert done.returncode == 1, shown(done)
    events = [(r["event"], r["task"]) for r in map(json.loads, trace.read_text().splitlines())]
    assert ("task.faulted", "rejectTicket") in events


@pytest.mark.parametrize("value", ["{not json", "", "@missing.json"])
def test_run_rejects_bad_input_with_exit_2(tmp_path: Path, value: str) -> None:
    done = itinera("run", str(EXAMPLES / "hello.yaml"), "--input", value, cwd=tmp_path)
    assert done.returncode == 2, shown(done)
    assert "--input" in done.stderr
    assert done.stdout == ""


def test_run_reads_input_from_a_file(tmp_path: Path) -> None:
    write(tmp_path / "ada.json", '{"name": "Ada"}')
    done = itinera("run", str(EXAMPLES / "hello.yaml"), "--input", "@ada.json", cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    assert json.loads(done.stdout)["greeting"] == "Hello Ada, welcome to the starter plan!"


def test_run_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    done = itinera("run", "nope.yaml", cwd=tmp_path)
    assert done.returncode == 2, shown(done)
    assert "nope.yaml" in done.stderr


# ------------------------------------------------------------------------------ validate


def test_validate_reports_each_file(tmp_path: Path) -> None:
    write(tmp_path / "broken.yaml", BROKEN)
    done = itinera("validate", str(EXAMPLES / "hello.yaml"), "broken.yaml", cwd=tmp_path)
    assert done.returncode == 1, shown(done)
    assert "hello.yaml: examples/hello 1.0.0 ok" in done.stdout
    assert "broken.yaml:5:7: /do/0/first/then:" in done.stdout
    assert "broken.yaml: 1 problem" in done.stdout


def test_validate_every_example(tmp_path: Path) -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    assert len(files) >= 3
    done = itinera("validate", *files, cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    assert done.stdout.count(" ok") == len(files)


# ------------------------------------------------------------------------------ a database


def _run_ids(table: str) -> list[str]:
    import re

    return re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", table)


def test_deploy_send_events_work_and_inspect_runs(tmp_path: Path) -> None:
    done = itinera("journeys", "deploy", str(EXAMPLES / "onboarding.yaml"), cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    assert "itinera-demo/onboarding 1.0.0" in done.stdout

    done = itinera("journeys", "list", cwd=tmp_path)
    assert "itinera-demo/onboarding" in done.stdout and "event" in done.stdout

    events = (EXAMPLES / "events" / "onboarding.jsonl").read_text().splitlines()
    events.insert(2, '{"specversion": "1.0", "id": "broken"')  # line 3: not JSON
    events.insert(4, '{"specversion": "1.0", "id": "x", "source": "s"}')  # line 5: no type
    write(tmp_path / "events.jsonl", "\n".join(events) + "\n")
    done = itinera("events", "send", "events.jsonl", cwd=tmp_path)
    assert done.returncode == 1, shown(done)
    assert "events.jsonl:3: rejected: not JSON" in done.stderr
    assert "events.jsonl:5: rejected: required attribute 'type'" in done.stderr
    summary = done.stdout.split("\n")
    assert any(line.split("│")[1:7] and [c.strip() for c in line.split("│")[1:7]] == ["9", "7", "0", "2", "5", "0"] for line in summary), done.stdout

    done = itinera("events", "send", "-", cwd=tmp_path, stdin=(EXAMPLES / "events" / "onboarding.jsonl").read_text())
    assert done.returncode == 0, shown(done)  # the same events again: all duplicates, nothing rejected

    done = itinera("worker", "--once", cwd=tmp_path)
    assert done.returncode == 0, shown(done)

    done = itinera("runs", "list", "--status", "waiting", cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    waiting = _run_ids(done.stdout)
    # Two of the five customers activated in the file; the other three wait for activation.
    assert len(waiting) == 3, done.stdout
    assert "com.itinera.demo.customer.activated" in done.stdout

    done = itinera("runs", "list", "--status", "completed", cwd=tmp_path)
    completed = _run_ids(done.stdout)
    assert len(completed) == 2, done.stdout

    done = itinera("runs", "show", completed[0], cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    run: dict[str, Any] = json.loads(done.stdout)
    assert run["id"] == completed[0]
    assert run["status"] == "completed"
    assert run["output"]["outcome"] == "activated"
    assert run["output"]["reminded"] is False
    assert [h["kind"] for h in run["history"]][0] == "run.started"
    assert run["history"][-1]["kind"] == "run.completed"

    done = itinera("runs", "cancel", waiting[0], cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    assert "cancelled" in done.stdout
    done = itinera("runs", "cancel", waiting[0], cwd=tmp_path)
    assert done.returncode == 1, shown(done)
    assert "is cancelled" in done.stderr

    done = itinera("runs", "suspend", waiting[1], cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    done = itinera("runs", "resume", waiting[1], cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    assert json.loads(itinera("runs", "show", waiting[1], cwd=tmp_path).stdout)["status"] == "waiting"


def test_start_a_deployed_journey_and_advance_it(tmp_path: Path) -> None:
    assert itinera("journeys", "deploy", str(EXAMPLES / "ticket-routing.yaml"), cwd=tmp_path).returncode == 0
    done = itinera("runs", "start", "examples/ticket-routing", "--input", '{"id": "T-9", "customer": {"tier": "gold"}, "category": "outage"}', cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    run_id = done.stdout.strip()
    assert itinera("worker", "--once", cwd=tmp_path).returncode == 0
    run = json.loads(itinera("runs", "show", run_id, cwd=tmp_path).stdout)
    assert run["status"] == "completed"
    assert run["output"] == {"ticket": "T-9", "queue": "incidents", "respondWithinMinutes": 15}


def test_worker_advances_runs_until_sigterm(tmp_path: Path) -> None:
    import signal
    import time

    assert itinera("journeys", "deploy", str(EXAMPLES / "ticket-routing.yaml"), cwd=tmp_path).returncode == 0
    run_id = itinera("runs", "start", "ticket-routing", "--input", '{"id": "T-5", "customer": {}, "category": "billing"}', cwd=tmp_path).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITINERA_")}
    env["ITINERA_DATABASE_URL"] = f"sqlite:///{tmp_path / 'itinera.db'}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "itinera.cli", "worker", "--report-every", "0.5"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        status = "pending"
        while status != "completed" and time.monotonic() < deadline:
            time.sleep(0.3)
            status = json.loads(itinera("runs", "show", run_id, cwd=tmp_path).stdout)["status"]
        assert status == "completed"
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=TIMEOUT)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, stderr
    assert "worker stopped after advancing 1 run in" in stderr
    assert "runs/s" in stderr
    assert "Traceback" not in stderr


def test_unknown_run_is_a_clear_error(tmp_path: Path) -> None:
    done = itinera("runs", "show", "no-such-run", cwd=tmp_path)
    assert done.returncode == 1, shown(done)
    assert "no run no-such-run" in done.stderr


def test_db_upgrade_and_status(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fresh.db'}"
    done = itinera("db", "status", cwd=tmp_path, db=db)
    assert done.returncode == 1, shown(done)
    assert "itinera db upgrade" in done.stdout
    done = itinera("db", "upgrade", cwd=tmp_path, db=db)
    assert done.returncode == 0, shown(done)
    assert itinera("db", "status", cwd=tmp_path, db=db).returncode == 0


def test_an_unsupported_database_url_is_a_clear_error(tmp_path: Path) -> None:
    done = itinera("runs", "list", cwd=tmp_path, db="mysql://localhost/x")
    assert done.returncode == 1, shown(done)
    assert "unsupported database URL" in done.stderr


def test_blocks_lists_the_catalog_and_its_contracts(tmp_path: Path) -> None:
    done = itinera("blocks", cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    assert "log:1.0.0@itinera" in done.stdout and "template:1.0.0@itinera" in done.stdout
    contracts = json.loads(itinera("blocks", "--json", cwd=tmp_path).stdout)
    log = next(c for c in contracts if c["reference"] == "log:1.0.0@itinera")
    assert log["input"]["required"] == ["message"]
    assert "properties" in log["output"]


def test_version(tmp_path: Path) -> None:
    from itinera import __version__

    done = itinera("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.strip() == f"itinera {__version__}"


# ------------------------------------------------------------------------------ demo


def test_demo_with_50_customers_prints_its_summary(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    done = itinera("demo", "--customers", "50", "--db", db, cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    for words in ("activated", "dormant", "reminders sent", "events ingested", "wall time", "runs/s"):
        assert words in done.stdout, done.stdout
    assert "faulted" not in done.stdout
    assert (tmp_path / "demo.sqlite").exists()
    # The demo database can be inspected with the other commands.
    listed = itinera("runs", "list", "--status", "completed", "--limit", "100", cwd=tmp_path, db=db)
    assert len(_run_ids(listed.stdout)) == 50, shown(listed)


# ------------------------------------------------------------------------------ the edge


def test_an_unexpected_exception_is_an_internal_error_without_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from itinera import cli
    from itinera.cli import run as run_command

    def broken(tenant: str | None = None) -> Any:
        raise RuntimeError("the flux capacitor is empty")

    monkeypatch.setattr(run_command, "_scratch_engine", broken)
    monkeypatch.delenv("ITINERA_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", str(EXAMPLES / "hello.yaml")])
    assert exited.value.code == 70
    stderr = capsys.readouterr().err
    assert "internal error: RuntimeError: the flux capacitor is empty" in stderr
    assert "Traceback" not in stderr

    monkeypatch.setenv("ITINERA_DEBUG", "1")
    with pytest.raises(RuntimeError, match="flux capacitor"):
        cli.main(["run", str(EXAMPLES / "hello.yaml")])


def test_a_bad_setting_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from itinera import cli

    monkeypatch.setenv("ITINERA_BATCH_SIZE", "many")
    with pytest.raises(SystemExit) as exited:
        cli.main(["--db", f"sqlite:///{tmp_path / 'x.db'}", "runs", "list"])
    assert exited.value.code == 2
    assert "invalid setting ITINERA_BATCH_SIZE" in capsys.readouterr().err
