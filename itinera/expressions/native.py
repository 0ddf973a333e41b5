"""The native evaluator: jq's semantics for a subset of jq, as Python closures.

The subset (anything else is evaluated by jq in the sandbox):

* paths: ``.``, ``.a``, ``."k"``, ``.["k"]``, ``.[0]``, ``.[-1]``, chained, each optionally
  followed by ``?``; variables ``$x``, ``$x.a.b``;
* literals: ``null``, ``true``, ``false``, numbers, strings without interpolation;
* ``(...)``, ``[a, b]``, ``{a: .x, "b": $y, c, $v, (.k): v}``;
* operators ``|`` ``,`` ``//`` ``or`` ``and`` ``== != < <= > >=`` ``+ - * / %`` and unary
  ``-``, with jq's precedence and associativity, and ``?``;
* builtins ``not``, ``length``, ``type``.

:mod:`itinera.expressions.parser` reads the text and calls the builders here, each of which
returns a :class:`Node` holding the closure for its part of the program; values follow
:mod:`itinera.expressions.semantics`.
Every node yields exactly one value or raises :class:`~.semantics.Empty` (no output), except
that a comma list yields a list of outputs, which is allowed only where the outputs are
collected: at the top level, on the right of a ``|``, and inside ``[...]``.

Evaluation order follows jq, which matters when one side errors and the other is empty:
binary operators evaluate their right side first; ``and``, ``or``, ``//``, commas and object
pairs go left to right.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from itinera.expressions import semantics as jq

Fn = Callable[[Any, Mapping[str, Any]], Any]
ManyFn = Callable[[Any, Mapping[str, Any]], list[Any]]

MAX_DEPTH = 64  # deeper programs go to jq rather than risk Python's recursion limit

class NotNative(Exception):
    """The text is outside the native subset."""


class MissingVariable(Exception):
    """The expression read a variable the caller did not pass."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True, slots=True)
class NativeProgram:
    """A parsed native expression; ``run`` applies the result convention."""

    run: Callable[[Any, Mapping[str, Any]], Any]
    variables: frozenset[str]


NO_CONST = object()


@dataclass(frozen=True, slots=True)
class Node:
    """A compiled part of a program; exactly one of ``fn`` and ``many`` is set."""

    fn: Fn | None = None  # one output (or Empty)
    many: ManyFn | None = None  # a list of outputs
    const: Any = NO_CONST
    depth: int = 1
    index_base: Node | None = None  # set when the node is "base[key]", for a following "?"
    index_key: str | int | None = None


def top_level(node: Node) -> Callable[[Any, Mapping[str, Any]], Any]:
    """The whole program, applying the result convention (none: None, several: a list)."""
    if node.many is not None:
        many = node.many

        def run_many(data: Any, variables: Mapping[str, Any]) -> Any:
            results = many(data, variables)
            if not results:
                return None
            return results[0] if len(results) == 1 else results

        return run_many
    fn = single(node)

    def run(data: Any, variables: Mapping[str, Any]) -> Any:
        try:
            return fn(data, variables)
        except jq.Empty:
            return None

    return run


def single(node: Node) -> Fn:
    """The node's one-output function; a comma list here is not native."""
    if node.fn is None:
        raise NotNative("several outputs where one is needed")
    return node.fn


def outputs(node: Node) -> ManyFn:
    """The node as a list-of-outputs function."""
    if node.many is not None:
        return node.many
    fn = single(node)

    def many(data: Any, variables: Mapping[str, Any]) -> list[Any]:
        try:
            return [fn(data, variables)]
        except jq.Empty:
            return []

    return many


def make(fn: Fn, *children: Node) -> Node:
    """A one-output node over ``children``, refusing programs nested beyond ``MAX_DEPTH``."""
    depth = 1 + max((c.depth for c in children), default=0)
    if depth > MAX_DEPTH:
        raise NotNative("too deep")
    return Node(fn=fn, depth=depth)


