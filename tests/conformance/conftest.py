"""Fixtures of the conformance suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.httpserver import RecordingServer


@pytest.fixture
def http_server() -> Iterator[RecordingServer]:
    """A real HTTP server on 127.0.0.1 that echoes requests unless a rule says otherwise."""
    with RecordingServer() as server:
        yield server
