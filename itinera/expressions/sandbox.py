"""Run jq in a pool of sandbox child processes, with time, memory and size limits.

jq is C code: a Python thread cannot interrupt ``def f: f; f`` or ``[range(1e10)]``, and an
allocation failure inside jq aborts the whole process. So expressions outside the native
subset run in persistent children (:mod:`itinera.expressions.sandbox_worker`), each with an
empty environment and a capped address space. The parent waits on the pipe with a deadline;
on timeout it kills the child and raises :class:`~itinera.errors.ExpressionError`. A child
that died is replaced on the next call.

The limits are the module-level settings below, read on every call (``MEMORY_LIMIT`` when a
child starts; an idle child started under another value is replaced). They bound jq
evaluations only: the native evaluator neither serializes its input nor loops.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from itinera.errors import ExpressionError

TIME_LIMIT: float = 1.0
"""Seconds of wall-clock time one evaluation may take."""
MEMORY_LIMIT: int = 512 * 1024 * 1024
"""Bytes of address space a sandbox child may use."""
MAX_INPUT_BYTES: int = 1024 * 1024
"""Largest serialized input (data and variables together)."""
MAX_OUTPUT_BYTES: int = 1024 * 1024
"""Largest serialized output."""
POOL_SIZE: int = 2
"""Most sandbox children alive at once; callers beyond it wait for a free one."""
STARTUP_TIMEOUT: float = 30.0
"""Seconds a new child may take to start (not charged to any expression)."""

_WORKER = Path(__file__).with_name("sandbox_worker.py")
_REQUEST = struct.Struct("<II")
_RESPONSE = struct.Struct("<BI")
_OK, _JQ_ERROR, _COMPILE_ERROR, _LIMIT = 0, 1, 2, 3
_BIG_INT = re.compile(rb"[0-9]{19}")  # an integer orjson would read as a float, maybe


class _Timeout(Exception):
    pass


class _Died(Exception):
    pass


class _Unsent(_Died):
    """The child was gone before it received the request (it died while idle)."""


@dataclass(eq=False)
class _Worker:
    proc: subprocess.Popen[bytes]
    stdin: IO[bytes]
    stdout: IO[bytes]
    memory: int

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.detach()

    def stop(self, grace: float = 1.0) -> None:
        """Close the request pipe (the child exits on end-of-file); kill it if it lingers."""
        self.detach()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def detach(self) -> None:
        for pipe in (self.stdin, self.stdout):
            try:
                pipe.close()
            except OSError:
                pass

    def exchange(self, frame: bytes, deadline: float) -> tuple[int, bytes]:
        """Send one request and read its response before ``deadline`` (monotonic)."""
        wfd, rfd = self.stdin.fileno(), self.stdout.fileno()
        view = memoryview(frame)
        poller = select.poll()
        poller.register(wfd, select.POLLOUT)
        while view:
            _wait(poller, deadline)
            try:
                written = os.write(wfd, view)
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                raise _Unsent from None
            view = view[written:]
        poller = select.poll()
        poller.register(rfd, select.POLLIN)
        head = _read(poller, rfd, _RESPONSE.size, deadline)
        status, length = _RESPONSE.unpack(head)
        if length > MAX_OUTPUT_BYTES + 4096:
            raise _Died  # not our protocol any more; treat the child as broken
        return status, _read(poller, rfd, length, deadline)


def _wait(poller: select.poll, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not poller.poll(remaining * 1000):
        raise _Timeout


def _read(poller: select.poll, fd: int, n: int, deadline: float) -> bytes:
    buffer = bytearray()
    while len(buffer) < n:
        _wait(poller, deadline)
        try:
            chunk = os.read(fd, n - len(buffer))
        except BlockingIOError:
            continue
        if not chunk:
            raise _Died
        buffer += chunk
    return bytes(buffer)


def _spawn() -> _Worker:
    memory = MEMORY_LIMIT
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", str(_WORKER), str(memory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={},
            close_fds=True,
            start_new_session=True,  # a terminal's Ctrl-C goes to the parent, which decides
        )
    except OSError as error:
        raise ExpressionError(f"the expression sandbox failed to start: {error}") from None
    assert proc.stdin is not None and proc.stdout is not None
    os.set_blocking(proc.stdin.fileno(), False)
    os.set_blocking(proc.stdout.fileno(), False)
    worker = _Worker(proc=proc, stdin=proc.stdin, stdout=proc.stdout, memory=memory)
    poller = select.poll()
    poller.register(proc.stdout.fileno(), select.POLLIN)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        head = _read(poller, proc.stdout.fileno(), _RESPONSE.size, deadline)
        _read(poller, proc.stdout.fileno(), _RESPONSE.unpack(head)[1], deadline)
    except (_Timeout, _Died):
        worker.kill()
        raise ExpressionError("the expression sandbox failed to start") from None
    return worker


class _Pool:
    """At most ``POOL_SIZE`` children; a caller takes an idle one, starts one, or waits."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.cond = threading.Condition()
        self.idle: list[_Worker] = []
        self.busy: set[_Worker] = set()
        self.starting = 0
        self.closed = False

    def acquire(self) -> _Worker:
        with self.cond:
            while True:
                if self.closed:
                    raise ExpressionError("the expression sandbox is shut down")
                while self.idle:
                    worker = self.idle.pop()
                    if worker.alive and worker.memory == MEMORY_LIMIT:
                        self.busy.add(worker)
                        return worker
                    worker.kill()
                if len(self.busy) + self.starting < max(1, POOL_SIZE):
                    self.starting += 1
                    break
                self.cond.wait()
        try:
            worker = _spawn()
        finally:
            with self.cond:
                self.starting -= 1
                self.cond.notify()
        with self.cond:
            if self.closed:
                worker.kill()
                raise ExpressionError("the expression sandbox is shut down")
            self.busy.add(worker)
        return worker

    def release(self, worker: _Worker, *, healthy: bool) -> None:
        with self.cond:
            self.busy.discard(worker)
            if healthy and not self.closed:
                self.idle.append(worker)
            self.cond.notify()
        if not healthy:
            worker.kill()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            idle, busy = self.idle, list(self.busy)
            self.idle = []
            self.cond.notify_all()
        for worker in idle:
            worker.stop()
        for worker in busy:
            worker.kill()

    def forget(self) -> None:
        """In a forked child: drop the parent's workers without touching them."""
        for worker in [*self.idle, *self.busy]:
            worker.detach()
            # Not our child: keep Popen from waiting for it or warning that it still runs.
            worker.proc.returncode = 0
        self.idle, self.busy = [], set()


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _current_pool() -> _Pool:
    global _pool
    pool = _pool
    if pool is not None and pool.pid == os.getpid():
        return pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            _pool = _Pool()
        return _pool


