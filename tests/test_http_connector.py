"""The HTTP and emit connectors against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from itinera.connectors import EmitConnector, HttpConnector, Outcome
from itinera.connectors import http as http_module
from itinera.errors import ErrorType
from itinera.store.base import OutboxRow
from tests.support.httpserver import Recording, RecordingServer, ServerProcess, free_port


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        yield running


@pytest.fixture
def http() -> Iterator[HttpConnector]:
    with HttpConnector() as connector:
        yield connector


def row(key: str, payload: dict[str, Any], kind: str = "http") -> OutboxRow:
    return OutboxRow(key=key, tenant="acme", run_id="run-1", kind=kind, payload=payload, created_at=0.0, next_attempt_at=0.0)


def call(url: str, **fields: Any) -> dict[str, Any]:
    return {"method": "get", "url": url, "output": "content", "redirect": False, "timeout": None, "notify": True} | fields


def delivered(outcome: Outcome) -> dict[str, Any]:
    assert outcome.kind == "delivered", outcome
    assert outcome.result is not None
    return outcome.result


# --------------------------------------------------------------------------- requests


def test_sends_method_headers_query_body_and_idempotency_key(server: RecordingServer, http: HttpConnector) -> None:
    payload = call(
        server.url + "/orders",
        method="post",
        headers={"X-Tenant": "acme", "X-Count": 3, "Idempotency-Key": "not-this-one"},
        query={"page": 2, "tags": ["a", "b"], "draft": False, "skip": None},
        body={"sku": "A-1", "qty": 2},
    )
    result = delivered(http.send(row("run-1/do/0/order#0", payload)))
    assert result["ok"] is True and result["status"] == 200

    [seen] = server.recording.requests(path="/orders")
    assert seen.method == "POST"
    assert seen.headers["idempotency-key"] == "run-1/do/0/order#0"
    assert seen.headers["x-tenant"] == "acme" and seen.headers["x-count"] == "3"
    assert seen.headers["content-type"] == "application/json"
    assert seen.query == {"page": ["2"], "tags": ["a", "b"], "draft": ["false"]}
    assert seen.json() == {"sku": "A-1", "qty": 2}


def test_string_and_form_bodies_keep_their_content_type(server: RecordingServer, http: HttpConnector) -> None:
    delivered(http.send(row("k-text", call(server.url + "/text", method="put", body="hello"))))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    delivered(http.send(row("k-form", call(server.url + "/form", method="post", headers=form, body={"a": 1, "b": "x y"}))))

    [text] = server.recording.requests(path="/text")
    assert text.body == b"hello" and text.headers["content-type"].startswith("text/plain")
    [sent] = server.recording.requests(path="/form")
    assert sent.body == b"a=1&b=x+y" and sent.headers["content-type"] == "application/x-www-form-urlencoded"


def test_a_non_ascii_key_is_sent_percent_encoded_and_stable(server: RecordingServer, http: HttpConnector) -> None:
    for _ in range(2):
        delivered(http.send(row("run-1/do/0/réserver", call(server.url + "/k"))))
    keys = {r.headers["idempotency-key"] for r in server.recording.requests(path="/k")}
    assert keys == {"run-1%2Fdo%2F0%2Fr%C3%A9server"}


# --------------------------------------------------------------------------- answers


def test_json_content_is_parsed_and_text_is_decoded(server: RecordingServer, http: HttpConnector) -> None:
    server.set_rule("/json", json={"id": 7, "tags": ["x"]})
    server.set_rule("/text", text="plain words")
    server.set_rule("/bin", text="\x00\x01", content_type="application/octet-stream")
    server.set_rule("/problem", text="{not json", content_type="application/problem+json")

    assert delivered(http.send(row("k1", call(server.url + "/json"))))["content"] == {"id": 7, "tags": ["x"]}
    assert delivered(http.send(row("k2", call(server.url + "/text"))))["content"] == "plain words"
    assert delivered(http.send(row("k3", call(server.url + "/bin"))))["content"] == base64.b64encode(b"\x00\x01").decode()
    assert delivered(http.send(row("k4", call(server.url + "/problem"))))["content"] == "{not json"


def test_output_modes(server: RecordingServer, http: HttpConnector) -> None:
    server.set_rule("/pet", json={"name": "milou"}, headers={"X-Trace": "t-1"})
    secret = {"Authorization": "Bearer s3cret"}

    content = delivered(http.send(row("k1", call(server.url + "/pet", output="content"))))
    raw = delivered(http.send(row("k2", call(server.url + "/pet", output="raw"))))
    response = delivered(http.send(row("k3", call(server.url + "/pet?x=1", output="response", headers=secret))))

    assert content["content"] == {"name": "milou"} and "raw" not in content
    assert content["headers"]["x-trace"] == "t-1" and content["headers"]["content-type"] == "application/json"
    assert base64.b64decode(raw["raw"]) == b'{"name": "milou"}' and "content" not in raw
    assert response["status"] == 200 and response["content"] == {"name": "milou"}
    assert response["request"]["method"] == "get" and response["request"]["uri"] == server.url + "/pet?x=1"
    assert response["request"]["headers"]["Authorization"] == "***"
    assert response["request"]["headers"]["Idempotency-Key"] == "k3"

    assert http_module.task_output(content, "content") == {"name": "milou"}
    assert http_module.task_output(raw, "raw") == raw["raw"]
    shaped = http_module.task_output(response, "response")
    assert shaped["statusCode"] == 200 and shaped["content"] == {"name": "milou"} and shaped["request"]["method"] == "get"


def test_an_error_status_is_delivered_as_a_communication_error(server: RecordingServer, http: HttpConnector) -> None:
    server.set_rule("/missing", status=404, json={"message": "no such pet"})
    result = delivered(http.send(row("k1", call(server.url + "/missing?token=secret"))))

    assert result["ok"] is False
    error = result["error"]
    assert error["type"] == ErrorType.COMMUNICATION and error["status"] == 404
    assert error["title"] == "Not Found"
    assert "token" not in error["detail"] and "/missing" in error["detail"]
    assert error["response"]["status"] == 404 and error["response"]["content"] == {"message": "no such pet"}
    assert server.recording.request_count(path="/missing") == 1


@pytest.mark.parametrize(("redirect", "ok"), [(False, False), (True, True)])
def test_redirects_are_answers_not_followed(server: RecordingServer, http: HttpConnector, redirect: bool, ok: bool) -> None:
    server.set_rule("/old", status=302, headers={"Location": "/new"}, text="")
    result = delivered(http.send(row("k1", call(server.url + "/old", redirect=redirect))))

    assert result["ok"] is ok
    headers = result["headers"] if ok else result["error"]["response"]["headers"]
    assert headers["location"] == "/new"
    assert server.recording.request_count(path="/new") == 0


def test_redirect_true_still_fails_on_4xx(server: RecordingServer, http: HttpConnector) -> None:
    server.set_rule("/gone", status=410, text="gone")
    assert delivered(http.send(row("k1", call(server.url + "/gone", redirect=True))))["ok"] is False


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_body_fails_with_a_clear_detail(
    server: RecordingServer, http: HttpConnector, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    monkeypatch.setattr(http_module, "MAX_RESPONSE_BYTES", 100_000)
    server.set_rule("/huge", size=300_000, chunked=chunked)
    server.set_rule("/fits", size=100_000, chunked=chunked)

    outcome = http.send(row("k1", call(server.url + "/huge")))
    assert outcome.kind == "failed" and outcome.problem is not None
    assert outcome.problem["type"] == ErrorType.COMMUNICATION and outcome.problem["status"] == 502
    assert "100000-byte limit" in outcome.problem["detail"] and "MAX_RESPONSE_BYTES" in outcome.problem["detail"]
    assert len(delivered(http.send(row("k2", call(server.url + "/fits"))))["content"]) == 100_000


def test_a_head_answer_is_not_judged_by_the_size_it_declares(
    server: RecordingServer, http: HttpConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_module, "MAX_RESPONSE_BYTES", 1000)
    server.set_rule("/file", size=300_000)
    result = delivered(http.send(row("k1", call(server.url + "/file", method="head"))))
    assert result["ok"] is True and result["headers"]["content-length"] == "300000" and result["content"] is None


def test_the_default_size_limit_is_five_mebibytes() -> None:
    assert http_module.MAX_RESPONSE_BYTES == 5 * 1024 * 1024


# --------------------------------------------------------------------------- failures


def test_connection_refused_is_transient(http: HttpConnector) -> None:
    outcome = http.send(row("k1", call(f"http://127.0.0.1:{free_port()}/x")))
    assert outcome.kind == "transient" and outcome.problem is not None
    assert outcome.problem["type"] == ErrorType.COMMUNICATION and outcome.problem["status"] == 503
    assert "ConnectError" in outcome.problem["detail"]


def test_a_dropped_connection_is_transient(server: RecordingServer, http: HttpConnector) -> None:
    server.set_rule("/drop", fail_first=1, fail_status=0)
    first = http.send(row("k1", call(server.url + "/drop")))
    assert first.kind == "transient" and first.problem is not None and first.problem["status"] == 503
    assert delivered(http.send(row("k1", call(server.url + "/drop"))))["ok"] is True


def test_a_timeout_is_transient_and_the_retry_replays_the_first_answer(server: RecordingServer, http: HttpConnector) -> None:
    server.set_rule("/slow", delay=0.5, json={"booked": True})
    first = http.send(row("k1", call(server.url + "/slow", timeout=0.05)))
    assert first.kind == "transient" and first.problem is not None and first.problem["status"] == 504

    # The server finished the effect after the client gave up; the retry gets the stored answer.
    again = delivered(http.send(row("k1", call(server.url + "/slow", timeout=5))))
    assert again["content"] == {"booked": True}
    assert server.recording.effects("k1") == 1 and server.recording.request_count(key="k1") == 2


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"method": "teleport", "url": "http://127.0.0.1/x"}, "'method'"),
        ({"method": "get"}, "'url'"),
        ({"method": "get", "url": "ftp://127.0.0.1/x"}, "http or https"),
        ({"method": "get", "url": "http://127.0.0.1/x", "output": "xml"}, "'output'"),
        ({"method": "get", "url": "http://127.0.0.1/x", "timeout": -1}, "'timeout'"),
        ({"method": "get", "url": "http://127.0.0.1/x", "headers": ["a"]}, "'headers'"),
    ],
)
def test_an_unsendable_payload_fails_permanently(http: HttpConnector, payload: dict[str, Any], needle: str) -> None:
    outcome = http.send(row("k1", payload))
    assert outcome.kind == "failed" and outcome.problem is not None
    assert outcome.problem["type"] == ErrorType.CONFIGURATION and outcome.problem["status"] == 400
    assert needle in outcome.problem["detail"]


# --------------------------------------------------------------------------- emit


EVENT = {"specversion": "1.0", "id": "e-1", "source": "/journeys/onboarding", "type": "com.acme.welcomed", "data": {"a": 1}}


def test_emit_posts_a_structured_cloudevent_with_the_key(server: RecordingServer) -> None:
    with EmitConnector() as emit:
        result = delivered(emit.send(row("k-emit", {"event": EVENT, "sink": server.url + "/sink", "notify": False}, "emit")))
    assert result == {"ok": True, "status": 200}
    [seen] = server.recording.requests(path="/sink")
    assert seen.method == "POST" and seen.json() == EVENT
    assert seen.headers["content-type"].startswith("application/cloudevents+json")
    assert seen.headers["idempotency-key"] == "k-emit"


def test_emit_without_a_sink_is_delivered_at_once(server: RecordingServer) -> None:
    with EmitConnector() as emit:
        assert delivered(emit.send(row("k1", {"event": EVENT, "sink": None, "notify": False}, "emit"))) == {"ok": True}
    assert server.recording.request_count() == 0


def test_emit_classifies_sink_answers(server: RecordingServer) -> None:
    server.set_rule("/busy", status=503)
    server.set_rule("/bad", status=400, json={"error": "schema"})
    with EmitConnector() as emit:
        busy = emit.send(row("k1", {"event": EVENT, "sink": server.url + "/busy"}, "emit"))
        bad = emit.send(row("k2", {"event": EVENT, "sink": server.url + "/bad"}, "emit"))
        broken = emit.send(row("k3", {"event": {"id": "x"}, "sink": server.url + "/sink"}, "emit"))
    assert busy.kind == "transient" and busy.problem is not None and busy.problem["status"] == 503
    assert bad.kind == "failed" and bad.problem is not None and bad.problem["response"]["content"] == {"error": "schema"}
    assert broken.kind == "failed" and broken.problem is not None
    assert "specversion, source, type" in broken.problem["detail"]


# --------------------------------------------------------------------------- the server as a process


def test_the_server_process_records_durably_across_its_own_death(tmp_path: Path, http: HttpConnector) -> None:
    db = tmp_path / "requests.sqlite3"
    with ServerProcess(db) as process:
        process.set_rule("/pay", fail_first=1, fail_status=503, json={"paid": True})
        first = delivered(http.send(row("k1", call(process.url + "/pay", method="post"))))
        second = delivered(http.send(row("k1", call(process.url + "/pay", method="post"))))
        third = delivered(http.send(row("k1", call(process.url + "/pay", method="post"))))
    assert first["ok"] is False and first["error"]["status"] == 503
    assert second["content"] == third["content"] == {"paid": True}

    recording = Recording(db)  # the server is gone; its database is not
    assert recording.request_count(key="k1") == 3 and recording.effects("k1") == 1
    assert [r.replayed for r in recording.requests(key="k1")] == [False, False, True]
