"""``call`` tasks: HTTP through the outbox, custom functions, and catalog blocks."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import ValidationError

from itinera.catalog import Block, BlockContext
from itinera.engine.execution import Blocked, Execution
from itinera.engine.node import Evaluable, TaskNode, fault
from itinera.errors import ErrorType, Problem, RunFailure

if TYPE_CHECKING:
    from itinera.engine.plan import Compiler

_TEMPLATE_VAR = re.compile(r"\{([A-Za-z0-9_.]+)\}")


def _scalar_text(value: Any) -> str:
    """A string, number or boolean as it reads in JSON (``true``, not Python's ``True``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _expand_uri(template: str, data: Any) -> str:
    """RFC 6570 simple string expansion (the only form the DSL supports) from the task input.

    Per the DSL's URI Template: names are verbatim top-level properties (``{pet.id}`` is the
    property "pet.id", not ``pet``'s ``id``), a missing or null value expands to "", and a value
    that is not a string, number, boolean or null is an error (ValueError).
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        cur = data.get(name) if isinstance(data, dict) else None
        if cur is None:
            return ""
        if isinstance(cur, dict | list):
            raise ValueError(f"URI template variable '{name}' must be a string, number, boolean or null, not {'an object' if isinstance(cur, dict) else 'an array'}")
        return quote(_scalar_text(cur), safe="")

    return _TEMPLATE_VAR.sub(value, template)


class HttpCallNode(TaskNode):
    kind = "call.http"

    def __init__(self, name: str, ref: str, spec: Mapping[str, Any], compiler: Compiler) -> None:
        super().__init__(name, ref, spec, compiler)
        args = spec.get("with") or {}
        self.method = str(args.get("method", "get")).upper()
        endpoint = args.get("endpoint")
        auth: Any = None
        if isinstance(endpoint, dict):
            auth = endpoint.get("authentication")
            endpoint = endpoint.get("uri")
        self.endpoint_expr = Evaluable(endpoint) if isinstance(endpoint, str) and endpoint.strip().startswith("${") else None
        self.endpoint = str(endpoint)
        self.headers = Evaluable(args.get("headers") or {})
        self.query = Evaluable(args.get("query") or {})
        self.body_ = Evaluable(args["body"]) if "body" in args else None
        self.output: str = args.get("output", "content")
        self.redirect = bool(args.get("redirect", False))
        self.auth = compiler.authentication(auth, f"{ref}/with/endpoint/authentication") if auth is not None else None

    def _request(self, ex: Execution, f: dict[str, Any]) -> dict[str, Any]:
        data = f["ti"]
        if self.endpoint_expr is not None:
            url = self.evaluate(self.endpoint_expr, data, ex, f)
            if not isinstance(url, str):
                raise fault(ErrorType.VALIDATION, 400, "Invalid endpoint", "the endpoint expression must yield a string", self.ref, retryable=False)
        else:
            try:
                url = _expand_uri(self.endpoint, data)
            except ValueError as err:
                raise fault(ErrorType.EXPRESSION, 400, "Invalid URI template value", str(err), self.ref, retryable=False) from None
        if not url.lower().startswith(("http://", "https://")):
            raise fault(ErrorType.CONFIGURATION, 400, "Invalid endpoint", f"'{url}' is not an http(s) URL", self.ref, retryable=False)
        headers = self.evaluate(self.headers, data, ex, f) or {}
        query = self.evaluate(self.query, data, ex, f) or {}
        if not isinstance(headers, dict) or not isinstance(query, dict):
            raise fault(ErrorType.VALIDATION, 400, "Invalid request", "headers and query must be objects", self.ref, retryable=False)
        headers = {str(k): str(v) for k, v in headers.items()}
        if self.auth is not None:
            scheme, parameter = self.auth.resolve(self, ex, f)
            headers["Authorization"] = f"{scheme} {parameter}"
        body = self.evaluate(self.body_, data, ex, f) if self.body_ is not None else None
        return {
            "method": self.method,
            "url": url,
            "headers": headers,
            "query": {str(k): _scalar_text(v) for k, v in query.items() if v is not None},
            "body": body,
            "output": self.output,
            "redirect": self.redirect,
            "timeout": None,
            "notify": True,
        }

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:
        key = f.get("k")
        if key is None:
            key = f["k"] = ex.effect_key(self.ref)
            request = self._request(ex, f)
            # The run state keeps the request for `output: response`, never its credentials.
            shown = {k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in request["headers"].items()}
            f["rq"] = {"method": request["method"], "uri": request["url"], "headers": shown}
            ex.effect(key=key, kind="http", payload=request)
            ex.record("effect.recorded", task=self.ref, key=key, effect="http")
            ex.awaiting("outbox", key=key, effect="http", url=request["url"])
            raise Blocked
        results = ex.take("outbox:" + key)
        if not results:
            ex.awaiting("outbox", key=key, effect="http")
            raise Blocked
        result = results[-1].payload or {}
        if not result.get("ok"):
            error = dict(result.get("error") or {})
            error.setdefault("type", ErrorType.COMMUNICATION)
            error.setdefault("status", 500)
            problem = Problem.from_dict(error)
            problem.instance = self.ref
            raise RunFailure(problem)
        if self.output == "raw":
            return result.get("raw")
        if self.output == "response":
            return {
                "request": f.get("rq"),
                "statusCode": result.get("status"),
                "headers": result.get("headers", {}),
                "content": result.get("content"),
            }
        return result.get("content")


class FunctionCallNode(TaskNode):
    """``call: <name>`` of a function in ``use.functions``: its task runs with ``with`` as input."""

    kind = "call.function"

    def __init__(self, name: str, ref: str, spec: Mapping[str, Any], compiler: Compiler, target: TaskNode) -> None:
        super().__init__(name, ref, spec, compiler)
        self.args = Evaluable(spec.get("with") or {}) if "with" in spec else None
        self.target = target

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:
        inner = f.get("fn")
        if inner is None:
            args = self.evaluate(self.args, f["ti"], ex, f) if self.args is not None else f["ti"]
            inner = f["fn"] = {"in": args}
        return self.target.run(ex, inner)


class BlockCallNode(TaskNode):
    """``call: <name>:<version>@itinera``: a block of the built-in catalog, contract-checked."""

    kind = "call.block"

    def __init__(self, name: str, ref: str, spec: Mapping[str, Any], compiler: Compiler, block: Block) -> None:
        super().__init__(name, ref, spec, compiler)
        self.args = Evaluable(spec.get("with") or {})
        self.block = block

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:
        args = self.evaluate(self.args, f["ti"], ex, f)
        block = self.block
        try:
            model = block.input_model.model_validate(args)
        except ValidationError as err:
            raise fault(ErrorType.VALIDATION, 400, "Invalid block input", f"{block.reference}: {_first_error(err)}", self.ref, retryable=False) from None
        ctx = BlockContext(run_id=ex.run_id, subject=ex.subject, now=ex.now, task=self.ref, record=ex.record)
        try:
            result = block.run(model, ctx)
        except (ValueError, TypeError) as err:
            raise fault(ErrorType.RUNTIME, 500, "Block failed", f"{block.reference}: {err}", self.ref) from None
        if not isinstance(result, block.output_model):
            try:
                result = block.output_model.model_validate(result)
            except ValidationError as err:
                raise fault(ErrorType.VALIDATION, 500, "Invalid block output", f"{block.reference}: {_first_error(err)}", self.ref) from None
        return result.model_dump(mode="json")


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "input"
    return f"{where}: {first['msg']}"


def basic_credentials(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()
