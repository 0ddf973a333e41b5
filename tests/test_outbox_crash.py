"""Kill a dispatcher process with SIGKILL mid-batch, start another, and count at the server.

The HTTP server runs in its own process too, so it outlives the dispatcher and keeps every
request it recorded; the store is a real database shared by the processes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from itinera.store import Store
from itinera.store.base import OutboxRow
from tests.support.httpserver import ServerProcess

pytestmark = pytest.mark.slow

ROWS = 30

WORKER = """
import sys, threading
from itinera.clock import SystemClock
from itinera.connectors import Dispatcher, HttpConnector
from itinera.store import open_store

url, name, lease = sys.argv[1], sys.argv[2], float(sys.argv[3])
store = open_store(url, migrate=False)
with HttpConnector() as http:
    dispatcher = Dispatcher(
        store, clock=SystemClock(), connectors={"http": http}, worker=name,
        lease_seconds=lease, batch=10, concurrency=4,
    )
    print("ready", flush=True)
    dispatcher.run(threading.Event(), idle_seconds=0.05)
"""


def start_worker(store_url: str, name: str, lease: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", WORKER, store_url, name, str(lease)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def stop(proc: subprocess.Popen[str], *, kill: bool) -> None:
    proc.kill() if kill else proc.terminate()
    proc.wait(timeout=30)
    if proc.stdout is not None:
        proc.stdout.close()


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_sigkill_mid_batch_loses_nothing_and_duplicates_no_effect(store: Store, store_url: str, tmp_path: Path) -> None:
    now = time.time()
    with ServerProcess(tmp_path / "server.sqlite3") as server:
        server.set_rule("/notify", delay=0.2, json={"sent": True})
        keys = [f"run-{i}/do/0/notify#0" for i in range(ROWS)]
        payload = {"method": "post", "url": server.url + "/notify", "body": {"n": 1}, "output": "content", "notify": False}
        rows = [
            OutboxRow(key=key, tenant="acme", run_id=f"run-{i}", kind="http", payload=payload, created_at=now, next_attempt_at=now)
            for i, key in enumerate(keys)
        ]
        with store.transaction() as tx:
            tx.add_outbox(rows)

        doomed = start_worker(store_url, "doomed", lease=2.0)
        try:
            wait_for(lambda: server.recording.request_count() >= 5, "the first requests")
        finally:
            stop(doomed, kill=True)  # SIGKILL: requests in flight, the batch unrecorded

        survivor = start_worker(store_url, "survivor", lease=2.0)
        try:

            def all_delivered() -> bool:
                with store.transaction() as tx:
                    return len(tx.outbox(status="delivered")) == ROWS

            wait_for(all_delivered, "every row to be delivered")
        finally:
            stop(survivor, kill=False)

        per_key = server.recording.requests_per_key()
        effects = server.recording.effects_per_key()

    assert effects == {key: 1 for key in keys}  # every effect happened, exactly once
    assert set(per_key) == set(keys)
    assert sum(per_key.values()) > ROWS  # the killed batch really was sent again
