"""Time as the runtime sees it: injectable, so a test can run 30 days of a journey in seconds."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """A source of the current time, in seconds since the Unix epoch."""

    def now(self) -> float: ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()


class VirtualClock:
    """A clock that only moves when told to; timers fire as it passes them."""

    def __init__(self, start: float | datetime | None = None) -> None:
        if start is None:
            start = datetime(2026, 1, 1, tzinfo=UTC)
        self._now = start.timestamp() if isinstance(start, datetime) else float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds`` (never backward)."""
        if seconds < 0:
            raise ValueError("a virtual clock only moves forward")
        self._now += seconds

    def set(self, timestamp: float) -> None:
        """Jump to ``timestamp`` if it is later than now."""
        self._now = max(self._now, timestamp)


def iso(timestamp: float) -> str:
    """ISO 8601 UTC text for an epoch timestamp, with milliseconds."""
    dt = datetime.fromtimestamp(timestamp, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
