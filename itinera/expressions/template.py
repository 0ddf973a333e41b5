"""A JSON value with runtime expressions inside, compiled once.

Every string that is a runtime expression (``"${ ... }"``), at any depth, in a value or in
an object key, is compiled when the template is; evaluation rebuilds only the containers on
the way to an expression and shares every constant part with the definition (no copy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from itinera.errors import ExpressionError
from itinera.expressions.expression import Expression, compile_expression, is_expression, unwrap

_Build = Callable[[Any, Mapping[str, Any]], Any]


@dataclass(frozen=True, slots=True, eq=False)
class Template:
    """A compiled JSON value.

    Attributes:
        value: the value as written in the definition.
        constant: no expression inside; :meth:`evaluate` returns ``value`` itself.
        variables: the union of the ``$names`` its expressions read.
    """

    value: Any
    constant: bool
    variables: frozenset[str]
    _build: _Build | None = field(default=None, repr=False)

    def evaluate(self, data: Any, variables: Mapping[str, Any]) -> Any:
        """The value with each expression replaced by its result (see
        :meth:`~itinera.expressions.Expression.evaluate` for results and errors)."""
        if self._build is None:
            return self.value
        return self._build(data, variables)


def compile_value(value: Any) -> Template:
    """Compile every runtime expression inside ``value`` (any JSON value).

    Raises:
        ExpressionError: an expression does not compile; the message starts with the JSON
            Pointer of the offending string.
    """
    variables: set[str] = set()
    try:
        build = _compile(value, "", variables)
    except RecursionError:
        raise ExpressionError("the value is nested too deeply") from None
    return Template(
        value=value, constant=build is None, variables=frozenset(variables), _build=build
    )


def _compile(value: Any, pointer: str, variables: set[str]) -> _Build | None:
    """A builder for ``value``, or None when it is constant."""
    if isinstance(value, str):
        if not is_expression(value):
            return None
        expression = _expression(value, pointer)
        variables.update(expression.variables)
        return expression.evaluate
    if isinstance(value, dict):
        return _compile_object(value, pointer, variables)
    if isinstance(value, list):
        return _compile_array(value, pointer, variables)
    return None


def _expression(text: str, pointer: str) -> Expression:
    try:
        return compile_expression(unwrap(text))
    except ExpressionError as error:
        detail = error.problem.detail or "invalid expression"
        raise ExpressionError(f"{pointer or '/'}: {detail}", expression=error.expression) from None


def _compile_array(items: list[Any], pointer: str, variables: set[str]) -> _Build | None:
    builds = [_compile(item, f"{pointer}/{i}", variables) for i, item in enumerate(items)]
    if all(build is None for build in builds):
        return None
    parts = [(build, item) for build, item in zip(builds, items)]

    def build_array(data: Any, env: Mapping[str, Any]) -> Any:
        return [item if build is None else build(data, env) for build, item in parts]

    return build_array


def _compile_object(obj: dict[Any, Any], pointer: str, variables: set[str]) -> _Build | None:
    parts = []
    dynamic = False
    for key, item in obj.items():
        child = f"{pointer}/{_escape(str(key))}"
        key_build = None
        if is_expression(key):
            expression = _expression(key, child)
            variables.update(expression.variables)
            key_build = expression.evaluate
        value_build = _compile(item, child, variables)
        dynamic = dynamic or key_build is not None or value_build is not None
        parts.append((key, key_build, item, value_build))
    if not dynamic:
        return None

    def build_object(data: Any, env: Mapping[str, Any]) -> Any:
        out = {}
        for key, key_build, item, value_build in parts:
            if key_build is not None:
                key = key_build(data, env)
                if not isinstance(key, str):
                    raise ExpressionError(
                        f"an object key expression must produce a string, not {type(key).__name__}"
                    )
            out[key] = item if value_build is None else value_build(data, env)
        return out

    return build_object


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")