def worker_pids() -> list[int]:
    """The process ids of this process's sandbox children (for diagnostics and tests)."""
    pool = _pool
    if pool is None or pool.pid != os.getpid():
        return []
    with pool.cond:
        return sorted(worker.proc.pid for worker in [*pool.idle, *pool.busy])


def shutdown() -> None:
    """Stop every sandbox child. The next evaluation starts a fresh pool."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None and pool.pid == os.getpid():
        pool.close()


def _after_fork_in_child() -> None:
    global _pool, _pool_lock
    _pool_lock = threading.Lock()
    pool, _pool = _pool, None
    if pool is not None:
        pool.forget()


atexit.register(shutdown)
os.register_at_fork(after_in_child=_after_fork_in_child)


# --------------------------------------------------------------------------- requests


def _request(header: dict[str, Any], payload: bytes, *, source: str) -> tuple[int, bytes]:
    time_limit = TIME_LIMIT
    header = {**header, "cpu": time_limit * 2 + 1, "max_output": MAX_OUTPUT_BYTES}
    raw_header = orjson.dumps(header)
    frame = _REQUEST.pack(len(raw_header), len(payload)) + raw_header + payload
    pool = _current_pool()
    try:
        return _attempt(pool, frame, time_limit, source)
    except _Unsent:
        pass  # the child died while idle, not of this expression: once more on a fresh one
    try:
        return _attempt(pool, frame, time_limit, source)
    except _Unsent:
        message = "the expression sandbox is not answering"
        raise ExpressionError(message, expression=source) from None


def _attempt(pool: _Pool, frame: bytes, time_limit: float, source: str) -> tuple[int, bytes]:
    worker = pool.acquire()
    healthy = False
    try:
        status, body = worker.exchange(frame, time.monotonic() + time_limit)
        healthy = status != _LIMIT
        return status, body
    except _Timeout:
        raise ExpressionError(
            f"expression exceeded its {time_limit} s time limit", expression=source
        ) from None
    except _Unsent:
        raise
    except _Died:
        raise ExpressionError(_death_message(worker), expression=source) from None
    finally:
        pool.release(worker, healthy=healthy)


def _death_message(worker: _Worker) -> str:
    code = worker.proc.poll()
    if code is None:
        try:
            code = worker.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            code = None
    if code == -signal.SIGXCPU:
        return f"expression exceeded its {TIME_LIMIT} s time limit"
    mib = worker.memory // (1024 * 1024)
    return (
        f"expression evaluation was aborted: it exceeded its {mib} MiB memory limit or crashed jq"
    )


def check(program: str) -> frozenset[str]:
    """Compile ``program`` in the sandbox; return the variables it reads without binding.

    Raises:
        ExpressionError: the program does not compile (the message is one line).
    """
    status, body = _request({"op": "check", "program": program, "names": []}, b"", source=program)
    if status == _OK:
        free: list[str] = orjson.loads(body)["free"]
        return frozenset(free)
    raise ExpressionError(_body_text(status, body), expression=program)


def evaluate(program: str, names: tuple[str, ...], data: Any, values: list[Any]) -> list[Any]:
    """Run ``program`` on ``data`` with ``$names`` bound to ``values``; return its outputs."""
    payload = _dumps([data, *values], source=program)
    if len(payload) > MAX_INPUT_BYTES:
        raise ExpressionError(
            f"expression input is {len(payload)} bytes serialized; the limit is {MAX_INPUT_BYTES}",
            expression=program,
        )
    header = {"op": "eval", "program": program, "names": list(names)}
    status, body = _request(header, payload, source=program)
    if status != _OK:
        raise ExpressionError(_body_text(status, body), expression=program)
    outputs = _loads(body)
    if not isinstance(outputs, list):
        raise ExpressionError("the expression sandbox answered out of protocol", expression=program)
    return outputs


def _body_text(status: int, body: bytes) -> str:
    if status == _LIMIT:
        mib = MEMORY_LIMIT // (1024 * 1024)
        return f"expression evaluation was aborted: it exceeded its {mib} MiB memory limit"
    return body.decode("utf-8", "replace")


def _loads(body: bytes) -> Any:
    if not _BIG_INT.search(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    # The standard library keeps integers beyond 64 bits exact and reads 1E+1000 as inf.
    return json.loads(body)


def _dumps(value: Any, *, source: str) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        pass
    try:  # integers beyond 64 bits, which orjson refuses
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode()
    except (TypeError, ValueError) as error:
        raise ExpressionError(f"expression input is not JSON: {error}", expression=source) from None
    except RecursionError:
        raise ExpressionError("expression input is nested too deeply", expression=source) from None
