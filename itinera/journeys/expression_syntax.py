"""Spotting runtime expressions in a definition and checking that they compile.

The check itself belongs to :mod:`itinera.expressions` (``syntax_error``), which knows the
variables and functions runs provide. When it cannot be imported, jq's own compiler stands in,
with every ``$name`` the text mentions bound, so that only syntax is judged.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable

_STRICT = re.compile(r"\s*\$\{(.*)\}\s*", re.DOTALL)
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_JQ_BUILTIN_VARIABLES = frozenset({"ENV", "__loc__", "__prog_args"})
_JQ_LOCATION = re.compile(r"\s+at <top-level>, line \d+, column \d+:?$")


def unwrap(text: str) -> str | None:
    """The jq inside a strict-mode expression (``"${ .a }"`` gives ``" .a "``), else None."""
    match = _STRICT.fullmatch(text)
    return match.group(1) if match else None


@functools.lru_cache(maxsize=4096)
def syntax_error(jq_text: str) -> str | None:
    """Why ``jq_text`` (without its ``${ }``) does not compile, or None if it does."""
    if not jq_text.strip():
        return "the expression is empty"
    return _checker()(jq_text)


@functools.cache
def _checker() -> Callable[[str], str | None]:
    # Imported late: itinera.expressions is heavier, and was built alongside this package.
    try:
        from itinera.expressions import syntax_error as check
    except ImportError:
        return _jq_syntax_error
    return check


def _jq_syntax_error(jq_text: str) -> str | None:
    jq = importlib.import_module("jq")  # by name: the jq bindings ship no type information
    names = set(_VARIABLE.findall(jq_text)) - _JQ_BUILTIN_VARIABLES
    try:
        jq.compile(jq_text, args=dict.fromkeys(names))
    except ValueError as error:
        return _first_line(str(error))
    return None


def _first_line(message: str) -> str:
    line = message.strip().splitlines()[0] if message.strip() else "invalid jq"
    return _JQ_LOCATION.sub("", line.removeprefix("jq: error: "))
