"""Compiling and evaluating one runtime expression (jq text without ``${}``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from itinera.errors import ExpressionError
from itinera.expressions import sandbox
from itinera.expressions.guard import bracket_error, forbidden_use
from itinera.expressions.lexer import LexError, tokenize
from itinera.expressions.native import MissingVariable, NativeProgram
from itinera.expressions.parser import parse
from itinera.expressions.semantics import JqError, Unsupported

CACHE_SIZE = 4096


def is_expression(value: object) -> bool:
    """Whether ``value`` is a strict-mode runtime expression: a string ``${ ... }``
    (surrounding blanks allowed)."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    return len(text) >= 3 and text.startswith("${") and text.endswith("}")


def unwrap(value: str) -> str:
    """``"${ .a }"`` -> ``".a"``.

    Raises:
        ExpressionError: ``value`` is not a runtime expression.
    """
    if not is_expression(value):
        raise ExpressionError(f"not a runtime expression: {value!r}")
    return value.strip()[2:-1].strip()


@dataclass(frozen=True, slots=True, eq=False)
class Expression:
    """A compiled runtime expression.

    Attributes:
        source: the jq text, without ``${}``.
        variables: the ``$names`` it reads (without ``$``); :meth:`evaluate` needs exactly
            these in its ``variables`` mapping.
        native: evaluated by Itinera's own evaluator rather than by jq in the sandbox.
    """

    source: str
    variables: frozenset[str]
    native: bool
    _program: NativeProgram | None = field(default=None, repr=False)
    _names: tuple[str, ...] = field(default=(), repr=False)

    def evaluate(self, data: Any, variables: Mapping[str, Any]) -> Any:
        """Evaluate on ``data`` (jq's ``.``), with ``$name`` read from ``variables[name]``.

        Returns:
            The single output; None for no output; a list for several outputs.

        Raises:
            ExpressionError: jq raised an error, a variable is missing, or a sandbox limit
                (time, memory, input or output size) was broken.
        """
        program = self._program
        if program is not None:
            try:
                return program.run(data, variables)
            except JqError as error:
                raise ExpressionError(str(error), expression=self.source) from None
            except MissingVariable as missing:
                raise self._missing(missing.name) from None
            except (Unsupported, RecursionError):
                pass  # a case the native evaluator does not model: jq decides
        return self._evaluate_with_jq(data, variables)

    def _evaluate_with_jq(self, data: Any, variables: Mapping[str, Any]) -> Any:
        values = []
        for name in self._names:
            try:
                values.append(variables[name])
            except KeyError:
                raise self._missing(name) from None
        outputs = sandbox.evaluate(self.source, self._names, data, values)
        if not outputs:
            return None
        return outputs[0] if len(outputs) == 1 else outputs

    def _missing(self, name: str) -> ExpressionError:
        return ExpressionError(
            f"the expression reads ${name}, which is not available here", expression=self.source
        )


@functools.lru_cache(maxsize=CACHE_SIZE)
def compile_expression(text: str) -> Expression:
    """Compile jq text (without ``${}``), once per distinct text (an LRU cache).

    Forms in the native subset (see :mod:`itinera.expressions.native`) compile to Python
    closures; the rest compile in the sandbox, which also checks the syntax.

    Raises:
        ExpressionError: the text does not compile, or uses a forbidden builtin.
    """
    return _compile(text, force_jq=False)


def compile_with_jq(text: str) -> Expression:
    """Compile ``text`` for evaluation by jq even when it is in the native subset (uncached;
    for tests and benchmarks that compare the two)."""
    return _compile(text, force_jq=True)


def syntax_error(text: str) -> str | None:
    """None if ``text`` (jq without ``${}``) compiles and uses nothing forbidden; else a
    one-line message saying what is wrong."""
    try:
        compile_expression(text)
    except ExpressionError as error:
        detail = error.problem.detail or "invalid expression"
        return detail.splitlines()[0] if detail else "invalid expression"
    return None


def _compile(text: str, *, force_jq: bool) -> Expression:
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, not {type(text).__name__}")
    if not text.strip():
        raise ExpressionError("empty expression", expression=text)
    try:
        tokens = tokenize(text)
        problem = forbidden_use(tokens) or bracket_error(tokens)
    except LexError as error:
        raise ExpressionError(f"syntax error: {error}", expression=text) from None
    except RecursionError:
        raise ExpressionError("expression is nested too deeply", expression=text) from None
    if problem is not None:
        raise ExpressionError(problem, expression=text)
    program = None if force_jq else parse(tokens)
    if program is not None:
        names = tuple(sorted(program.variables))
        return Expression(
            source=text, variables=program.variables, native=True, _program=program, _names=names
        )
    free = sandbox.check(text)
    return Expression(source=text, variables=free, native=False, _names=tuple(sorted(free)))