def const(value: Any) -> Node:
    """A literal (always immutable: arrays and objects are built fresh)."""

    def fn(data: Any, variables: Mapping[str, Any]) -> Any:
        return value

    return Node(fn=fn, const=value)


IDENTITY = Node(fn=lambda data, variables: data)


# --------------------------------------------------------------------------- node builders


def index(base: Node, key: str | int) -> Node:
    """``base[key]`` for a literal key."""
    get = jq.index
    if base is IDENTITY:
        if isinstance(key, str):

            def fn(data: Any, variables: Mapping[str, Any]) -> Any:
                if type(data) is dict:
                    return data.get(key)
                return get(data, key)

        else:

            def fn(data: Any, variables: Mapping[str, Any]) -> Any:
                return get(data, key)

    else:
        base_fn = single(base)

        def fn(data: Any, variables: Mapping[str, Any]) -> Any:
            value = base_fn(data, variables)
            if type(value) is dict and type(key) is str:
                return value.get(key)
            return get(value, key)

    node = make(fn, base)
    return Node(fn=node.fn, depth=node.depth, index_base=base, index_key=key)


def optional_index(node: Node) -> Node:
    """``base[key]?`` (jq's ``Term FIELD '?'``): only the indexing is tried, so ``.a.b?``
    still fails when ``.a`` does."""
    assert node.index_base is not None and node.index_key is not None
    base_fn = single(node.index_base)
    key = node.index_key
    get = jq.index

    def opt_index(data: Any, variables: Mapping[str, Any]) -> Any:
        value = base_fn(data, variables)
        try:
            return get(value, key)
        except jq.JqError:
            raise jq.Empty from None

    return make(opt_index, node.index_base)


def attempt(node: Node) -> Node:
    """``X?`` on anything else (jq's ``Exp '?'``): errors anywhere in X become no output."""
    inner = single(node)

    def tried(data: Any, variables: Mapping[str, Any]) -> Any:
        try:
            return inner(data, variables)
        except jq.JqError:
            raise jq.Empty from None

    return make(tried, node)


def variable(name: str) -> Node:
    """``$name``, read from the caller's mapping."""

    def fn(data: Any, variables: Mapping[str, Any]) -> Any:
        try:
            return variables[name]
        except KeyError:
            raise MissingVariable(name) from None

    return Node(fn=fn)


def pipe(left: Node, right: Node) -> Node:
    """``left | right``; several outputs only on the right."""
    lfn = single(left)
    if right.many is not None:
        rmany = right.many

        def many(data: Any, variables: Mapping[str, Any]) -> list[Any]:
            try:
                value = lfn(data, variables)
            except jq.Empty:
                return []
            return rmany(value, variables)

        depth = 1 + max(left.depth, right.depth)
        if depth > MAX_DEPTH:
            raise NotNative("too deep")
        return Node(many=many, depth=depth)
    rfn = single(right)

    def fn(data: Any, variables: Mapping[str, Any]) -> Any:
        return rfn(lfn(data, variables), variables)

    return make(fn, left, right)


def comma(items: list[Node]) -> Node:
    """``a, b, ...``: the outputs of each, in order."""
    fns = [single(item) for item in items]
    empty = jq.Empty

    def many(data: Any, variables: Mapping[str, Any]) -> list[Any]:
        out = []
        for fn in fns:
            try:
                out.append(fn(data, variables))
            except empty:
                pass
        return out

    depth = 1 + max(item.depth for item in items)
    if depth > MAX_DEPTH:
        raise NotNative("too deep")
    return Node(many=many, depth=depth)


