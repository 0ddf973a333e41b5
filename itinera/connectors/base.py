"""What a connector is: an adapter that performs one kind of outbox row's side effect.

A connector never decides *whether* to retry by reading an exception's text. It classifies each
attempt into one of three declared outcomes, and the dispatcher applies the connector's
:class:`RetryPolicy` to the transient ones:

* ``delivered`` -- the target answered; ``result`` is handed to the run as is. An answer can be
  a refusal: an HTTP 404 is *delivered* as ``{"ok": false, "error": ...}`` because the
  workflow's own ``try``/``catch``/``retry`` decides what a refusal means.
* ``failed`` -- the effect cannot be performed and trying again will not help (a malformed
  payload, an unsupported URL scheme, an oversized answer). The row is dead-lettered and the run
  receives ``{"ok": false, "error": problem}``.
* ``transient`` -- the target could not be reached (connection refused or reset, timeout before
  an answer). The row is tried again later with backoff; after the policy's last attempt it is
  dead-lettered like a ``failed`` one.

Every result a run receives from the outbox has a boolean ``ok``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from itinera.errors import ErrorType, Problem
from itinera.store.base import OutboxRow

OutcomeKind = Literal["delivered", "failed", "transient"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    """The classified result of one attempt to perform an outbox row.

    Build one with :meth:`delivered`, :meth:`failed` or :meth:`transient` rather than directly.

    Attributes:
        kind: which of the three outcomes this is.
        result: for ``delivered``, the dict handed to the run (it carries ``ok``).
        problem: for ``failed`` and ``transient``, an RFC 7807 problem dict (``type`` and
            ``status`` always set).
    """

    kind: OutcomeKind
    result: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None

    @classmethod
    def delivered(cls, result: dict[str, Any]) -> Outcome:
        """The target answered; ``result`` goes to the run (and is stored on the row)."""
        if not isinstance(result.get("ok"), bool):
            raise ValueError("a delivered result must carry a boolean 'ok'")
        return cls(kind="delivered", result=result)

    @classmethod
    def failed(cls, problem: Problem | dict[str, Any]) -> Outcome:
        """The effect cannot be performed; retrying will not help. The row is dead-lettered."""
        return cls(kind="failed", problem=_problem_dict(problem))

    @classmethod
    def transient(cls, problem: Problem | dict[str, Any]) -> Outcome:
        """The target could not be reached this time; the dispatcher retries with backoff."""
        return cls(kind="transient", problem=_problem_dict(problem))

    def run_result(self) -> dict[str, Any]:
        """The dict a run receives for this outcome once it is final."""
        if self.result is not None:
            return self.result
        return {"ok": False, "error": dict(self.problem or {})}


def _problem_dict(problem: Problem | dict[str, Any]) -> dict[str, Any]:
    data = problem.to_dict() if isinstance(problem, Problem) else dict(problem)
    data.setdefault("type", ErrorType.RUNTIME)
    data.setdefault("status", 500)
    return data


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How often and how far apart a connector's transient failures are retried.

    The delay before attempt ``n + 1`` (after ``n`` failed attempts) is
    ``min(max_delay, initial_delay * multiplier ** (n - 1))``, shortened by a random fraction of
    at most ``jitter`` of itself, so that rows that failed together do not retry together.

    Attributes:
        max_attempts: total attempts, the first included; 1 means never retry.
        initial_delay: seconds before the second attempt (before jitter).
        multiplier: growth factor of the delay per further attempt.
        max_delay: upper bound of a delay, in seconds.
        jitter: fraction in [0, 1] of a delay that is randomly taken off it (0: deterministic).
    """

    max_attempts: int = 8
    initial_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def should_retry(self, attempts: int) -> bool:
        """Whether another attempt is allowed after ``attempts`` failed ones."""
        return attempts < self.max_attempts

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after ``attempts`` (>= 1) failed attempts before the next one."""
        exponent = max(attempts - 1, 0)
        try:
            base = min(self.max_delay, self.initial_delay * self.multiplier**exponent)
        except OverflowError:
            base = self.max_delay
        if self.jitter == 0 or base == 0:
            return base
        draw = (rng or random).random()
        return base * (1.0 - self.jitter * draw)


DEFAULT_RETRY = RetryPolicy()


class Connector(Protocol):
    """Performs the side effect of outbox rows of one ``kind``.

    ``send`` is synchronous and may block on I/O: the dispatcher calls it from a pool of threads,
    several rows at once, so an implementation must be thread-safe. It must not raise for a
    failure it can classify; it returns an :class:`Outcome`. An exception escaping ``send`` is
    treated as a bug in the connector: the row is dead-lettered with a runtime problem.
    """

    @property
    def kind(self) -> str:
        """The ``OutboxRow.kind`` this connector handles."""
        ...

    @property
    def retry(self) -> RetryPolicy:
        """How transient failures of this connector are retried."""
        ...

    def send(self, row: OutboxRow) -> Outcome:
        """Attempt the row's effect once, carrying ``row.key`` as its idempotency key."""
        ...
