"""What a runtime expression may not use: builtins that reach outside the sandbox or that
make a run non-deterministic.

The check works on tokens (see :mod:`itinera.expressions.lexer`), never on substrings: a
string literal mentioning ``env`` is accepted, ``"\\(env)"`` (an interpolation) is rejected,
``.env`` (a field) and ``{env: 1}`` (an object key) are accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

from itinera.expressions.lexer import Token

#: Builtins (called by name) and why each is refused.
FORBIDDEN_BUILTINS: dict[str, str] = {
    "env": "it reads the process environment",
    "input": "it reads the worker's input stream",
    "inputs": "it reads the worker's input stream",
    "input_filename": "it reveals the worker's input file",
    "input_line_number": "it reads the worker's input stream",
    "debug": "it writes to the worker's error stream",
    "stderr": "it writes to the worker's error stream",
    "halt": "it stops the worker",
    "halt_error": "it stops the worker",
    "get_search_list": "it reveals the worker's module search path",
    "get_prog_origin": "it reveals the worker's file system",
    "get_jq_origin": "it reveals the worker's file system",
    "modulemeta": "it reads module files",
    "import": "modules read files",
    "include": "modules read files",
    "now": "it reads the clock, so a replayed run could decide differently",
    "localtime": "it depends on the worker's time zone",
    "strflocaltime": "it depends on the worker's time zone",
    "__loc__": "it is internal to jq",
}

#: Variables jq predefines that an expression may not read.
FORBIDDEN_VARIABLES: dict[str, str] = {
    "ENV": "it reads the process environment",
    "__loc__": "it is internal to jq",
    "__prog_args": "it is internal to jq",
}


def forbidden_use(tokens: Sequence[Token]) -> str | None:
    """Return a one-line message naming the first forbidden construct, or None."""
    depth_stack: list[str] = []
    for i, token in enumerate(tokens):
        if token.kind == "STR":
            for part in token.parts:
                message = forbidden_use(part)
                if message is not None:
                    return message
        elif token.kind == "OP":
            if token.text in ("(", "[", "{"):
                depth_stack.append(token.text)
            elif token.text in (")", "]", "}") and depth_stack:
                depth_stack.pop()
        elif token.kind == "VAR" or (token.kind == "IDENT" and _after_dollar(tokens, i)):
            name = "$" + token.text
            if token.text in FORBIDDEN_VARIABLES:
                return f"{name} is not allowed in expressions: {FORBIDDEN_VARIABLES[token.text]}"
            if token.text.startswith("__"):
                return f"{name} is not allowed in expressions: names starting with __ are reserved"
            if "::" in token.text:
                return f"{name} is not allowed in expressions: modules are not available"
        if token.kind == "IDENT":
            if "::" in token.text:
                return f"{token.text} is not allowed in expressions: modules are not available"
            reason = FORBIDDEN_BUILTINS.get(token.text)
            if reason is not None and not _is_object_key(tokens, i, depth_stack):
                return f"{token.text} is not allowed in expressions: {reason}"
    return None


def _after_dollar(tokens: Sequence[Token], i: int) -> bool:
    return i > 0 and tokens[i - 1].kind == "OP" and tokens[i - 1].text == "$"


def _is_object_key(tokens: Sequence[Token], i: int, depth_stack: list[str]) -> bool:
    """``{name: ...}`` or ``{name}`` directly inside an object construction: a key, not a call.

    Inside ``{...}`` a comma at the top level always separates pairs (jq allows no bare comma
    in an object value), so "after ``{`` or ``,``, before ``:``, ``,`` or ``}``" is exact.
    """
    if not depth_stack or depth_stack[-1] != "{" or i == 0 or i + 1 >= len(tokens):
        return False
    before, after = tokens[i - 1], tokens[i + 1]
    return (
        before.kind == "OP"
        and before.text in ("{", ",")
        and after.kind == "OP"
        and after.text in (":", ",", "}")
    )


_CLOSERS = {")": "(", "]": "[", "}": "{"}


def bracket_error(tokens: Sequence[Token]) -> str | None:
    """A message if the brackets outside string literals do not pair up.

    jq would reject such a program anyway; checking first guarantees a program cannot close
    the brackets the sandbox wraps it in.
    """
    stack: list[str] = []
    for token in tokens:
        if token.kind != "OP":
            continue
        if token.text in ("(", "[", "{"):
            stack.append(token.text)
        elif token.text in _CLOSERS:
            if not stack or stack.pop() != _CLOSERS[token.text]:
                return f"syntax error: unexpected {token.text!r} at offset {token.pos}"
    if stack:
        return f"syntax error: {stack[-1]!r} is never closed"
    return None
