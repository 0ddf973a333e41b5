"""The ``http`` connector: performs a workflow's ``call: http`` task.

The engine writes the row payload::

    {"method": "post", "url": "https://...", "headers": {...}, "query": {...},
     "body": <any JSON or null>, "output": "content" | "response" | "raw",
     "redirect": false, "timeout": <seconds or null>, "notify": true}

Every request carries ``Idempotency-Key: <row.key>`` (replacing any such header of the payload),
so a row re-sent after a crash or a lost answer is recognised by a receiver that honours the key.

What the run receives (``result``):

* an answer inside the success range -- 200-299, or 200-399 when ``redirect`` is true, as the
  DSL's ``redirect`` property defines it -- gives ``{"ok": true, "status", "headers", ...}``
  with, by ``output`` mode: ``content`` (``"content"``), ``raw`` (``"raw"``: the body in
  base64) or ``response`` (``"content"`` and the ``"request"`` that was sent, its secrets
  redacted), so the engine can build the task output without the body being stored twice.
* any other answer gives ``{"ok": false, "error": problem}``: a ``communication`` problem whose
  ``status`` is the HTTP status and whose ``response`` holds the status, headers and content.
  It is *delivered*, not retried: the workflow's ``try``/``catch``/``retry`` decides.
* a transport failure (connection refused or reset, no answer before the timeout) is transient:
  the dispatcher retries it with :attr:`HttpConnector.retry`. When the attempts run out the run
  receives a ``communication`` problem with status **503** (could not connect, connection
  dropped) or **504** (timed out), and no ``response``.
* an answer whose body exceeds :data:`MAX_RESPONSE_BYTES` (after content decoding), or that
  cannot be decoded, fails permanently with a ``communication`` problem, status 502.
* a payload the connector cannot send (no URL, unsupported scheme, bad method) fails
  permanently with a ``configuration`` problem, status 400.

Redirects are never followed: the DSL's ``redirect`` only says whether a 3xx answer is an
error, and following one would repeat a side effect, key included, at a host the definition
does not name. With ``redirect: true`` the 3xx answer (its ``location`` header included) is the
task's successful result.

Content: a JSON media type (``application/json``, ``*+json``) is parsed (left as text if it
does not parse); textual media types are decoded to text; anything else is base64, as the DSL's
HTTP Response describes.
"""

from __future__ import annotations

import base64
import codecs
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx
import orjson

from itinera.connectors.base import DEFAULT_RETRY, Outcome, RetryPolicy
from itinera.errors import ErrorType, Problem
from itinera.store.base import OutboxRow

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
"""Largest response body (after content decoding) a connector reads; larger answers fail."""

DEFAULT_TIMEOUT = 10.0
"""Seconds allowed for a request whose payload gives no ``timeout``."""

MAX_TIMEOUT = 25.0
"""Upper bound of a payload's ``timeout``; keep it below the dispatcher's lease."""

USER_AGENT = "itinera"

