"""A tokenizer for jq program text, faithful to jq 1.8's lexer where it matters.

Two readers depend on it: the guard, which must see every identifier jq would see (so a
string literal can neither hide a forbidden builtin nor trigger a false alarm), and the
native parser. Where jq's lexical rules are subtle the tokenizer follows them exactly:

* a string literal runs to the first unescaped ``"``; ``\\(`` opens an interpolation whose
  code is tokenized recursively (it is code, not text);
* a comment runs from ``#`` to the first newline not escaped by a backslash (jq 1.8 lets a
  backslash continue a comment onto the next line);
* ``.name`` with no space is one field token, so ``.env`` is a field, never a call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["FIELD", "IDENT", "VAR", "NUM", "STR", "FORMAT", "OP", "ERR", "EOF"]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*"
_IDENT_RE = re.compile(_IDENT)
_FIELD_RE = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)")
_NUM_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FORMAT_RE = re.compile(r"@[A-Za-z0-9_]+")
_SPACE = frozenset(" \t\n\r")
# Longest first, so "//=" wins over "//" and "?//" over "?".
_OPERATORS = (
    "?//",
    "//=",
    "//",
    "|=",
    "+=",
    "-=",
    "*=",
    "/=",
    "%=",
    "==",
    "!=",
    "<=",
    ">=",
    "..",
    ".",
    "[",
    "]",
    "{",
    "}",
    "(",
    ")",
    "|",
    ",",
    ":",
    ";",
    "=",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "%",
    "?",
)


@dataclass(frozen=True, slots=True)
class Token:
    """One token. ``text`` is the field, identifier or variable name, the operator, or the
    literal's source text; a string's ``parts`` are the token lists of its interpolations."""

    kind: Kind
    text: str
    pos: int
    parts: tuple[tuple[Token, ...], ...] = field(default=())


class LexError(Exception):
    """The text cannot be tokenized (jq would reject it too)."""


def tokenize(text: str) -> list[Token]:
    """Tokenize a whole program; the last token is ``EOF``.

    Raises:
        LexError: an unterminated string or interpolation.
    """
    tokens, pos = _lex(text, 0, inside_interpolation=False)
    tokens.append(Token("EOF", "", pos))
    return tokens


def _lex(text: str, pos: int, *, inside_interpolation: bool) -> tuple[list[Token], int]:
    tokens: list[Token] = []
    depth = 0
    n = len(text)
    while True:
        # Whitespace and comments.
        while pos < n:
            ch = text[pos]
            if ch in _SPACE:
                pos += 1
            elif ch == "#":
                pos = _skip_comment(text, pos)
            else:
                break
        if pos >= n:
            if inside_interpolation:
                raise LexError("unterminated string interpolation")
            return tokens, pos
        ch = text[pos]
        start = pos
        token: Token
        if ch == '"':
            token, pos = _lex_string(text, pos)
        elif ch == "$" and (match := _IDENT_RE.match(text, pos + 1)) is not None:
            # jq 1.8 reads "$name" as one token; "$ name" (an older jq's form) is lexed as
            # "$" then a name, which the guard still reads as a variable.
            token = Token("VAR", match.group(), start)
            pos = match.end()
        elif ch == "." and (match := _FIELD_RE.match(text, pos)) is not None:
            token = Token("FIELD", match.group(1), start)
            pos = match.end()
        elif (match := _NUM_RE.match(text, pos)) is not None:
            token = Token("NUM", match.group(), start)
            pos = match.end()
        elif (match := _IDENT_RE.match(text, pos)) is not None:
            token = Token("IDENT", match.group(), start)
            pos = match.end()
        elif (match := _FORMAT_RE.match(text, pos)) is not None:
            token = Token("FORMAT", match.group(), start)
            pos = match.end()
        else:
            for op in _OPERATORS:
                if text.startswith(op, pos):
                    token = Token("OP", op, start)
                    pos += len(op)
                    break
            else:
                token = Token("ERR", ch, start)
                pos += 1
            if inside_interpolation and token.text == "(":
                depth += 1
            elif inside_interpolation and token.text == ")":
                if depth == 0:
                    return tokens, pos
                depth -= 1
        tokens.append(token)


def _skip_comment(text: str, pos: int) -> int:
    """Skip a comment starting at ``pos``: a backslash escapes the next character, newline
    included (jq 1.8: ``# a \\`` followed by a newline continues the comment)."""
    n = len(text)
    pos += 1
    while pos < n:
        ch = text[pos]
        if ch == "\\":
            pos += 2
        elif ch == "\n":
            return pos + 1
        else:
            pos += 1
    return n


def _lex_string(text: str, pos: int) -> tuple[Token, int]:
    start = pos
    pos += 1
    n = len(text)
    parts: list[tuple[Token, ...]] = []
    while pos < n:
        ch = text[pos]
        if ch == '"':
            return Token("STR", text[start : pos + 1], start, tuple(parts)), pos + 1
        if ch == "\\":
            if pos + 1 < n and text[pos + 1] == "(":
                inner, pos = _lex(text, pos + 2, inside_interpolation=True)
                parts.append(tuple(inner))
                continue
            pos += 2
            continue
        pos += 1
    raise LexError("unterminated string literal")
