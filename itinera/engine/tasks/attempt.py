"""The ``try`` task: catch errors, retry with backoff and jitter, or run a handler."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from itinera.engine.execution import Blocked, Execution
from itinera.engine.node import Evaluable, TaskNode, truthy
from itinera.engine.tasks.flow import TaskList
from itinera.errors import SPEC_ERRORS, RunFailure

if TYPE_CHECKING:
    from itinera.engine.plan import Compiler


# The standard error types under the URIs they had before DSL 1.0 settled on SPEC_ERRORS. The
# spec's own conformance kit (try.feature) still catches HTTP errors by these, and so do
# workflows written for runtimes that kept them (the .NET SDK), so a filter naming one matches
# the standard type, and the other way round. Raised errors keep the type they were given.
_LEGACY_ERRORS = "https://serverlessworkflow.io/dsl/errors/types/"
_STANDARD_KINDS = frozenset(("configuration", "validation", "expression", "authentication", "authorization", "timeout", "communication", "runtime"))


def _error_type(value: Any) -> Any:
    """``value`` with a pre-1.0 standard error type URI replaced by its 1.0 URI."""
    if isinstance(value, str) and value.startswith(_LEGACY_ERRORS) and value[len(_LEGACY_ERRORS):] in _STANDARD_KINDS:
        return SPEC_ERRORS + value[len(_LEGACY_ERRORS):]
    return value


class RetryPolicy:
    """A compiled ``retryPolicy``: when to retry, how long to wait, when to give up."""

    def __init__(self, spec: Mapping[str, Any], ref: str, compiler: Compiler) -> None:
        self.when = Evaluable(spec["when"], always_expression=True) if "when" in spec else None
        self.except_when = Evaluable(spec["exceptWhen"], always_expression=True) if "exceptWhen" in spec else None
        self.delay = compiler.duration(spec.get("delay"), f"{ref}/delay") or 0.0
        backoff = spec.get("backoff") or {}
        self.backoff = "exponential" if "exponential" in backoff else "linear" if "linear" in backoff else "constant"
        limit = spec.get("limit") or {}
        attempt = limit.get("attempt") or {}
        self.max_retries: int | None = attempt.get("count")
        self.max_duration = compiler.duration(limit.get("duration") or attempt.get("duration"), f"{ref}/limit")
        jitter = spec.get("jitter")
        self.jitter: tuple[float, float] | None = None
        if jitter:
            lo = compiler.duration(jitter.get("from"), f"{ref}/jitter/from") or 0.0
            hi = compiler.duration(jitter.get("to"), f"{ref}/jitter/to") or 0.0
            self.jitter = (lo, max(lo, hi))

    def wait_before(self, retry: int, seed: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        delay: float
        if self.backoff == "exponential":
            delay = self.delay * (2 ** (retry - 1))
        elif self.backoff == "linear":
            delay = self.delay * retry
        else:
            delay = self.delay
        if self.jitter is not None:
            delay += float(random.Random(seed).uniform(*self.jitter))  # noqa: S311 -- jitter, seeded per run for replay
        return delay


class TryNode(TaskNode):
    kind = "try"

    def __init__(self, name: str, ref: str, spec: Mapping[str, Any], compiler: Compiler) -> None:
        super().__init__(name, ref, spec, compiler)
        self.seq = TaskList(spec["try"], f"{ref}/try", compiler)
        catch = spec.get("catch") or {}
        self.filter: dict[str, Any] = (catch.get("errors") or {}).get("with") or {}
        self.as_: str = catch.get("as", "error")
        self.when = Evaluable(catch["when"], always_expression=True) if "when" in catch else None
        self.except_when = Evaluable(catch["exceptWhen"], always_expression=True) if "exceptWhen" in catch else None
        retry = catch.get("retry")
        self.retry = compiler.retry(retry, f"{ref}/catch/retry") if retry is not None else None
        self.handler = TaskList(catch["do"], f"{ref}/catch/do", compiler) if catch.get("do") else None

    def _scoped(self, ex: Execution, error: dict[str, Any], e: Evaluable, f: dict[str, Any]) -> bool:
        with ex.scoped(self.as_) as scope:
            scope[self.as_] = error
            return truthy(self.evaluate(e, error, ex, f))

    def _catches(self, ex: Execution, f: dict[str, Any], error: dict[str, Any]) -> bool:
        for key, expected in self.filter.items():
            if key == "type":
                if _error_type(error.get(key)) != _error_type(expected):
                    return False
            elif error.get(key) != expected:
                return False
        if self.when is not None and not self._scoped(ex, error, self.when, f):
            return False
        return not (self.except_when is not None and self._scoped(ex, error, self.except_when, f))

    def _retries(self, ex: Execution, f: dict[str, Any], error: dict[str, Any]) -> float | None:
        policy = self.retry
        if policy is None:
            return None
        if policy.when is not None and not self._scoped(ex, error, policy.when, f):
            return None
        if policy.except_when is not None and self._scoped(ex, error, policy.except_when, f):
            return None
        retry = f.get("a", 0) + 1
        if policy.max_retries is not None and retry > policy.max_retries:
            return None
        delay = policy.wait_before(retry, ex.seed(self.ref, retry))
        if policy.max_duration is not None and ex.now + delay - f.get("t1", ex.now) > policy.max_duration:
            return None
        return delay

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:
        while True:
            if "e" in f:  # running the handler
                assert self.handler is not None
                with ex.scoped(self.as_) as scope:
                    scope[self.as_] = f["e"]
                    return self.handler.run(ex, f["h"], f["ti"])
            if "w" in f:  # waiting before a retry
                if ex.now < f["w"]:
                    ex.wake(f["w"], "retry")
                    raise Blocked
                del f["w"]
            f.setdefault("t1", ex.now)
            mark = ex.mark()
            try:
                return self.seq.run(ex, f.setdefault("c", {}), f["ti"])
            except RunFailure as failure:
                error = failure.problem.to_dict()
                if not self._catches(ex, f, error):
                    raise
                ex.rollback(mark)
                f.pop("c", None)
                delay = self._retries(ex, f, error)
                if delay is not None:
                    f["a"] = f.get("a", 0) + 1
                    ex.record("task.retried", task=self.ref, attempt=f["a"], error=error)
                    if delay > 0:
                        f["w"] = ex.now + delay
                    continue
                if self.handler is None:
                    return f["ti"]
                f["e"] = error
                f["h"] = {}
