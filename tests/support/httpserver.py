"""A real HTTP server on 127.0.0.1 that records every request and honours ``Idempotency-Key``.

Use it in-process::

    with RecordingServer() as server:
        server.set_rule("/flaky", fail_first=2, fail_status=503)
        ... send to server.url + "/flaky" ...
        assert server.recording.effects("key-1") == 1

or as a separate process that outlives the workers a crash test kills::

    python -m tests.support.httpserver --port 0 --db requests.sqlite3

(it prints ``listening http://127.0.0.1:PORT`` once ready; :class:`ServerProcess` starts one and
reads that line). Every request is committed to SQLite before it is answered, so the counts can be
read from the database file by another process, even after the server is gone.

**The idempotency model** (what a well-behaved receiver does): the first request carrying a key
performs the *effect* (one row in ``effects``) when it is answered with a status below 400, and
its answer is stored when its status is below 500; a later request with the same key gets the
stored answer again, without a new effect (``replayed`` is set on its request row). A request that
arrives while the first one with its key is still being handled waits for it. 5xx answers are not
stored, so a retry after a 503 performs the effect then.

**Rules** (per exact path, set with :meth:`RecordingServer.set_rule` or ``POST /_control/rules``):
answer ``status`` with a JSON (``json``), text (``text``) or ``size``-byte body -- by default an
echo of the request as JSON -- after ``delay`` seconds; the first ``fail_first`` calls instead get
``fail_status`` (0: the connection is closed without an answer). ``chunked`` sends the body without
a Content-Length.
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

CONTROL = "/_control/"
ROOT = Path(__file__).resolve().parents[2]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    query TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    key TEXT,
    status INTEGER,
    replayed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS effects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT,
    path TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    status INTEGER NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL
);
"""


@dataclass(kw_only=True)
class Rule:
    """How the server answers requests to one path."""

    status: int = 200
    json: Any = None
    text: str | None = None
    size: int | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    fail_first: int = 0
    fail_status: int = 503
    chunked: bool = False