OutputMode = Literal["content", "response", "raw"]
_OUTPUT_MODES: frozenset[str] = frozenset({"content", "response", "raw"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REDACTED = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"})
_TEXT_TYPES = frozenset(
    {
        "application/xml",
        "application/javascript",
        "application/x-www-form-urlencoded",
        "application/yaml",
        "application/x-yaml",
        "application/graphql",
    }
)


@dataclass(frozen=True, kw_only=True, slots=True)
class HttpAnswer:
    """A response read whole (within the size limit)."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    def content(self) -> Any:
        """The body, deserialized when its media type is JSON, as text when textual, else base64."""
        return decode_content(self.body, self.content_type)


class PayloadError(ValueError):
    """The row payload cannot be turned into a request; the message says what is wrong."""


def send_request(
    client: httpx.Client,
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    params: list[tuple[str, str]] | None = None,
    content: bytes | None = None,
    timeout: float,
    max_bytes: int,
) -> HttpAnswer | Outcome:
    """Send one request and read its answer, or classify why there is no usable answer.

    Returns the answer, or a transient :class:`Outcome` (transport failure) or a failed one
    (unsendable request, oversized or undecodable body). The ``timeout`` bounds each network
    wait and also the whole exchange, so a server trickling bytes cannot hold a thread forever.
    """
    deadline = time.monotonic() + timeout
    what = f"{method} {_safe_url(url)}"  # never the query or credentials: messages reach users
    try:
        request = client.build_request(
            method,
            url,
            params=tuple(params) if params else None,
            headers=headers,
            content=content,
            timeout=httpx.Timeout(timeout),
        )
        response = client.send(request, stream=True)
    except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
        return Outcome.failed(_configuration(f"cannot send {what}: {exc}"))
    except httpx.TimeoutException as exc:
        return Outcome.transient(_transport(504, "timeout", f"{what} timed out ({type(exc).__name__})"))
    except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
        return Outcome.transient(_transport(503, "unreachable", f"{what} failed: {type(exc).__name__}: {exc}"))
    try:
        declared = response.headers.get("content-length")
        # A HEAD answer declares the size of a body it does not send.
        if method != "HEAD" and declared is not None and declared.isdigit() and int(declared) > max_bytes:
            return Outcome.failed(_too_large(what, response, max_bytes))
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                return Outcome.failed(_too_large(what, response, max_bytes))
            chunks.append(chunk)
            if time.monotonic() > deadline:
                return Outcome.transient(_transport(504, "timeout", f"{what}: the answer took longer than {timeout:g}s"))
    except httpx.DecodingError as exc:
        problem = Problem(
            type=ErrorType.COMMUNICATION,
            status=502,
            title="Undecodable response",
            detail=f"{what} answered {response.status_code} with a body that cannot be decoded: {exc}",
        )
        return Outcome.failed(problem)
    except httpx.TimeoutException as exc:
        return Outcome.transient(_transport(504, "timeout", f"{what} timed out reading the answer ({type(exc).__name__})"))
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        return Outcome.transient(_transport(503, "unreachable", f"{what}: the answer was cut off: {type(exc).__name__}"))
    finally:
        response.close()
    return HttpAnswer(
        status=response.status_code,
        reason=response.reason_phrase,
        headers=_flat_headers(response.headers),
        body=b"".join(chunks),
    )


class HttpConnector:
    """Sends ``http`` outbox rows with one pooled, thread-safe :class:`httpx.Client`.

    Args:
        client: the client to send with (closed by :meth:`close` only if created here).
        retry: how transport failures are retried by the dispatcher.
        max_response_bytes: the body size limit; ``None`` reads :data:`MAX_RESPONSE_BYTES`
            at each send.
        default_timeout: seconds for rows without a ``timeout``.
        max_timeout: upper bound applied to a row's ``timeout``.
    """

    kind = "http"

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        max_response_bytes: int | None = None,
        default_timeout: float = DEFAULT_TIMEOUT,
        max_timeout: float = MAX_TIMEOUT,
    ) -> None:
        self._client = LazyClient(client)
        self.retry = retry
        self._max_bytes = max_response_bytes
        self._default_timeout = default_timeout
        self._max_timeout = max_timeout

    def send(self, row: OutboxRow) -> Outcome:
        """Perform the row's request once and classify the answer (see the module docstring)."""
        try:
            call = _HttpCall.parse(row.payload)
        except PayloadError as exc:
            return Outcome.failed(_configuration(f"outbox row {row.key!r}: {exc}"))
        headers = dict(call.headers)
        headers["Idempotency-Key"] = header_key(row.key)
        timeout = min(call.timeout if call.timeout is not None else self._default_timeout, self._max_timeout)
        answer = send_request(
            self._client.get(),
            method=call.method,
            url=call.url,
            headers=headers,
            params=call.params,
            content=call.content,
            timeout=timeout,
            max_bytes=self._max_bytes if self._max_bytes is not None else MAX_RESPONSE_BYTES,
        )
        if isinstance(answer, Outcome):
            return answer
        upper = 400 if call.redirect else 300
        if 200 <= answer.status < upper:
            return Outcome.delivered(_success(call, headers, answer))
        return Outcome.delivered({"ok": False, "error": _error_response(call, answer)})

    def close(self) -> None:
        """Close the client if this connector created it."""
        self._client.close()

    def __enter__(self) -> HttpConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def task_output(result: dict[str, Any], output: OutputMode) -> Any:
    """The DSL task output of a successful ``http`` result, for the payload's ``output`` mode.

    ``content``: the (possibly deserialized) content; ``raw``: the base64 body; ``response``: the
    DSL's HTTP Response object (``request``, ``statusCode``, ``headers``, ``content``).
    """
    if output == "raw":
        return result.get("raw")
    if output == "response":
        return {
            "request": result.get("request"),
            "statusCode": result.get("status"),
            "headers": result.get("headers"),
            "content": result.get("content"),
        }
    return result.get("content")


class LazyClient:
    """An httpx client made on first use: building one loads the CA certificates (~65 ms),
    which an engine that never calls out should not pay at start-up."""

    def __init__(self, client: httpx.Client | None = None) -> None:
        self._client = client
        self._owns = client is None
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = new_client()
                client = self._client
        return client

    def close(self) -> None:
        """Close the client if this object made it."""
        if self._owns and self._client is not None:
            self._client.close()
            self._client = None


def new_client() -> httpx.Client:
    """The client connectors use by default: no redirects followed, pooled connections."""
    return httpx.Client(
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=32),
    )


def header_key(key: str) -> str:
    """``key`` as a header value: unchanged when printable ASCII, else percent-encoded (stable)."""
    if key.isascii() and key.isprintable():
        return key
    return quote(key, safe="")


def decode_content(body: bytes, content_type: str | None) -> Any:
    """Deserialize JSON bodies, decode textual ones, base64 the rest; an empty body is None."""
    if not body:
        return None
    media, charset = _media_type(content_type)
    if media == "application/json" or media.endswith("+json"):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return body.decode(_codec(charset), errors="replace")
    if media.startswith("text/") or media in _TEXT_TYPES or media.endswith("+xml"):
        return body.decode(_codec(charset), errors="replace")
    if not media:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii")


# --------------------------------------------------------------------------- payload


@dataclass(frozen=True, kw_only=True, slots=True)
class _HttpCall:
    method: str
    url: str
    headers: dict[str, str]
    params: list[tuple[str, str]]
    content: bytes | None
    output: OutputMode
    redirect: bool
    timeout: float | None

    @classmethod
    def parse(cls, payload: dict[str, Any]) -> _HttpCall:
        method = payload.get("method")
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise PayloadError(f"'method' must be one of {sorted(m.lower() for m in _METHODS)}, got {method!r}")
        url = payload.get("url")
        if not isinstance(url, str) or not url:
            raise PayloadError(f"'url' must be a non-empty string, got {url!r}")
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError as exc:
            raise PayloadError(f"'url' is not a valid URL: {exc}") from exc
        if scheme not in ("http", "https"):
            raise PayloadError(f"'url' must be an http or https URL, got {_safe_url(url)!r}")
        output = payload.get("output") or "content"
        if output not in _OUTPUT_MODES:
            raise PayloadError(f"'output' must be one of {sorted(_OUTPUT_MODES)}, got {output!r}")
        timeout = payload.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
            raise PayloadError(f"'timeout' must be a positive number of seconds or null, got {timeout!r}")
        headers = _headers(payload.get("headers"))
        content = _body(payload.get("body"), headers)
        return cls(
            method=method.upper(),
            url=url,
            headers=headers,
            params=_query(payload.get("query")),
            content=content,
            output=cast(OutputMode, output),
            redirect=bool(payload.get("redirect", False)),
            timeout=float(timeout) if timeout is not None else None,
        )


def _headers(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise PayloadError(f"'headers' must be an object, got {type(raw).__name__}")
    out: dict[str, str] = {}
    for name, value in raw.items():
        if value is None:
            continue
        if name.lower() == "idempotency-key":
            continue  # the row's key is the idempotency key; a second one would contradict it
        out[str(name)] = _scalar_text(value)
    return out


def _query(raw: Any) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise PayloadError(f"'query' must be an object, got {type(raw).__name__}")
    pairs: list[tuple[str, str]] = []
    for name, value in raw.items():
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        pairs.extend((str(name), _scalar_text(item)) for item in values if item is not None)
    return pairs


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _body(body: Any, headers: dict[str, str]) -> bytes | None:
    """Encode the body by the payload's content type, setting one when the payload gives none."""
    if body is None:
        return None
    ctype_name = next((name for name in headers if name.lower() == "content-type"), None)
    media, _ = _media_type(headers[ctype_name] if ctype_name else None)
    if isinstance(body, str) and not (media == "application/json" or media.endswith("+json")):
        if ctype_name is None:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return body.encode()
    if media == "application/x-www-form-urlencoded" and isinstance(body, dict):
        return urlencode([(str(k), _scalar_text(v)) for k, v in body.items() if v is not None]).encode()
    if ctype_name is None:
        headers["Content-Type"] = "application/json"
    try:
        return orjson.dumps(body)
    except TypeError as exc:
        raise PayloadError(f"'body' is not JSON: {exc}") from exc


# --------------------------------------------------------------------------- results


def _success(call: _HttpCall, sent_headers: dict[str, str], answer: HttpAnswer) -> dict[str, Any]:
    result: dict[str, Any] = {"ok": True, "status": answer.status, "headers": answer.headers}
    if call.output == "raw":
        result["raw"] = base64.b64encode(answer.body).decode("ascii")
    else:
        result["content"] = answer.content()
    if call.output == "response":
        result["request"] = {
            "method": call.method.lower(),
            "uri": call.url,
            "headers": {k: ("***" if k.lower() in _REDACTED else v) for k, v in sent_headers.items()},
        }
    return result


def _error_response(call: _HttpCall, answer: HttpAnswer) -> dict[str, Any]:
    problem = Problem(
        type=ErrorType.COMMUNICATION,
        status=answer.status,
        title=answer.reason or f"HTTP {answer.status}",
        detail=f"{call.method} {_safe_url(call.url)} answered {answer.status} {answer.reason}".rstrip(),
        extra={"response": {"status": answer.status, "headers": answer.headers, "content": answer.content()}},
    )
    return problem.to_dict()


def _configuration(detail: str) -> Problem:
    return Problem(type=ErrorType.CONFIGURATION, status=400, title="Invalid HTTP request", detail=detail)


def _transport(status: int, reason: str, detail: str) -> Problem:
    title = "Gateway Timeout" if status == 504 else "Service Unavailable"
    return Problem(type=ErrorType.COMMUNICATION, status=status, title=title, detail=detail, extra={"reason": reason})


def _too_large(what: str, response: httpx.Response, limit: int) -> Problem:
    return Problem(
        type=ErrorType.COMMUNICATION,
        status=502,
        title="Response too large",
        detail=(
            f"{what} answered {response.status_code} with a body larger than the "
            f"{limit}-byte limit (itinera.connectors.http.MAX_RESPONSE_BYTES)"
        ),
        extra={"response": {"status": response.status_code, "headers": _flat_headers(response.headers)}},
    )


def _flat_headers(headers: httpx.Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.multi_items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _media_type(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "", None
    media, _, params = content_type.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip('"').lower()
    return media.strip().lower(), charset


def _codec(charset: str | None) -> str:
    if charset:
        try:
            return codecs.lookup(charset).name
        except LookupError:
            pass
    return "utf-8"


def _safe_url(url: str) -> str:
    """The URL without credentials, query or fragment: fit for a message a user will read."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "<invalid URL>"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
