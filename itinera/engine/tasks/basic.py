"""Leaf tasks that need nothing from outside the run: set, raise, wait, emit."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from itinera.clock import iso
from itinera.engine.execution import Blocked, Execution
from itinera.engine.node import Evaluable, TaskNode, fault
from itinera.errors import ErrorType, Problem, RunFailure
from itinera.journeys import parse_duration

if TYPE_CHECKING:
    from itinera.engine.plan import Compiler

_EVENT_NS = uuid.UUID("6f1c9a52-7d0b-4f7e-9b8e-1a2b3c4d5e6f")


class SetNode(TaskNode):
    kind = "set"

    def __init__(self, name: str, ref: str, spec: Mapping[str, Any], compiler: Compiler) -> None:
        super().__init__(name, ref, spec, compiler)
        self.value = Evaluable(spec["set"])

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:
        return self.evaluate(self.value, f["ti"], ex, f)


class RaiseNode(TaskNode):
    kind = "raise"

    def __init__(self, name: str, ref: str, spec: Mapping[str, Any], compiler: Compiler) -> None:
        super().__init__(name, ref, spec, compiler)
        error = spec["raise"]["error"]
        if isinstance(error, str):
            error = compiler.named("errors", error, f"{ref}/raise/error")
        self.error = Evaluable(error)

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:
        error = self.evaluate(self.error, f["ti"], ex, f)
        problem = Problem.from_dict(error if isinstance(error, dict) else {})
        if problem.instance is None:
            problem.instance = self.ref
        raise RunFailure(problem, retryable=False)


class WaitNode(TaskNode):
    kind = "wait"

    def __init__(self, name: str, ref: str, spec: Mapping[str, Any], compiler: Compiler) -> None:
        super().__init__(name, ref, spec, compiler)
        wait = spec["wait"]
        self.dynamic = Evaluable(wait) if isinstance(wait, str) and wait.strip().startswith("${") else None
        self.seconds = None if self.dynamic else compiler.duration(wait, f"{ref}/wait")

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:
        until = f.get("u")
        if until is None:
            seconds = self.seconds
            if self.dynamic is not None:
                value = self.evaluate(self.dynamic, f["ti"], ex, f)
                try:
                    seconds = parse_duration(value)
                except ValueError as err:
                    raise fault(ErrorType.VALIDATION, 400, "Invalid duration", str(err), self.ref, retryable=False) from None
            until = f["u"] = ex.now + (seconds or 0.0)
        if ex.now >= until:
            return f["ti"]
        ex.wake(until)
        raise Blocked


class EmitNode(TaskNode):
    kind = "emit"

    def __init__(self, name: str, ref: str, spec: Mapping[str, Any], compiler: Compiler) -> None:
        super().__init__(name, ref, spec, compiler)
        self.event = Evaluable(spec["emit"]["event"].get("with", {}))
        self.default_source = f"/itinera/{compiler.namespace}/{compiler.name}"
        self.sink = compiler.event_sink

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:
        props = self.evaluate(self.event, f["ti"], ex, f)
        if not isinstance(props, dict):
            raise fault(ErrorType.VALIDATION, 400, "Invalid event", "emit.event.with must evaluate to an object", self.ref, retryable=False)
        key = ex.effect_key(self.ref)
        event: dict[str, Any] = {"specversion": "1.0"}
        event["id"] = str(props.get("id") or uuid.uuid5(_EVENT_NS, key))
        event["source"] = str(props.get("source") or self.default_source)
        if "type" not in props:
            raise fault(ErrorType.VALIDATION, 400, "Invalid event", "an emitted event needs a 'type'", self.ref, retryable=False)
        for k, v in props.items():
            if k not in ("id", "source") and v is not None:
                event[k] = v
        event.setdefault("time", iso(ex.now))
        if ex.subject is not None:
            event.setdefault("subject", ex.subject)
        if "data" in event:
            event.setdefault("datacontenttype", "application/json")
        ex.emit(event)
        if self.sink:
            ex.effect(key=key, kind="emit", payload={"event": event, "sink": self.sink, "notify": False})
        return event  # the task's output is the event it emitted (as the spec's CTK expects)


class UnsupportedNode(TaskNode):
    """A task that loads and validates but that this runtime does not execute."""

    kind = "unsupported"

    def __init__(self, name: str, ref: str, spec: Mapping[str, Any], compiler: Compiler, *, what: str) -> None:
        super().__init__(name, ref, spec, compiler)
        self.what = what

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:
        raise fault(
            ErrorType.RUNTIME,
            501,
            "Not supported",
            f"{self.what} is not supported by Itinera at run time (task '{self.name}')",
            self.ref,
            retryable=False,
        )
