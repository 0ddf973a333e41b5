"""Runtime expressions: jq inside ``${ }``, evaluated safely and fast.

Definitions and events are untrusted, so an expression can neither reach outside (no
``env``, ``$ENV``, ``input``, ``now``, ... -- rejected when it compiles) nor exhaust the worker:
anything outside the native subset runs in sandbox child processes with a time limit, a memory
limit and input/output size limits (:mod:`itinera.expressions.sandbox`). The common simple
forms (paths, literals, comparisons, ``and``/``or``/``//``, arithmetic, object and array
construction) are evaluated natively, with jq's exact semantics, in about a microsecond
(:mod:`itinera.expressions.native`).

Result convention: an expression's value is its single output; an expression with no output
(``empty``, ``.a?`` on a number) yields None; one with several outputs (``.a, .b``,
``.[]``) yields the list of them. Every failure -- a syntax error, a forbidden builtin, a jq
error, a broken limit, a variable the caller did not pass -- raises
:class:`~itinera.errors.ExpressionError`.

Results may share structure with the data and the definition (native paths return the very
objects they reach; constant template parts are not copied): treat them as immutable.

Variables: ``evaluate(data, variables)`` reads ``$name`` from ``variables["name"]`` and needs
only the names in the expression's ``variables`` attribute.
"""

from __future__ import annotations

from itinera.expressions.expression import (
    Expression,
    compile_expression,
    is_expression,
    syntax_error,
    unwrap,
)
from itinera.expressions.template import Template, compile_value

__all__ = [
    "Expression",
    "Template",
    "compile_expression",
    "compile_value",
    "is_expression",
    "syntax_error",
    "unwrap",
]
