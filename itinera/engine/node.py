"""Compiled tasks and the data flow every task shares.

A definition is compiled once into a tree of :class:`TaskNode` objects. Nodes hold no run
state: a run's progress lives in plain-dict *frames* inside its persisted state. To advance a
run, the machine calls ``run`` on the root with the root frame; each node reads its frame to see
where it was, runs what it can, and either returns its output, raises :class:`RunFailure`, or
raises :class:`Blocked` after recording what it waits for. The next advance re-descends the same
path, so a run can stop at any wait and resume in another process from its last commit.

Frame keys are short because frames are serialized at every commit:
``in`` raw input, ``ti`` transformed input, ``t0`` start time, ``dl`` deadline, ``c`` child frame.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import jsonschema

from itinera.clock import iso
from itinera.engine.execution import Blocked, Execution
from itinera.errors import ErrorType, ExpressionError, Problem, RunFailure
from itinera.expressions import compile_expression, compile_value, is_expression, unwrap

if TYPE_CHECKING:
    from itinera.engine.plan import Compiler


_SECRET_NAME = re.compile(r"""\$secrets\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\.?\s*\[\s*"([^"]+)"\s*\]|\.\s*"([^"]+)")""")


def _secret_names(value: Any) -> frozenset[str]:
    """The secrets an expression (or a value holding expressions) reads by name."""
    if isinstance(value, str):
        return frozenset(a or b or c for a, b, c in _SECRET_NAME.findall(value)) if "$secrets" in value else frozenset()
    if isinstance(value, dict):
        return frozenset().union(*(_secret_names(v) for v in value.values()), *(_secret_names(k) for k in value))
    if isinstance(value, list):
        return frozenset().union(*(_secret_names(v) for v in value))
    return frozenset()


class Evaluable:
    """A runtime expression or a value with expressions inside, compiled once."""

    __slots__ = ("_fn", "variables", "constant", "source", "secrets")

    def __init__(self, value: Any, *, always_expression: bool = False) -> None:
        self.source = value
        if isinstance(value, str) and (always_expression or is_expression(value)):
            expr = compile_expression(unwrap(value) if is_expression(value) else value)
            self._fn: Callable[[Any, Mapping[str, Any]], Any] = expr.evaluate
            self.variables: frozenset[str] = expr.variables
            self.constant = False
        else:
            template = compile_value(value)
            self._fn = template.evaluate
            self.variables = template.variables
            self.constant = template.constant
        self.secrets = _secret_names(value) if "secrets" in self.variables else frozenset()

    def __call__(self, data: Any, variables: Mapping[str, Any]) -> Any:
        return self._fn(data, variables)


_SAME = object()  # "not given": $task.output is the same as $output


def datetime_descriptor(ts: float) -> dict[str, Any]:
    return {"iso8601": iso(ts), "epoch": {"seconds": int(ts), "milliseconds": int(ts * 1000)}}


def truthy(value: Any) -> bool:
    """jq truthiness: everything but ``false`` and ``null`` is true."""
    return value is not None and value is not False


class TaskNode:
    """One task of a definition, with the spec's data flow around its body."""

    kind = "task"

    def __init__(self, name: str, ref: str, spec: Mapping[str, Any], compiler: Compiler) -> None:
        self.name = name
        self.ref = ref
        self.spec = spec
        self.then: str = spec.get("then", "continue")
        self.if_ = Evaluable(spec["if"], always_expression=True) if "if" in spec else None
        inp = spec.get("input") or {}
        out = spec.get("output") or {}
        exp = spec.get("export") or {}
        self.input_from = Evaluable(inp["from"], always_expression=True) if "from" in inp else None
        self.input_schema = compiler.schema(inp.get("schema"), f"{ref}/input/schema")
        self.output_as = Evaluable(out["as"], always_expression=True) if "as" in out else None
        self.output_schema = compiler.schema(out.get("schema"), f"{ref}/output/schema")
        self.export_as = Evaluable(exp["as"], always_expression=True) if "as" in exp else None
        self.export_schema = compiler.schema(exp.get("schema"), f"{ref}/export/schema")
        self.timeout = compiler.timeout(spec.get("timeout"), f"{ref}/timeout")
        self.plain = not (
            self.if_ or self.input_from or self.input_schema or self.output_as or self.output_schema
            or self.export_as or self.export_schema or self.timeout is not None
        )

    # -- expression variables -----------------------------------------------------------

    def variables(self, ex: Execution, f: dict[str, Any], names: frozenset[str], output: Any = None, raw_output: Any = _SAME) -> dict[str, Any]:
        """The runtime expression arguments that ``names`` need.

        ``$task.output`` is ``raw_output`` (the output before ``output.as``) when given, else ``output``.
        """
        if not names:
            return {}
        out: dict[str, Any] = {}
        for n in names:
            if n == "context":
                out[n] = ex.state.get("ctx", {})
            elif n == "input":
                out[n] = f.get("ti")
            elif n == "output":
                out[n] = output
            elif n == "workflow":
                out[n] = ex.workflow_descriptor()
            elif n == "task":
                out[n] = {
                    "name": self.name,
                    "reference": self.ref,
                    "definition": self.spec,
                    "input": f.get("in", f.get("ti")),
                    "output": output if raw_output is _SAME else raw_output,
                    "startedAt": datetime_descriptor(f.get("t0", ex.now)),
                }
            elif n == "runtime":
                out[n] = ex.runtime_descriptor()
            elif n == "secrets":
                out[n] = ex.secrets
            elif n in ex.scope:
                out[n] = ex.scope[n]
            # an unknown name is left out: the expression layer reports it as undefined
        return out

    def evaluate(self, e: Evaluable, data: Any, ex: Execution, f: dict[str, Any], output: Any = None, raw_output: Any = _SAME) -> Any:
        if e.constant:
            return e.source
        if e.secrets and not e.secrets <= ex.secrets.keys():
            missing = sorted(e.secrets - ex.secrets.keys())[0]
            detail = f"secret '{missing}' is not declared in use.secrets or not configured (ITINERA_SECRET_{missing})"
            raise fault(ErrorType.AUTHORIZATION, 403, "Secret unavailable", detail, self.ref, retryable=False)
        try:
            return e(data, self.variables(ex, f, e.variables, output, raw_output))
        except ExpressionError as err:
            err.problem.instance = self.ref
            raise

    def validate(self, schema: Any, value: Any, where: str) -> None:
        if schema is None:
            return
        error = jsonschema.exceptions.best_match(schema.iter_errors(value))
        if error is not None:
            path = "/" + "/".join(str(p) for p in error.absolute_path)
            raise fault(ErrorType.VALIDATION, 400, f"Invalid task {where}", f"{where} at {path}: {error.message}", self.ref, retryable=False)

    # -- the task lifecycle ---------------------------------------------------------------

    def run(self, ex: Execution, f: dict[str, Any]) -> Any:
        """Run (or resume) this task in frame ``f`` and return its transformed output."""
        ex.steps += 1
        if ex.steps > 100_000:
            detail = "more than 100000 task transitions without waiting; check the flow directives for a loop"
            raise fault(ErrorType.RUNTIME, 500, "Runaway run", detail, self.ref, retryable=False)
        if "ti" not in f:
            if not self.plain and not self._start(ex, f):
                f["sk"] = 1
                return f["in"]
            if "ti" not in f:
                # Raw and transformed input are one value here: keep one copy in the frame.
                f["ti"] = f.pop("in") if self.plain else f["in"]
            ex.traced("task.started", self.name, self.ref)
        elif "dl" in f and ex.now >= f["dl"]:
            ex.traced("task.faulted", self.name, self.ref)
            raise self._timed_out()
        try:
            raw = self.body(ex, f)
        except Blocked:
            if "dl" in f:
                ex.wake(f["dl"], "timeout")
            raise
        except RunFailure as failure:
            if failure.problem.instance is None:
                failure.problem.instance = self.ref
            ex.traced("task.faulted", self.name, self.ref)
            raise
        if self.plain:
            ex.traced("task.completed", self.name, self.ref)
            return raw
        return self._finish(ex, f, raw)

    def _start(self, ex: Execution, f: dict[str, Any]) -> bool:
        raw = f["in"]
        f["t0"] = ex.now
        if self.if_ is not None and not truthy(self.evaluate(self.if_, raw, ex, f)):
            ex.traced("task.skipped", self.name, self.ref)
            return False
        self.validate(self.input_schema, raw, "input")
        f["ti"] = self.evaluate(self.input_from, raw, ex, f) if self.input_from is not None else raw
        if self.timeout is not None:
            f["dl"] = ex.now + self.timeout
        return True

    def _finish(self, ex: Execution, f: dict[str, Any], raw: Any) -> Any:
        out = self.evaluate(self.output_as, raw, ex, f, raw) if self.output_as is not None else raw
        self.validate(self.output_schema, out, "output")
        if self.export_as is not None:
            ctx = self.evaluate(self.export_as, out, ex, f, out, raw_output=raw)
            self.validate(self.export_schema, ctx, "export")
            ex.state["ctx"] = ctx
        ex.traced("task.completed", self.name, self.ref)
        return out

    def _timed_out(self) -> RunFailure:
        return fault(ErrorType.TIMEOUT, 408, "Task timed out", f"task '{self.name}' did not finish within {self.timeout:g} s", self.ref)

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


def fault(type_: str, status: int, title: str, detail: str, ref: str, *, retryable: bool = True) -> RunFailure:
    """A :class:`RunFailure` for the task at ``ref``."""
    return RunFailure(Problem(type=type_, status=status, title=title, detail=detail, instance=ref), retryable=retryable)
