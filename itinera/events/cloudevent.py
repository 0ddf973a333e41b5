"""Validate CloudEvents 1.0 envelopes in JSON structured mode, as untrusted input."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

from itinera.errors import EventError

REQUIRED = ("id", "source", "specversion", "type")
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_KNOWN = frozenset(("id", "source", "specversion", "type", "subject", "time", "datacontenttype", "dataschema", "data", "data_base64"))


def validate_event(event: Any, *, max_bytes: int, index: int | None = None) -> dict[str, Any]:
    """Return ``event`` if it is a valid CloudEvent 1.0 within ``max_bytes``, else raise EventError."""
    if not isinstance(event, dict):
        raise EventError(f"a CloudEvent must be a JSON object, got {type(event).__name__}", index=index)
    size = len(orjson.dumps(event))
    if size > max_bytes:
        raise EventError(f"event is {size} bytes, over the {max_bytes}-byte limit (setting ITINERA_MAX_EVENT_BYTES)", index=index)
    for name in REQUIRED:
        value = event.get(name)
        if not isinstance(value, str) or not value:
            raise EventError(f"required attribute '{name}' is missing or not a non-empty string", index=index)
    if event["specversion"] != "1.0":
        raise EventError(f"specversion must be \"1.0\", got {event['specversion']!r}", index=index)
    for name in ("subject", "datacontenttype", "dataschema"):
        if name in event and (not isinstance(event[name], str) or not event[name]):
            raise EventError(f"attribute '{name}' must be a non-empty string", index=index)
    if "time" in event:
        t = event["time"]
        if not isinstance(t, str):
            raise EventError("attribute 'time' must be an RFC 3339 string", index=index)
        try:
            datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise EventError(f"attribute 'time' is not an RFC 3339 timestamp: {t!r}", index=index) from None
    if "data" in event and "data_base64" in event:
        raise EventError("an event carries 'data' or 'data_base64', not both", index=index)
    for name, value in event.items():
        if name in _KNOWN:
            continue
        if not _EXTENSION_NAME.match(name):
            raise EventError(f"extension attribute name {name!r} must be 1-20 lowercase letters or digits", index=index)
        if not isinstance(value, (str, int, bool)) or isinstance(value, float):
            raise EventError(f"extension attribute '{name}' must be a string, integer or boolean", index=index)
    return event
