"""The ``emit`` connector: publishes a workflow's emitted CloudEvent to an external sink.

The engine writes the row payload::

    {"event": <CloudEvent, JSON structured mode>, "sink": <http(s) URL or null>, "notify": false}

The engine has already routed the event to the runs inside Itinera when it wrote the row, so a
row without a ``sink`` is delivered at once. With a sink, the event is POSTed in the CloudEvents
HTTP binding's structured mode (``Content-Type: application/cloudevents+json``) with
``Idempotency-Key: <row.key>``.

Nobody in a workflow waits on an emit, so its refusals cannot be left to a ``catch``: a sink's
answer is classified here. 2xx is delivered; the statuses in :data:`RETRY_STATUSES` (and
transport failures) are retried with :attr:`EmitConnector.retry`; any other status (a 4xx, or a
3xx: redirects are not followed) dead-letters the row for an operator to look at and replay.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from itinera.connectors.base import DEFAULT_RETRY, Outcome, RetryPolicy
from itinera.connectors.http import DEFAULT_TIMEOUT, MAX_RESPONSE_BYTES, LazyClient, header_key, send_request
from itinera.errors import ErrorType, Problem
from itinera.store.base import OutboxRow

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"

RETRY_STATUSES: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})
"""Sink answers that mean "try again later"; every other non-2xx answer is final."""

_REQUIRED = ("specversion", "id", "source", "type")


class EmitConnector:
    """Publishes ``emit`` rows to their sink, if they have one.

    Args:
        client: the client to send with (closed by :meth:`close` only if created here).
        retry: how transport failures and :data:`RETRY_STATUSES` answers are retried.
        timeout: seconds allowed for one POST.
        retry_statuses: the sink answers treated as transient.
    """

    kind = "emit"

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout: float = DEFAULT_TIMEOUT,
        retry_statuses: frozenset[int] = RETRY_STATUSES,
    ) -> None:
        self._client = LazyClient(client)
        self.retry = retry
        self._timeout = timeout
        self._retry_statuses = retry_statuses

    def send(self, row: OutboxRow) -> Outcome:
        """Publish the row's event to its sink once (or nothing to do without a sink)."""
        event = row.payload.get("event")
        problem = _check_event(event)
        if problem is not None:
            return Outcome.failed(_configuration(f"outbox row {row.key!r}: {problem}"))
        sink = row.payload.get("sink")
        if sink is None:
            return Outcome.delivered({"ok": True})
        if not _is_http_url(sink):
            return Outcome.failed(_configuration(f"outbox row {row.key!r}: 'sink' must be an http(s) URL or null, got {sink!r}"))
        answer = send_request(
            self._client.get(),
            method="POST",
            url=sink,
            headers={"Content-Type": CONTENT_TYPE, "Idempotency-Key": header_key(row.key)},
            content=orjson.dumps(event),
            timeout=self._timeout,
            max_bytes=MAX_RESPONSE_BYTES,
        )
        if isinstance(answer, Outcome):
            return answer
        if 200 <= answer.status < 300:
            return Outcome.delivered({"ok": True, "status": answer.status})
        problem_obj = Problem(
            type=ErrorType.COMMUNICATION,
            status=answer.status,
            title=answer.reason or f"HTTP {answer.status}",
            detail=f"the event sink answered {answer.status} {answer.reason}".rstrip(),
            extra={"response": {"status": answer.status, "headers": answer.headers, "content": answer.content()}},
        )
        if answer.status in self._retry_statuses:
            return Outcome.transient(problem_obj)
        return Outcome.failed(problem_obj)

    def close(self) -> None:
        """Close the client if this connector created it."""
        self._client.close()

    def __enter__(self) -> EmitConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_event(event: Any) -> str | None:
    if not isinstance(event, dict):
        return f"'event' must be a CloudEvent object, got {type(event).__name__}"
    missing = [name for name in _REQUIRED if not event.get(name)]
    if missing:
        return f"'event' lacks the CloudEvents attribute(s) {', '.join(missing)}"
    return None


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return urlsplit(value).scheme.lower() in ("http", "https")
    except ValueError:
        return False


def _configuration(detail: str) -> Problem:
    return Problem(type=ErrorType.CONFIGURATION, status=400, title="Invalid emit", detail=detail)
