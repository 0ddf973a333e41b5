"""Compile a validated definition into an executable plan, once per definition version.

Everything that can be decided before a run starts is decided here: task kinds, expressions
(compiled once), schemas (validators built once), durations, retry policies and references to
reusable components. A run then only walks closures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from itinera import catalog
from itinera.engine.execution import Execution
from itinera.engine.node import Evaluable, TaskNode, fault
from itinera.engine.tasks.attempt import RetryPolicy, TryNode
from itinera.engine.tasks.basic import EmitNode, RaiseNode, SetNode, UnsupportedNode, WaitNode
from itinera.engine.tasks.call import BlockCallNode, FunctionCallNode, HttpCallNode, basic_credentials
from itinera.engine.tasks.flow import DoNode, ForkNode, ForNode, TaskList, SwitchNode
from itinera.engine.tasks.listen import ListenNode, Strategy
from itinera.errors import ErrorType
from itinera.journeys import parse_duration

# "do" last: a `for` task has a `do` list too.
_TASK_KINDS = ("call", "emit", "for", "fork", "listen", "raise", "run", "set", "switch", "try", "wait", "do")
_PROTOCOLS = ("grpc", "openapi", "asyncapi", "a2a", "mcp")


class _UnsupportedSchema:
    """A schema given by external resource: validating against it faults clearly at run time."""

    def __init__(self, ref: str) -> None:
        self.ref = ref

    def iter_errors(self, value: Any) -> Any:
        raise fault(
            ErrorType.CONFIGURATION, 501, "Not supported", "schemas given by external resource are not fetched at run time; inline the schema document", self.ref, retryable=False
        )


class Authentication:
    """A compiled basic or bearer authentication policy; values may be runtime expressions."""

    def __init__(self, spec: Mapping[str, Any], ref: str, secrets: Mapping[str, Any] | None = None) -> None:
        self.ref = ref
        self.scheme = next(iter(spec), "")
        body = spec.get(self.scheme) or {}
        self.secret: str | None = body.get("use") if isinstance(body, dict) else None
        self.values = Evaluable({k: v for k, v in body.items() if k != "use"} if isinstance(body, dict) else {})

    def resolve(self, node: TaskNode, ex: Execution, f: dict[str, Any]) -> tuple[str, str]:
        if self.scheme not in ("basic", "bearer"):
            raise fault(ErrorType.CONFIGURATION, 501, "Not supported", f"'{self.scheme}' authentication is not supported at run time (basic and bearer are)", node.ref, retryable=False)
        if self.secret is not None:
            values = ex.secrets.get(self.secret)
            if not isinstance(values, dict):
                raise fault(ErrorType.AUTHORIZATION, 403, "Secret unavailable", f"secret '{self.secret}' is not configured or is not an object", node.ref, retryable=False)
        else:
            values = node.evaluate(self.values, f["ti"], ex, f)
        if self.scheme == "basic":
            return "Basic", basic_credentials(str(values.get("username", "")), str(values.get("password", "")))
        return "Bearer", str(values.get("token", ""))


class Compiler:
    """Builds task nodes for one definition; holds its reusable components."""

    def __init__(self, document: Mapping[str, Any], *, event_sink: str | None = None) -> None:
        self.document = document
        meta = document.get("document", {})
        self.namespace: str = meta.get("namespace", "default")
        self.name: str = meta.get("name", "journey")
        self.use: Mapping[str, Any] = document.get("use") or {}
        self.event_sink = event_sink
        self._functions: dict[str, TaskNode] = {}

    def named(self, section: str, name: str, ref: str) -> Any:
        try:
            return self.use[section][name]
        except (KeyError, TypeError):
            raise ValueError(f"{ref}: '{name}' is not defined in use.{section}") from None

    def duration(self, value: Any, ref: str) -> float | None:
        if value is None or (isinstance(value, str) and value.strip().startswith("${")):
            return None
        return parse_duration(value)

    def timeout(self, value: Any, ref: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = self.named("timeouts", value, ref)
        return self.duration(value.get("after"), f"{ref}/after")

    def retry(self, value: Any, ref: str) -> RetryPolicy:
        if isinstance(value, str):
            value = self.named("retries", value, ref)
        return RetryPolicy(value, ref, self)

    def schema(self, value: Any, ref: str) -> Any:
        if not value:
            return None
        if "document" in value:
            cls = jsonschema.validators.validator_for(value["document"], default=jsonschema.Draft202012Validator)
            return cls(value["document"])
        return _UnsupportedSchema(ref)

    def authentication(self, value: Any, ref: str) -> Authentication:
        if isinstance(value, str):
            value = self.named("authentications", value, ref)
        elif isinstance(value, dict) and set(value) == {"use"}:
            value = self.named("authentications", value["use"], ref)
        return Authentication(value, ref)

    def sequence(self, items: list[Mapping[str, Any]], ref: str) -> TaskList:
        return TaskList(items, ref, self)

    def task(self, name: str, spec: Mapping[str, Any], ref: str) -> TaskNode:
        kind = next((k for k in _TASK_KINDS if k in spec), None)
        if kind == "do":
            return DoNode(name, ref, spec, self)
        if kind == "set":
            return SetNode(name, ref, spec, self)
        if kind == "switch":
            return SwitchNode(name, ref, spec, self)
        if kind == "for":
            return ForNode(name, ref, spec, self)
        if kind == "fork":
            return ForkNode(name, ref, spec, self)
        if kind == "try":
            return TryNode(name, ref, spec, self)
        if kind == "raise":
            return RaiseNode(name, ref, spec, self)
        if kind == "wait":
            return WaitNode(name, ref, spec, self)
        if kind == "emit":
            return EmitNode(name, ref, spec, self)
        if kind == "listen":
            return ListenNode(name, ref, spec, self)
        if kind == "run":
            process = next((p for p in ("container", "script", "shell", "workflow") if p in spec["run"]), "process")
            return UnsupportedNode(name, ref, spec, self, what=f"run: {process}")
        if kind == "call":
            return self._call(name, spec, ref)
        return UnsupportedNode(name, ref, spec, self, what="this task kind")

    def _call(self, name: str, spec: Mapping[str, Any], ref: str) -> TaskNode:
        target = str(spec["call"])
        if target == "http":
            return HttpCallNode(name, ref, spec, self)
        if target in _PROTOCOLS:
            return UnsupportedNode(name, ref, spec, self, what=f"call: {target}")
        functions = self.use.get("functions") or {}
        if target in functions:
            node = self._functions.get(target)
            if node is None:
                node = self.task(target, functions[target], f"/use/functions/{target}")
                self._functions[target] = node
            return FunctionCallNode(name, ref, spec, self, node)
        if "@" in target and ":" in target.split("@", 1)[0]:
            fn, catalog_name = target.rsplit("@", 1)
            fname, version = fn.split(":", 1)
            if catalog_name in (catalog.CATALOG_NAME, "default") and catalog_name not in (self.use.get("catalogs") or {}):
                block = catalog.find(fname, version)
                if block is None:
                    known = ", ".join(b.reference for b in catalog.all_blocks())
                    raise ValueError(f"{ref}/call: no block '{fname}:{version}' in the itinera catalog (it has: {known})")
                return BlockCallNode(name, ref, spec, self, block)
            return UnsupportedNode(name, ref, spec, self, what=f"the external catalog '{catalog_name}' (functions are not fetched at run time)")
        return UnsupportedNode(name, ref, spec, self, what=f"call: {target}")


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A definition compiled for execution."""

    hash: str
    document: Mapping[str, Any]
    namespace: str
    name: str
    version: str
    root: TaskList
    input_from: Evaluable | None
    input_schema: Any
    output_as: Evaluable | None
    output_schema: Any
    timeout: float | None
    trigger: Strategy | None
    every: float | None
    cron: str | None
    after: float | None
    secrets: tuple[str, ...]
    root_task: TaskNode