@dataclass(frozen=True, kw_only=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    key: str | None
    status: int | None
    replayed: bool

    def json(self) -> Any:
        return json.loads(self.body)


class Recording:
    """Read-only queries over a server's request database (usable from any process)."""

    def __init__(self, db: str | Path, *, _conn: sqlite3.Connection | None = None, _lock: threading.RLock | None = None) -> None:
        self._db = str(db)
        self._conn = _conn
        self._lock = _lock or threading.RLock()

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._conn is not None:
            with self._lock:
                return self._conn.execute(sql, args).fetchall()
        conn = sqlite3.connect(f"file:{self._db}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def requests(self, *, path: str | None = None, key: str | None = None) -> list[RecordedRequest]:
        """Requests in arrival order, optionally only those to ``path`` or with ``key``."""
        sql = "SELECT method, path, query, headers, body, key, status, replayed FROM requests"
        where, args = _filters(path=path, key=key)
        rows = self._rows(sql + where + " ORDER BY id", args)
        return [
            RecordedRequest(
                method=m, path=p, query=json.loads(q), headers=json.loads(h), body=bytes(b), key=k, status=s, replayed=bool(r)
            )
            for m, p, q, h, b, k, s, r in rows
        ]

    def request_count(self, *, path: str | None = None, key: str | None = None) -> int:
        where, args = _filters(path=path, key=key)
        return int(self._rows("SELECT count(*) FROM requests" + where, args)[0][0])

    def requests_per_key(self) -> dict[str, int]:
        rows = self._rows("SELECT key, count(*) FROM requests WHERE key IS NOT NULL GROUP BY key")
        return {str(k): int(n) for k, n in rows}

    def effects(self, key: str) -> int:
        """How many times the effect of ``key`` was performed (1 for a well-deduplicated key)."""
        return int(self._rows("SELECT count(*) FROM effects WHERE key = ?", (key,))[0][0])

    def effects_per_key(self) -> dict[str, int]:
        rows = self._rows("SELECT key, count(*) FROM effects WHERE key IS NOT NULL GROUP BY key")
        return {str(k): int(n) for k, n in rows}

    def effect_count(self, *, path: str | None = None) -> int:
        where, args = _filters(path=path, key=None)
        return int(self._rows("SELECT count(*) FROM effects" + where, args)[0][0])


def _filters(*, path: str | None, key: str | None) -> tuple[str, tuple[Any, ...]]:
    clauses, args = [], []
    if path is not None:
        clauses.append("path = ?")
        args.append(path)
    if key is not None:
        clauses.append("key = ?")
        args.append(key)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)


class _State:
    """What the handler threads share: the database, the rules, in-flight keys."""

    def __init__(self, db: str) -> None:
        self.conn = sqlite3.connect(db, check_same_thread=False, isolation_level=None, timeout=30)
        if db != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(_SCHEMA)
        self.lock = threading.RLock()
        self.inflight = threading.Condition(self.lock)
        self.busy_keys: set[str] = set()
        self.rules: dict[str, Rule] = {}
        self.calls: dict[str, int] = {}

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> int | None:
        """Run one statement (committed at once: autocommit) and return the new row id."""
        with self.lock:
            return self.conn.execute(sql, args).lastrowid

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return self.conn.execute(sql, args).fetchall()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # tests read the recording, not a log

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _handle(self) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client died mid-request: nothing was asked, nothing happens
            self.close_connection = True
            return
        if parts.path.startswith(CONTROL):
            self._control(parts.path[len(CONTROL) :], body)
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        key = headers.get("idempotency-key")
        query = parse_qs(parts.query, keep_blank_values=True)
        row_id = state.execute(
            "INSERT INTO requests (at, method, path, query, headers, body, key) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (time.time(), self.command, parts.path, json.dumps(query), json.dumps(headers), body, key),
        )
        stored: list[tuple[Any, ...]] = []
        with state.inflight:
            if key is not None:
                while key in state.busy_keys:
                    state.inflight.wait()
                stored = state.query("SELECT status, headers, body FROM responses WHERE key = ?", (key,))
                if stored:
                    state.execute("UPDATE requests SET status = ?, replayed = 1 WHERE id = ?", (stored[0][0], row_id))
                else:
                    state.busy_keys.add(key)
            rule = state.rules.get(parts.path, Rule())
            calls = state.calls[parts.path] = state.calls.get(parts.path, 0) + (0 if stored else 1)
        if stored:
            status, out_headers, payload = stored[0]
            self._answer(status, json.loads(out_headers), bytes(payload), chunked=False)
            return
        try:
            self._perform(rule, calls, key, row_id, parts.path, query, headers, body)
        finally:
            if key is not None:
                with state.inflight:
                    state.busy_keys.discard(key)
                    state.inflight.notify_all()

    def _perform(
        self, rule: Rule, calls: int, key: str | None, row_id: int | None, path: str, query: Any, headers: Any, body: bytes
    ) -> None:
        state = self.server.state
        if rule.delay:
            time.sleep(rule.delay)
        if calls <= rule.fail_first:
            status = rule.fail_status
            if status == 0:
                state.execute("UPDATE requests SET status = 0 WHERE id = ?", (row_id,))
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            out_headers = {"Content-Type": "application/json"}
            payload = json.dumps({"error": f"planned failure {calls} of {rule.fail_first}"}).encode()
        else:
            status = rule.status
            out_headers, payload = self._body(rule, path, query, headers, body, key)
        with state.lock:
            if status < 400:
                state.execute("INSERT INTO effects (key, path, at) VALUES (?, ?, ?)", (key, path, time.time()))
            if key is not None and status < 500:
                state.execute(
                    "INSERT OR REPLACE INTO responses (key, status, headers, body) VALUES (?, ?, ?, ?)",
                    (key, status, json.dumps(out_headers), payload),
                )
            state.execute("UPDATE requests SET status = ? WHERE id = ?", (status, row_id))
        self._answer(status, out_headers, payload, chunked=rule.chunked)

    def _body(self, rule: Rule, path: str, query: Any, headers: Any, body: bytes, key: str | None) -> tuple[dict[str, str], bytes]:
        out_headers = dict(rule.headers)
        if rule.size is not None:
            payload = b"x" * rule.size
            ctype = "text/plain"
        elif rule.text is not None:
            payload = rule.text.encode()
            ctype = "text/plain; charset=utf-8"
        elif rule.json is not None:
            payload = json.dumps(rule.json).encode()
            ctype = "application/json"
        else:
            try:
                sent: Any = json.loads(body) if body else None
            except ValueError:
                sent = body.decode("utf-8", errors="replace")
            echo = {"method": self.command, "path": path, "query": query, "headers": headers, "body": sent, "key": key}
            payload = json.dumps(echo).encode()
            ctype = "application/json"
        out_headers.setdefault("Content-Type", rule.content_type or ctype)
        return out_headers, payload

    def _answer(self, status: int, headers: dict[str, str], payload: bytes, *, chunked: bool) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if chunked:
            step = 64 * 1024
            for start in range(0, len(payload), step):
                piece = payload[start : start + step]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(payload)

    def _control(self, action: str, body: bytes) -> None:
        state = self.server.state
        if action == "rules" and self.command == "POST":
            rules = json.loads(body)
            with state.lock:
                for path, spec in rules.items():
                    state.rules[path] = Rule(**spec)
        elif action == "rules" and self.command == "DELETE":
            with state.lock:
                state.rules.clear()
                state.calls.clear()
        elif action != "ping":
            self._answer(404, {"Content-Type": "text/plain"}, b"unknown control action", chunked=False)
            return
        self._answer(200, {"Content-Type": "application/json"}, b"{}", chunked=False)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gives up (a timeout, a size limit) resets the connection: expected here.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        self.state = state
        super().__init__(address, _Handler)


class RecordingServer:
    """The server, run on a background thread of this process.

    Args:
        port: 0 for an ephemeral port.
        db: the SQLite file to record to; in memory when None.
    """

    def __init__(self, *, port: int = 0, db: str | Path | None = None) -> None:
        self._state = _State(str(db) if db is not None else ":memory:")
        self._server = _Server(("127.0.0.1", port), self._state)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.recording = Recording(db or ":memory:", _conn=self._state.conn, _lock=self._state.lock)
        self._thread: threading.Thread | None = None

    def set_rule(self, path: str, **spec: Any) -> None:
        """Answer requests to ``path`` as :class:`Rule` ``spec`` says (and restart its call count)."""
        with self._state.lock:
            self._state.rules[path] = Rule(**spec)
            self._state.calls.pop(path, None)

    def start(self) -> RecordingServer:
        self._thread = threading.Thread(target=self.serve_forever, name=f"httpserver-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        with self._state.lock:
            self._state.conn.close()

    def serve_forever(self) -> None:
        # A short poll interval keeps shutdown() quick (it waits for the loop to notice).
        self._server.serve_forever(poll_interval=0.05)

    def __enter__(self) -> RecordingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServerProcess:
    """The server in a child process (``python -m tests.support.httpserver``), recording to ``db``."""

    def __init__(self, db: str | Path, *, port: int = 0) -> None:
        self.db = Path(db)
        self._port = port
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.recording = Recording(self.db)

    def start(self) -> ServerProcess:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.httpserver", "--port", str(self._port), "--db", str(self.db)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the test HTTP server did not start: {line!r}")
        self.url = line.split(" ", 1)[1]
        return self

    def set_rule(self, path: str, **spec: Any) -> None:
        Rule(**spec)  # fail here, not in the child, on a bad spec
        httpx.post(f"{self.url}{CONTROL}rules", json={path: spec}).raise_for_status()

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    """A port nothing listens on right now (for connection-refused tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--db", required=True, help="SQLite file to record requests to")
    args = parser.parse_args(argv)
    server = RecordingServer(port=args.port, db=args.db)
    print(f"listening {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    _main()
