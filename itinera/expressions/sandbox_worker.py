"""The sandbox child: evaluates jq programs for the parent, one request at a time.

Started by :mod:`itinera.expressions.sandbox` as ``python -I sandbox_worker.py MEMORY``. It
imports nothing from Itinera (only the standard library, ``jq`` and ``orjson``), so it starts
fast and runs with an empty environment.

Before it imports jq it clears ``os.environ``, caps its address space (``RLIMIT_AS``), forbids
core dumps, and moves the protocol off file descriptors 0 and 1 so that nothing jq or Python
prints can corrupt it. Before each request it sets ``RLIMIT_CPU`` a few seconds past the CPU
time used so far: the parent's wall-clock deadline is the real limit, this is a backstop for a
parent that died.

Protocol (all integers little-endian):

* request: ``u32 header_len, u32 payload_len``, an orjson header ``{"op", "program",
  "names", "cpu", "max_output"}``, then the payload: the JSON text ``[data, value1, value2, ...]``;
* response: ``u8 status, u32 body_len``, body. Status 0: the JSON text of the list of outputs
  (``eval``), or ``{"free": [...]}`` (``check``); 1: a jq error message; 2: a compile error
  message; 3: a limit was broken (the child exits after sending it).
"""

from __future__ import annotations

import os
import re
import resource
import struct
import sys
from collections import OrderedDict
from typing import Any

OK, JQ_ERROR, COMPILE_ERROR, LIMIT = 0, 1, 2, 3
_REQUEST = struct.Struct("<II")
_RESPONSE = struct.Struct("<BI")
_CACHE_SIZE = 512
_MAX_MESSAGE = 2000
_UNDEFINED_VARIABLE = re.compile(r"jq: error: \$([A-Za-z_][A-Za-z0-9_]*) is not defined at ")


def wrap(program: str, names: list[str]) -> str:
    """The program as run: variables arrive in the input array; outputs leave as one JSON text.

    The newlines keep a trailing comment in ``program`` from swallowing the closing bracket.
    """
    binds = "".join(f", ${name}" for name in names)
    return f". as [$__d{binds}] | [$__d | (\n{program}\n)] | tojson"


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _send(fd: int, status: int, body: bytes) -> None:
    if status != OK and len(body) > _MAX_MESSAGE:
        body = body[:_MAX_MESSAGE] + b"..."  # error("x" * 1e6) makes a long message
    data = memoryview(_RESPONSE.pack(status, len(body)) + body)
    while data:
        data = data[os.write(fd, data) :]


def _one_line(message: str) -> str:
    lines = [line for line in message.splitlines() if line.startswith("jq: error")]
    line = lines[0] if lines else (message.splitlines() or ["invalid program"])[0]
    return line.removeprefix("jq: error: ").rstrip(":")


def main() -> None:
    memory = int(sys.argv[1])
    os.environ.clear()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    # Only now, with the environment cleared and memory capped. (jq ships no type stubs.)
    import jq  # type: ignore[import-not-found]  # noqa: PLC0415
    import orjson  # noqa: PLC0415

    rfd, wfd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)

    cache: OrderedDict[tuple[str, tuple[str, ...]], Any] = OrderedDict()

    def compiled(program: str, names: list[str]) -> Any:
        key = (program, tuple(names))
        found = cache.get(key)
        if found is not None:
            cache.move_to_end(key)
            return found
        found = jq.compile(wrap(program, names))
        cache[key] = found
        if len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
        return found

    _send(wfd, OK, b"ready")
    while True:
        head = _read_exact(rfd, _REQUEST.size)
        if head is None:
            return  # the parent closed the pipe: shut down
        header_len, payload_len = _REQUEST.unpack(head)
        raw_header = _read_exact(rfd, header_len)
        payload = _read_exact(rfd, payload_len) if payload_len else b""
        if raw_header is None or payload is None:
            return
        header = orjson.loads(raw_header)

        used = resource.getrusage(resource.RUSAGE_SELF)
        budget = int(used.ru_utime + used.ru_stime + header.get("cpu", 5)) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (budget, resource.RLIM_INFINITY))

        program: str = header["program"]
        try:
            if header["op"] == "check":
                _send(wfd, *_check(jq, orjson, program, compiled))
                continue
            try:
                runnable = compiled(program, header["names"])
            except ValueError as error:
                _send(wfd, COMPILE_ERROR, _one_line(str(error)).encode())
                continue
            try:
                text = runnable.input_text((payload or b"null").decode("utf-8")).first()
            except ValueError as error:
                _send(wfd, JQ_ERROR, str(error).encode())
                continue
            if not isinstance(text, str):
                _send(wfd, JQ_ERROR, b"the program does not have the expected shape")
                continue
            body = text.encode()
            max_output = header["max_output"]
            if len(body) > max_output:
                message = f"expression output is {len(body)} bytes; the limit is {max_output}"
                _send(wfd, JQ_ERROR, message.encode())
                continue
            _send(wfd, OK, body)
        except MemoryError:
            _send(wfd, LIMIT, b"memory")
            return


def _check(jq: Any, orjson: Any, program: str, compiled: Any) -> tuple[int, bytes]:
    """Compile ``program`` bare to learn its free variables (jq names each undefined one),
    then compile the wrapped form that binds them, which the next ``eval`` will reuse."""
    free: list[str] = []
    try:
        jq.compile(program)
    except ValueError as error:
        message = str(error)
        errors = [line for line in message.splitlines() if line.startswith("jq: error")]
        others = [line for line in errors if not _UNDEFINED_VARIABLE.match(line)]
        if others or not errors:
            return COMPILE_ERROR, _one_line(message).encode()
        for line in errors:
            match = _UNDEFINED_VARIABLE.match(line)
            if match is not None and match.group(1) not in free:
                free.append(match.group(1))
    free.sort()
    try:
        compiled(program, free)
    except ValueError as error:
        return COMPILE_ERROR, _one_line(str(error)).encode()
    return OK, orjson.dumps({"free": free})


if __name__ == "__main__":
    main()
