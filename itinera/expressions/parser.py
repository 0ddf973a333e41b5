"""The grammar of the native subset: jq text to :mod:`itinera.expressions.native` nodes.

The grammar follows jq 1.8.2 as it behaves (the property test in
``tests/test_expressions_native.py`` compares it with jq), so a text accepted here is valid jq
with the same meaning; a text it does not accept is simply not native and goes to jq. Where
jq 1.8 differs from older jq or from intuition:

* unary minus binds tighter than ``*`` (``-"a" * 2`` negates the string, and fails), looser
  than subscripts (``-.a.b`` is ``-(.a.b)``);
* an object value is any expression up to the next comma (``{a: 1 + 1}``);
* ``?`` right after a subscript makes only that subscript optional (``.a.b?`` fails when
  ``.a`` does); any other ``?`` tries the whole term so far; the term may go on (``$x?.a``);
* comparisons do not chain (``1 == 2 == 3`` is a syntax error).
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Literal

from itinera.expressions import native as n
from itinera.expressions import semantics as jq
from itinera.expressions.lexer import Token
from itinera.expressions.native import NativeProgram, NotNative

KEYWORDS = frozenset(
    "__loc__ def if then elif else end as reduce foreach try catch label break import "
    "include and or module".split()
)
_COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}
_INT_RE = re.compile(r"[0-9]+")
_CommaMode = Literal["collect", "stop", "forbid"]

#: Longer programs go to jq. Besides keeping closures shallow, this bounds what a program can
#: build natively: each "+" copies at most its leaves' worth of input, and the sandbox, not
#: the worker, is where memory is limited.
MAX_TOKENS = 400


def parse(tokens: list[Token]) -> NativeProgram | None:
    """Parse a tokenized program into a native program, or None if it is not native."""
    if len(tokens) > MAX_TOKENS:
        return None
    try:
        parser = _Parser(tokens)
        node = parser.program()
    except (NotNative, RecursionError):
        return None
    return NativeProgram(run=n.top_level(node), variables=frozenset(parser.variables))


def _number_literal(text: str) -> int | float:
    """A numeric literal, typed as jq prints it (``1.0`` stays a float, ``1.`` is ``1``).

    jq keeps a literal's decimal digits; Python keeps a double. They behave the same only when
    the literal is exactly the shortest decimal of its double, so other literals go to jq.
    """
    canonical = str(Decimal(text))  # decNumber's to-string, which jq prints
    value = json.loads(canonical)
    if isinstance(value, int):
        if not -jq.SAFE_INT <= value <= jq.SAFE_INT:
            raise NotNative("integer literal beyond 2**53")
        return value
    if not math.isfinite(value) or Decimal(text) != Decimal(repr(value)):
        raise NotNative("inexact number literal")
    return float(value)


def _string_literal(token: Token) -> str:
    if token.parts:
        raise NotNative("string interpolation")
    try:
        value = json.loads(token.text, strict=False)
    except ValueError:
        raise NotNative("invalid string literal") from None
    if not isinstance(value, str) or any("\ud800" <= ch <= "\udfff" for ch in value):
        raise NotNative("lone surrogate")
    return value


class _Parser:
    """Recursive descent, one method per precedence level; NotNative on anything else."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.variables: set[str] = set()

    # token helpers
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.peek()  # past the end, EOF again
        self.i += 1
        return token

    def at(self, op: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == "OP" and token.text == op

    def at_word(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "IDENT" and token.text == word

    def expect(self, op: str) -> None:
        if not self.at(op):
            raise NotNative(f"expected {op}")
        self.i += 1

    # grammar, lowest precedence first
    def program(self) -> n.Node:
        node = self.pipe("collect")
        if self.peek().kind != "EOF":
            raise NotNative("trailing tokens")
        return node

    def pipe(self, comma: _CommaMode) -> n.Node:
        """``comma``: "collect" where outputs are collected (top level, ``[...]``), "stop" in
        an object value (a comma ends the pair), "forbid" elsewhere (several outputs)."""
        left = self.comma(comma)
        if self.at("|"):
            self.advance()
            if left.many is not None:
                raise NotNative("several outputs piped")
            return n.pipe(left, self.pipe(comma))
        return left

    def comma(self, mode: _CommaMode) -> n.Node:
        first = self.alternative()
        if not self.at(",") or mode == "stop":
            return first
        if mode == "forbid":
            raise NotNative("comma outside a collecting position")
        items = [first]
        while self.at(","):
            self.advance()
            items.append(self.alternative())
        return n.comma(items)

    def alternative(self) -> n.Node:
        left = self.or_()
        if self.at("//"):
            self.advance()
            return n.alternative(left, self.alternative())
        return left

    def or_(self) -> n.Node:
        left = self.and_()
        while self.at_word("or"):
            self.advance()
            left = n.or_(left, self.and_())
        return left

    def and_(self) -> n.Node:
        left = self.comparison()
        while self.at_word("and"):
            self.advance()
            left = n.and_(left, self.comparison())
        return left

    def comparison(self) -> n.Node:
        left = self.additive()
        token = self.peek()
        if token.kind == "OP" and token.text in _COMPARISONS:
            self.advance()
            node = n.binary(token.text, left, self.additive())
            after = self.peek()
            if after.kind == "OP" and after.text in _COMPARISONS:
                raise NotNative("comparisons do not chain")  # a syntax error in jq
            return node
        return left

    def additive(self) -> n.Node:
        left = self.multiplicative()
        while self.peek().kind == "OP" and self.peek().text in ("+", "-"):
            op = self.advance().text
            left = n.binary(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> n.Node:
        left = self.negation()
        while self.peek().kind == "OP" and self.peek().text in ("*", "/", "%"):
            op = self.advance().text
            left = n.binary(op, left, self.negation())
        return left

    def negation(self) -> n.Node:
        """Unary minus binds tighter than ``*`` in jq 1.8 (``-"ab" * 2`` negates the string
        and fails) and looser than subscripts and ``?`` (``-.a.b`` is ``-(.a.b)``)."""
        if self.at("-"):
            self.advance()
            return n.unary(jq.negate, self.negation())
        return self.postfix()

    def postfix(self) -> n.Node:
        """A term and its suffixes. A ``?`` right after a subscript makes only that subscript
        optional (``.a.b?`` fails when ``.a`` does); any other ``?`` tries the whole term so
        far. Either way the term goes on (``$x?.a``)."""
        node = self.primary()
        while True:
            token = self.peek()
            if token.kind == "FIELD":
                self.advance()
                node = n.index(node, token.text)
            elif self.at(".") and self.peek(1).kind == "STR":
                self.advance()
                node = n.index(node, _string_literal(self.advance()))
            elif self.at(".") and self.at("[", 1):
                self.advance()
                node = n.index(node, self.bracket_key())
            elif self.at("["):
                node = n.index(node, self.bracket_key())
            elif self.at("?"):
                self.advance()
                node = n.attempt(node)
                continue
            else:
                return node
            if self.at("?"):
                self.advance()
                node = n.optional_index(node)

    def bracket_key(self) -> str | int:
        """``["k"]``, ``[0]`` or ``[-1]``; other subscripts (slices, ``[]``) are not native."""
        self.expect("[")
        negative = False
        if self.at("-"):
            self.advance()
            negative = True
        token = self.advance()
        key: str | int
        if token.kind == "STR" and not negative:
            key = _string_literal(token)
        elif token.kind == "NUM" and _INT_RE.fullmatch(token.text):
            value = _number_literal(token.text)
            if not isinstance(value, int):
                raise NotNative("index")
            key = -value if negative else value
        else:
            raise NotNative("subscript")
        self.expect("]")
        return key

    def primary(self) -> n.Node:
        token = self.advance()
        kind, text = token.kind, token.text
        if kind == "FIELD":
            return n.index(n.IDENTITY, text)
        if kind == "NUM":
            return n.const(_number_literal(text))
        if kind == "STR":
            return n.const(_string_literal(token))
        if kind == "VAR":
            self.variables.add(text)
            return n.variable(text)
        if kind == "IDENT":
            if self.at("(") or text in KEYWORDS:
                raise NotNative(text)
            if text == "null":
                return n.const(None)
            if text == "true":
                return n.const(True)
            if text == "false":
                return n.const(False)
            if text == "not":
                return n.unary(lambda v: not jq.truthy(v), n.IDENTITY)
            if text == "length":
                return n.unary(jq.length, n.IDENTITY)
            if text == "type":
                return n.unary(jq.type_name, n.IDENTITY)
            raise NotNative(text)
        if kind != "OP":
            raise NotNative(kind)
        if text == ".":
            if self.peek().kind == "STR":
                return n.index(n.IDENTITY, _string_literal(self.advance()))
            if self.at("["):
                return n.index(n.IDENTITY, self.bracket_key())
            return n.IDENTITY
        if text == "(":
            node = self.pipe("forbid")
            self.expect(")")
            return node
        if text == "[":
            if self.at("]"):
                self.advance()
                return n.array(None)
            content = self.pipe("collect")
            self.expect("]")
            return n.array(content)
        if text == "{":
            return self.object_construction()
        raise NotNative(text)

    def object_construction(self) -> n.Node:
        pairs: list[tuple[n.Node, n.Node]] = []
        if self.at("}"):
            self.advance()
            return n.object_(pairs)
        while True:
            pairs.append(self.object_pair())
            if self.at("}"):
                self.advance()
                return n.object_(pairs)
            self.expect(",")

    def object_pair(self) -> tuple[n.Node, n.Node]:
        token = self.advance()
        kind, text = token.kind, token.text
        if kind == "IDENT" and "::" not in text:
            if self.at(":"):
                self.advance()
                return n.const(text), self.object_value()
            if text in KEYWORDS:
                raise NotNative("keyword shorthand")
            return n.const(text), n.index(n.IDENTITY, text)
        if kind == "VAR":
            self.variables.add(text)
            if self.at(":"):
                self.advance()
                return n.variable(text), self.object_value()
            return n.const(text), n.variable(text)
        if kind == "STR":
            key = _string_literal(token)
            if self.at(":"):
                self.advance()
                return n.const(key), self.object_value()
            return n.const(key), n.index(n.IDENTITY, key)
        if kind == "OP" and text == "(":
            key_node = self.pipe("forbid")
            self.expect(")")
            if key_node.const is not n.NO_CONST and type(key_node.const) is not str:
                raise NotNative("constant non-string key")  # jq rejects it at compile time
            self.expect(":")
            return key_node, self.object_value()
        raise NotNative("object key")

    def object_value(self) -> n.Node:
        """jq 1.8 takes any expression up to the next top-level comma (``{a: 1 + 1}``)."""
        return self.pipe("stop")