class _Root(TaskNode):
    """The workflow itself, so workflow-level expressions see the same variables as tasks."""

    kind = "workflow"

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:  # pragma: no cover - never run
        raise NotImplementedError


def compile_plan(document: Mapping[str, Any], hash: str, *, event_sink: str | None = None) -> Plan:
    """Compile ``document`` (already validated by :mod:`itinera.journeys`)."""
    compiler = Compiler(document, event_sink=event_sink)
    meta = document.get("document", {})
    inp = document.get("input") or {}
    out = document.get("output") or {}
    schedule = document.get("schedule") or {}
    root = compiler.sequence(document.get("do") or [], "/do")
    return Plan(
        hash=hash,
        document=document,
        namespace=compiler.namespace,
        name=compiler.name,
        version=str(meta.get("version", "")),
        root=root,
        input_from=Evaluable(inp["from"], always_expression=True) if "from" in inp else None,
        input_schema=compiler.schema(inp.get("schema"), "/input/schema"),
        output_as=Evaluable(out["as"], always_expression=True) if "as" in out else None,
        output_schema=compiler.schema(out.get("schema"), "/output/schema"),
        timeout=compiler.timeout(document.get("timeout"), "/timeout"),
        trigger=Strategy(schedule["on"], "/schedule/on") if "on" in schedule else None,
        every=compiler.duration(schedule.get("every"), "/schedule/every"),
        cron=schedule.get("cron"),
        after=compiler.duration(schedule.get("after"), "/schedule/after"),
        secrets=tuple((document.get("use") or {}).get("secrets") or ()),
        root_task=_Root("workflow", "", {}, compiler),
    )
