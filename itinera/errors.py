"""Every error Itinera raises, in three families.

* :class:`MisuseError` -- the user can fix it (a bad definition, a malformed event, a bad request).
* :class:`RunFailure` -- a step of a run failed after its retries; carries an RFC 7807 problem.
* :class:`Signal` -- control flow, not failure (the run must wait, or escalate to a human).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SPEC_ERRORS = "https://serverlessworkflow.io/spec/1.0.0/errors/"


class ErrorType:
    """The standard error types of the Serverless Workflow DSL 1.0."""

    CONFIGURATION = SPEC_ERRORS + "configuration"
    VALIDATION = SPEC_ERRORS + "validation"
    EXPRESSION = SPEC_ERRORS + "expression"
    AUTHENTICATION = SPEC_ERRORS + "authentication"
    AUTHORIZATION = SPEC_ERRORS + "authorization"
    TIMEOUT = SPEC_ERRORS + "timeout"
    COMMUNICATION = SPEC_ERRORS + "communication"
    RUNTIME = SPEC_ERRORS + "runtime"


class ItineraError(Exception):
    """The root of every error Itinera raises on purpose."""


# --------------------------------------------------------------------------- misuse


class MisuseError(ItineraError):
    """Something the user gave us is wrong; the message says what to change."""


@dataclass(frozen=True, kw_only=True)
class Location:
    """Where in a definition file a problem is: 1-based line and column, and a JSON Pointer."""

    file: str
    line: int
    column: int
    pointer: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, kw_only=True)
class DefinitionProblem:
    """One problem found in a definition."""

    location: Location
    message: str

    def __str__(self) -> str:
        pointer = self.location.pointer or "/"
        return f"{self.location}: {pointer}: {self.message}"


class DefinitionError(MisuseError):
    """A journey definition failed to load or validate. It is never run."""

    def __init__(self, problems: list[DefinitionProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class EventError(MisuseError):
    """A CloudEvent was rejected (malformed envelope, oversized payload)."""

    def __init__(self, message: str, *, index: int | None = None) -> None:
        self.index = index
        prefix = f"event #{index}: " if index is not None else ""
        super().__init__(prefix + message)


class NotFoundError(MisuseError):
    """A run, journey or definition that was asked for does not exist."""


class ConfigurationError(MisuseError):
    """Settings or the database are not usable as given (e.g. the schema is not current)."""


# --------------------------------------------------------------------------- run failures


@dataclass(kw_only=True)
class Problem:
    """An RFC 7807 problem, as the Serverless Workflow DSL describes errors."""

    type: str
    status: int
    title: str | None = None
    detail: str | None = None
    instance: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "status": self.status}
        if self.title is not None:
            out["title"] = self.title
        if self.detail is not None:
            out["detail"] = self.detail
        if self.instance is not None:
            out["instance"] = self.instance
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Problem:
        known = {"type", "status", "title", "detail", "instance"}
        return cls(
            type=str(data.get("type", ErrorType.RUNTIME)),
            status=int(data.get("status", 500)),
            title=data.get("title"),
            detail=data.get("detail"),
            instance=data.get("instance"),
            extra={k: v for k, v in data.items() if k not in known},
        )


class RunFailure(ItineraError):
    """A task faulted; ``problem`` is the RFC 7807 error the workflow sees."""

    def __init__(self, problem: Problem, *, retryable: bool = True) -> None:
        self.problem = problem
        self.retryable = retryable
        super().__init__(problem.detail or problem.title or problem.type)


class ExpressionError(RunFailure):
    """A runtime expression failed to compile or evaluate (or broke its time or size limit)."""

    def __init__(self, detail: str, *, expression: str | None = None) -> None:
        self.expression = expression
        super().__init__(
            Problem(type=ErrorType.EXPRESSION, status=400, title="Expression error", detail=detail),
            retryable=False,
        )


# --------------------------------------------------------------------------- signals


class Signal(ItineraError):
    """Control flow that is not a failure (wait, escalate). Never shown to a user as an error."""