def binary(op: str, left: Node, right: Node) -> Node:
    """An arithmetic or comparison operator (``==`` against a literal has a fast path)."""
    lfn, rfn = single(left), single(right)
    if op == "==" and right.const is not NO_CONST:
        c = right.const
        equal = jq.equal
        if type(c) is str:

            def eq_str(data: Any, variables: Mapping[str, Any]) -> Any:
                a = lfn(data, variables)
                return a == c if type(a) is str else equal(a, c)

            return make(eq_str, left, right)

        def eq_const(data: Any, variables: Mapping[str, Any]) -> Any:
            return equal(lfn(data, variables), c)

        return make(eq_const, left, right)
    operation = _OPERATIONS[op]

    def fn(data: Any, variables: Mapping[str, Any]) -> Any:
        b = rfn(data, variables)  # jq evaluates the right side first
        return operation(lfn(data, variables), b)

    return make(fn, left, right)


def _cmp(test: Callable[[int], bool]) -> Callable[[Any, Any], bool]:
    compare = jq.compare
    return lambda a, b: test(compare(a, b))


_OPERATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "+": jq.add,
    "-": jq.subtract,
    "*": jq.multiply,
    "/": jq.divide,
    "%": jq.modulo,
    "==": jq.equal,
    "!=": lambda a, b: not jq.equal(a, b),
    "<": _cmp(lambda r: r < 0),
    "<=": _cmp(lambda r: r <= 0),
    ">": _cmp(lambda r: r > 0),
    ">=": _cmp(lambda r: r >= 0),
}


def and_(left: Node, right: Node) -> Node:
    """``left and right``, short-circuiting."""
    lfn, rfn = single(left), single(right)
    truthy = jq.truthy

    def fn(data: Any, variables: Mapping[str, Any]) -> Any:
        if not truthy(lfn(data, variables)):
            return False
        return truthy(rfn(data, variables))

    return make(fn, left, right)


def or_(left: Node, right: Node) -> Node:
    """``left or right``, short-circuiting."""
    lfn, rfn = single(left), single(right)
    truthy = jq.truthy

    def fn(data: Any, variables: Mapping[str, Any]) -> Any:
        if truthy(lfn(data, variables)):
            return True
        return truthy(rfn(data, variables))

    return make(fn, left, right)


def alternative(left: Node, right: Node) -> Node:
    """``a // b``: a's value unless it is false, null or empty. jq 1.8 does not suppress
    an error in ``a``."""
    lfn, rfn = single(left), single(right)
    empty = jq.Empty

    def fn(data: Any, variables: Mapping[str, Any]) -> Any:
        try:
            value = lfn(data, variables)
        except empty:
            return rfn(data, variables)
        if value is None or value is False:
            return rfn(data, variables)
        return value

    return make(fn, left, right)


def unary(operation: Callable[[Any], Any], operand: Node) -> Node:
    """``operation`` applied to the operand's value (negation, ``not``, ``length``...)."""
    ofn = single(operand)

    def fn(data: Any, variables: Mapping[str, Any]) -> Any:
        return operation(ofn(data, variables))

    return make(fn, operand)


def array(content: Node | None) -> Node:
    """``[content]``: all of content's outputs, collected."""
    if content is None:
        return Node(fn=lambda data, variables: [])
    many = outputs(content)
    return make(lambda data, variables: many(data, variables), content)


def object_(pairs: list[tuple[Node, Node]]) -> Node:
    """``{k: v, ...}``, pairs in order, key before value; no output if any value has none."""
    compiled = [(single(k), k.const, single(v)) for k, v in pairs]
    object_key = jq.object_key

    def fn(data: Any, variables: Mapping[str, Any]) -> Any:
        out: dict[str, Any] = {}
        for kfn, kconst, vfn in compiled:
            if type(kconst) is str:
                out[kconst] = vfn(data, variables)
            else:
                key = kfn(data, variables)
                value = vfn(data, variables)
                out[object_key(key)] = value  # jq checks the key only when inserting
        return out

    children = [n for pair in pairs for n in pair]
    return make(fn, *children) if children else Node(fn=lambda data, variables: {})
